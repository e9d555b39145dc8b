// Every bad input gets an error that names the problem; training that diverges stops with the
// epoch and batch, and leaves the last good weights in place.
import { describe, expect, it } from 'vitest';
import { fitNormalization, InputError } from '../src/data.js';
import { trainTestSplit } from '../src/io/datasets.js';
import { Predictor } from '../src/infer/predictor.js';
import { Model } from '../src/model/model.js';
import { TrainingError } from '../src/model/fit.js';
import { checkBatchSize, checkSpec, MAX_BUFFER_FLOATS, MAX_PARAMS, SpecError, type DenseSpec, type ModelSpec } from '../src/spec.js';
import { BACKENDS } from './backends.js';

const base: ModelSpec = {
  inputs: 3, layers: [{ units: 4, activation: 'relu' }, { units: 3, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.1 },
};
const X = [[1, 2, 3], [4, 5, 6]];

describe('model spec', () => {
  const backend = BACKENDS[0];
  const bad = (patch: Partial<ModelSpec>, message: RegExp): void => {
    expect(() => new Model({ ...base, ...patch }, backend)).toThrow(SpecError);
    expect(() => new Model({ ...base, ...patch }, backend)).toThrow(message);
  };
  it('unknown activation', () => bad({ layers: [{ units: 4, activation: 'swish' as 'relu' }, { units: 3, activation: 'softmax' }] }, /layer 1: unknown activation 'swish'/));
  it('softmax that is not on the output layer', () => bad({ layers: [{ units: 4, activation: 'softmax' }, { units: 3, activation: 'softmax' }] }, /layer 1: softmax is only allowed on the output layer/));
  it('unknown loss', () => bad({ loss: 'hinge' as 'mse' }, /unknown loss 'hinge'/));
  it('a loss that does not fit the output activation', () => {
    bad({ loss: 'binaryCrossEntropy' }, /binaryCrossEntropy needs a sigmoid output layer, got softmax/);
    bad({ loss: 'mse' }, /softmax output needs categoricalCrossEntropy/);
    bad({ layers: [{ units: 3, activation: 'sigmoid' }] }, /categoricalCrossEntropy needs a softmax output layer, got sigmoid/);
  });
  it('unknown optimizer', () => bad({ optimizer: { type: 'rmsprop', learningRate: 0.1 } as never }, /unknown optimizer 'rmsprop'/));
  it('non-positive learning rate', () => {
    bad({ optimizer: { type: 'adam', learningRate: 0 } }, /learningRate must be a positive number, got 0/);
    bad({ optimizer: { type: 'sgd', learningRate: -1 } }, /learningRate must be a positive number, got -1/);
    bad({ optimizer: { type: 'sgd', learningRate: NaN } }, /learningRate must be a positive number, got NaN/);
  });
  it('bad sizes', () => {
    bad({ inputs: 0 }, /inputs: must be a positive integer/);
    bad({ layers: [] }, /at least one dense layer/);
    bad({ layers: [{ units: 2.5, activation: 'relu' }, { units: 3, activation: 'softmax' }] }, /layer 1: units must be a positive integer, got 2.5/);
  });
  it('a model too large for a buffer or a model file: said at validation, before anything is allocated', () => {
    const huge = { ...base, inputs: 10, layers: [{ units: 1_000_000_000, activation: 'relu' as const }, { units: 3, activation: 'softmax' as const }] };
    expect(() => checkSpec(huge)).toThrow(SpecError);
    expect(() => checkSpec(huge)).toThrow('model size: 14,000,000,003 parameters is more than a model can hold (1,069,547,520, 4 GiB of float32); '
      + 'layer 1 alone (10 inputs × 1,000,000,000 units) has 11,000,000,000');
    // the largest that is allowed, and one more
    expect(() => checkSpec({ ...base, inputs: 1, layers: [{ units: MAX_PARAMS / 2 + 1, activation: 'sigmoid' }], loss: 'mse' })).toThrow(/model size/);
    expect((checkSpec({ ...base, inputs: 1, layers: [{ units: MAX_PARAMS / 2, activation: 'sigmoid' }], loss: 'mse' }).layers[0] as DenseSpec).units).toBe(MAX_PARAMS / 2);
  });
  it('a batch whose activations would not fit a buffer names the batch size that does', () => {
    const wide: ModelSpec = { ...base, layers: [{ units: 2_000_000, activation: 'relu' }, { units: 3, activation: 'softmax' }] };
    const most = Math.floor(MAX_BUFFER_FLOATS / 2_000_000);
    expect(() => checkBatchSize(wide, most)).not.toThrow();
    expect(() => checkBatchSize(wide, most + 1)).toThrow(InputError);
    expect(() => checkBatchSize(wide, 1024)).toThrow(`batch size: 1,024 rows × 2,000,000 values (the widest layer) is more than a buffer holds (1,073,741,823 floats); use batches of at most ${most} rows`);
  });
  it('numbers beyond float32 (1e39 becomes Infinity in the kernels)', () => {
    bad({ optimizer: { type: 'sgd', learningRate: 1e39 } }, /learningRate must be a positive number within float32 \(at most 3.4e38\), got 1e\+39/);
    bad({ optimizer: { type: 'sgd', learningRate: 0.1, clipNorm: 1e39 } }, /clipNorm must be a number > 0 within float32/);
    bad({ normalization: { mean: [0, 1e39, 0], std: [1, 1, 1] } }, /normalization: mean\[1\] must be a finite float32 number, got 1e\+39/);
    bad({ normalization: { mean: [0, 0, 0], std: [1, 0, 1] } }, /normalization: std\[1\] must be a finite float32 number > 0, got 0/);
  });
  it('values of the wrong type say so (a string is not a number, even one JavaScript compares as one)', () => {
    bad({ inputs: '3' as never }, /inputs: must be a positive integer, got the string '3'/);
    bad({ optimizer: { type: 'momentum', learningRate: 0.1, momentum: '0.9' as never } }, /momentum must be a number in \[0, 1\), got the string '0.9'/);
    bad({ optimizer: { type: 'momentum', learningRate: 0.1, nesterov: 'yes' as never } }, /nesterov must be true or false, got the string 'yes'/);
    bad({ optimizer: { type: 'adam', learningRate: 0.1, epsilon: '1e-8' as never } }, /epsilon must be a number > 0, got the string '1e-8'/);
    bad({ classes: ['a', 'b', 3] as never }, /classes: expected 3 class names \(one string per output\), got 3 values, not all strings/);
    bad({ optimizer: { type: 'sgd', learningRate: 0.1, schedule: 'cosine' as never } }, /schedule: expected .*, got the string 'cosine'/);
  });
});

describe('data helpers', () => {
  it('fitNormalization names the row and column of a value that is not finite', () => {
    const data = new Float32Array([1, 2, 3, 4, Infinity, 6]);
    expect(() => fitNormalization({ data, shape: [3, 2] })).toThrow('normalization: Infinity at row 2, column 0; values must be finite');
  });
  it('numbers beyond float32 in inputs and targets are named with row and column, not reported as Infinity', async () => {
    const m = new Model(base, BACKENDS[0]);
    await expect(m.fit([[1, 2, 3], [4, 1e39, 6]], [0, 1])).rejects.toThrow('inputs: 1e+39 at row 1, column 1 is beyond the float32 range (±3.4e38)');
    expect(() => m.predict({ data: [1, 2, 3, -4e38, 5, 6], shape: [2, 3] })).toThrow('inputs: -4e+38 at row 1, column 0 is beyond the float32 range');
    const r = new Model({ ...base, layers: [{ units: 1, activation: 'linear' }], loss: 'mse' }, BACKENDS[0]);
    await expect(r.fit(X, [1, 5e38])).rejects.toThrow('targets: 5e+38 at row 1, column 0 is beyond the float32 range');
  });
  it('trainTestSplit checks its arguments', () => {
    const x = { data: new Float32Array(6), shape: [3, 2] as [number, number] };
    expect(() => trainTestSplit({ x, y: new Int32Array(2) }, 0.2, 1)).toThrow('trainTestSplit: 2 labels for 3 rows; they must match');
    expect(() => trainTestSplit({ x, y: new Int32Array(3) }, 1, 1)).toThrow('trainTestSplit: testFraction must be in [0, 1), got 1');
  });
});

describe.each(BACKENDS.map((b) => [b.name, b] as const))('data given to %s', (_name, backend) => {
  const model = new Model(base, backend);
  const badFit = async (x: unknown, y: unknown, message: RegExp, options = {}): Promise<void> => {
    await expect(model.fit(x as number[][], y as number[], options)).rejects.toThrow(message);
  };
  it('wrong input width', async () => {
    await badFit([[1, 2], [3, 4]], [0, 1], /inputs: rows have 2 values, the model expects 3/);
    expect(() => model.predict({ data: new Float32Array(8), shape: [2, 4] })).toThrow(/rows have 4 values, the model expects 3/);
  });
  it('ragged rows and wrong types', async () => {
    await badFit([[1, 2, 3], [4, 5]], [0, 1], /row 1 has 2 values, row 0 has 3/);
    await badFit([[1, 2, '3']], [0], /row 0, column 2 is string, not a number/);
    await badFit('1,2,3', [0], /expected an array of rows or \{ data, shape \}, got string/);
    await badFit({ data: new Float32Array(5), shape: [2, 3] }, [0, 1], /data has 5 values but shape \[2, 3\] needs 6/);
  });
  it('labels that do not match the rows', async () => {
    await badFit(X, [0], /targets: 1 labels for 2 input rows/);
    await badFit(X, [[1, 0, 0]], /targets: 1 rows for 2 input rows/);
  });
  it('labels out of range', async () => {
    await badFit(X, [0, 3], /label 3 at row 1 is out of range; classes are integers 0..2/);
    await badFit(X, [0, -1], /label -1 at row 1 is out of range/);
    await badFit(X, [0, 1.5], /label 1.5 at row 1 is out of range/);
  });
  it('NaN or Infinity in inputs or targets', async () => {
    await badFit([[1, 2, 3], [4, NaN, 6]], [0, 1], /inputs: NaN at row 1, column 1; values must be finite/);
    await badFit([[1, 2, Infinity], [4, 5, 6]], [0, 1], /inputs: Infinity at row 0, column 2/);
    await badFit(X, [[1, 0, 0], [0, NaN, 1]], /targets: NaN at row 1, column 1/);
    expect(() => model.predict([[1, -Infinity, 3]])).toThrow(/-Infinity at row 0, column 1/);
  });
  it('fit refuses a NaN or ±Infinity anywhere in its inputs before the first step (the backend\'s reduction, then the scan that names it)', async () => {
    const rows = 5000, data = new Float32Array(rows * 3).map((_, i) => (i % 11) - 5);
    const y = Array.from({ length: rows }, (_, i) => i % 3);
    const before = model.getParams();
    for (const [row, col, v] of [[0, 0, NaN], [4321, 2, Infinity], [4999, 1, -Infinity]] as const) {
      const x = { data: data.slice(), shape: [rows, 3] as [number, number] };
      x.data[row * 3 + col] = v;
      for (const offThread of [false, true]) {
        await badFit(x, y, new RegExp(`^inputs: ${v} at row ${row}, column ${col}; values must be finite`), { epochs: 2, offThread });
      }
      await badFit({ data: data.subarray(0, 30), shape: [10, 3] }, y.slice(0, 10), new RegExp(`validation inputs: ${v} at row ${row}, column ${col}`),
        { validationData: [x, y] });
    }
    expect(model.getParams()).toEqual(before); // no step ran
  });
  it('predict names a NaN or ±Infinity by its row in the whole input, in any batch, for Model and Predictor', () => {
    // predict checks each batch once it is staged (a reduction in backend memory), not before
    const rows = 700, data = new Float32Array(rows * 3).map((_, i) => (i % 7) - 3);
    const predictor = new Predictor(base, model.getWeights(), backend);
    const normalized = new Model({ ...base, normalization: { mean: [1, 2, 3], std: [2, 2, 2] } }, backend);
    for (const [row, col, v] of [[0, 0, NaN], [255, 2, Infinity], [256, 0, -Infinity], [699, 1, NaN]] as const) {
      const x = { data: data.slice(), shape: [rows, 3] as [number, number] };
      x.data[row * 3 + col] = v;
      const message = new RegExp(`inputs: ${v} at row ${row}, column ${col}; values must be finite`);
      expect(() => model.predict(x, 256)).toThrow(message);
      expect(() => predictor.predict(x, 256)).toThrow(message);
      expect(() => normalized.predict(x, 100)).toThrow(message);
      expect(() => model.predictClasses(x)).toThrow(message);
    }
    // a finite value whose square overflows float32 flags the reduction but is not refused
    const big = { data: data.slice(), shape: [rows, 3] as [number, number] };
    big.data[5] = 3e38;
    expect(model.predict(big).shape).toEqual([rows, 3]);
    expect(predictor.predict(big).shape).toEqual([rows, 3]);
  });
  it('targets that are not probabilities for cross-entropy', async () => {
    await badFit(X, [[1, 0, 0], [0, 2, 0]], /targets: 2 at row 1, column 1 is not in \[0, 1\]/);
  });
  it('non-positive batch size, bad epochs and splits', async () => {
    await badFit(X, [0, 1], /batchSize: must be a positive integer, got 0/, { batchSize: 0 });
    await badFit(X, [0, 1], /batchSize: must be a positive integer, got -4/, { batchSize: -4 });
    await badFit(X, [0, 1], /epochs: must be a positive integer, got 0/, { epochs: 0 });
    await badFit(X, [0, 1], /validationSplit: must be in \[0, 1\)/, { validationSplit: 1 });
    await badFit(X, [0, 1], /leaves an empty training or validation set/, { validationSplit: 0.2 });
    await badFit(X, [0, 1], /monitor 'valLoss' needs validationData or validationSplit/, { earlyStopping: { monitor: 'valLoss' } });
  });
  it('errors are InputErrors', async () => {
    await expect(model.fit([[1]], [0])).rejects.toBeInstanceOf(InputError);
  });

  it('training that diverges stops with the epoch and batch and keeps the last good weights', async () => {
    const m = new Model({ inputs: 1, layers: [{ units: 1, activation: 'linear' }], loss: 'mse', optimizer: { type: 'sgd', learningRate: 1e6 }, seed: 1 }, backend);
    const x = [[1e3], [2e3], [3e3], [4e3]], y = [[1], [2], [3], [4]];
    const snapshots: Float32Array[] = [];
    let error: unknown = null;
    try {
      await m.fit(x, y, { epochs: 50, batchSize: 1, shuffle: false, onBatchEnd: () => { snapshots.push(m.params.data.slice()); } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TrainingError);
    expect(String(error)).toMatch(/training diverged: the loss became (NaN|Infinity) at epoch \d+, batch \d+/);
    const params = m.params.data;
    expect(Array.from(params).every(Number.isFinite)).toBe(true);
    // the restored weights are the last ones that gave a finite loss
    expect(snapshots.some((s) => s.every((v, i) => Object.is(v, params[i])))).toBe(true);
  });
});
