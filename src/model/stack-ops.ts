// The programs of a network with layers beyond dense (dropout, batch and layer normalization):
// its forward pass for training, the gradient check or inference, and its backward pass with the
// loss, as program.ts ops. Each entry's output has its activation `act` (dropout: linear), so
// that the next entry's backward kernel turns the delta at its input into the delta at this
// entry's pre-activation, as denseBackward does.
import { ACT, type LossCode } from '../backends/backend.js';
import type { Op } from '../backends/program.js';
import type { LayerInfo, PassMode, Plan, StackLayer } from './plan.js';

/**
 * The stack's forward pass as program ops: 'train' and 'gradients' with batch statistics and
 * dropout (its mask keyed by the run's step), 'train' moving the running statistics; in
 * 'inference' dropout is left out (the next layer reads its input) and batch normalization uses
 * the running statistics.
 */
export function stackForwardOps(stack: StackLayer[], p: Plan, mode: PassMode, seed: number): Op[] {
  const m = p.m, ops: Op[] = [];
  const training = mode !== 'inference';
  let input = p.x;
  for (let k = 0; k < stack.length; k++) {
    const e = stack[k], y = p.acts[k];
    switch (e.kind) {
      case 'dense': {
        const L = e.dense;
        ops.push({ op: 'denseForward', y, x: input, w: L.w, b: L.b, m, inp: L.inp, out: L.out, act: L.act, alpha: L.alpha });
        break;
      }
      case 'dropout':
        if (!training) continue;
        ops.push({ op: 'dropoutForward', y, x: input, n: m * e.width, rate: e.rate, seed, layer: k });
        break;
      case 'batchNormalization':
        ops.push(training
          ? { op: 'batchNormForward', y, x: input, gamma: e.gamma, beta: e.beta, runMean: e.runMean!, runVar: e.runVar!,
            mean: p.means[k]!, invStd: p.invStds[k]!, m, n: e.width, update: mode === 'train', momentum: e.momentum, eps: e.eps,
            act: e.act, alpha: e.alpha }
          : { op: 'batchNormInference', y, x: input, gamma: e.gamma, beta: e.beta, runMean: e.runMean!, runVar: e.runVar!, m,
            n: e.width, eps: e.eps, act: e.act, alpha: e.alpha });
        break;
      default:
        ops.push({ op: 'layerNormForward', y, x: input, gamma: e.gamma, beta: e.beta, mean: p.means[k]!, invStd: p.invStds[k]!, m,
          n: e.width, eps: e.eps, act: e.act, alpha: e.alpha });
    }
    input = y;
  }
  return ops;
}

/**
 * The loss and the stack's backward pass as program ops (after a 'train' or 'gradients' forward):
 * `last` is the output layer, `loss` and `delta` the loss and its parameter.
 */
export function stackBackwardOps(stack: StackLayer[], p: Plan, seed: number, last: LayerInfo, loss: LossCode, delta: number): Op[] {
  const m = p.m, scale = 1 / m;
  const ops: Op[] = [{ op: 'lossDelta', dz: p.deltas[stack.length - 1], a: p.acts[stack.length - 1], y: p.y, m, n: last.out,
    loss, act: last.act, alpha: last.alpha, delta, weights: p.weighted ? p.w : null }];
  for (let k = stack.length - 1; k >= 0; k--) {
    const e = stack[k], dy = p.deltas[k];
    const x = k === 0 ? p.x : p.acts[k - 1];
    const dx = k === 0 ? null : p.deltas[k - 1];
    // the first layer has no previous activation: linear, which every backend accepts
    const prevAct = k === 0 ? ACT.linear : stack[k - 1].act, alpha = k === 0 ? 0 : stack[k - 1].alpha;
    switch (e.kind) {
      case 'dense': {
        const L = e.dense;
        ops.push({ op: 'denseBackward', dw: L.dw, db: L.db, dx, dz: dy, x, w: L.w, m, inp: L.inp, out: L.out, scale, prevAct, alpha });
        break;
      }
      case 'dropout':
        if (dx) ops.push({ op: 'dropoutBackward', dx, dy, x, n: m * e.width, rate: e.rate, seed, layer: k, prevAct, alpha });
        break;
      default:
        ops.push({ op: e.kind === 'batchNormalization' ? 'batchNormBackward' : 'layerNormBackward', dx, dgamma: e.dgamma,
          dbeta: e.dbeta, dy, x, gamma: e.gamma, mean: p.means[k]!, invStd: p.invStds[k]!, m, n: e.width, scale, prevAct, alpha });
    }
  }
  return ops;
}
