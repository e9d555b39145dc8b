// Every bad input gets an error that names the problem; training that diverges stops with the
// epoch and batch, and leaves the last good weights in place.
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/data.js';
import { Model, TrainingError } from '../src/model.js';
import { SpecError, type ModelSpec } from '../src/spec.js';
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
