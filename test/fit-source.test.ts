// fit and evaluate on a source of batches: the same training as arrays when the order is the same,
// a bounded seeded shuffle that depends on the seed and the rows (not on how they were cut into
// batches), validation from a second source, read-ahead, and callbacks, early stopping,
// stopTraining, checkpoints and the divergence check with their meaning kept.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, Model, readModelFile, TrainingError, type Batch, type BatchLogs, type BatchSource, type ModelSpec } from '../src/index.js';
import { RowShuffler } from '../src/model/fit-source.js';
import { Random } from '../src/random.js';
import { BACKENDS } from './backends.js';

const dir = mkdtempSync(join(tmpdir(), 'deltaprop-fit-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec: ModelSpec = {
  inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 3, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.02 }, seed: 4,
};

function data(seed: number, rows: number): { x: Float32Array; y: Int32Array } {
  const rng = new Random(seed), x = new Float32Array(rows * 2), y = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const c = rng.int(3);
    x[2 * i] = c + rng.normal();
    x[2 * i + 1] = -c + rng.normal();
    y[i] = c;
  }
  return { x, y };
}

/** A re-iterable source over (x, y) in chunks of `chunk` rows; counts what was asked of it. */
function arraySource(d: { x: Float32Array; y: Int32Array }, chunk: number, opts: { rows?: boolean; delayMs?: number } = {}):
  BatchSource & { requested: number; delivered: number; closed: number; passes: number } {
  const rows = d.y.length;
  const src = {
    requested: 0, delivered: 0, closed: 0, passes: 0,
    ...(opts.rows ? { rows } : {}),
    [Symbol.asyncIterator](): AsyncIterator<Batch> {
      src.passes++;
      let at = 0;
      return {
        next: async () => {
          src.requested++;
          if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
          if (at >= rows) return { done: true, value: undefined };
          const to = Math.min(rows, at + chunk);
          const b = { x: { data: d.x.subarray(2 * at, 2 * to), shape: [to - at, 2] as [number, number] }, y: d.y.subarray(at, to) };
          at = to;
          src.delivered++;
          return { done: false, value: b };
        },
        return: async () => {
          src.closed++;
          return { done: true, value: undefined };
        },
      };
    },
  };
  return src;
}

const weightsOf = (m: Model): Float32Array => m.params.data.slice(0, m.paramCount);
const train = data(1, 1000), val = data(2, 300);

describe.each(BACKENDS.map((b) => [b.name, b] as const))('fit(source) on %s', (_name, backend) => {
  it('without shuffling, trains exactly as fit(x, y) does on the same rows', async () => {
    const a = new Model(spec, backend), b = new Model(spec, backend);
    const ha = await a.fit({ data: train.x, shape: [1000, 2] }, train.y, { epochs: 3, batchSize: 32, shuffle: false });
    const hb = await b.fit(arraySource(train, 77), { epochs: 3, batchSize: 32, shuffle: false });
    expect(Buffer.from(weightsOf(b).buffer).equals(Buffer.from(weightsOf(a).buffer))).toBe(true);
    hb.epochs.forEach((e, i) => expect(e.loss).toBeCloseTo(ha.epochs[i].loss, 12));
    expect(hb.epochs.map((e) => e.accuracy)).toEqual(ha.epochs.map((e) => e.accuracy));
  });

  it('the same seed gives the same order, whatever the chunk sizes; another seed another order', async () => {
    const run = async (chunk: number, seed: number): Promise<Float32Array> => {
      const m = new Model(spec, backend);
      await m.fit(arraySource(train, chunk), { epochs: 2, batchSize: 16, seed, shuffleBuffer: 200 });
      return weightsOf(m);
    };
    const first = await run(50, 7);
    expect(await run(50, 7)).toEqual(first);
    expect(await run(13, 7)).toEqual(first);
    expect(await run(1000, 7)).toEqual(first);
    expect(await run(50, 8)).not.toEqual(first);
  });

  it('validation from a second source equals validation from arrays', async () => {
    const a = new Model(spec, backend), b = new Model(spec, backend);
    const ha = await a.fit(arraySource(train, 100), { epochs: 2, batchSize: 20, validationData: [{ data: val.x, shape: [300, 2] }, val.y] });
    const hb = await b.fit(arraySource(train, 100), { epochs: 2, batchSize: 20, validationData: arraySource(val, 60, { rows: true }) });
    for (let e = 0; e < 2; e++) {
      expect(hb.epochs[e].valLoss).toBeCloseTo(ha.epochs[e].valLoss!, 6);
      expect(hb.epochs[e].valAccuracy).toBe(ha.epochs[e].valAccuracy);
      expect(hb.epochs[e].valF1).toBeCloseTo(ha.epochs[e].valF1!, 12);
    }
    // and model.evaluate(source) matches model.evaluate(x, y)
    const fromSource = await b.evaluate(arraySource(val, 45, { rows: true }));
    const fromArrays = b.evaluate({ data: val.x, shape: [300, 2] }, val.y);
    expect(fromSource.loss).toBeCloseTo(fromArrays.loss, 6);
    expect(fromSource.accuracy).toBe(fromArrays.accuracy);
    expect(fromSource.perClass).toEqual(fromArrays.perClass);
  });

  it('arrays to fit, a source to validate', async () => {
    const m = new Model(spec, backend);
    const h = await m.fit({ data: train.x, shape: [1000, 2] }, train.y, { epochs: 2, validationData: arraySource(val, 64) });
    expect(h.epochs[1].valLoss).toBeCloseTo(m.evaluate({ data: val.x, shape: [300, 2] }, val.y).loss, 5);
  });
});

describe('fit(source): callbacks, stopping, checkpoints, errors', () => {
  const backend = BACKENDS[0];

  it('onBatchEnd counts batches; the count is known from the source\'s rows, else after the first epoch', async () => {
    const seen: BatchLogs[] = [];
    await new Model(spec, backend).fit(arraySource(train, 64), { epochs: 2, batchSize: 100, onBatchEnd: (b) => void seen.push(b) });
    expect(seen.map((b) => b.batch)).toEqual([...Array.from({ length: 10 }, (_, i) => i + 1), ...Array.from({ length: 10 }, (_, i) => i + 1)]);
    expect(seen.slice(0, 10).every((b) => b.batches === 0)).toBe(true);
    expect(seen.slice(10).every((b) => b.batches === 10 && b.epoch === 2)).toBe(true);
    expect(seen.every((b) => b.size === 100)).toBe(true);
    const known: BatchLogs[] = [];
    await new Model(spec, backend).fit(arraySource(train, 64, { rows: true }), { epochs: 1, batchSize: 300, onBatchEnd: (b) => void known.push(b) });
    expect(known.map((b) => [b.batch, b.batches, b.size])).toEqual([[1, 4, 300], [2, 4, 300], [3, 4, 300], [4, 4, 100]]);
  });

  it('stopTraining from a callback ends after that batch and closes the source', async () => {
    const m = new Model(spec, backend), src = arraySource(train, 50);
    let batches = 0;
    const h = await m.fit(src, {
      epochs: 5, batchSize: 10, shuffleBuffer: 64,
      onBatchEnd: (b) => {
        batches++;
        if (b.batch === 7) m.stopTraining = true;
      },
    });
    expect(batches).toBe(7);
    expect(h.epochs).toHaveLength(1);
    expect(src.closed).toBe(1);
    // a new fit starts with stopTraining cleared
    expect((await m.fit(arraySource(train, 50), { epochs: 1 })).epochs).toHaveLength(1);
  });

  it('early stopping on valLoss from a source restores the best weights', async () => {
    const m = new Model({ ...spec, optimizer: { type: 'adam', learningRate: 0.3 } }, backend);
    const weights: Float32Array[] = [];
    const h = await m.fit(arraySource(train, 128), {
      epochs: 40, batchSize: 8, validationData: arraySource(val, 100),
      earlyStopping: { patience: 2, restoreBestWeights: true },
      onEpochEnd: () => void weights.push(weightsOf(m)),
    });
    expect(h.stoppedEarly).toBe(true);
    const losses = h.epochs.map((e) => e.valLoss!);
    const best = losses.indexOf(Math.min(...losses));
    expect(h.bestEpoch).toBe(best + 1);
    expect(h.epochs.length).toBe(best + 1 + 3);
    expect(weightsOf(m)).toEqual(weights[best]);
  });

  it('checkpoints with a source write the model file after improving epochs', async () => {
    const path = join(dir, 'source.model'), m = new Model(spec, backend);
    await m.fit(arraySource(train, 100), { epochs: 2, checkpoint: { path, saveBestOnly: true } });
    expect(existsSync(path)).toBe(true);
    expect((await readModelFile(path, backend)).getWeights()).toEqual(m.getWeights());
  });

  it('divergence stops with the epoch and batch, and the weights from before the failing update', async () => {
    const m = new Model({ ...spec, layers: [{ units: 8, activation: 'relu' }, { units: 1, activation: 'linear' }], loss: 'mse',
      optimizer: { type: 'sgd', learningRate: 1e6 } }, backend);
    const big = { x: train.x.map((v) => v * 1e3), y: new Int32Array(train.y.length) };
    const src: BatchSource = {
      async *[Symbol.asyncIterator]() {
        for (let i = 0; i < 1000; i += 100) yield { x: { data: big.x.subarray(2 * i, 2 * i + 200), shape: [100, 2] }, y: Float32Array.from(train.y.subarray(i, i + 100), (v) => v * 1e3) };
      },
    };
    const err = await m.fit(src, { epochs: 3, batchSize: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingError);
    expect((err as Error).message).toMatch(/training diverged: the (loss|weights) became .* at epoch 1, batch \d+/);
    expect(weightsOf(m).every(Number.isFinite)).toBe(true);
  });

  it('a one-shot generator serves one epoch: a second epoch says why it has no rows', async () => {
    async function* once(): AsyncGenerator<Batch> {
      yield { x: [[0, 1], [1, 0]], y: [0, 1] };
    }
    const err = await new Model(spec, backend).fit(once(), { epochs: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(/no rows in epoch 2; every \[Symbol.asyncIterator\]\(\) call must start a new pass/);
  });

  it('bad batches and options are InputErrors naming what is wrong', async () => {
    const m = new Model(spec, backend);
    const bad = (batches: unknown[]): BatchSource => ({ async *[Symbol.asyncIterator]() { yield* batches as Batch[]; } });
    await expect(m.fit(bad([{ x: [[1, 2]], y: [0] }, { x: [[1, 2, 3]], y: [0] }]), {})).rejects.toThrow(/fit source: batch 2 inputs: rows have 3 values, the model expects 2/);
    await expect(m.fit(bad([{ x: [[1, 2]], y: [5] }]), {})).rejects.toThrow(/fit source: batch 1 targets: label 5 at row 0 is out of range/);
    await expect(m.fit(bad([{ x: [[1, NaN]], y: [0] }]), {})).rejects.toThrow(/batch 1 inputs: NaN at row 0, column 1/);
    await expect(m.fit(bad([42]), {})).rejects.toThrow(/batch 1 is not an object \{ x, y \}/);
    await expect(m.fit(bad([]), {})).rejects.toThrow(/no rows to train on/);
    await expect(m.fit(arraySource(train, 10), { validationSplit: 0.1 })).rejects.toThrow(/validationSplit: a source has no last rows/);
    await expect(m.fit(arraySource(train, 10), { shuffleBuffer: 0 })).rejects.toThrow(/shuffleBuffer: must be a positive integer, got 0/);
    await expect(m.fit(arraySource(train, 10), { prefetch: 1.5 })).rejects.toThrow(/prefetch: must be a positive integer/);
    const failing: BatchSource = { async *[Symbol.asyncIterator]() { yield { x: [[1, 2]], y: [0] }; throw new Error('disk on fire'); } };
    await expect(m.fit(failing, {})).rejects.toThrow('disk on fire');
  });

  it('reads ahead: the next batches are requested while the current ones train, up to `prefetch`', async () => {
    const src = arraySource(data(3, 20_000), 1000, { delayMs: 1 });
    const inFlight: number[] = [], waiting: number[] = [];
    await new Model(spec, backend).fit(src, {
      epochs: 1, batchSize: 4096, shuffle: false, prefetch: 3,
      onBatchEnd: async (b) => {
        // block b needed chunks up to the one holding its last row
        const consumed = Math.ceil(Math.min(20_000, b.batch * 4096) / 1000);
        inFlight.push(src.requested - consumed);
        await new Promise((r) => setTimeout(r, 40));
        waiting.push(src.delivered - consumed);
      },
    });
    // a request for the next chunk is out as soon as one is taken, and while the batch's callback
    // waits, the reader fills its queue to `prefetch` chunks (or to the end of the data)
    expect(inFlight.slice(0, 3).every((n) => n >= 1)).toBe(true);
    expect(waiting.slice(0, 3)).toEqual([3, 3, 3]);
  });
});

describe('RowShuffler (the bounded shuffle)', () => {
  const order = (rows: number, capacity: number, seed: number, chunk: number): number[] => {
    const s = new RowShuffler(1, 1, 64, capacity), out: number[] = [];
    s.reset(new Random(seed));
    const x = Float32Array.from({ length: rows }, (_, i) => i);
    const flush = (): void => {
      out.push(...Array.from(s.blockMatrices()[0].data));
      s.inBlock = 0;
    };
    for (let from = 0; from < rows; from += chunk) {
      const to = Math.min(rows, from + chunk);
      for (let i = from; i < to;) {
        i = s.take(x, x, i, to);
        if (s.blockFull()) flush();
      }
    }
    while (s.drain()) flush();
    flush();
    return out;
  };

  it('a permutation, the same for a seed, independent of chunking, and bounded by the buffer', () => {
    const a = order(1000, 100, 5, 7);
    expect([...a].sort((p, q) => p - q)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(order(1000, 100, 5, 1000)).toEqual(a);
    expect(order(1000, 100, 6, 7)).not.toEqual(a);
    // a row cannot leave before it arrives: it goes out no sooner than capacity rows ahead of its place
    a.forEach((row, pos) => expect(row).toBeLessThanOrEqual(pos + 100));
    // and it is a real shuffle: many rows are far from their place
    expect(a.filter((row, pos) => Math.abs(row - pos) > 10).length).toBeGreaterThan(500);
  });
});
