// Run by Deno (test/runtimes/worker-model.test.ts) with read permission only: createWorkerModel
// from the web entry starts dist/model-worker.js as a Deno Web Worker. The same Iris fit in the
// worker and on this thread, with a callback that stops it, must give the same weights, bit for
// bit; a bad input must reject with the InputError of the thread's fit. JSON out.
import * as lib from '../../dist/web.js';

const text = await Deno.readTextFile(new URL('../../data/iris.csv', import.meta.url));
const rows = text.trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
const x = rows.map((r) => r.slice(0, 4)), y = rows.map((r) => r[4]);
const spec = {
  inputs: 4, layers: [{ units: 16, activation: 'relu' }, { units: 3, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, normalization: lib.fitNormalization(lib.toMatrix(x, 'x')), seed: 5,
};

async function train(model) {
  let batches = 0;
  const history = await model.fit(x, y, {
    epochs: 40, batchSize: 16,
    onBatchEnd: () => { batches++; },
    onEpochEnd: (logs) => { if (logs.epoch === 30) model.stopTraining = true; },
  });
  const bits = (await model.getWeights()).flatMap((l) => [...new Uint32Array(l.w.buffer), ...new Uint32Array(l.b.buffer)]);
  let error = null;
  try {
    await model.fit([[1, 2, 3]], [0]);
  } catch (e) {
    error = { name: e.name, message: e.message };
  }
  return { epochs: history.epochs.length, batches, accuracy: history.epochs.at(-1).accuracy, bits, error };
}

const worker = await lib.createWorkerModel(spec, { backend: 'wasm' });
const inWorker = await train(worker);
worker.terminate();
const onThread = await train(await lib.createModel(spec, { backend: 'wasm' }));
const differing = inWorker.bits.filter((b, i) => b !== onThread.bits[i]).length;
console.log(JSON.stringify({
  runtime: `deno ${Deno.version.deno}`, backend: worker.backend.name, params: inWorker.bits.length, differing,
  worker: { ...inWorker, bits: undefined }, thread: { ...onThread, bits: undefined },
}));
