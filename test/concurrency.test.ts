// One model, several callers: a fit that is running owns the weights and the optimizer state. A
// second fit, or setWeights / initialize / resetOptimizer, while it runs is a TrainingError, not a
// silent interleaving; predict, evaluate and saving between its batches see consistent weights
// and change nothing about the fit's result.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backends/backend.js';
import { readModelFile, saveModel } from '../src/io/files.js';
import { modelFromBytes, modelToBytes } from '../src/io/modelFile.js';
import { Model } from '../src/model/model.js';
import { TrainingError, type FitOptions } from '../src/model/fit.js';
import { Random } from '../src/random.js';
import type { ModelSpec } from '../src/spec.js';
import { BACKENDS } from './backends.js';

const spec: ModelSpec = {
  inputs: 4, layers: [{ units: 8, activation: 'tanh' }, { units: 3, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 5,
};
const rng = new Random(9), ROWS = 96;
const X = { data: Float32Array.from({ length: ROWS * 4 }, () => 2 * rng.uniform() - 1), shape: [ROWS, 4] as [number, number] };
const Y = Int32Array.from({ length: ROWS }, (_, i) => i % 3);
// a batch callback and no time slice: one batch per turn of the event loop, so that other callers
// get a turn between every two batches
const OPTIONS: FitOptions = { epochs: 3, batchSize: 8, yieldEveryMs: 0, onBatchEnd: () => {} };
const dir = mkdtempSync(join(tmpdir(), 'deltaprop-concurrency-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const paramsOf = (m: Model): Buffer => Buffer.from(m.params.data.slice().buffer);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function soloFit(backend: Backend): Promise<Buffer> {
  const m = new Model(spec, backend);
  await m.fit(X, Y, OPTIONS);
  return paramsOf(m);
}

describe.each(BACKENDS.map((b) => [b.name, b] as const))('one model, several callers, on %s', (_name, backend) => {
  it('a second fit while one runs is a TrainingError; the first ends as if alone', async () => {
    const model = new Model(spec, backend);
    const a = model.fit(X, Y, OPTIONS);
    await turn();
    const b = model.fit(X, Y, OPTIONS);
    await expect(b).rejects.toThrow(TrainingError);
    await expect(b).rejects.toThrow('fit: this model is training (a fit has not finished); await that fit first');
    const history = await a;
    expect(history.epochs).toHaveLength(3);
    expect(paramsOf(model).equals(await soloFit(backend))).toBe(true);
    // once it has finished, the next fit runs
    await expect(model.fit(X, Y, { ...OPTIONS, epochs: 1 })).resolves.toBeDefined();
  });

  it('two fits started together: the second is refused at once, before either trains', async () => {
    const model = new Model(spec, backend);
    const [a, b] = await Promise.allSettled([model.fit(X, Y, OPTIONS), model.fit(X, Y, OPTIONS)]);
    expect(a.status).toBe('fulfilled');
    expect(b.status === 'rejected' && b.reason instanceof TrainingError).toBe(true);
    expect(paramsOf(model).equals(await soloFit(backend))).toBe(true);
  });

  it('setWeights, initialize and resetOptimizer during a fit are TrainingErrors, and change nothing', async () => {
    const model = new Model(spec, backend);
    const weights = new Model({ ...spec, seed: 77 }, backend).getWeights();
    const refused: string[] = [];
    const fit = model.fit(X, Y, {
      ...OPTIONS,
      onBatchEnd: (b) => {
        if (b.epoch !== 2 || b.batch !== 3) return;
        for (const [what, call] of [['setWeights', () => model.setWeights(weights)], ['initialize', () => model.initialize(3)],
          ['resetOptimizer', () => model.resetOptimizer()]] as const) {
          try {
            call();
          } catch (e) {
            if (e instanceof TrainingError && e.message.startsWith(`${what}: this model is training`)) refused.push(what);
          }
        }
      },
    });
    // and from outside the fit, between its batches
    await turn();
    expect(() => model.setWeights(weights)).toThrow(TrainingError);
    expect(() => model.initialize(1)).toThrow(TrainingError);
    expect(() => model.resetOptimizer()).toThrow(TrainingError);
    await fit;
    expect(refused).toEqual(['setWeights', 'initialize', 'resetOptimizer']);
    expect(paramsOf(model).equals(await soloFit(backend))).toBe(true);
    // after the fit, they work again
    model.setWeights(weights);
    expect(model.getWeights()).toEqual(weights);
    model.resetOptimizer();
    model.initialize(5);
  });

  it('a refused second fit does not clear the first one\'s stopTraining', async () => {
    const model = new Model(spec, backend);
    let batches = 0, second: Promise<unknown> | null = null;
    const history = await model.fit(X, Y, {
      ...OPTIONS, epochs: 50,
      onBatchEnd: () => {
        if (++batches === 5) {
          model.stopTraining = true;
          second = model.fit(X, Y, OPTIONS); // refused: must leave the stop request in place
          second.catch(() => {});
        }
      },
    });
    expect(batches).toBe(5);
    expect(history.epochs.length).toBeLessThanOrEqual(1);
    await expect(second).rejects.toThrow(TrainingError);
  });

  it('a fit that fails (bad options, bad data) leaves the model free for the next', async () => {
    const model = new Model(spec, backend);
    await expect(model.fit(X, Y, { epochs: 0 })).rejects.toThrow(/epochs/);
    await expect(model.fit(X, [1, 2], OPTIONS)).rejects.toThrow(/labels/);
    model.setWeights(model.getWeights());
    await expect(model.fit(X, Y, OPTIONS)).resolves.toBeDefined();
  });

  it('predict and evaluate between the batches of a fit: consistent results, the same fit', async () => {
    const model = new Model(spec, backend);
    const seen: { weights: ReturnType<Model['getWeights']>; predicted: Float32Array; loss: number; bytes: Uint8Array }[] = [];
    let done = false;
    const fit = model.fit(X, Y, OPTIONS).finally(() => (done = true));
    while (!done) {
      // the weights cannot change inside this synchronous block: whatever it reads belongs together
      const weights = model.getWeights();
      const predicted = model.predict(X, 7).data; // another batch size than the fit's: new buffers
      const { loss } = model.evaluate(X, Y, 5);
      seen.push({ weights, predicted, loss, bytes: modelToBytes(model) });
      await turn();
    }
    await fit;
    expect(seen.length).toBeGreaterThan(10);
    // the fit is exactly the fit alone
    expect(paramsOf(model).equals(await soloFit(backend))).toBe(true);
    // and what was read between batches matches a model holding those weights
    const check = new Model(spec, backend);
    for (const s of seen) {
      check.setWeights(s.weights);
      expect(Buffer.from(check.predict(X, 7).data.buffer).equals(Buffer.from(s.predicted.buffer))).toBe(true);
      expect(check.evaluate(X, Y, 5).loss).toBe(s.loss);
      expect(modelFromBytes(s.bytes, backend).getWeights()).toEqual(s.weights);
    }
  }, 60_000);

  it('saveModel while a fit waits for its batch callback: the file holds the weights of that moment', async () => {
    const model = new Model(spec, backend);
    // the fit parks in its callback until released: a save (many turns of the event loop, fsyncs)
    // runs while it waits
    let release: () => void = () => {};
    let parked: (value: void) => void = () => {};
    let parkedAt = new Promise<void>((r) => (parked = r));
    let parking = true;
    const fit = model.fit(X, Y, {
      ...OPTIONS,
      onBatchEnd: (b) => (parking && b.batch % 4 === 0 ? new Promise<void>((r) => {
        release = r;
        parked();
      }) : undefined),
    });
    const path = join(dir, `m-${backend.name}.dpm`);
    for (let i = 0; i < 6; i++) {
      await parkedAt;
      parkedAt = new Promise<void>((r) => (parked = r));
      const weights = model.getWeights();
      await saveModel(model, path);
      expect((await readModelFile(path, backend)).getWeights()).toEqual(weights);
      expect(model.getWeights()).toEqual(weights);
      if (i === 5) parking = false;
      release();
    }
    await fit;
    expect(paramsOf(model).equals(await soloFit(backend))).toBe(true);
  }, 60_000);
});
