// The specification of a compiled training step, as code: the kernel sequence that
// `CompiledStep.run` performs in one call on the backends that compile steps. Tests compare
// those backends' compiled steps with this sequence on the same backend, bit for bit.
import { ACT, OPT, type Backend, type CompiledStep, type StepDesc, type StepHyper } from './backend.js';

export function stepFromKernels(backend: Backend, d: StepDesc): CompiledStep {
  const L = d.dims.length - 1;
  const w = d.dims.slice(0, L).map((inp, l) => d.params.view(d.wOffsets[l], inp * d.dims[l + 1]));
  const b = d.dims.slice(0, L).map((_, l) => d.params.view(d.bOffsets[l], d.dims[l + 1]));
  const dw = d.dims.slice(0, L).map((inp, l) => d.grads.view(d.wOffsets[l], inp * d.dims[l + 1]));
  const db = d.dims.slice(0, L).map((_, l) => d.grads.view(d.bOffsets[l], d.dims[l + 1]));
  const out = new Float64Array(1);
  return {
    loss: out,
    run(h: StepHyper): void {
      for (let l = 0; l < L; l++) {
        backend.denseForward(d.outs[l], l === 0 ? d.x : d.outs[l - 1], w[l], b[l], d.m, d.dims[l], d.dims[l + 1], d.acts[l], d.alphas[l]);
      }
      const loss = backend.lossDelta(d.deltas[L - 1], d.outs[L - 1], d.y, d.m, d.dims[L], d.loss, d.acts[L - 1], d.alphas[L - 1],
        d.delta ?? 1, d.weights ?? null);
      out[0] = loss;
      if (!Number.isFinite(loss)) return;
      for (let l = L - 1; l >= 0; l--) {
        backend.denseBackward(dw[l], db[l], l === 0 ? null : d.deltas[l - 1], d.deltas[l], l === 0 ? d.x : d.outs[l - 1], w[l],
          d.m, d.dims[l], d.dims[l + 1], 1 / d.m, l === 0 ? ACT.linear : d.acts[l - 1], l === 0 ? 0 : d.alphas[l - 1]);
      }
      let gradScale = 1;
      if (h.clipNorm > 0) {
        const norm = Math.sqrt(backend.sumSquares(d.grads, d.n));
        if (norm > h.clipNorm) gradScale = h.clipNorm / norm;
      }
      d.backup.data.set(d.params.data);
      if (d.optimizer === OPT.sgd) {
        backend.sgdStep(d.params, d.grads, d.n, h.lr, gradScale, h.weightDecay, d.decayCount);
      } else if (d.optimizer === OPT.momentum) {
        backend.momentumStep(d.params, d.grads, d.state1!, d.n, h.lr, gradScale, h.mu, h.nesterov, h.weightDecay, d.decayCount);
      } else {
        backend.adamStep(d.params, d.grads, d.state1!, d.state2!, d.n, h.lr, gradScale, h.beta1, h.beta2, h.eps, h.bc1, h.bc2,
          h.weightDecay, d.optimizer === OPT.adamw, d.decayCount);
      }
    },
  };
}
