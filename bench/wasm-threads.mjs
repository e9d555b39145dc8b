// wasm on 2 threads against 1: wide-mlp training (784-512-512-10, Adam, batch 256) and a 256-row
// forward pass, in short paired rounds that alternate the thread counts (so that a neighbour's
// load falls on both alike). Checks that both give the same bits first. Needs `npm run compile`.
//   node bench/wasm-threads.mjs [rounds]
import { createModel } from '../dist/index.js';

const rounds = Number(process.argv[2] ?? 7);
const rows = 2560, inputs = 784;
let s = 1;
const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
const x = { data: new Float32Array(rows * inputs).map(() => rand()), shape: [rows, inputs] };
const y = new Int32Array(rows).map(() => Math.floor(rand() * 10));
const x256 = { data: x.data.subarray(0, 256 * inputs), shape: [256, inputs] };
const spec = {
  inputs,
  layers: [{ units: 512, activation: 'relu' }, { units: 512, activation: 'relu' }, { units: 10, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 1e-3 }, seed: 3,
};
const models = {};
for (const t of [1, 2]) models[t] = await createModel(spec, { backend: 'wasm', threads: t });
const same = (a, b) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
if (!same(models[1].predict(x256).data, models[2].predict(x256).data)) throw new Error('1 and 2 threads disagree');

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const train = { 1: [], 2: [] }, infer = { 1: [], 2: [] };
for (let r = 0; r < rounds; r++) {
  for (const t of r % 2 ? [2, 1] : [1, 2]) {
    const m = models[t];
    let t0 = performance.now();
    await m.fit(x, y, { epochs: 1, batchSize: 256, shuffle: false });
    train[t].push(rows / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    for (let i = 0; i < 10; i++) m.predict(x256);
    infer[t].push((performance.now() - t0) / 10);
  }
}
const out = {
  rounds,
  wideMlpTrainSamplesPerSecond: { threads1: median(train[1]), threads2: median(train[2]), ratio: median(train[2].map((v, i) => v / train[1][i])) },
  infer256Ms: { threads1: median(infer[1]), threads2: median(infer[2]), ratio: median(infer[1].map((v, i) => v / infer[2][i])) },
};
console.log(JSON.stringify(out, null, 2));
for (const t of [1, 2]) models[t].backend.dispose?.();
