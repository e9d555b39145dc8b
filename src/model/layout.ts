// Where each layer's parameters live in a network's arenas: all dense weights, then all biases,
// then the normalization layers' γ and β (no weight decay past the weights), and batch
// normalization's running statistics in a buffer of their own (not trained).
import { ACT, type Buf } from '../backends/backend.js';
import { isDense, type ModelSpec } from '../spec.js';
import type { LayerInfo, StackLayer } from './plan.js';

/** The arenas' sizes for a spec, and the input width of each dense layer. */
export interface ArenaSizes {
  weights: number;
  biases: number;
  normParams: number;
  statCount: number;
  inputsOf: number[];
}

export function arenaSizes(spec: ModelSpec): ArenaSizes {
  // input width of each dense layer: the width reaching it through the stack
  const inputsOf: number[] = [];
  let w = spec.inputs, normParams = 0, statCount = 0;
  for (const s of spec.layers) {
    if (isDense(s)) {
      inputsOf.push(w);
      w = s.units;
    } else if (s.type !== 'dropout') {
      normParams += 2 * w;
      if (s.type === 'batchNormalization') statCount += 2 * w;
    }
  }
  let weights = 0, biases = 0;
  spec.layers.filter(isDense).forEach((s, l) => {
    weights += inputsOf[l] * s.units;
    biases += s.units;
  });
  return { weights, biases, normParams, statCount, inputsOf };
}

/**
 * The dense layers as views of params and grads, and the whole layer sequence when it has layers
 * beyond dense (else null: the dense-only path).
 */
export function layoutLayers(spec: ModelSpec, sizes: ArenaSizes, params: Buf, grads: Buf, stats: Buf | null): { layers: LayerInfo[]; stack: StackLayer[] | null } {
  const specs = spec.layers, denseSpecs = specs.filter(isDense), { inputsOf, weights, biases } = sizes;
  const layers: LayerInfo[] = [];
  let wOff = 0, bOff = weights;
  denseSpecs.forEach((s, l) => {
    const inp = inputsOf[l], out = s.units;
    layers.push({
      inp, out, act: ACT[s.activation], alpha: s.alpha ?? 0,
      w: params.view(wOff, inp * out), b: params.view(bOff, out),
      dw: grads.view(wOff, inp * out), db: grads.view(bOff, out),
    });
    wOff += inp * out;
    bOff += out;
  });
  if (denseSpecs.length === specs.length) return { layers, stack: null };
  // norm parameters after the biases (no weight decay), stats in their own buffer
  let nOff = weights + biases, sOff = 0, dense = 0, w = spec.inputs;
  const stack = specs.map((s): StackLayer => {
    if (isDense(s)) {
      const L = layers[dense++];
      w = L.out;
      return { kind: 'dense', width: L.out, act: L.act, alpha: L.alpha, dense: L };
    }
    if (s.type === 'dropout') return { kind: 'dropout', width: w, act: ACT.linear, alpha: 0, rate: s.rate };
    const bn = s.type === 'batchNormalization';
    const e: StackLayer = {
      kind: s.type, width: w, act: ACT[s.activation ?? 'linear'], alpha: s.alpha ?? 0, eps: s.epsilon ?? 1e-3,
      momentum: bn ? (s.momentum ?? 0.99) : 0,
      gamma: params.view(nOff, w), beta: params.view(nOff + w, w),
      dgamma: grads.view(nOff, w), dbeta: grads.view(nOff + w, w),
      runMean: bn ? stats!.view(sOff, w) : null, runVar: bn ? stats!.view(sOff + w, w) : null,
    };
    nOff += 2 * w;
    if (bn) sOff += 2 * w;
    return e;
  });
  return { layers, stack };
}
