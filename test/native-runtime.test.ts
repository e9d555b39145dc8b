// The addon in worker threads (context-aware, shared thread pool), and the cost of one call.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ACT } from '../src/backends/backend.js';
import { loadNativeBackend, nativePackageRoot } from '../src/backends/native.js';

// Runs in a worker: loads the addon itself and computes a GEMM with 2 threads.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const addon = require(require.resolve('node-gyp-build', { paths: [workerData.root] }))(workerData.root);
const k = addon.create('', 2);
const n = workerData.n, a = addon.alloc(n * n), b = addon.alloc(n * n), c = addon.alloc(n * n);
for (let i = 0; i < n * n; i++) { a[i] = (i % 7) - 3; b[i] = (i % 5) - 2; }
for (let r = 0; r < workerData.reps; r++) k.gemm(false, true, n, n, n, 1, a, b, 0, c);
let bad = null;
try { k.gemm(false, false, n, n, n, 1, a, b, 0, new Float32Array(1)); } catch (e) { bad = e.constructor.name + ': ' + e.message; }
parentPort.postMessage({ c: Array.from(c.subarray(0, 16)), isa: k.isa, bad });
`;

function runWorker(n: number, reps: number): Promise<{ c: number[]; isa: string; bad: string }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { root: nativePackageRoot(), n, reps } });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

describe('native runtime', () => {
  it('loads and computes in worker threads, several at once, while the main thread computes too', async () => {
    const n = 160;
    const be = loadNativeBackend({ threads: 2 });
    const a = be.alloc(n * n), b = be.alloc(n * n), c = be.alloc(n * n);
    for (let i = 0; i < n * n; i++) { a.data[i] = (i % 7) - 3; b.data[i] = (i % 5) - 2; }
    const pending = [runWorker(n, 50), runWorker(n, 50)];
    for (let r = 0; r < 50; r++) be.gemm(false, true, n, n, n, 1, a, b, 0, c);
    const results = await Promise.all(pending);
    for (const res of results) {
      expect(res.isa).toBe(be.isa);
      expect(res.c).toEqual(Array.from(c.data.subarray(0, 16))); // integers: exact
      expect(res.bad).toMatch(/^RangeError: gemm: c has 1 floats/);
    }
  });

  it('a kernel call from JS costs well under a microsecond (tiny-net sizes)', () => {
    const be = loadNativeBackend({ threads: 1 });
    const x = be.alloc(4 * 2), w = be.alloc(2 * 8), b = be.alloc(8), y = be.alloc(4 * 8);
    const N = 200_000;
    const perCall: number[] = [];
    for (let run = 0; run < 5; run++) {
      // CPU time, not wall time: the machine may be shared, and a descheduled thread is not slow
      const t0 = process.cpuUsage();
      for (let i = 0; i < N; i++) be.denseForward(y, x, w, b, 4, 2, 8, ACT.tanh, 0);
      const t = process.cpuUsage(t0);
      perCall.push(((t.user + t.system) * 1000) / N);
    }
    perCall.sort((p, q) => p - q);
    // Measured here: ~0.1 µs of CPU per call (argument block + one bare napi call + the kernel);
    // the bound leaves room for a slower machine.
    expect(perCall[2], `median ns per call: ${perCall[2].toFixed(0)}`).toBeLessThan(1000);
  });
});
