// Weights of examples (sampleWeight, classWeight) and the huber and mean-absolute-error losses:
// hand-computed numbers on tiny fixed data (Keras's definitions: a row's loss times its weight,
// the batch's sum over the batch size; weighted metrics as sklearn's sample_weight), every
// backend the same, the compiled step the same bits as the kernel sequence, bad values refused
// by name, and 'balanced' raising a minority class's recall.
import { describe, expect, it } from 'vitest';
import { LOSS, ACT, type Backend } from '../src/backends/backend.js';
import { JsBackend } from '../src/backends/js.js';
import { InputError } from '../src/data.js';
import { modelFromBytes, modelToBytes } from '../src/io/modelFile.js';
import { toOnnx } from '../src/onnx/export.js';
import { modelFromOnnx } from '../src/onnx/import.js';
import { classificationMetrics, regressionMetrics, rocAuc } from '../src/metrics.js';
import type { BatchLogs } from '../src/model/fit.js';
import { Model } from '../src/model/model.js';
import { Random } from '../src/random.js';
import { SpecError, type ModelSpec } from '../src/spec.js';
import { BACKENDS } from './backends.js';

const close = (got: number | undefined, want: number, digits = 6): void => expect(got).toBeCloseTo(want, digits);

/** One dense linear (or sigmoid) unit with w = 1, b = 0: its output is its input. */
function identity(backend: Backend, loss: ModelSpec['loss'], extra: Partial<ModelSpec> = {}): Model {
  const activation = loss === 'binaryCrossEntropy' ? 'sigmoid' : 'linear';
  const model = new Model({ inputs: 1, layers: [{ units: 1, activation }], loss, optimizer: { type: 'sgd', learningRate: 0.1 }, ...extra }, backend);
  model.setWeights([{ w: [1], b: [0] }]);
  return model;
}

describe.each(BACKENDS.map((b) => [b.name, b] as const))('the lossDelta kernel on %s', (_name, be) => {
  const put = (v: number[]) => {
    const b = be.alloc(v.length);
    b.data.set(v);
    return b;
  };

  it('huber: e²/2 inside delta, delta·(|e| − delta/2) beyond, a mean over the outputs; dz = clamp(e, ±delta)/n', () => {
    const dz = be.alloc(3);
    // e = 0.5, 2, −1.5 with delta 1: 0.125, 1.5, 1 → mean 0.875
    close(be.lossDelta(dz, put([0.5, 2, -1.5]), put([0, 0, 0]), 1, 3, LOSS.huber, ACT.linear, 0, 1, null), 0.875);
    expect(Array.from(dz.data).map((v) => +v.toFixed(6))).toEqual([0.166667, 0.333333, -0.333333]);
    // delta 2: 0.125, 2, 1.125 → 3.25 / 3
    close(be.lossDelta(dz, put([0.5, 2, -1.5]), put([0, 0, 0]), 1, 3, LOSS.huber, ACT.linear, 0, 2, null), 3.25 / 3);
    expect(Array.from(dz.data).map((v) => +v.toFixed(6))).toEqual([0.166667, 0.666667, -0.5]);
    // through a tanh output: dz = clamp(e)/n · (1 − a²)
    close(be.lossDelta(dz, put([0.5]), put([-1]), 1, 1, LOSS.huber, ACT.tanh, 0, 1, null), 1);
    close(dz.data[0], 1 * (1 - 0.25));
  });

  it('meanAbsoluteError: mean |e|, dz = sign(e)/n, and 0 where e = 0', () => {
    const dz = be.alloc(4);
    close(be.lossDelta(dz, put([0.5, 2, -1.5, 3]), put([0, 0, 0, 3]), 1, 4, LOSS.meanAbsoluteError, ACT.linear, 0, 1, null), 1);
    expect(Array.from(dz.data)).toEqual([0.25, 0.25, -0.25, 0]);
  });

  it('row weights multiply each row\'s loss and delta (a weight of 0 silences a row)', () => {
    const dz = be.alloc(3);
    // mse, one output, rows e = 0.5, 2, 1: 0.25·2 + 4·0.5 + 1·0 = 2.5
    close(be.lossDelta(dz, put([0.5, 2, 1]), put([0, 0, 0]), 3, 1, LOSS.mse, ACT.linear, 0, 1, put([2, 0.5, 0])), 2.5);
    expect(Array.from(dz.data)).toEqual([2, 2, 0]);
    // categorical cross-entropy: −log p of the target, times the weight; dz = w·(p − y)
    const dz2 = be.alloc(4);
    const L = be.lossDelta(dz2, put([0.25, 0.75, 0.5, 0.5]), put([0, 1, 1, 0]), 2, 2, LOSS.categoricalCrossEntropy, ACT.softmax, 0, 1, put([3, 0.5]));
    close(L, -3 * Math.log(0.75) - 0.5 * Math.log(0.5));
    expect(Array.from(dz2.data)).toEqual([0.75, -0.75, -0.25, 0.25]);
  });
});

describe.each(BACKENDS.map((b) => [b.name, b] as const))('weighted evaluate on %s', (_name, be) => {
  // predictions = x: x = 1, 2, 3 against y = 0, 2, 5 (e = 1, 0, −2), weights 1, 2, 0.5
  const x = [[1], [2], [3]], y = [0, 2, 5], sampleWeight = [1, 2, 0.5];

  it('mse: Σ wᵢ·eᵢ² / rows, and MAE, RMSE, R² as weighted means (sklearn\'s sample_weight)', () => {
    const m = identity(be, 'mse').evaluate(x, y, { sampleWeight });
    close(m.loss, 1);
    close(m.mae, 2 / 3.5);
    close(m.rmse, Math.sqrt(3 / 3.5));
    close(m.r2, 0.6440677966101696);
    // without weights: the plain means
    const u = identity(be, 'mse').evaluate(x, y);
    close(u.loss, 5 / 3);
    close(u.mae, 1);
  });

  it('huber and meanAbsoluteError losses, weighted', () => {
    close(identity(be, 'huber').evaluate(x, y, { sampleWeight }).loss, (0.5 + 0 + 0.5 * 1.5) / 3);
    close(identity(be, 'huber', { huberDelta: 3 }).evaluate(x, y, { sampleWeight }).loss, (0.5 + 0 + 0.5 * 2) / 3);
    close(identity(be, 'meanAbsoluteError').evaluate(x, y, { sampleWeight }).loss, (1 + 0 + 0.5 * 2) / 3);
  });

  it('binary classification: weighted loss, accuracy, confusion, precision/recall/F1 and ROC AUC', () => {
    // p = σ(x): classes 1, 0, 1, 0 against targets 1, 1, 0, 0 (right, wrong, wrong, right)
    const xs = [[2], [-1], [0.5], [-3]], ys = [1, 1, 0, 0], w = [1, 3, 2, 1];
    const m = identity(be, 'binaryCrossEntropy').evaluate(xs, ys, { sampleWeight: w });
    close(m.loss, 1.5158635983828992, 5);
    close(m.accuracy, 2 / 7);
    // weighted confusion: true 1 → 1 right, 3 wrong; true 0 → 2 wrong, 1 right
    expect(m.perClass!.support).toEqual([3, 4]);
    close(m.perClass!.precision[1], 1 / 3);
    close(m.perClass!.recall[1], 1 / 4);
    close(m.perClass!.precision[0], 1 / 4);
    close(m.perClass!.recall[0], 1 / 3);
    close(m.precision, (1 / 4 + 1 / 3) / 2);
    close(m.f1, 2 / 7);
    // pairs (positive, negative) by weight: (2 > 0.5) 1·2, (2 > −3) 1·1, (−1 > −3) 3·1 of 4·3
    close(m.auc, 6 / 12);
    // with the weights all 1, the unweighted numbers
    const u = identity(be, 'binaryCrossEntropy').evaluate(xs, ys, { sampleWeight: [1, 1, 1, 1] });
    const plain = identity(be, 'binaryCrossEntropy').evaluate(xs, ys);
    for (const k of ['loss', 'accuracy', 'precision', 'recall', 'f1', 'auc'] as const) close(u[k], plain[k]!);
  });
});

describe('weighted metric functions', () => {
  it('classificationMetrics, rocAuc and regressionMetrics take sample weights', () => {
    const c = classificationMetrics([1, 1, 0, 0], [1, 0, 1, 0], 2, [1, 3, 2, 1]);
    close(c.perClass.recall[1], 0.25);
    expect(c.perClass.support).toEqual([3, 4]);
    close(rocAuc([2, -1, 0.5, -3], [1, 1, 0, 0], 4, [1, 3, 2, 1]), 0.5);
    // a tie counts half of its pair's weight: (1 = 1) 2·3 / 2 over (2)·(3 + 1)
    close(rocAuc([1, 1, 0], [1, 0, 0], 3, [2, 3, 1]), (3 + 2) / 8);
    const r = regressionMetrics([1, 2, 3], [0, 2, 5], 3, 1, [1, 2, 0.5]);
    close(r.mae, 2 / 3.5);
    close(r.r2, 0.6440677966101696);
  });
});

/** A seeded two-class problem with `minority` rows of class 1 among `rows`, overlapping. */
function imbalanced(rows: number, minority: number, seed: number): { x: number[][]; y: number[] } {
  const r = new Random(seed), x: number[][] = [], y: number[] = [];
  for (let i = 0; i < rows; i++) {
    const c = i % Math.round(rows / minority) === 0 ? 1 : 0;
    x.push([r.normal() + 1.2 * c, r.normal() + 1.2 * c]);
    y.push(c);
  }
  return { x, y };
}

const SMALL: ModelSpec = {
  inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 2, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 3,
};

describe('classWeight', () => {
  const be = new JsBackend();
  const { x, y } = imbalanced(40, 8, 1); // 5 rows of class 1 in 40

  it("'balanced' is n_samples / (n_classes · count_c), the same as those sample weights", () => {
    const ones = y.filter((c) => c === 1).length, zeros = y.length - ones;
    const balanced = y.map((c) => (c === 1 ? y.length / (2 * ones) : y.length / (2 * zeros)));
    const m = new Model(SMALL, be);
    const a = m.gradients(x, y, { classWeight: 'balanced' });
    const b = m.gradients(x, y, { sampleWeight: balanced });
    expect(a.loss).toBe(b.loss);
    expect(a.grads).toEqual(b.grads);
    const plain = m.gradients(x, y);
    expect(a.loss).not.toBe(plain.loss);
  });

  it('a map by class index or class name; classes left out weigh 1; times sampleWeight when both are given', async () => {
    const named = new Model({ ...SMALL, classes: ['ham', 'spam'] }, be);
    const sw = y.map((_, i) => 1 + (i % 3));
    const byName = named.gradients(x, y, { classWeight: { spam: 4 }, sampleWeight: sw });
    const byIndex = named.gradients(x, y, { classWeight: new Map([[1, 4]]), sampleWeight: sw });
    const product = named.gradients(x, y, { sampleWeight: sw.map((w, i) => w * (y[i] === 1 ? 4 : 1)) });
    expect(byName.grads).toEqual(product.grads);
    expect(byIndex.grads).toEqual(product.grads);
    // in fit too: the same weights give the same weights, bit for bit, and the same history (the
    // epoch's loss sum is grouped by time slice, so equal to rounding only)
    const fitWith = async (o: object) => {
      const m = new Model(SMALL, be);
      const h = await m.fit(x, y, { epochs: 3, batchSize: 8, ...o });
      return { history: h.epochs.map((e) => [e.loss, e.accuracy!]).flat(), params: Array.from(m.params.data) };
    };
    const both = await fitWith({ classWeight: { 1: 4, 0: 1 }, sampleWeight: sw });
    const products = await fitWith({ sampleWeight: sw.map((w, i) => w * (y[i] === 1 ? 4 : 1)) });
    expect(both.params).toEqual(products.params);
    both.history.forEach((v, i) => expect(v).toBeCloseTo(products.history[i], 12));
  });

  it('with one sigmoid output, the classes are 0 and 1 (target ≥ 0.5)', () => {
    const spec: ModelSpec = { ...SMALL, layers: [{ units: 4, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }], loss: 'binaryCrossEntropy' };
    const m = new Model(spec, be);
    const a = m.gradients(x, y, { classWeight: { 1: 3 } });
    const b = m.gradients(x, y, { sampleWeight: y.map((c) => (c === 1 ? 3 : 1)) });
    expect(a.grads).toEqual(b.grads);
  });
});

describe('bad weights are refused, naming what is wrong', () => {
  const be = new JsBackend();
  const { x, y } = imbalanced(12, 3, 2);
  const fit = (o: object, spec: ModelSpec = SMALL) => new Model(spec, be).fit(x, y, { epochs: 1, ...o });
  const cases: [string, object, RegExp][] = [
    ['a negative class weight', { classWeight: { 0: 1, 1: -2 } }, /classWeight\[1\]: must be a finite number ≥ 0.*got -2/],
    ['a NaN class weight', { classWeight: { 0: NaN } }, /classWeight\[0\]: must be a finite number ≥ 0.*got NaN/],
    ['an infinite class weight', { classWeight: { 1: Infinity } }, /classWeight\[1\]: .*got Infinity/],
    ['a string class weight', { classWeight: { 1: '2' } }, /classWeight\[1\]: .*got the string '2'/],
    ['an unknown class index', { classWeight: { 2: 1 } }, /classWeight: unknown class '2' \(the classes are 0 to 1\)/],
    ['an unknown class name', { classWeight: { spam: 1 } }, /classWeight: unknown class 'spam'/],
    ['an unknown mode', { classWeight: 'auto' }, /classWeight: must be 'balanced' or a map/],
    ['an array', { classWeight: [1, 2] }, /classWeight: must be 'balanced' or a map/],
    ['class weights that are all 0', { classWeight: { 0: 0, 1: 0 } }, /classWeight: every row's weight is 0/],
    ['too few sample weights', { sampleWeight: [1, 2, 3] }, /sampleWeight: 3 weights for 12 rows \(one weight per row\)/],
    ['too many sample weights', { sampleWeight: new Array(13).fill(1) }, /sampleWeight: 13 weights for 12 rows/],
    ['a negative sample weight', { sampleWeight: y.map((_, i) => (i === 4 ? -1 : 1)) }, /sampleWeight\[4\]: must be a finite number ≥ 0.*got -1/],
    ['a NaN sample weight', { sampleWeight: y.map((_, i) => (i === 7 ? NaN : 1)) }, /sampleWeight\[7\]: .*got NaN/],
    ['a sample weight beyond float32', { sampleWeight: y.map((_, i) => (i === 0 ? 1e39 : 1)) }, /sampleWeight\[0\]: .*within float32.*got 1e\+39/],
    ['sample weights that are all 0', { sampleWeight: new Array(12).fill(0) }, /sampleWeight: every row's weight is 0/],
    ['a sampleWeight that is not an array', { sampleWeight: 3 }, /sampleWeight: must be an array of one weight per row, got 3/],
    ['validation weights of the wrong count', { validationData: [x, y, [1]] }, /validationData\[2\] \(the validation sample weights\): 1 weights for 12 rows/],
    ['validation rows all weighing 0', { validationSplit: 0.25, sampleWeight: y.map((_, i) => (i < 9 ? 1 : 0)) }, /sampleWeight of the validation rows: every row's weight is 0/],
  ];
  it.each(cases)('%s', async (_, o, message) => {
    const error = await fit(o).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(message);
  });

  it('class weights on a regression loss', async () => {
    const spec: ModelSpec = { inputs: 2, layers: [{ units: 1, activation: 'linear' }], loss: 'mse', optimizer: { type: 'sgd', learningRate: 0.1 } };
    await expect(fit({ classWeight: 'balanced' }, spec)).rejects.toThrow(/classWeight: needs a classification loss .* the loss is mse; use sampleWeight/);
  });

  it('evaluate checks its sampleWeight the same way', () => {
    const m = new Model(SMALL, be);
    expect(() => m.evaluate(x, y, { sampleWeight: [1] })).toThrow(/sampleWeight: 1 weights for 12 rows/);
    expect(() => m.evaluate(x, y, { sampleWeight: new Array(12).fill(0) })).toThrow(/sampleWeight: every row's weight is 0/);
    expect(() => m.evaluate(x, y, { sampleWeight: y.map(() => -0.5) })).toThrow(/sampleWeight\[0\]: must be a finite number ≥ 0/);
  });
});

describe('weighted training on every backend', () => {
  const { x, y } = imbalanced(48, 6, 4);
  const sampleWeight = y.map((_, i) => 0.5 + (i % 4));

  async function train(be: Backend, fused: boolean): Promise<{ params: Float32Array; losses: number[]; accuracy: number[] }> {
    const m = new Model(SMALL, be);
    m.fusedSteps = fused;
    const h = await m.fit(x, y, { epochs: 4, batchSize: 16, classWeight: 'balanced', sampleWeight, validationSplit: 0.25 });
    return { params: m.params.data.slice(), losses: h.epochs.map((e) => e.loss), accuracy: h.epochs.map((e) => e.valAccuracy!) };
  }

  it('js, native and wasm train to the same weights and losses (within float32 rounding)', async () => {
    const ref = await train(new JsBackend(), false);
    for (const be of BACKENDS) {
      const got = await train(be, true);
      got.losses.forEach((l, i) => expect(Math.abs(l - ref.losses[i]), `${be.name} epoch ${i + 1}`).toBeLessThan(1e-5 * Math.max(1, ref.losses[i])));
      got.params.forEach((p, i) => expect(Math.abs(p - ref.params[i]), `${be.name} param ${i}`).toBeLessThan(1e-4));
    }
  });

  it('the compiled step gives the bits of the kernel sequence, with weights', async () => {
    for (const be of BACKENDS.filter((b) => b.compileStep)) {
      const fused = await train(be, true), kernels = await train(be, false);
      expect(fused.params, be.name).toEqual(kernels.params);
      // (each step's loss is the same bits; the epoch's sum is grouped by time slice)
      fused.losses.forEach((l, i) => expect(l, be.name).toBeCloseTo(kernels.losses[i], 12));
    }
  });

  it('off the event loop\'s thread (native), the same weights, losses and weighted accuracy as on it', async () => {
    for (const be of BACKENDS.filter((b) => b.name === 'native')) {
      const run = async (offThread: boolean) => {
        const m = new Model(SMALL, be);
        const h = await m.fit(x, y, { epochs: 3, batchSize: 16, classWeight: 'balanced', sampleWeight, offThread });
        expect(h.offThread).toBe(offThread);
        return { params: m.params.data.slice(), logs: h.epochs.map((e) => [e.loss, e.accuracy!, e.f1!]).flat() };
      };
      const on = await run(false), off = await run(true);
      expect(off.params).toEqual(on.params);
      off.logs.forEach((v, i) => expect(v).toBeCloseTo(on.logs[i], 12));
    }
  });

  it('fitting a BatchSource refuses row weights, by name', async () => {
    const source = { async *[Symbol.asyncIterator]() { yield { x, y }; } };
    const m = new Model(SMALL, BACKENDS[0]);
    await expect(m.fit(source, { sampleWeight })).rejects.toThrow(/sampleWeight: fitting a BatchSource takes no row weights/);
    await expect(m.fit(source, { classWeight: 'balanced' })).rejects.toThrow(/classWeight: fitting a BatchSource takes no row weights/);
  });

  it('the training loss is the weighted sum over the rows (Keras: over the batch size, not the weights)', async () => {
    const be = BACKENDS[0];
    const m = new Model(SMALL, be);
    const before = m.evaluate(x, y, { sampleWeight, batchSize: 7 });
    const batches: BatchLogs[] = [];
    const h = await m.fit(x, y, { epochs: 1, batchSize: 48, sampleWeight, shuffle: false, onBatchEnd: (b) => { batches.push(b); } });
    // one batch of every row: the epoch's loss is the loss before its one update
    close(h.epochs[0].loss, before.loss, 5);
    close(h.epochs[0].accuracy, before.accuracy!, 6);
    close(batches[0].loss, before.loss, 5);
    close(batches[0].accuracy, before.accuracy!, 6);
  });
});

describe("'balanced' raises the minority class's recall", () => {
  it('on an imbalanced set (5% minority), held-out recall of the minority rises by at least 0.3', async () => {
    const be = BACKENDS[0];
    const train = imbalanced(2000, 100, 10), test = imbalanced(2000, 100, 11);
    const recall = async (o: object) => {
      const m = new Model(SMALL, be);
      await m.fit(train.x, train.y, { epochs: 15, batchSize: 64, ...o });
      return m.evaluate(test.x, test.y).perClass!.recall[1];
    };
    const plain = await recall({}), balanced = await recall({ classWeight: 'balanced' });
    expect(balanced, `recall of class 1: ${plain} without weights, ${balanced} balanced`).toBeGreaterThan(plain + 0.3);
    expect(balanced).toBeGreaterThan(0.6);
  });
});

describe('huber and meanAbsoluteError models', () => {
  it('train, and round-trip through the model file with their delta', async () => {
    const r = new Random(5);
    const x = Array.from({ length: 200 }, () => [r.normal(), r.normal()]);
    // a line with a few wild outliers
    const y = x.map(([a, b], i) => 2 * a - b + 0.5 + (i % 40 === 0 ? 50 : 0));
    for (const be of BACKENDS) {
      for (const [loss, extra] of [['huber', { huberDelta: 0.5 }], ['meanAbsoluteError', {}]] as const) {
        const spec: ModelSpec = { inputs: 2, layers: [{ units: 1, activation: 'linear' }], loss, ...extra, optimizer: { type: 'adam', learningRate: 0.05 }, seed: 1 };
        const m = new Model(spec, be);
        const h = await m.fit(x, y, { epochs: 60, batchSize: 20 });
        // (the outliers keep a floor under the loss: 5 rows of |e| ≈ 50 out of 200)
        expect(h.epochs[59].loss, `${be.name} ${loss}`).toBeLessThan(0.7 * h.epochs[0].loss);
        // robust to the outliers: the fitted line is close to 2a − b + 0.5
        const [{ w, b }] = m.getWeights();
        expect(Math.abs(w[0] - 2) + Math.abs(w[1] + 1) + Math.abs(b[0] - 0.5), `${be.name} ${loss} ${w} ${b}`).toBeLessThan(0.3);
        const again = modelFromBytes(modelToBytes(m), be);
        expect(again.spec.loss).toBe(loss);
        expect(again.spec.huberDelta).toBe(loss === 'huber' ? 0.5 : undefined);
        expect(again.evaluate(x, y).loss).toBe(m.evaluate(x, y).loss);
      }
    }
  });

  it('an ONNX export carries huber\'s delta in its training metadata (the graph is the same as for mse)', () => {
    const spec: ModelSpec = { inputs: 3, layers: [{ units: 4, activation: 'relu' }, { units: 1, activation: 'linear' }], loss: 'huber', huberDelta: 0.25, optimizer: { type: 'sgd', learningRate: 0.1 }, seed: 2 };
    const huber = new Model(spec, new JsBackend());
    const again = modelFromOnnx(toOnnx(huber), new JsBackend());
    expect(again.spec.loss).toBe('huber');
    expect(again.spec.huberDelta).toBe(0.25);
    // another loss chosen at import does not take the delta along
    expect(modelFromOnnx(toOnnx(huber), new JsBackend(), { loss: 'mse' }).spec.huberDelta).toBeUndefined();
    const mse = new Model({ ...spec, loss: 'mse', huberDelta: undefined }, new JsBackend());
    mse.setWeights(huber.getWeights());
    expect(again.predict([[1, 2, 3]]).data).toEqual(modelFromOnnx(toOnnx(mse), new JsBackend()).predict([[1, 2, 3]]).data);
  });

  it('huber defaults to delta 1 (as Keras), and the spec is checked', () => {
    const base = { inputs: 2, layers: [{ units: 1, activation: 'linear' as const }], optimizer: { type: 'sgd' as const, learningRate: 0.1 } };
    expect(new Model({ ...base, loss: 'huber' }, new JsBackend()).spec.huberDelta).toBe(1);
    const bad = (spec: object) => () => new Model(spec as ModelSpec, new JsBackend());
    expect(bad({ ...base, loss: 'huber', huberDelta: 0 })).toThrow(new SpecError('huberDelta: must be a number > 0, got 0'));
    expect(bad({ ...base, loss: 'huber', huberDelta: -1 })).toThrow(/huberDelta: must be a number > 0, got -1/);
    expect(bad({ ...base, loss: 'huber', huberDelta: NaN })).toThrow(/huberDelta: must be a number > 0, got NaN/);
    expect(bad({ ...base, loss: 'huber', huberDelta: 1e39 })).toThrow(/huberDelta: must be a number > 0 within float32/);
    expect(bad({ ...base, loss: 'mse', huberDelta: 2 })).toThrow(/huberDelta: only the huber loss takes it, and the loss is mse/);
    expect(bad({ ...base, layers: [{ units: 2, activation: 'softmax' }], loss: 'meanAbsoluteError' }))
      .toThrow(/loss: a softmax output needs categoricalCrossEntropy, not meanAbsoluteError/);
    expect(bad({ ...base, loss: 'hubber' })).toThrow(/unknown loss 'hubber' \(known: .*huber, meanAbsoluteError\)/);
  });
});
