// Training to accuracy on real data, held-out, and determinism.
import { describe, expect, it } from 'vitest';
import { fitNormalization } from '../src/data.js';
import { loadBuiltin, trainTestSplit } from '../src/io/datasets.js';
import { Model } from '../src/model/model.js';
import { Random } from '../src/random.js';
import type { ModelSpec } from '../src/spec.js';
import { BACKENDS } from './backends.js';

const XOR_X = [[0, 0], [0, 1], [1, 0], [1, 1]];
const XOR_Y = [0, 1, 1, 0];

function accuracy(pred: Int32Array, y: ArrayLike<number>): number {
  let c = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === y[i]) c++;
  return c / pred.length;
}

describe.each(BACKENDS.map((b) => [b.name, b] as const))('learning on %s', (_name, backend) => {
  it('XOR reaches 100% accuracy (2-8-1 tanh / sigmoid, binary cross-entropy)', async () => {
    const model = new Model({ inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
      loss: 'binaryCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.5 }, seed: 1 }, backend);
    await model.fit(XOR_X, XOR_Y, { epochs: 1000, batchSize: 4 });
    expect(accuracy(model.predictClasses(XOR_X), XOR_Y)).toBe(1);
    expect(model.evaluate(XOR_X, XOR_Y).loss).toBeLessThan(0.05);
  });

  it('Iris: mean held-out accuracy ≥ 0.95 over 8 stratified 70/30 splits', async () => {
    // One 45-row test set moves by 2.2 points per sample, and Iris has a few overlapping
    // versicolor/virginica rows, so a single split says little: average over several.
    const accs: number[] = [];
    for (const split of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const { train, test } = trainTestSplit(loadBuiltin('iris'), 0.3, split);
      const model = new Model({
        inputs: 4, layers: [{ units: 32, activation: 'relu' }, { units: 3, activation: 'softmax' }],
        loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 2,
        normalization: fitNormalization(train.x),
      }, backend);
      await model.fit(train.x, train.y, { epochs: 200, batchSize: 8 });
      accs.push(model.evaluate(test.x, test.y).accuracy!);
    }
    expect(Math.min(...accs)).toBeGreaterThanOrEqual(0.9);
    expect(accs.reduce((a, b) => a + b) / accs.length).toBeGreaterThanOrEqual(0.95);
  });

  it('digits: held-out accuracy ≥ 0.95, with early stopping on a validation split', async () => {
    const { train, test } = trainTestSplit(loadBuiltin('digits'), 0.25, 7);
    const model = new Model({
      inputs: 64, layers: [{ units: 64, activation: 'relu' }, { units: 10, activation: 'softmax' }],
      loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 3e-3 }, seed: 3,
      normalization: fitNormalization(train.x),
    }, backend);
    const h = await model.fit(train.x, train.y, {
      epochs: 40, batchSize: 32, validationSplit: 0.1,
      earlyStopping: { monitor: 'valLoss', patience: 5, restoreBestWeights: true },
    });
    expect(h.epochs[h.epochs.length - 1].loss).toBeLessThan(h.epochs[0].loss);
    expect(model.evaluate(test.x, test.y).accuracy).toBeGreaterThanOrEqual(0.95);
  });

  it('the same seed and data give the same weights, twice in a row', async () => {
    const { train } = trainTestSplit(loadBuiltin('iris'), 0.3, 1);
    const spec: ModelSpec = {
      inputs: 4, layers: [{ units: 8, activation: 'tanh' }, { units: 3, activation: 'softmax' }],
      loss: 'categoricalCrossEntropy', optimizer: { type: 'momentum', learningRate: 0.05, nesterov: true }, seed: 9,
      normalization: fitNormalization(train.x),
    };
    const run = async (): Promise<Float32Array> => {
      const m = new Model(spec, backend);
      await m.fit(train.x, train.y, { epochs: 5, batchSize: 10 });
      return m.params.data.slice();
    };
    const a = await run(), b = await run();
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    // and a different seed gives different weights
    const other = new Model({ ...spec, seed: 10 }, backend);
    expect(Buffer.from(other.params.data.slice().buffer).equals(Buffer.from(new Model(spec, backend).params.data.slice().buffer))).toBe(false);
  });
});

describe('fit behaviour', () => {
  const backend = BACKENDS[0];
  const spec: ModelSpec = { inputs: 2, layers: [{ units: 4, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
    loss: 'binaryCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.5 }, seed: 1 };

  it('calls the batch and epoch callbacks, and stops when asked', async () => {
    const model = new Model(spec, backend);
    const seen: string[] = [];
    const h = await model.fit(XOR_X, XOR_Y, {
      epochs: 10, batchSize: 2,
      onBatchEnd: (b) => { seen.push(`b${b.epoch}.${b.batch}/${b.batches}`); },
      onEpochEnd: (e) => { seen.push(`e${e.epoch}`); if (e.epoch === 2) model.stopTraining = true; },
    });
    expect(seen).toEqual(['b1.1/2', 'b1.2/2', 'e1', 'b2.1/2', 'b2.2/2', 'e2']);
    expect(h.epochs).toHaveLength(2);
  });

  it('early stopping with patience restores the best weights', async () => {
    const model = new Model({ ...spec, optimizer: { type: 'sgd', learningRate: 50 } }, backend);
    let bestParams: Float32Array | null = null, bestLoss = Infinity;
    const h = await model.fit(XOR_X, XOR_Y, {
      epochs: 200, batchSize: 4, validationData: [XOR_X, XOR_Y],
      earlyStopping: { monitor: 'valLoss', patience: 3, restoreBestWeights: true },
      onEpochEnd: (e) => { if (e.valLoss! < bestLoss) { bestLoss = e.valLoss!; bestParams = model.params.data.slice(); } },
    });
    expect(h.stoppedEarly).toBe(true);
    expect(h.epochs.length).toBeLessThan(200);
    expect(model.params.data).toEqual(bestParams);
    expect(model.evaluate(XOR_X, XOR_Y).loss).toBeCloseTo(bestLoss, 5);
  });

  // A fit that never yields blocks for its whole length (over 100 ms, asserted below) in every
  // run; a busy host can also deschedule the process for tens of ms once in a while, so a long gap
  // must show in three runs in a row to fail.
  it('yields to the event loop during a long fit', { retry: 2 }, async () => {
    // 40,000 small steps (about 0.4 s on native): timers must keep firing throughout, never
    // starved for long
    const r = new Random(4), rows = 2000;
    const x = { data: Float32Array.from({ length: rows * 64 }, () => r.uniform()), shape: [rows, 64] as [number, number] };
    const y = Int32Array.from({ length: rows }, () => r.int(10));
    const model = new Model({ inputs: 64, layers: [{ units: 256, activation: 'relu' }, { units: 10, activation: 'softmax' }],
      loss: 'categoricalCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.01 }, seed: 1 }, backend);
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 1);
    const t0 = performance.now();
    await model.fit(x, y, { epochs: 20, batchSize: 1, yieldEveryMs: 5 });
    const t1 = performance.now();
    clearInterval(timer);
    const gaps = [t0, ...ticks, t1].slice(1).map((t, i, a) => t - (i === 0 ? t0 : a[i - 1]));
    expect(t1 - t0).toBeGreaterThan(100);
    expect(ticks.length).toBeGreaterThan((t1 - t0) / 25);
    expect(Math.max(...gaps)).toBeLessThan(50);
  });
});
