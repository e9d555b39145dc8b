// Run by test/native-lifetime.test.ts in processes of their own (a crash is then a signal, and
// RSS is this program's alone). Prints one JSON line. Modes:
//   kernel-after-gc  keep two functions of a kernel object, drop the object, make garbage until the
//                    collector has run many times (and the freed context would be reused), call them
//   workers N        N worker_threads each train on native and are terminated: RSS before/after
//   cycles N         3 rounds of N models created on a fresh native backend, trained, dropped: RSS
//                    peak, and after each round once collected
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { setImmediate as tick } from 'node:timers/promises';
import { loadNativeBackend } from '../../src/backends/native.js';
import { Model } from '../../src/model/model.js';
import type { ModelSpec } from '../../src/spec.js';

const rssMB = (): number => process.memoryUsage().rss / 1048576;
const gc = (globalThis as { gc?: () => void }).gc;

async function settle(): Promise<void> {
  // finalizers of native objects run after the collection, and a collection may free more once
  // they have run: collect until RSS stops falling (at most 10 rounds)
  let last = Infinity;
  for (let i = 0; i < 10; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 20));
    const now = process.memoryUsage().rss;
    if (i >= 2 && now >= last) break;
    last = now;
  }
}

async function kernelAfterGc(): Promise<object> {
  const kept = (() => {
    const k = loadNativeBackend({ threads: 1 }).kernels;
    return { sumSquares: k.sumSquares, getThreads: k.getThreads, args: k.args };
  })();
  const g = new Float32Array([1, 2, 3]);
  let wrong = 0, calls = 0;
  for (let round = 0; round < 150; round++) {
    // garbage, and kernel objects with another thread count: a freed context is reused by theirs
    const junk: unknown[] = [];
    for (let i = 0; i < 2000; i++) junk.push({ i }, new Float32Array(32), new ArrayBuffer(48));
    for (let i = 0; i < 20; i++) junk.push(loadNativeBackend({ threads: 3 }).kernels);
    await tick(); // the addon's finalizers run outside the collection, between turns
    if (round % 10 === 0) gc?.();
    if (kept.sumSquares(g, 3) !== 14) wrong++;
    if (kept.getThreads() !== 1) wrong++;
    kept.args[0] = round; // the argument block stays writable memory
    calls += 2;
  }
  return { calls, wrong };
}

const SPEC: ModelSpec = {
  inputs: 256, layers: [{ units: 512, activation: 'relu' }, { units: 10, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 1e-3 }, seed: 1,
};

async function trainInWorker(): Promise<void> {
  const model = new Model(SPEC, loadNativeBackend());
  const rows = 512, x = new Float32Array(rows * 256).map((_, i) => (i % 7) / 7), y = new Int32Array(rows).map((_, i) => i % 10);
  await model.fit({ data: x, shape: [rows, 256] }, y, { epochs: 2, batchSize: 128 });
  parentPort!.postMessage('trained');
}

async function workers(n: number): Promise<object> {
  const one = async (): Promise<void> => {
    const w = new Worker(new URL(import.meta.url), { argv: ['worker'] });
    await new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
    await w.terminate();
  };
  for (let i = 0; i < 3; i++) await one(); // warm-up: the pool's threads, code, malloc arenas
  await settle();
  const before = rssMB();
  for (let i = 0; i < n; i++) await one();
  await settle();
  return { workers: n, before, after: rssMB() };
}

async function cycles(n: number): Promise<object> {
  const spec: ModelSpec = {
    inputs: 16, layers: [{ units: 32, activation: 'relu' }, { units: 4, activation: 'softmax' }],
    loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 1e-3 }, seed: 1,
  };
  const x = { data: new Float32Array(64 * 16).fill(0.5), shape: [64, 16] as [number, number] };
  const y = new Int32Array(64).map((_, i) => i % 4);
  const start = rssMB();
  let peak = start;
  const settled: number[] = [];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < n; i++) {
      const model = new Model(spec, loadNativeBackend()); // a backend per model, as createModel makes
      await model.fit(x, y, { epochs: 1, batchSize: 32 });
      if (i % 250 === 0) peak = Math.max(peak, rssMB());
    }
    await settle();
    settled.push(rssMB());
  }
  return { cycles: 3 * n, start, peak, round1: settled[0], round3: settled[2] };
}

if (!isMainThread) {
  await trainInWorker();
} else {
  const mode = process.argv[2], n = Number(process.argv[3] ?? 0);
  const out = mode === 'kernel-after-gc' ? await kernelAfterGc() : mode === 'workers' ? await workers(n) : await cycles(n);
  console.log(JSON.stringify(out));
}
