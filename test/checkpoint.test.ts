// fit's checkpoints: the model file written atomically after every epoch or only on improvement,
// clear errors for bad options, a runtime without files, and a write that fails mid-fit.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { InputError, JsBackend, Model, readModelFile, TrainingError, type ModelSpec } from '../src/index.js';
import { Random } from '../src/random.js';

const dir = mkdtempSync(join(tmpdir(), 'deltaprop-checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec: ModelSpec = {
  inputs: 2, layers: [{ units: 6, activation: 'tanh' }, { units: 3, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.05 }, seed: 4,
};

function data(seed: number, rows: number): { x: number[][]; y: number[] } {
  const rng = new Random(seed), x: number[][] = [], y: number[] = [];
  for (let i = 0; i < rows; i++) {
    const c = rng.int(3);
    x.push([c + rng.normal() * 1.2, -c + rng.normal() * 1.2]);
    y.push(c);
  }
  return { x, y };
}

const flat = (m: Model): Float32Array => m.params.data.slice(0, m.paramCount);
const backend = new JsBackend();
const { x, y } = data(1, 120);
const val = data(2, 60);

describe('fit({ checkpoint })', () => {
  it('saves after every epoch: each epoch finds the previous epoch\'s weights in the file', async () => {
    const path = join(dir, 'every.model'), model = new Model(spec, backend);
    const weights: Float32Array[] = [];
    const compared: number[] = [];
    await model.fit(x, y, {
      epochs: 4, batchSize: 16, checkpoint: { path },
      onEpochEnd: async (e) => {
        if (e.epoch > 1) {
          expect(flat(await readModelFile(path, backend))).toEqual(weights[e.epoch - 2]);
          compared.push(e.epoch);
        }
        weights.push(flat(model));
      },
    });
    expect(compared).toEqual([2, 3, 4]);
    expect(flat(await readModelFile(path, backend))).toEqual(flat(model));
    // atomic writes leave no temporary behind
    expect(readdirSync(dir).filter((f) => f.includes('every.model') && f.endsWith('.tmp'))).toEqual([]);
  });

  it.each([
    ['valLoss', (a: number, b: number) => a < b],
    ['valAccuracy', (a: number, b: number) => a > b],
    ['loss', (a: number, b: number) => a < b],
    ['accuracy', (a: number, b: number) => a > b],
  ] as const)('saveBestOnly on %s: the file holds the weights of the first best epoch', async (monitor, better) => {
    const path = join(dir, `best-${monitor}.model`), model = new Model({ ...spec, optimizer: { type: 'adam', learningRate: 0.3 } }, backend);
    const weights: Float32Array[] = [];
    const history = await model.fit(x, y, {
      epochs: 12, batchSize: 8, validationData: [val.x, val.y], checkpoint: { path, monitor, saveBestOnly: true },
      onEpochEnd: () => {
        weights.push(flat(model));
      },
    });
    let best = 0;
    history.epochs.forEach((e, i) => {
      if (better(e[monitor]!, history.epochs[best][monitor]!)) best = i;
    });
    expect(flat(await readModelFile(path, backend))).toEqual(weights[best]);
    // a fast learning rate: not every epoch improves, so this tells saveBestOnly from saving every epoch
    expect(best).toBeLessThan(history.epochs.length - 1);
  });

  it('the default monitor is valLoss with validation data, else loss', async () => {
    const path = join(dir, 'default.model'), model = new Model({ ...spec, optimizer: { type: 'adam', learningRate: 0.3 } }, backend);
    const weights: Float32Array[] = [];
    const h = await model.fit(x, y, {
      epochs: 10, batchSize: 8, validationSplit: 0.25, checkpoint: { path, saveBestOnly: true },
      onEpochEnd: () => {
        weights.push(flat(model));
      },
    });
    const losses = h.epochs.map((e) => e.valLoss!);
    expect(flat(await readModelFile(path, backend))).toEqual(weights[losses.indexOf(Math.min(...losses))]);
  });

  it('refuses bad options before training, naming the option', async () => {
    const model = new Model(spec, backend), before = flat(model);
    const bad: [unknown, RegExp][] = [
      [{ path: '' }, /checkpoint\.path: must be a non-empty file path/],
      [{ path: 3 }, /checkpoint\.path/],
      [{ path: join(dir, 'a.model'), monitor: 'valLoss' }, /checkpoint: monitor 'valLoss' needs validationData or validationSplit/],
      [{ path: join(dir, 'a.model'), monitor: 'f1' }, /checkpoint: monitor must be one of loss, accuracy, valLoss, valAccuracy/],
      [{ path: join(dir, 'a.model'), saveBestOnly: 'yes' }, /checkpoint\.saveBestOnly: must be true or false/],
      ['a.model', /checkpoint: must be an object/],
    ];
    for (const [checkpoint, message] of bad) {
      await expect(model.fit(x, y, { epochs: 1, checkpoint: checkpoint as never })).rejects.toThrow(message);
      await expect(model.fit(x, y, { epochs: 1, checkpoint: checkpoint as never })).rejects.toBeInstanceOf(InputError);
    }
    const reg = new Model({ inputs: 2, layers: [{ units: 1, activation: 'linear' }], loss: 'mse', optimizer: { type: 'sgd', learningRate: 0.01 } }, backend);
    await expect(reg.fit(x, y, { epochs: 1, checkpoint: { path: join(dir, 'r.model'), monitor: 'accuracy' } })).rejects.toThrow(/needs a classification loss/);
    expect(flat(model)).toEqual(before);
  });

  it('a path that cannot be written fails before the first epoch, naming the path', async () => {
    const model = new Model(spec, backend), before = flat(model);
    const path = join(dir, 'no-such-folder', 'm.model');
    await expect(model.fit(x, y, { epochs: 2, checkpoint: { path } })).rejects.toThrow(path);
    expect(flat(model)).toEqual(before);
  });

  it('a write that fails mid-fit stops fit with an error naming the path; the model keeps that epoch\'s weights', async () => {
    const sub = join(dir, 'vanishing');
    mkdirSync(sub);
    const path = join(sub, 'm.model'), model = new Model(spec, backend);
    let atEpoch2: Float32Array | null = null;
    const epochs: number[] = [];
    const run = model.fit(x, y, {
      epochs: 5, batchSize: 16, checkpoint: { path },
      onEpochEnd: (e) => {
        epochs.push(e.epoch);
        if (e.epoch === 2) {
          rmSync(sub, { recursive: true });
          atEpoch2 = flat(model);
        }
      },
    });
    await expect(run).rejects.toThrow(TrainingError);
    await expect(run).rejects.toThrow(new RegExp(`checkpoint: cannot save the model after epoch 2 to ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*training stopped`));
    expect(epochs).toEqual([1, 2]);
    expect(flat(model)).toEqual(atEpoch2);
    expect(existsSync(sub)).toBe(false);
    // the fit is over: the model trains again
    await model.fit(x, y, { epochs: 1 });
  });
});

describe('checkpoints in a runtime without files (the browser entry)', () => {
  it('throw a clear error, before training', async () => {
    vi.resetModules();
    const web = await import('../src/web.js');
    const model = new web.Model(spec, new web.JsBackend()), before = model.params.data.slice(0, model.paramCount);
    await expect(model.fit(x, y, { epochs: 1, checkpoint: { path: 'm.model' } }))
      .rejects.toThrow(/checkpoint: this runtime has no file system deltaprop can write to .*modelToBytes/);
    expect(model.params.data.slice(0, model.paramCount)).toEqual(before);
    // without a checkpoint the same model trains
    await model.fit(x, y, { epochs: 1 });
  });
});
