// The TypeScript interpreter of programs (program.ts): each op is one call of the Backend's kernel.
// It is how the js backend trains, and how native and wasm train with `fusedSteps = false`; their
// own interpreters (native/boundary/interpreter.cc, assembly/interpreter.ts) run the same program
// in one call and are held to these bits (test/fused-step.test.ts, native-step, wasm).
import type { Backend, CompiledStep, StepDesc, StepHyper } from './backend.js';
import { gatherRowsFault, trainProgram, type Program } from './program.js';

/**
 * Runs `program` on `backend`. `h` holds the hyper-parameters the update ops read (null for a
 * program without them, such as a forward pass); a lossDelta op leaves the summed loss in
 * `loss[0]` and, when it is not finite, ends the run. Allocates nothing.
 */
export function interpret(backend: Backend, program: Program, h: StepHyper | null, loss: Float64Array): void {
  let gradScale = 1;
  for (let i = 0; i < program.length; i++) {
    const o = program[i];
    switch (o.op) {
      case 'denseForward':
        backend.denseForward(o.y, o.x, o.w, o.b, o.m, o.inp, o.out, o.act, o.alpha);
        break;
      case 'lossDelta': {
        const l = loss[0] = backend.lossDelta(o.dz, o.a, o.y, o.m, o.n, o.loss, o.act, o.alpha, o.delta, o.weights);
        if (!Number.isFinite(l)) return;
        break;
      }
      case 'denseBackward':
        backend.denseBackward(o.dw, o.db, o.dx, o.dz, o.x, o.w, o.m, o.inp, o.out, o.scale, o.prevAct, o.alpha);
        break;
      case 'clipNorm': {
        gradScale = 1;
        const clip = (h ?? noHyper(i, o.op)).clipNorm;
        if (clip > 0) {
          const norm = Math.sqrt(backend.sumSquares(o.g, o.n));
          if (norm > clip) gradScale = clip / norm;
        }
        break;
      }
      case 'copy': {
        // the whole source when it is n long (the backup of the params): a subarray is an object a step
        const src = o.src.data;
        o.dst.data.set(src.length === o.n ? src : src.subarray(0, o.n));
        break;
      }
      case 'sgdUpdate': {
        const k = h ?? noHyper(i, o.op);
        backend.sgdStep(o.p, o.g, o.n, k.lr, gradScale, k.weightDecay, o.decayCount);
        break;
      }
      case 'momentumUpdate': {
        const k = h ?? noHyper(i, o.op);
        backend.momentumStep(o.p, o.g, o.v, o.n, k.lr, gradScale, k.mu, k.nesterov, k.weightDecay, o.decayCount);
        break;
      }
      case 'adamUpdate': {
        const k = h ?? noHyper(i, o.op);
        backend.adamStep(o.p, o.g, o.m, o.v, o.n, k.lr, gradScale, k.beta1, k.beta2, k.eps, k.bc1, k.bc2,
          k.weightDecay, o.decoupled, o.decayCount);
        break;
      }
      case 'dropoutForward':
        backend.dropoutForward(o.y, o.x, o.n, o.rate, o.seed, (h?.step ?? 0) >>> 0, o.layer);
        break;
      case 'dropoutBackward':
        backend.dropoutBackward(o.dx, o.dy, o.x, o.n, o.rate, o.seed, (h?.step ?? 0) >>> 0, o.layer, o.prevAct, o.alpha);
        break;
      case 'batchNormForward':
        backend.batchNormForward(o.y, o.x, o.gamma, o.beta, o.runMean, o.runVar, o.mean, o.invStd, o.m, o.n, o.update, o.momentum,
          o.eps, o.act, o.alpha);
        break;
      case 'batchNormInference':
        backend.batchNormInference(o.y, o.x, o.gamma, o.beta, o.runMean, o.runVar, o.m, o.n, o.eps, o.act, o.alpha);
        break;
      case 'batchNormBackward':
        backend.batchNormBackward(o.dx, o.dgamma, o.dbeta, o.dy, o.x, o.gamma, o.mean, o.invStd, o.m, o.n, o.scale, o.prevAct, o.alpha);
        break;
      case 'layerNormForward':
        backend.layerNormForward(o.y, o.x, o.gamma, o.beta, o.mean, o.invStd, o.m, o.n, o.eps, o.act, o.alpha);
        break;
      case 'layerNormBackward':
        backend.layerNormBackward(o.dx, o.dgamma, o.dbeta, o.dy, o.x, o.gamma, o.mean, o.invStd, o.m, o.n, o.scale, o.prevAct, o.alpha);
        break;
      case 'gatherRows': {
        // every row number checked before anything is copied, as the native and wasm interpreters do
        const fault = gatherRowsFault(o, i);
        if (fault) throw new RangeError(`interpret: ${fault}`);
        const d = o.dst.data, s = o.src.data, idx = o.idx.data, cols = o.cols;
        for (let r = 0; r < o.m; r++) {
          const from = idx[r] * cols, to = r * cols;
          for (let j = 0; j < cols; j++) d[to + j] = s[from + j];
        }
        break;
      }
      default:
        throw new RangeError(`interpret: op ${i}: unknown op ${String((o as { op: unknown }).op)}`);
    }
  }
}

function noHyper(i: number, op: string): never {
  throw new TypeError(`interpret: op ${i} (${op}) reads the hyper-parameters, but none were given`);
}

/**
 * A step description's training program (program.ts trainProgram) run by `interpret`: what a
 * backend's compileStep runs in one call, kernel by kernel, on any backend (the reference the
 * compiled programs are held to, bit for bit).
 */
export function interpretedStep(backend: Backend, desc: StepDesc): CompiledStep {
  const program = trainProgram(desc), loss = new Float64Array(1);
  return { loss, run: (h: StepHyper) => interpret(backend, program, h, loss) };
}
