// The seeds' golden numbers (MATH.md), computed in float64 by an independent autograd; float32
// results must match to ~1e-5 relative.
import { describe, expect, it } from 'vitest';
import { Model } from '../src/model/model.js';
import type { ModelSpec } from '../src/spec.js';
import { BACKENDS } from './backends.js';

function close(actual: ArrayLike<number>, expected: number[], rel = 1e-5, abs = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const tol = Math.max(abs, rel * Math.abs(expected[i]));
    if (Math.abs(actual[i] - expected[i]) > tol) {
      throw new Error(`index ${i}: got ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`);
    }
  }
}

const sgd = { type: 'sgd', learningRate: 0.1 } as const;

describe.each(BACKENDS.map((b) => [b.name, b] as const))('golden numbers on %s', (_name, backend) => {
  it('seed 000: 1-1-1 ReLU → sigmoid, squared error', () => {
    const spec: ModelSpec = { inputs: 1, layers: [{ units: 1, activation: 'relu' }, { units: 1, activation: 'sigmoid' }], loss: 'mse', optimizer: sgd };
    const model = new Model(spec, backend);
    model.setWeights([{ w: [0.5], b: [0.1] }, { w: [-0.8], b: [0.2] }]);
    const out = model.predict([[1.5]]);
    close(out.data, [0.3822521252]);
    const { loss, grads } = model.gradients([[1.5]], [[1]]);
    close([loss], [0.3816124368]);
    // arena layout: weights (w1, w2), then biases (b1, b2)
    close(grads, [0.3500931959, -0.2479826805, 0.233395464, -0.2917443299]);
  });

  it('seed 004: 1-2-1 sigmoid hidden, linear output', () => {
    const spec: ModelSpec = { inputs: 1, layers: [{ units: 2, activation: 'sigmoid' }, { units: 1, activation: 'linear' }], loss: 'mse', optimizer: sgd };
    const model = new Model(spec, backend);
    model.setWeights([{ w: [-1.75, 0.172], b: [-0.1, 0.15] }, { w: [0.25, 0.5], b: [0.2] }]);
    close(model.predict([[0.5]]).data, [0.5478350937]);
    const { loss, grads } = model.gradients([[0.5]], [[1]]);
    close([loss], [0.2044531025]);
    // grads: [W1(2), W2(2), b1(2), b2(1)]; golden order (w1, b1, w2, b2, 0.25, 0.5, 0.2)
    const g = [grads[0], grads[4], grads[1], grads[5], grads[2], grads[3], grads[6]];
    close(g, [-0.0224807365, -0.0449614731, -0.0557408684, -0.1114817369, -0.2476823877, -0.5052740963, -0.9043298127]);
  });

  it('seed 004: 1-2-2-1 ReLU network, sum over both paths', () => {
    const spec: ModelSpec = {
      inputs: 1,
      layers: [{ units: 2, activation: 'relu' }, { units: 2, activation: 'relu' }, { units: 1, activation: 'linear' }],
      loss: 'mse', optimizer: sgd,
    };
    const model = new Model(spec, backend);
    // W2 (in=2, out=2): row a1 → (z3, z4) = (w3, w4), row a2 → (w5, w6)
    model.setWeights([
      { w: [0.8, -0.4], b: [0.1, 0.9] },
      { w: [0.6, -0.3, 0.7, 0.5], b: [0.05, 0.2] },
      { w: [1.1, -0.9], b: [0.3] },
    ]);
    close(model.predict([[1.5]]).data, [1.444]);
    const { loss, grads } = model.gradients([[1.5]], [[2]]);
    close([loss], [0.309136]);
    // arena: W1 (w1 w2), W2 (w3 w4 w5 w6), W3 (w7 w8), b1 (b1 b2), b2 (b3 b4), b3 (b5)
    close(grads, [-1.10088, -1.28436, -1.59016, 0, -0.36696, 0, -1.15648, 0, -0.73392, -0.85624, -1.2232, 0, -1.112]);
  });

  it('seed 001: batched 2-4-1 XOR, tanh hidden, sigmoid output, mean binary cross-entropy', () => {
    const spec: ModelSpec = { inputs: 2, layers: [{ units: 4, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }], loss: 'binaryCrossEntropy', optimizer: sgd };
    const model = new Model(spec, backend);
    model.setWeights([
      { w: [0.5, -0.6, 0.3, 0.8, -0.4, 0.7, 0.9, -0.2], b: [0.1, 0, -0.1, 0.2] },
      { w: [0.6, -0.5, 0.4, 0.3], b: [-0.1] },
    ]);
    const { loss, grads } = model.gradients([[0, 0], [0, 1], [1, 0], [1, 1]], [0, 1, 1, 0]);
    close([loss], [0.7204898372]);
    close(grads.subarray(0, 8), [0.0561918751, -0.0490745469, -0.0075747607, 0.0162033318, 0.0100896587, -0.0308872783, -0.0100121884, -0.0173104431]);
    close(grads.subarray(8, 12), [0.0432644254, -0.0300963148, 0.0005355627, 0.0681774403]);
    close(grads.subarray(12, 16), [0.0504378171, -0.065125127, 0.0091428255, 0.0085754515]);
    close(grads.subarray(16, 17), [0.0566978996]);
  });

  it("seed 000's dot and outer products through gemm", () => {
    const a = backend.alloc(4), b = backend.alloc(4), dot = backend.alloc(1), outer = backend.alloc(16);
    a.data.set([10, 20, 30, 40]);
    b.data.set([0, 1, 2, 3]);
    backend.gemm(false, false, 1, 1, 4, 1, a, b, 0, dot); // (1,4)·(4,1)
    close(dot.data, [200]);
    backend.gemm(false, false, 4, 4, 1, 1, a, b, 0, outer); // (4,1)·(1,4)
    close(outer.data, [0, 10, 20, 30, 0, 20, 40, 60, 0, 30, 60, 90, 0, 40, 80, 120]);
  });
});
