// The page side of test/runtimes/worker-model.test.ts: the UCI digits (data/digits.csv.gz, unzipped
// by the browser), an animation drawn every frame, and one function per scenario, each returning
// plain data (frame gaps, weights as arrays of bit patterns, error names and messages).
import * as lib from '/dist/web.js';

async function loadDigits() {
  const res = await fetch('/data/digits.csv.gz');
  const text = await new Response(res.body.pipeThrough(new DecompressionStream('gzip'))).text();
  const lines = text.trim().split('\n');
  const x = new Float32Array(lines.length * 64), y = new Int32Array(lines.length);
  lines.forEach((line, i) => {
    const cells = line.split(',').map(Number);
    x.set(cells.slice(0, 64), i * 64);
    y[i] = cells[64];
  });
  return { x: { data: x, shape: [lines.length, 64] }, y };
}

export const digits = await loadDigits();

/** A network wide enough that a fit of the digits lasts seconds, and a batch ~10 ms on wasm. */
export function digitsSpec(seed = 7) {
  return {
    inputs: 64,
    layers: [{ units: 1024, activation: 'relu' }, { units: 512, activation: 'relu' }, { units: 10, activation: 'softmax' }],
    loss: 'categoricalCrossEntropy',
    optimizer: { type: 'adam', learningRate: 1e-3 },
    normalization: lib.fitNormalization(digits.x),
    seed,
  };
}

export const ready = Promise.resolve();
export { lib };

// The animation: a bar sweeping the canvas, redrawn every frame as a page's UI would be.
const ctx = document.getElementById('scene').getContext('2d');
function draw(t) {
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, 320, 120);
  ctx.fillStyle = '#36c';
  ctx.fillRect((t / 4) % 320, 20, 24, 80);
}

/**
 * Counts frames from now until the returned function is called: the gaps between them (ms), as
 * the page's code sees them (performance.now() in the callback: the callback's timestamp is the
 * frame's start, which a busy thread can run much later than that).
 */
export function countFrames() {
  const gaps = [];
  let last, on = true;
  const tick = () => {
    const t = performance.now();
    draw(t);
    if (last !== undefined) gaps.push(t - last);
    last = t;
    if (on) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  return () => {
    on = false;
    return gaps;
  };
}

/** Frame gaps for `ms` of an idle page. */
export async function idleFrames(ms) {
  const stop = countFrames();
  await new Promise((r) => setTimeout(r, ms));
  return stop();
}

/** How many of two weight lists' floats differ in their bits (0: the same bits), and how many there are. */
export function compareBits(a, b) {
  let params = 0, differing = 0;
  if (a.length !== b.length) return { params: -1, differing: -1 };
  a.forEach((l, i) => {
    for (const k of ['w', 'b']) {
      const x = new Uint32Array(l[k].buffer, l[k].byteOffset, l[k].length), y = new Uint32Array(b[i][k].buffer, b[i][k].byteOffset, b[i][k].length);
      if (x.length !== y.length) differing += Math.max(x.length, y.length);
      for (let j = 0; j < Math.min(x.length, y.length); j++) if (x[j] !== y[j]) differing++;
      params += x.length;
    }
  });
  return { params, differing };
}

const makeModel = (where, spec) => (where === 'worker' ? lib.createWorkerModel(spec, { backend: 'wasm' }) : lib.createModel(spec, { backend: 'wasm' }));
const release = (model) => model.terminate?.();

/** Summary numbers of frame gaps (ms): their count, median, 95th percentile and longest. */
function frameStats(gaps, seconds) {
  const s = [...gaps].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { frames: gaps.length, fps: gaps.length / seconds, median: at(0.5), p95: at(0.95), longest: s[s.length - 1] };
}

/**
 * Trains the digits for `epochs` in a model worker (`where: 'worker'`) or on the page while the
 * animation runs; returns the frame statistics, the fit's duration and history, and keeps the
 * weights (window.lastWeights[where]) for compareTrained.
 */
export async function trainDigits(where, epochs, fitOptions = {}) {
  const model = await makeModel(where, digitsSpec());
  try {
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))); // the animation is running
    const initial = await model.getWeights();
    const stop = countFrames();
    const t0 = performance.now();
    const history = await model.fit(digits.x, digits.y, { epochs, ...fitOptions });
    const seconds = (performance.now() - t0) / 1000;
    const frames = frameStats(stop(), seconds);
    const weights = await model.getWeights();
    trained[where] = weights;
    return {
      frames, seconds, isa: model.backend.isa, moved: compareBits(initial, weights),
      history: history.epochs.map((e) => ({ epoch: e.epoch, loss: e.loss, accuracy: e.accuracy })),
    };
  } finally {
    release(model);
  }
}

const trained = {};

/** The weights of the last trainDigits in the worker against those of the last on the page. */
export function compareTrained() {
  return compareBits(trained.worker, trained.page);
}

/** A small digits network: a fit of a few epochs takes a fraction of a second. */
export function smallSpec(extra = {}) {
  return {
    inputs: 64, layers: [{ units: 32, activation: 'relu' }, { units: 10, activation: 'softmax' }],
    loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 3e-3 },
    normalization: lib.fitNormalization(digits.x), seed: 3, ...extra,
  };
}

const firstRows = { data: digits.x.data.subarray(0, 5 * 64), shape: [5, 64] };
const bitsOf = (f32) => Array.from(new Uint32Array(f32.buffer, f32.byteOffset, f32.length));
/** Logs without the timings (which differ from run to run). */
const timeless = ({ seconds, samplesPerSecond, ...rest }) => rest;

/**
 * A fit with both callbacks, async, that reads the model from onEpochEnd (predict between
 * batches) and sets stopTraining from a callback: `stopAt` { epoch, batch } from onBatchEnd, or
 * { epoch } from onEpochEnd. Returns every log, the predictions, the history and the weights' bits.
 */
export async function callbackRun(where, stopAt, fitOptions = {}) {
  const model = await makeModel(where, smallSpec());
  try {
    const batches = [], epochs = [], predictions = [];
    const history = await model.fit(digits.x, digits.y, {
      epochs: 5, batchSize: 128, validationSplit: 0.2, ...fitOptions,
      onBatchEnd: async (logs) => {
        batches.push(logs);
        if (logs.batch % 4 === 0) await new Promise((r) => setTimeout(r, 1));
        if (stopAt?.batch !== undefined && logs.epoch === stopAt.epoch && logs.batch === stopAt.batch) model.stopTraining = true;
      },
      onEpochEnd: async (logs) => {
        epochs.push(timeless(logs));
        predictions.push(bitsOf((await model.predict(firstRows)).data));
        if (stopAt?.batch === undefined && logs.epoch === stopAt?.epoch) model.stopTraining = true;
      },
    });
    const weights = await model.getWeights();
    return {
      batches, epochs, predictions, stopTrainingAfter: model.stopTraining,
      history: { ...history, epochs: history.epochs.map(timeless) },
      weights: weights.map((l) => ({ w: bitsOf(l.w), b: bitsOf(l.b) })),
    };
  } finally {
    release(model);
  }
}

/** A fit with early stopping (restoring the best weights): its history and the weights' bits. */
export async function earlyStoppingRun(where) {
  const model = await makeModel(where, smallSpec({ optimizer: { type: 'adam', learningRate: 3e-2 } }));
  try {
    const history = await model.fit(digits.x, digits.y, {
      epochs: 80, batchSize: 32, validationSplit: 0.3, earlyStopping: { monitor: 'valLoss', patience: 2, restoreBestWeights: true },
    });
    const weights = await model.getWeights();
    return { history: { ...history, epochs: history.epochs.map(timeless) }, weights: weights.map((l) => ({ w: bitsOf(l.w), b: bitsOf(l.b) })) };
  } finally {
    release(model);
  }
}

/** What `action(model)` throws (name, message, which class), on a fresh small model. */
export async function errorOf(where, actionName, specName) {
  let model;
  try {
    model = await makeModel(where, specName ? badSpecs[specName]() : smallSpec());
    await actions[actionName](model);
    return { threw: false };
  } catch (e) {
    return {
      threw: true, name: e.name, message: e.message, inputError: e instanceof lib.InputError, specError: e instanceof lib.SpecError,
      trainingError: e instanceof lib.TrainingError, fromCallback: e === callbackFailure,
    };
  } finally {
    if (model) release(model);
  }
}

const callbackFailure = new Error('the page callback failed');
const actions = {
  none: async () => {},
  wrongWidth: (m) => m.fit({ data: new Float32Array(20 * 3), shape: [20, 3] }, new Int32Array(20)),
  labelOutOfRange: (m) => m.fit(digits.x, Int32Array.from(digits.y, (v, i) => (i === 17 ? 12 : v))),
  nanInput: (m) => { const x = digits.x.data.slice(); x[5 * 64 + 3] = NaN; return m.fit({ data: x, shape: digits.x.shape }, digits.y); },
  badBatchSize: (m) => m.fit(digits.x, digits.y, { batchSize: 0 }),
  predictWrongWidth: (m) => m.predict([[1, 2, 3]]),
  setWeightsWrongShape: (m) => m.setWeights([{ w: [1], b: [1] }]),
  diverge: (m) => m.fit(digits.x, digits.y, { epochs: 3, batchSize: 16 }),
  callbackThrows: (m) => m.fit(digits.x, digits.y, { epochs: 2, onBatchEnd: (l) => { if (l.batch === 3) throw callbackFailure; } }),
  asyncCallbackRejects: (m) => m.fit(digits.x, digits.y, { epochs: 2, onEpochEnd: async () => { await null; throw callbackFailure; } }),
  checkpoint: (m) => m.fit(digits.x, digits.y, { epochs: 1, checkpoint: { path: 'model.dpm' } }),
  setWeightsWhileTraining: async (m) => {
    const fit = m.fit(digits.x, digits.y, { epochs: 2, onBatchEnd: async () => { await m.setWeights(await m.getWeights()); } });
    await fit;
  },
};

/** A spec that fails checkSpec, in the worker and on the page. */
export const badSpecs = {
  softmaxHidden: () => ({ ...smallSpec(), layers: [{ units: 8, activation: 'softmax' }, { units: 10, activation: 'softmax' }] }),
  unknownActivation: () => ({ ...smallSpec(), layers: [{ units: 8, activation: 'swish' }, { units: 10, activation: 'softmax' }] }),
  diverging: () => smallSpec({ optimizer: { type: 'sgd', learningRate: 1e9 } }),
};

/**
 * stopTraining set by the page outside any callback (a timer, as a Stop button would) while the
 * worker trains a long fit: how many epochs ran, and how long after the stop the fit resolved.
 */
export async function stopFromPage(afterMs) {
  const model = await lib.createWorkerModel(digitsSpec(), { backend: 'wasm' });
  try {
    let stoppedAt = 0;
    setTimeout(() => {
      stoppedAt = performance.now();
      model.stopTraining = true;
    }, afterMs);
    const history = await model.fit(digits.x, digits.y, { epochs: 500, batchSize: 64 });
    const lag = performance.now() - stoppedAt;
    // the model is whole and usable after the stop
    const classes = await model.predictClasses(firstRows);
    return { epochs: history.epochs.length, lagMs: lag, stoppedAt, classes: Array.from(classes), lastLoss: history.epochs.at(-1)?.loss };
  } finally {
    model.terminate();
  }
}

/**
 * Everything but fit, through the worker against the same model on the page: predict, evaluate,
 * predictClasses, getWeights / setWeights, running statistics, toBytes and loadWorkerModel.
 */
export async function methodsRun() {
  const spec = smallSpec({ layers: [{ units: 24, activation: 'relu' }, { type: 'batchNormalization' }, { units: 10, activation: 'softmax' }] });
  const worker = await lib.createWorkerModel(spec, { backend: 'wasm' });
  const page = await lib.createModel(spec, { backend: 'wasm' });
  try {
    const fitOptions = { epochs: 2, batchSize: 64 };
    await worker.fit(digits.x, digits.y, fitOptions);
    await page.fit(digits.x, digits.y, fitOptions);
    const out = {};
    out.predict = bitsOf((await worker.predict(digits.x)).data).join() === bitsOf(page.predict(digits.x).data).join();
    out.predictClasses = Array.from(await worker.predictClasses(digits.x)).join() === Array.from(page.predictClasses(digits.x)).join();
    const we = await worker.evaluate(digits.x, digits.y, { batchSize: 100 }), pe = page.evaluate(digits.x, digits.y, { batchSize: 100 });
    out.evaluate = JSON.stringify(we) === JSON.stringify(pe);
    out.accuracy = we.accuracy;
    out.runningStats = bitsOf(await worker.getRunningStats()).join() === bitsOf(page.getRunningStats()).join();
    out.statsLength = (await worker.getRunningStats()).length;
    out.gradients = bitsOf((await worker.gradients(firstRows, digits.y.subarray(0, 5))).grads).join() === bitsOf(page.gradients(firstRows, digits.y.subarray(0, 5)).grads).join();
    const bytes = await worker.toBytes();
    out.toBytes = Array.from(bytes).join() === Array.from(lib.modelToBytes(page)).join();
    // the bytes load on the page and in another worker, and predict the same
    const loaded = await lib.loadWorkerModel(bytes, { backend: 'wasm' });
    out.loadWorkerModel = bitsOf((await loaded.predict(digits.x)).data).join() === bitsOf(page.predict(digits.x).data).join();
    out.summary = loaded.summary({ print: false }).text === page.summary({ print: false }).text;
    out.facts = { paramCount: loaded.paramCount === page.paramCount, inputs: loaded.inputs, outputs: loaded.outputs, backend: loaded.backend.name };
    loaded.terminate();
    // setWeights then initialize: the worker's weights follow
    const fresh = page.getWeights().map((l) => ({ w: l.w.map((v) => v * 0.5), b: l.b }));
    await worker.setWeights(fresh);
    out.setWeights = bitsOf((await worker.getWeights())[0].w).join() === bitsOf(fresh[0].w).join();
    await worker.initialize(11);
    page.initialize(11);
    out.initialize = compareBits(await worker.getWeights(), page.getWeights()).differing === 0;
    await worker.resetOptimizer();
    return out;
  } finally {
    worker.terminate();
  }
}

/** Data is copied by default (the page's arrays stay whole); `transfer: true` moves (detaches) them. */
export async function transferRun() {
  const model = await lib.createWorkerModel(smallSpec(), { backend: 'wasm' });
  try {
    const x = { data: digits.x.data.slice(), shape: digits.x.shape }, y = digits.y.slice();
    await model.fit(x, y, { epochs: 1 });
    const copied = { x: x.data.length, y: y.length };
    const history = await model.fit(x, y, { epochs: 1, transfer: true });
    return { copied, moved: { x: x.data.length, y: y.length }, trainedAfterMove: history.epochs.length };
  } finally {
    model.terminate();
  }
}

/** How the page learns that its worker is gone: each case's error name and message, and how long it took. */
export async function failures() {
  const out = {};
  const timed = async (name, f) => {
    const t0 = performance.now();
    try {
      await f();
      out[name] = { threw: false };
    } catch (e) {
      out[name] = { threw: true, name: e.name, message: e.message, workerError: e instanceof lib.WorkerError, modelFileError: e instanceof lib.ModelFileError, ms: performance.now() - t0 };
    }
  };
  // a worker script that does not load
  await timed('missingScript', () => lib.createWorkerModel(smallSpec(), { worker: { url: '/dist/no-such-worker.js' } }));
  // a worker that crashes (an uncaught error) during a fit: the fit rejects, and so does what follows
  const crashing = await lib.createWorkerModel(digitsSpec(), { backend: 'wasm', worker: { url: '/test/runtimes/crashing-worker.mjs' } });
  await timed('crashDuringFit', () => crashing.fit(digits.x, digits.y, { epochs: 200 }));
  await timed('callAfterCrash', () => crashing.predict(firstRows));
  out.terminatedAfterCrash = crashing.terminated;
  // terminate() during a fit
  const ended = await lib.createWorkerModel(digitsSpec(), { backend: 'wasm' });
  const fit = ended.fit(digits.x, digits.y, { epochs: 200 });
  setTimeout(() => ended.terminate(), 200);
  await timed('terminateDuringFit', () => fit);
  await timed('callAfterTerminate', () => ended.getWeights());
  // the bytes of a broken model file: the page's ModelFileError and message
  const broken = lib.modelToBytes(await lib.createModel(smallSpec(), { backend: 'js' })).slice(0, 200);
  await timed('brokenFileInWorker', () => lib.loadWorkerModel(broken, { backend: 'wasm' }));
  await timed('brokenFileOnPage', () => lib.loadModel(broken, { backend: 'wasm' }));
  // arguments that cannot be cloned, and a BatchSource
  const m = await lib.createWorkerModel(smallSpec(), { backend: 'wasm' });
  await timed('unclonable', () => m.predict([[() => 1]]));
  await timed('batchSource', () => m.fit({ async *[Symbol.asyncIterator]() {} }));
  out.usableAfterBadArgs = (await m.predict(firstRows)).shape;
  m.terminate();
  return out;
}
