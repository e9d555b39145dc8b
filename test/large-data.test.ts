// Data sets of a size where a spread (`push(...rows)`, `Math.max(...values)`) or an argument list
// that grows with the rows overflows the stack: 600,000 rows through the API, in memory. (The CLI
// on a 600,000-row CSV is in cli.test.ts.)
import { describe, expect, it } from 'vitest';
import { fitNormalization } from '../src/data.js';
import { splitRows, trainTestSplit } from '../src/io/datasets.js';
import { modelFromBytes, modelToBytes } from '../src/io/modelFile.js';
import { createModel } from '../src/index.js';
import { Random } from '../src/random.js';

const ROWS = 600_000, COLS = 10;

/** Two classes split by the sign of a fixed linear combination of the features. */
function dataset(): { x: { data: Float32Array; shape: [number, number] }; y: Int32Array } {
  const rng = new Random(11), x = new Float32Array(ROWS * COLS), y = new Int32Array(ROWS);
  for (let i = 0; i < ROWS; i++) {
    let s = 0;
    for (let j = 0; j < COLS; j++) {
      const v = 2 * rng.uniform() - 1;
      x[i * COLS + j] = v;
      s += (j % 2 ? -1 : 1) * (j + 1) * v;
    }
    y[i] = s > 0 ? 1 : 0;
  }
  return { x: { data: x, shape: [ROWS, COLS] }, y };
}

const bytesOf = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('600,000 rows in memory', () => {
  const d = dataset();

  it('trainTestSplit: stratified, every row exactly once, the same for the same seed', () => {
    const { train, test } = trainTestSplit(d, 0.2, 3);
    expect(train.x.shape).toEqual([480_000, COLS]);
    expect(test.x.shape).toEqual([120_000, COLS]);
    // stratified: each class gives a fifth of its rows
    const ones = d.y.reduce((a, v) => a + v, 0);
    expect(test.y.reduce((a, v) => a + v, 0)).toBe(Math.round(ones * 0.2));
    // every row once: the first feature identifies rows (floats from a 2^-24 grid rarely collide),
    // so compare the sorted multisets of (feature 0, label)
    const key = (x: Float32Array, y: Int32Array, i: number): number => x[i * COLS] * 4 + y[i];
    const all = Float64Array.from({ length: ROWS }, (_, i) => key(d.x.data, d.y, i)).sort();
    const parts = new Float64Array(ROWS);
    for (let i = 0; i < train.y.length; i++) parts[i] = key(train.x.data, train.y, i);
    for (let i = 0; i < test.y.length; i++) parts[train.y.length + i] = key(test.x.data, test.y, i);
    parts.sort();
    let mismatches = 0;
    for (let i = 0; i < ROWS; i++) if (parts[i] !== all[i]) mismatches++;
    expect(mismatches).toBe(0);
    const again = trainTestSplit(d, 0.2, 3);
    expect(bytesOf(again.test.x.data).equals(bytesOf(test.x.data))).toBe(true);
  });

  it('splitRows: labels far apart split as their ranks do; no strata is one class; every row once', () => {
    const ranks = Int32Array.from(d.y, (v, i) => (v === 1 ? 2 : i % 7 === 0 ? 1 : 0));
    const spread = Int32Array.from(ranks, (r) => [-2_000_000_000, 5, 2_000_000_000][r]); // wider than the rows
    const a = splitRows(ranks, 0.25, 9), b = splitRows(spread, 0.25, 9);
    expect(Buffer.from(b.train.buffer).equals(Buffer.from(a.train.buffer))).toBe(true);
    const none = splitRows(null, 0.25, 9, ROWS), zeros = splitRows(new Int32Array(ROWS), 0.25, 9);
    expect(Buffer.from(none.train.buffer).equals(Buffer.from(zeros.train.buffer))).toBe(true);
    expect(none.test.length).toBe(Math.round(ROWS * 0.25));
    const seen = new Uint8Array(ROWS);
    expect(a.train.buffer).toBe(a.test.buffer); // train then test, in one array
    for (const r of new Uint32Array(a.train.buffer)) seen[r]++;
    expect(seen.every((n) => n === 1)).toBe(true);
  });

  it('normalize, fit, evaluate, predict, save and load', async () => {
    const { train, test } = trainTestSplit(d, 0.2, 1);
    const model = await createModel({
      inputs: COLS, layers: [{ units: 16, activation: 'relu' }, { units: 2, activation: 'softmax' }],
      loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 1,
      normalization: fitNormalization(train.x),
    });
    const history = await model.fit(train.x, train.y, { epochs: 1, batchSize: 512, validationSplit: 0.1 });
    expect(history.epochs).toHaveLength(1);
    const m = model.evaluate(test.x, test.y);
    expect(m.accuracy).toBeGreaterThan(0.95);
    const predicted = model.predictClasses(d.x);
    expect(predicted.length).toBe(ROWS);
    const loaded = modelFromBytes(modelToBytes(model), model.backend);
    expect(loaded.evaluate(test.x, test.y)).toEqual(m);
  }, 60_000);
});

describe('5,000,000 rows', () => {
  const ROWS5 = 5_000_000;
  /** Two features, the class by the sign of their difference. */
  function two(seed: number): { x: Float32Array; y: Int32Array } {
    const rng = new Random(seed), x = new Float32Array(ROWS5 * 2), y = new Int32Array(ROWS5);
    for (let i = 0; i < ROWS5; i++) {
      const a = 2 * rng.uniform() - 1, b = 2 * rng.uniform() - 1;
      x[2 * i] = a;
      x[2 * i + 1] = b;
      y[i] = a - b > 0 ? 1 : 0;
    }
    return { x, y };
  }
  const spec = {
    inputs: 2, layers: [{ units: 4, activation: 'relu' as const }, { units: 2, activation: 'softmax' as const }],
    loss: 'categoricalCrossEntropy' as const, optimizer: { type: 'adam' as const, learningRate: 0.01 }, seed: 1,
  };

  it('in memory: split, normalize, one epoch, evaluate, predict', async () => {
    const d = two(5);
    const { train, test } = trainTestSplit({ x: { data: d.x, shape: [ROWS5, 2] }, y: d.y }, 0.1, 2);
    const model = await createModel({ ...spec, normalization: fitNormalization(train.x) });
    const h = await model.fit(train.x, train.y, { epochs: 1, batchSize: 1024, validationSplit: 0.05 });
    expect(h.epochs[0].valAccuracy).toBeGreaterThan(0.97);
    expect(model.evaluate(test.x, test.y).accuracy).toBeGreaterThan(0.97);
    expect(model.predictClasses(test.x).length).toBe(500_000);
  }, 120_000);

  it('from a source: one epoch through the shuffle buffer, validation from a second source, evaluate', async () => {
    const d = two(6), chunk = 65_536;
    const source = (from: number, to: number) => ({
      rows: to - from,
      async *[Symbol.asyncIterator]() {
        for (let i = from; i < to; i += chunk) {
          const j = Math.min(to, i + chunk);
          yield { x: { data: d.x.subarray(2 * i, 2 * j), shape: [j - i, 2] as [number, number] }, y: d.y.subarray(i, j) };
        }
      },
    });
    const model = await createModel(spec);
    const h = await model.fit(source(0, 4_500_000), { epochs: 1, batchSize: 1024, validationData: source(4_500_000, ROWS5) });
    expect(h.epochs[0].valAccuracy).toBeGreaterThan(0.97);
    expect(h.epochs[0].auc).toBeGreaterThan(0.99);
    const e = await model.evaluate(source(4_500_000, ROWS5));
    expect(e.accuracy).toBeCloseTo(h.epochs[0].valAccuracy!, 12);
  }, 120_000);
});
