// The native kernels read and write subnormal floats as zero on x86 (native/flush_subnormals.h):
// once a softmax has learned its classes, its probabilities and deltas fall below FLT_MIN, and
// each multiply-add on one took a microcode assist (a wide-mlp step 35x slower). The flush must
// cover every way a kernel runs (a kernel call, a step on the calling thread, a step on the
// addon's threads, the pool's workers), and must not leak into JavaScript's own arithmetic.
import { describe, expect, it } from 'vitest';
import { Model } from '../src/model/model.js';
import type { ModelSpec } from '../src/spec.js';
import { ISAS, native, ref } from './native-helpers.js';

const FLT_MIN = 1.1754943508222875e-38;
const flushes = process.arch === 'x64' || process.arch === 'ia32';
const subnormals = (v: Float32Array): number => v.reduce((n, x) => n + (x !== 0 && Math.abs(x) < FLT_MIN ? 1 : 0), 0);

// 2 inputs → 3-class softmax with logits [0, -85, -85.5] for the input [1, 1e-4]: the small
// probabilities (1.2e-37, 7.5e-38) are still normal floats, but the weight gradients of the second
// input, 1e-4 · p / 2 (the batch of 2), are subnormal, as are the updates they make
const spec: ModelSpec = {
  inputs: 2, layers: [{ units: 3, activation: 'softmax' }], loss: 'categoricalCrossEntropy',
  optimizer: { type: 'sgd', learningRate: 0.5 }, seed: 1,
};
const weights = [{ w: new Float32Array([0, -85, -85.5, 0, 0, 0]), b: new Float32Array(3) }];
const x = { data: new Float32Array([1, 1e-4, 1, 1e-4]), shape: [2, 2] as [number, number] };
const y = [0, 0];

describe('subnormal floats in the native kernels', () => {
  it('the js reference keeps them: the case below makes some', async () => {
    const m = new Model(spec, ref);
    m.setWeights(weights);
    expect(subnormals(m.predict(x).data)).toBe(0);
    expect(subnormals(m.gradients(x, y).grads)).toBe(2); // the second input's weights to classes 1 and 2
    await m.fit(x, y, { epochs: 3, batchSize: 2, shuffle: false });
    expect(subnormals(m.getParams())).toBe(2);
  });

  it.each(ISAS)('%s: gradients, steps on the calling thread and steps off it see them as zero on x86 (the js values elsewhere)', async (isa) => {
    for (const threads of [1, 2]) {
      const b = native(isa, { threads });
      const m = new Model(spec, b);
      m.setWeights(weights);
      const g = m.gradients(x, y).grads;
      expect(subnormals(g), `${isa}, ${threads} threads: gradients`).toBe(flushes ? 0 : 2);
      // training steps, on the calling thread and on the addon's: no subnormal weight ever
      for (const offThread of [false, true]) {
        const t = new Model(spec, b);
        t.setWeights(weights);
        await t.fit(x, y, { epochs: 3, batchSize: 2, offThread, shuffle: false });
        expect(subnormals(t.getParams()), `${isa}, ${threads} threads, offThread ${offThread}`).toBe(flushes ? 0 : 2);
      }
    }
  });

  it('the caller\'s mode is restored: JavaScript keeps its subnormals after a native call', () => {
    const m = new Model(spec, native(ISAS[0]));
    m.setWeights(weights);
    m.predict(x);
    const tiny = Number.MIN_VALUE; // 5e-324, a float64 subnormal: DAZ would read it as 0
    expect(tiny * 1).toBe(tiny);
    expect(Math.fround(1e-40)).toBeGreaterThan(0);
    expect(new Float32Array([1e-40])[0] * 2).toBeGreaterThan(0);
  });
});
