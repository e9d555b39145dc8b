// Model.predict on weights packed once (src/model/packed-forward.ts): on native and wasm a batch of
// more than a few rows reads copies of the dense layers' weights packed on the first predict and
// kept until the weights change; the js backend packs nothing. The copies must never be stale:
// after every way the weights can change (fit on and off the thread, fit from a BatchSource,
// setWeights, setParams, initialize, the best epoch's weights restored, a diverged step undone,
// loading a file or an ONNX export, writes into model.params, also through an array held since
// before the last predict), predict equals, bit for bit, a fresh model given the same parameters
// and the same model's forward program without packed copies (fusedSteps off), and the js
// reference within float32 rounding. resetOptimizer changes no weight and keeps the copies.
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backends/backend.js';
import { fromOnnx, JsBackend, Model, modelFromBytes, modelToBytes, TrainingError, type Batch, type BatchSource, type ModelSpec } from '../src/index.js';
import { toOnnx } from '../src/onnx/index.js';
import { Random } from '../src/random.js';
import { BACKENDS } from './backends.js';

// big enough that every layer but the last takes the blocked (packed) GEMM path at 40 rows and more
const SPEC: ModelSpec = {
  inputs: 120, layers: [{ units: 96, activation: 'relu' }, { units: 64, activation: 'tanh' }, { units: 10, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 7,
};
const reference = new JsBackend();

function rows(n: number, seed: number): { data: Float32Array; shape: [number, number] } {
  const r = new Random(seed);
  return { data: Float32Array.from({ length: n * SPEC.inputs }, () => r.uniform() * 2 - 1), shape: [n, SPEC.inputs] };
}
const X = rows(300, 1); // a batch of 256 and one of 44 (predict's default batch size)
const X40 = rows(40, 2), X1 = rows(1, 3);
const train = rows(128, 4), labels = Int32Array.from({ length: 128 }, (_, i) => (i * 7) % 10);

const bits = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** predict of `model` equals a fresh model with its parameters (packed anew), the unpacked forward program, and the js reference. */
function expectCurrent(model: Model, what: string): void {
  const params = model.getParams();
  const fresh = new Model(model.spec, model.backend);
  fresh.setParams(params);
  const unpacked = new Model(model.spec, model.backend);
  unpacked.setParams(params);
  unpacked.fusedSteps = false;
  const js = new Model(model.spec, reference);
  js.setParams(params);
  for (const x of [X, X40, X1]) {
    const got = model.predict(x).data, rowsOf = `${what}, ${x.shape[0]} rows`;
    expect(bits(got).equals(bits(fresh.predict(x).data)), `${rowsOf}: against a fresh model`).toBe(true);
    expect(bits(got).equals(bits(unpacked.predict(x).data)), `${rowsOf}: against the unpacked forward program`).toBe(true);
    // float32 rounding relative to the outputs' size (probabilities; a regression's outputs may be large)
    const want = js.predict(x).data;
    let diff = 0, size = 1;
    for (let i = 0; i < want.length; i++) {
      diff = Math.max(diff, Math.abs(got[i] - want[i]));
      size = Math.max(size, Math.abs(want[i]));
    }
    expect(diff / size, `${rowsOf}: against the js reference`).toBeLessThanOrEqual(1e-5);
  }
}

/** A model on `backend` that has predicted (so its packed copies exist), with weights not all from the seed. */
function warmModel(backend: Backend): Model {
  const model = new Model(SPEC, backend);
  const r = new Random(9);
  model.setWeights(model.getWeights().map((l) => ({ w: l.w, b: l.b.map(() => r.normal() * 0.1) })));
  model.predict(X);
  return model;
}

function batches(): BatchSource {
  return {
    rows: 128,
    async* [Symbol.asyncIterator](): AsyncIterator<Batch> {
      for (let s = 0; s < 128; s += 32) {
        yield { x: { data: train.data.subarray(s * SPEC.inputs, (s + 32) * SPEC.inputs), shape: [32, SPEC.inputs] }, y: labels.subarray(s, s + 32) };
      }
    },
  };
}

/** Counts the backend's packWeights calls and keeps what they returned (no mock: a failing mock assertion would print the wasm memory). */
function countPacks(backend: Backend): { calls: unknown[]; restore: () => void } {
  const b = backend as Required<Backend>, original = b.packWeights, calls: unknown[] = [];
  b.packWeights = function packWeights(this: Backend, ...args: Parameters<Required<Backend>['packWeights']>) {
    const r = original.apply(this, args);
    calls.push(r);
    return r;
  };
  return { calls, restore: () => { b.packWeights = original; } };
}
const restores: (() => void)[] = [];
afterEach(() => {
  for (const r of restores.splice(0)) r();
});

describe.each(BACKENDS.map((b) => [b.name, b] as const))('%s: Model.predict on packed weights', (name, backend) => {
  const packs = backend.packWeights !== undefined;

  it(packs ? 'packs each dense layer once, on the first predict of more than a few rows, and keeps the copies' : 'packs nothing (the js backend has no packed path)', () => {
    if (!packs) {
      expect(backend.denseForwardPacked).toBeUndefined();
      expectCurrent(warmModel(backend), 'js');
      return;
    }
    const spy = countPacks(backend);
    restores.push(spy.restore);
    const model = new Model(SPEC, backend);
    model.predict(X1);
    expect(spy.calls.length).toBe(0); // the few-row path reads w as it is
    model.predict(X);
    expect(spy.calls.length).toBe(3);
    model.predict(X);
    model.predict(X40);
    model.resetOptimizer(); // no weight changes
    model.evaluate(X40, labels.subarray(0, 40));
    model.predict(X40);
    expect(spy.calls.length).toBe(3);
    model.setWeights(model.getWeights());
    model.predict(X40);
    model.predict(X40);
    expect(spy.calls.length).toBe(6);
    // packed again into the same copies: nothing allocated per change
    const copies = spy.calls;
    for (let l = 0; l < 3; l++) expect(copies[3 + l] === copies[l], `layer ${l + 1}'s copy`).toBe(true);
    expectCurrent(model, 'after packing again');
  });

  it('fit on the calling thread, and a predict between its batches', async () => {
    const model = warmModel(backend);
    await model.fit(train, labels, { epochs: 2, batchSize: 32, onBatchEnd: (b) => { if (b.batch === 2) expectCurrent(model, 'in onBatchEnd'); } });
    expectCurrent(model, 'after fit');
  });

  it('fit off the thread (native; elsewhere it trains on the thread), a predict while its batches run', async () => {
    const model = warmModel(backend);
    let during = 0;
    const fit = model.fit(train, labels, { epochs: 3, batchSize: 16, offThread: true, onBatchEnd: () => { model.predict(X40); during++; } });
    // between the awaits of the fit: a batch may be in flight; predict waits for it, then packs what it left
    await Promise.resolve();
    model.predict(X40);
    const h = await fit;
    expect(h.offThread).toBe(name === 'native');
    expect(during).toBe(24);
    expectCurrent(model, 'after an off-thread fit');
  });

  it('fit off the thread without a batch callback (batches run several per hand-off), a predict at each epoch end', async () => {
    const model = warmModel(backend);
    let epochs = 0;
    const h = await model.fit(train, labels, { epochs: 4, batchSize: 16, offThread: true,
      onEpochEnd: () => { expectCurrent(model, `after epoch ${++epochs}`); } });
    expect(h.offThread).toBe(name === 'native');
    expect(epochs).toBe(4);
    expectCurrent(model, 'after a chunked off-thread fit');
  });

  it('fit from a BatchSource', async () => {
    const model = warmModel(backend);
    await model.fit(batches(), { epochs: 2 });
    expectCurrent(model, 'after fit(source)');
  });

  it('setWeights, setParams, initialize and resetOptimizer', () => {
    const model = warmModel(backend), r = new Random(5);
    model.setWeights(model.getWeights().map((l) => ({ w: l.w.map((v) => v * 1.5), b: l.b })));
    expectCurrent(model, 'after setWeights');
    model.setParams(model.getParams().map((v) => v + r.normal() * 0.01));
    expectCurrent(model, 'after setParams');
    model.initialize(123);
    expectCurrent(model, 'after initialize');
    model.resetOptimizer();
    expectCurrent(model, 'after resetOptimizer');
  });

  it('early stopping restores the best epoch\'s weights after a predict saw the last ones', async () => {
    const model = warmModel(backend);
    const h = await model.fit(train, labels, {
      epochs: 6, batchSize: 32, validationData: [X40, labels.subarray(0, 40)],
      // a patience of 0 and a delta no epoch clears: the first epoch stays the best
      earlyStopping: { monitor: 'valLoss', patience: 0, minDelta: 1e9, restoreBestWeights: true },
      onEpochEnd: () => { model.predict(X); },
    });
    expect(h.bestEpoch).toBe(1);
    expectCurrent(model, 'after restoreBestWeights');
  });

  it('a diverged step is undone, and predict sees the weights put back', async () => {
    // a regression with targets far off: one step to weights that overflow (checked at the epoch's end), or a loss that does
    const regression = (learningRate: number): Model => {
      const m = new Model({ ...SPEC, layers: [SPEC.layers[0], SPEC.layers[1], { units: 10, activation: 'linear' }], loss: 'mse', optimizer: { type: 'sgd', learningRate } }, backend);
      m.predict(X);
      return m;
    };
    const far = Float32Array.from({ length: 128 * 10 }, (_, i) => 1e4 * ((i % 7) - 3));
    const targets = { data: far, shape: [128, 10] as [number, number] };
    const overflow = regression(3e38);
    // a predict after the step packs the overflowed weights; the epoch's check then puts the old ones back
    await expect(overflow.fit(train, targets, { epochs: 1, batchSize: 128, onBatchEnd: () => { overflow.predict(X); } }))
      .rejects.toThrow(/weights became non-finite/);
    expect(overflow.getParams().every(Number.isFinite)).toBe(true);
    expectCurrent(overflow, 'after non-finite weights were restored');
    const lossBlowsUp = regression(1e6);
    await expect(lossBlowsUp.fit(train, targets, { epochs: 20, batchSize: 16, onBatchEnd: () => { lossBlowsUp.predict(X); } }))
      .rejects.toThrow(/the loss became/);
    expectCurrent(lossBlowsUp, 'after a diverged step was undone');
  });

  it('loading: a model file, an ONNX export', async () => {
    const model = warmModel(backend);
    await model.fit(train, labels, { epochs: 1, batchSize: 32 });
    const loaded = modelFromBytes(modelToBytes(model), backend);
    expect(bits(loaded.predict(X).data).equals(bits(model.predict(X).data))).toBe(true);
    expectCurrent(loaded, 'a loaded model file');
    const imported = await fromOnnx(toOnnx(model), { backend: name });
    imported.predict(X);
    expectCurrent(imported, 'an imported ONNX export');
  });

  it('writes into model.params, also through an array held across predicts', () => {
    const model = warmModel(backend);
    model.params.data[5] += 0.5;
    expectCurrent(model, 'after a write into model.params');
    const held = model.params.data;
    model.predict(X);
    held[17] -= 0.25; // no call on the model tells it
    held[SPEC.inputs * 96 + 3] += 0.125;
    expectCurrent(model, 'after writes through a held array');
    // a model that handed its live params out packs nothing any more: it cannot see such writes
    const spy = packs ? countPacks(backend) : null;
    if (spy) restores.push(spy.restore);
    model.setWeights(model.getWeights());
    model.predict(X);
    held[0] += 1;
    model.predict(X);
    if (spy) expect(spy.calls.length).toBe(0);
    expectCurrent(model, 'after another write through the held array');
  });
});
