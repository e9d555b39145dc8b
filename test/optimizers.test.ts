// Each optimizer against steps computed by hand. The problem: one linear unit, y = w·x + b, mean
// squared error on the single sample x = 1, y = 0, starting at w = 0.5, b = 0.1. The first
// gradient is dL/dw = dL/db = 2·(0.6 − 0) = 1.2.
import { describe, expect, it } from 'vitest';
import { Model } from '../src/model/model.js';
import { scheduledRate, type OptimizerSpec } from '../src/spec.js';
import { BACKENDS } from './backends.js';

async function train(backend: (typeof BACKENDS)[number], optimizer: OptimizerSpec, steps: number): Promise<[number, number]> {
  const model = new Model({ inputs: 1, layers: [{ units: 1, activation: 'linear' }], loss: 'mse', optimizer }, backend);
  model.setWeights([{ w: [0.5], b: [0.1] }]);
  await model.fit([[1]], [[0]], { epochs: steps, batchSize: 1, shuffle: false });
  const [{ w, b }] = model.getWeights();
  return [w[0], b[0]];
}

const near = (actual: [number, number], expected: [number, number]): void => {
  expect(actual[0]).toBeCloseTo(expected[0], 6);
  expect(actual[1]).toBeCloseTo(expected[1], 6);
};

describe.each(BACKENDS.map((b) => [b.name, b] as const))('optimizers on %s', (_name, backend) => {
  it('sgd: two steps', async () => {
    // step 1: w = 0.5 − 0.1·1.2 = 0.38, b = 0.1 − 0.12 = −0.02
    // step 2: output 0.36, gradient 0.72: w = 0.38 − 0.072 = 0.308, b = −0.092
    near(await train(backend, { type: 'sgd', learningRate: 0.1 }, 2), [0.308, -0.092]);
  });

  it('sgd with L2 weight decay on the weight only', async () => {
    // w: gradient 1.2 + 0.5·0.5 = 1.45 → 0.5 − 0.145 = 0.355; b undecayed → −0.02
    near(await train(backend, { type: 'sgd', learningRate: 0.1, weightDecay: 0.5 }, 1), [0.355, -0.02]);
  });

  it('sgd with clipping by global norm', async () => {
    // ‖g‖ = 1.2·√2 = 1.69706 > 1 → both scaled by 1/1.69706: step 0.1·1.2/1.69706 = 0.0707107
    near(await train(backend, { type: 'sgd', learningRate: 0.1, clipNorm: 1 }, 1), [0.4292893, 0.0292893]);
  });

  it('momentum: two steps', async () => {
    // step 1: v = 1.2, w = 0.38, b = −0.02; step 2: gradient 0.72, v = 0.9·1.2 + 0.72 = 1.8,
    // w = 0.38 − 0.18 = 0.2, b = −0.02 − 0.18 = −0.2
    near(await train(backend, { type: 'momentum', learningRate: 0.1, momentum: 0.9 }, 2), [0.2, -0.2]);
  });

  it('momentum with Nesterov: one step', async () => {
    // v = 1.2; step = g + 0.9·v = 2.28: w = 0.5 − 0.228 = 0.272, b = 0.1 − 0.228 = −0.128
    near(await train(backend, { type: 'momentum', learningRate: 0.1, momentum: 0.9, nesterov: true }, 1), [0.272, -0.128]);
  });

  it('adam: two steps', async () => {
    // step 1: m̂ = g, v̂ = g², step = lr·g/|g| = 0.001: w = 0.499, b = 0.099
    // step 2: output 0.598, g = 1.196; m = 0.9·0.12 + 0.1·1.196 = 0.2276, v = 0.999·0.00144 + 0.001·1.430416
    //   = 0.002868976; m̂ = 0.2276/0.19 = 1.1978947, v̂ = 0.002868976/0.001999 = 1.4352056;
    //   step = 0.001·1.1978947/(√1.4352056 + 1e-8) = 0.00099991158
    near(await train(backend, { type: 'adam', learningRate: 0.001 }, 2), [0.499 - 0.00099991158, 0.099 - 0.00099991158]);
  });

  it('adamw: decoupled decay of the weight, then the Adam step', async () => {
    // w = 0.5 − 0.001·0.1·0.5 − 0.001 = 0.49895; b is not decayed: 0.099
    near(await train(backend, { type: 'adamw', learningRate: 0.001, weightDecay: 0.1 }, 1), [0.49895, 0.099]);
  });

  it('adam with L2 (coupled) weight decay', async () => {
    // the decay enters the gradient, and Adam's first step is lr·sign(g) anyway: w = 0.499
    near(await train(backend, { type: 'adam', learningRate: 0.001, weightDecay: 0.1 }, 1), [0.499, 0.099]);
  });
});

describe('learning-rate schedules', () => {
  const base = { type: 'sgd', learningRate: 0.1 } as const;
  it('step', () => {
    const o: OptimizerSpec = { ...base, schedule: { type: 'step', stepSize: 2, gamma: 0.5 } };
    expect([0, 1, 2, 3, 4].map((e) => scheduledRate(o, e, 5))).toEqual([0.1, 0.1, 0.05, 0.05, 0.025]);
  });
  it('exponential', () => {
    const o: OptimizerSpec = { ...base, schedule: { type: 'exponential', gamma: 0.9 } };
    expect(scheduledRate(o, 3, 10)).toBeCloseTo(0.1 * 0.729, 12);
  });
  it('cosine, from the rate down to the minimum over the epochs', () => {
    const o: OptimizerSpec = { ...base, schedule: { type: 'cosine', minLearningRate: 0.01 } };
    expect(scheduledRate(o, 0, 10)).toBeCloseTo(0.1, 12);
    expect(scheduledRate(o, 5, 10)).toBeCloseTo(0.055, 12);
    expect(scheduledRate(o, 10, 10)).toBeCloseTo(0.01, 12);
  });
  it('fit applies the schedule per epoch', async () => {
    const model = new Model({ inputs: 1, layers: [{ units: 1, activation: 'linear' }], loss: 'mse',
      optimizer: { ...base, schedule: { type: 'step', stepSize: 1, gamma: 0.5 } } }, BACKENDS[0]);
    const h = await model.fit([[1]], [[0]], { epochs: 3, batchSize: 1 });
    expect(h.epochs.map((e) => e.learningRate)).toEqual([0.1, 0.05, 0.025]);
  });
});
