// The wasm backend on several threads (the threads build on a pool of worker_threads): the same
// bits for any thread count, in kernels, a training run and inference; the threads option and
// DELTAPROP_THREADS; why it runs on one thread; a stopped worker as an error, never a hang.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { describe, expect, it, vi } from 'vitest';
import type { Backend, Buf } from '../src/backends/backend.js';
import { loadWasmBackend, MAX_WASM_THREADS, WasmBackend } from '../src/backends/wasm.js';
import { backendInfo, createModel } from '../src/index.js';
import type { ModelSpec } from '../src/spec.js';
import { rng } from './rng.js';

const THREADS = [1, 2, 3];

/** A wasm backend on `threads` threads whose workers are running (they otherwise start lazily). */
async function wasmOn(threads: number): Promise<WasmBackend> {
  const b = await loadWasmBackend(undefined, { threads }) as WasmBackend;
  await b.startThreads();
  expect(b.threads, `wasm backend asked for ${threads} threads: ${String(b.threadsReason)}`).toBe(threads);
  expect(b.workersStarted).toBe(threads > 1);
  return b;
}

function fill(b: Backend, n: number, seed: number): Buf {
  const buf = b.alloc(n);
  const r = rng(seed);
  for (let i = 0; i < n; i++) buf.data[i] = 4 * r() - 2;
  return buf;
}

/** The first index where two float arrays differ in bits, or -1. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  const i = firstBitDifference(got, want);
  if (i >= 0) expect.fail(`${what}: index ${i}: ${got[i]} vs ${want[i]} (length ${got.length} vs ${want.length})`);
}

describe('wasm threads: kernels', async () => {
  const backends = await Promise.all(THREADS.map(wasmOn));

  // sizes around the split: a few tiles, ragged edges, k above one KC block, every transpose
  const cases: [number, number, number, boolean, boolean][] = [
    [256, 512, 784, false, false], [784, 512, 256, true, false], [256, 784, 512, false, true], [255, 513, 300, true, true],
    [37, 129, 300, false, false], [256, 10, 512, false, false], [5, 1000, 400, false, false], [1000, 8, 200, false, false],
    // a thread's later blocks read op(a) packed by its first (gemm.ts A_CACHE_BYTES): four k blocks,
    // transposed; and an op(a) of more than the cache's 1 MB, packed by every block
    [64, 3000, 1024, true, false], [600, 512, 500, false, false], [601, 300, 437, true, true],
    // 1 to 4 rows: the GEMV path, split in column ranges of 32 from 2^17 multiply-adds; ragged
    // last ranges (513, 100, 1000 columns), two ranges only (64), and just under the split
    [1, 512, 784, false, false], [1, 513, 300, false, false], [2, 100, 700, false, false], [3, 1000, 400, false, false],
    [4, 64, 600, false, false], [1, 96, 1366, false, false], [1, 96, 1365, false, false],
  ];
  it.each(cases)('gemm %i×%i×%i (transA %s, transB %s): the same bits on 1, 2 and 3 threads', (m, n, k, ta, tb) => {
    const outs = backends.map((b) => {
      const a = fill(b, m * k, 1), w = fill(b, k * n, 2), c = fill(b, m * n, 3);
      b.gemm(ta, tb, m, n, k, 0.75, a, w, 0.5, c);
      return c.data.slice();
    });
    for (let t = 1; t < outs.length; t++) expectSameBits(outs[t], outs[0], `${THREADS[t]} threads vs 1`);
  });

  it('denseForward, its packed variant and denseBackward: the same bits on 1, 2 and 3 threads', () => {
    const [m, inp, out] = [256, 300, 200];
    const outs = backends.map((b) => {
      const x = fill(b, m * inp, 4), w = fill(b, inp * out, 5), bias = fill(b, out, 6);
      const y = b.alloc(m * out), y2 = b.alloc(m * out);
      b.denseForward(y, x, w, bias, m, inp, out, 2, 0.01); // relu
      const packed = b.packWeights!(w, inp, out);
      b.denseForwardPacked!(y2, x, w, packed, bias, m, inp, out, 3, 0.01); // tanh
      const dz = fill(b, m * out, 7), dw = b.alloc(inp * out), db = b.alloc(out), dx = b.alloc(m * inp);
      b.denseBackward(dw, db, dx, dz, x, w, m, inp, out, 1 / m, 3, 0.01);
      return [y, y2, dw, db, dx].map((v) => v.data.slice());
    });
    for (let t = 1; t < outs.length; t++) {
      ['y', 'packed y', 'dw', 'db', 'dx'].forEach((name, i) => expectSameBits(outs[t][i], outs[0][i], `${name}, ${THREADS[t]} threads vs 1`));
    }
  });
});

const WIDE: ModelSpec = {
  inputs: 784,
  layers: [{ units: 512, activation: 'relu' }, { units: 512, activation: 'relu' }, { units: 10, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy',
  optimizer: { type: 'adam', learningRate: 1e-3 },
  seed: 7,
};

function dataset(rows: number, inputs: number, classes: number, seed: number): { x: { data: Float32Array; shape: [number, number] }; y: Int32Array } {
  const r = rng(seed);
  const x = new Float32Array(rows * inputs).map(() => r());
  const y = new Int32Array(rows).map(() => Math.floor(r() * classes));
  return { x: { data: x, shape: [rows, inputs] }, y };
}

describe('wasm threads: models', () => {
  it('a wide-mlp training run (784-512-512-10, Adam, batch 256) and 256-row inference: the same bits on 1, 2 and 3 threads', async () => {
    const { x, y } = dataset(768, 784, 10, 11);
    const runs: { loss: number[]; weights: { w: Float32Array; b: Float32Array }[]; predicted: Float32Array }[] = [];
    for (const threads of THREADS) {
      const model = await createModel(WIDE, { backend: 'wasm', threads });
      expect(model.backend.threads).toBe(threads);
      const h = await model.fit(x, y, { epochs: 2, batchSize: 256, seed: 3 });
      const p = model.predict({ data: x.data.subarray(0, 256 * 784), shape: [256, 784] });
      runs.push({ loss: h.epochs.map((e) => e.loss), weights: model.getWeights(), predicted: p.data.slice() });
      (model.backend as WasmBackend).dispose();
    }
    for (let t = 1; t < runs.length; t++) {
      expect(runs[t].loss, `losses, ${THREADS[t]} threads vs 1`).toEqual(runs[0].loss);
      runs[0].weights.forEach((l, i) => {
        expectSameBits(runs[t].weights[i].w, l.w, `layer ${i} w, ${THREADS[t]} threads vs 1`);
        expectSameBits(runs[t].weights[i].b, l.b, `layer ${i} b, ${THREADS[t]} threads vs 1`);
      });
      expectSameBits(runs[t].predicted, runs[0].predicted, `256-row predict, ${THREADS[t]} threads vs 1`);
    }
  }, 120_000);

  // the optimizer updates, dropout, the bias gradients and softmax on the pool too (assembly/optim.ts,
  // dropout.ts, dense.ts): every optimizer, with weight decay on the weights only
  const OTHERS: [string, ModelSpec['optimizer']][] = [
    ['sgd', { type: 'sgd', learningRate: 0.05, weightDecay: 1e-3 }],
    ['nesterov momentum', { type: 'momentum', learningRate: 0.02, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }],
    ['adamw', { type: 'adamw', learningRate: 1e-3, weightDecay: 1e-2 }],
  ];
  it.each(OTHERS)('784-512-dropout-512-10 with %s, batch 256: the same bits on 1, 2 and 3 threads', async (_name, optimizer) => {
    const spec: ModelSpec = {
      ...WIDE, optimizer,
      layers: [{ units: 512, activation: 'relu' }, { type: 'dropout', rate: 0.25 }, { units: 512, activation: 'tanh' }, { units: 10, activation: 'softmax' }],
    };
    const { x, y } = dataset(512, 784, 10, 12);
    const runs: { loss: number[]; weights: { w: Float32Array; b: Float32Array }[] }[] = [];
    for (const threads of THREADS) {
      const model = await createModel(spec, { backend: 'wasm', threads });
      expect(model.backend.threads).toBe(threads);
      const h = await model.fit(x, y, { epochs: 2, batchSize: 256, seed: 4 });
      runs.push({ loss: h.epochs.map((e) => e.loss), weights: model.getWeights() });
      (model.backend as WasmBackend).dispose();
    }
    for (let t = 1; t < runs.length; t++) {
      expect(runs[t].loss, `losses, ${THREADS[t]} threads vs 1`).toEqual(runs[0].loss);
      runs[0].weights.forEach((l, i) => {
        expectSameBits(runs[t].weights[i].w, l.w, `layer ${i} w, ${THREADS[t]} threads vs 1`);
        expectSameBits(runs[t].weights[i].b, l.b, `layer ${i} b, ${THREADS[t]} threads vs 1`);
      });
    }
  }, 120_000);
});

describe('wasm threads: the threads option, DELTAPROP_THREADS and the one-thread reasons', () => {
  const saved = process.env.DELTAPROP_THREADS;
  const restore = (): void => {
    if (saved === undefined) delete process.env.DELTAPROP_THREADS;
    else process.env.DELTAPROP_THREADS = saved;
  };

  it('defaults to every hardware thread, takes DELTAPROP_THREADS, and the option over it', async () => {
    try {
      delete process.env.DELTAPROP_THREADS;
      const byDefault = await loadWasmBackend() as WasmBackend;
      const cores = Math.min(availableParallelism(), MAX_WASM_THREADS);
      expect(byDefault.threads).toBe(cores);
      expect(byDefault.threadsReason).toBe(cores === 1 ? 'one hardware thread (the default is every hardware thread)' : undefined);
      expect(byDefault.workersStarted).toBe(false); // nothing has split its work yet
      byDefault.dispose();
      process.env.DELTAPROP_THREADS = '3';
      const three = await loadWasmBackend();
      expect(three.threads).toBe(3);
      expect(three.threadsReason).toBeUndefined();
      (three as WasmBackend).dispose();
      const two = await loadWasmBackend(undefined, { threads: 2 });
      expect(two.threads).toBe(2);
      (two as WasmBackend).dispose();
      process.env.DELTAPROP_THREADS = '1';
      const one = await loadWasmBackend();
      expect(one.threads).toBe(1);
      expect(one.threadsReason).toBe('DELTAPROP_THREADS=1');
      const model = await createModel(WIDE, { backend: 'wasm' });
      expect(model.backend.threads).toBe(1);
      expect(model.backend.threadsReason).toBe('threads: 1 was asked'); // (createModel passes DELTAPROP_THREADS on as the option)
      process.env.DELTAPROP_THREADS = 'two';
      await expect(loadWasmBackend()).rejects.toThrow(/threads must be a positive integer, got two \(from DELTAPROP_THREADS\)/);
      await expect(loadWasmBackend(undefined, { threads: 0 })).rejects.toThrow(/threads must be a positive integer, got 0/);
    } finally {
      restore();
    }
  });

  it('a tiny model never starts a worker; one large enough starts them at its first split kernel, with the bits of one thread', async () => {
    try {
      delete process.env.DELTAPROP_THREADS;
      const tiny = await createModel({ inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
        loss: 'binaryCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 1 }, { backend: 'wasm' });
      const tb = tiny.backend as WasmBackend;
      await tiny.fit({ data: new Float32Array(128).map((_, i) => i % 2), shape: [64, 2] }, new Float32Array(64).map((_, i) => i % 3 & 1), { epochs: 3, batchSize: 4 });
      tiny.predict({ data: new Float32Array(128), shape: [64, 2] });
      await new Promise((r) => setTimeout(r, 200)); // time for a start, had one been asked
      expect(tb.workersStarted).toBe(false);
      tb.dispose();
      // the same run by default and on threads: 1: an epoch (the workers start meanwhile), a wait
      // until they run, an epoch on every thread, a prediction
      const { x, y } = dataset(512, 784, 10, 12);
      const run = async (opts: { threads?: number }) => {
        const model = await createModel(WIDE, { backend: 'wasm', ...opts });
        const b = model.backend as WasmBackend;
        const before = b.workersStarted;
        const h1 = await model.fit(x, y, { epochs: 1, batchSize: 256, seed: 4 });
        if (b.threads > 1) await vi.waitFor(() => expect(b.workersStarted).toBe(true), { timeout: 20_000, interval: 10 });
        const h2 = await model.fit(x, y, { epochs: 1, batchSize: 256, seed: 5 });
        const p = model.predict({ data: x.data.subarray(0, 256 * 784), shape: [256, 784] });
        const out = { before, threads: b.threads, started: b.workersStarted, loss: [...h1.epochs, ...h2.epochs].map((e) => e.loss), w: model.getWeights(), p: p.data.slice() };
        b.dispose();
        return out;
      };
      const [byDefault, one] = [await run({}), await run({ threads: 1 })];
      expect(byDefault.before).toBe(false);
      expect(byDefault.threads).toBe(Math.min(availableParallelism(), MAX_WASM_THREADS));
      expect(byDefault.started).toBe(byDefault.threads > 1);
      expect(one.threads).toBe(1);
      expect(byDefault.loss).toEqual(one.loss);
      one.w.forEach((l, i) => {
        expectSameBits(byDefault.w[i].w, l.w, `layer ${i} w, default vs threads: 1`);
        expectSameBits(byDefault.w[i].b, l.b, `layer ${i} b, default vs threads: 1`);
      });
      expectSameBits(byDefault.p, one.p, 'predict, default vs threads: 1');
    } finally {
      restore();
    }
  }, 120_000);

  it('createModel and backendInfo take threads for wasm; backendInfo says why one thread', async () => {
    const model = await createModel({ inputs: 4, layers: [{ units: 2, activation: 'softmax' }], loss: 'categoricalCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.1 } },
      { backend: 'wasm', threads: 3 });
    expect(model.backend.threads).toBe(3);
    (model.backend as WasmBackend).dispose();
    const info = await backendInfo({ backend: 'wasm', threads: 1 });
    expect(info.backend).toBe('wasm');
    expect(info.threads).toBe(1);
    expect(info.threadsReason).toBe('threads: 1 was asked');
    expect(info.backends.wasm.threadsReason).toBe('threads: 1 was asked');
    const two = await backendInfo({ backend: 'wasm', threads: 2 });
    expect(two.threads).toBe(2);
    expect(two.threadsReason).toBeUndefined();
  });

  it('setThreads uses fewer of the pool (at most its size), with the same bits', async () => {
    const b = await wasmOn(3);
    const [m, n, k] = [200, 300, 250];
    const a = fill(b, m * k, 8), w = fill(b, k * n, 9);
    const outs = [3, 1, 2, 9].map((t) => {
      b.setThreads(t);
      const c = b.alloc(m * n);
      b.gemm(false, false, m, n, k, 1, a, w, 0, c);
      return { threads: b.threads, c: c.data.slice() };
    });
    expect(outs.map((o) => o.threads)).toEqual([3, 1, 2, 3]);
    for (const o of outs.slice(1)) expectSameBits(o.c, outs[0].c, `${o.threads} threads vs 3`);
    b.dispose();
  });
});

describe('wasm threads: memory, lifetime and failures', () => {
  it('the workers see the memory grow: a GEMM in the grown part has the bits of one thread', async () => {
    const [one, two] = [await wasmOn(1), await wasmOn(2)];
    const outs = [one, two].map((b) => {
      const before = b.memory.buffer.byteLength;
      const a = fill(b, 4_000_000, 10), w = fill(b, 512 * 512, 11); // 16 MB: the memory grows
      expect(b.memory.buffer.byteLength).toBeGreaterThan(before);
      const c = b.alloc(512 * 512);
      b.gemm(false, false, 512, 512, 512, 1, a.view(1_000_000, 512 * 512), w, 0, c);
      return c.data.slice();
    });
    expectSameBits(outs[1], outs[0], '2 threads vs 1 after growth');
    two.dispose();
  });

  it('dispose stops the workers; the backend then refuses kernels with a clear error', async () => {
    const b = await wasmOn(2);
    const a = fill(b, 64, 1), c = b.alloc(64);
    b.dispose();
    expect(() => b.gemm(false, false, 8, 8, 8, 1, a, a, 0, c)).toThrow(/wasm backend: the backend was disposed/);
    b.dispose(); // twice is harmless
  });

  it('a worker that traps surfaces as an error naming the thread, and the backend refuses later calls', async () => {
    const b = await wasmOn(2);
    const raw = (b as unknown as { raw: { gemm(...args: number[]): void } }).raw;
    const a = fill(b, 256 * 256, 1);
    const ptr = (a as unknown as { ptr: number }).ptr;
    // c far beyond the memory: every block traps, the main thread's and the worker's
    expect(() => raw.gemm(0, 0, 256, 256, 256, 1, ptr, ptr, 0, 0xfff00000)).toThrow(/out of bounds/);
    // the worker wakes, claims a block of that task and traps too (nothing else is published
    // meanwhile: the check alone, no kernel)
    const pool = (b as unknown as { pool: { check(): void } }).pool;
    let error: unknown = null;
    for (let i = 0; i < 1000 && error === null; i++) {
      try {
        pool.check();
        await new Promise((r) => setTimeout(r, 10));
      } catch (e) {
        error = e;
      }
    }
    const c = b.alloc(256 * 256);
    expect(String(error)).toMatch(/WasmPoolError: wasm backend: worker thread 1 stopped: .*out of bounds/);
    expect(() => b.gemm(false, false, 256, 256, 256, 1, a, a, 0, c)).toThrow(/worker thread 1 stopped/);
    b.dispose();
  });

  it('a worker that exits is an error at the next call, not a hang', async () => {
    const b = await wasmOn(2);
    const pool = (b as unknown as { pool: { workers: { terminate(): void }[]; broken: string | null } }).pool;
    pool.workers[0].terminate();
    // its 'exit' event, delivered to this thread's event loop, marks the pool broken
    await vi.waitFor(() => expect(pool.broken).toMatch(/worker thread 1 stopped: exited/), { timeout: 10_000, interval: 20 });
    const a = fill(b, 256 * 256, 1), c = b.alloc(256 * 256);
    expect(() => b.gemm(false, false, 256, 256, 256, 1, a, a, 0, c)).toThrow(/wasm backend: worker thread 1 stopped: exited with code 1/);
    b.dispose();
  });

  it('a worker killed while the main thread waits in a call fails that call with a WasmPoolError, never hangs', () => {
    // terminate() takes effect on the worker's thread while the main thread, in the GEMMs, waits
    // for it to leave a task; its 'exit' event cannot be delivered then (the watchdog's job)
    const script = `
      import { loadWasmBackend } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const b = await loadWasmBackend(undefined, { threads: 2 });
      await b.startThreads();
      const n = 768, a = b.alloc(n * n), c = b.alloc(n * n);
      a.data.fill(0.5);
      b.pool.workers[0].terminate();
      let calls = 0, msg = 'no error';
      try {
        for (; calls < 200; calls++) b.gemm(false, false, n, n, n, 1, a, a, 0, c);
      } catch (e) {
        msg = e.name + ': ' + e.message;
      }
      console.log(JSON.stringify({ calls, msg }));
      process.exit(0);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, `the call hung (killed after 60 s): ${r.stderr}`).toBeNull();
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { calls: number; msg: string };
    expect(out.msg).toBe('WasmPoolError: wasm backend: worker thread 1 stopped: exited while the pool ran');
    expect(out.calls).toBeLessThan(200);
  });

  it('the workers do not keep a Node process alive (no dispose: the process exits when its work is done)', () => {
    const script = `
      import { createModel } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const model = await createModel({ inputs: 64, layers: [{ units: 256, activation: 'relu' }, { units: 10, activation: 'softmax' }],
        loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 1e-3 } }, { backend: 'wasm', threads: 2 });
      const x = { data: new Float32Array(256 * 64).fill(0.5), shape: [256, 64] };
      await model.fit(x, new Int32Array(256), { epochs: 1, batchSize: 128 });
      console.log(model.backend.name, model.backend.threads);`;
    const t = Date.now();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('wasm 2');
    expect(r.status).toBe(0);
    expect(Date.now() - t).toBeLessThan(30_000);
  });
});
