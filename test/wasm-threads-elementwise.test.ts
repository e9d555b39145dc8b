// The wasm threads build's elementwise work on the pool (assembly/optim.ts, dense.ts, dropout.ts:
// optimizer updates, the bias gradient, softmax rows, dropout): on 1, 2 and 3 threads the same bits
// as the single-threaded build, and within the js reference's tolerances of test/wasm.test.ts, at
// sizes around the split threshold (2^16 elements), the blocks (8192 entries, 64 bias columns,
// about 4096 softmax elements) and the SIMD width. Both builds: plain and relaxed SIMD.
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { ACT, type ActCode, type Backend, type Buf } from '../src/backends/backend.js';
import { JsBackend } from '../src/backends/js.js';
import { loadWasmBackend, relaxedSimdSupported, WasmBackend } from '../src/backends/wasm.js';
import { rng } from './rng.js';

// Node 20's V8 has relaxed SIMD behind a flag (see test/wasm.test.ts); set before any module compiles
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

const U = 2 ** -24;
const THREADS = [1, 2, 3];
const ref = new JsBackend();

function randomArray(n: number, seed: number, lo = -2, hi = 2): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

function put(b: Backend, values: Float32Array): Buf {
  const buf = b.alloc(values.length);
  buf.data.set(values);
  return buf;
}

function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  const x = new Uint32Array(got.buffer, got.byteOffset, got.length), y = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) expect.fail(`${what}: index ${i}: ${got[i]} vs ${want[i]}`);
}

function expectClose(got: Float32Array, want: Float32Array, bound: (i: number) => number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= bound(i))) expect.fail(`${what}: index ${i}: got ${got[i]}, want ${want[i]} (error ${err}, bound ${bound(i)})`);
  }
}

/** Runs `kernel` on the single-threaded build, then on 1, 2 and 3 threads of the threads build (2 and 3: a pool). */
type Kernel = (b: Backend) => Float32Array[];

function expectSameOnEveryThreadCount(backends: Backend[], names: string[], kernel: Kernel, what: string): Float32Array[] {
  const outs = backends.map(kernel);
  for (let t = 1; t < outs.length; t++) {
    outs[t].forEach((o, i) => expectSameBits(o, outs[0][i], `${what}: ${names[i]}, ${backends[t].threads} threads vs the single-threaded build`));
  }
  return outs[0];
}

const BUILDS = [{ name: 'simd', relaxed: false }, { name: 'relaxed', relaxed: true }] as const;

describe.each(BUILDS)('wasm threads, $name build: elementwise ops on the pool', async ({ relaxed }) => {
  const usable = !relaxed || relaxedSimdSupported();
  const backends: Backend[] = [];
  if (usable) {
    for (const threads of THREADS) {
      const b = await loadWasmBackend(undefined, { threads, relaxed });
      await (b as WasmBackend).startThreads(); // every split op of the run is split from its first call
      expect(b.threads, `${threads} threads: ${String(b.threadsReason)}`).toBe(threads);
      backends.push(b);
    }
    // the threads build on one thread of a pool of 3: the kernels' own one-thread path
    const one = await loadWasmBackend(undefined, { threads: 3, relaxed });
    await (one as WasmBackend).startThreads();
    (one as WasmBackend).setThreads(1);
    backends.push(one);
  }

  // n around 2^16 and the 8192-entry blocks; the decay boundary inside a vector, on a block edge,
  // just past one, and the whole or none of the arena
  const OPT_CASES: [number, number][] = [
    [65535, 30001], [65536, 0], [65537, 65537], [65539, 8191], [81921, 8193], [100003, 50001], [131072, 8192], [200001, 199998],
  ];

  function optimizer(n: number, states: number, step: (b: Backend, p: Buf, g: Buf, s: Buf[], t: number) => void): Kernel {
    const p0 = randomArray(n, n + 3), gs = [randomArray(n, n + 4), randomArray(n, n + 5), randomArray(n, n + 6)];
    return (b) => {
      const p = put(b, p0), s = Array.from({ length: states }, () => b.alloc(n));
      gs.forEach((g, t) => step(b, p, put(b, g), s, t + 1));
      return [p, ...s].map((v) => v.data.slice());
    };
  }

  function checkOptimizer(label: string, n: number, states: number, step: (b: Backend, p: Buf, g: Buf, s: Buf[], t: number) => void): void {
    if (!usable) return;
    const kernel = optimizer(n, states, step);
    const names = ['p', 'state 0', 'state 1'];
    const got = expectSameOnEveryThreadCount(backends, names, kernel, label);
    const want = kernel(ref);
    // the bounds of test/wasm.test.ts checkOptimizer
    got.forEach((g, i) => expectClose(g, want[i], (j) => 1e-5 * Math.abs(want[i][j]) + 1e-6, `${label} ${names[i]} vs js`));
  }

  it.each(OPT_CASES)('sgdStep n=%i decayCount=%i', (n, d) => {
    checkOptimizer('sgd', n, 0, (b, p, g) => b.sgdStep(p, g, n, 0.1, 0.5, 0.01, d));
  });

  it.each(OPT_CASES)('momentumStep n=%i decayCount=%i (plain and Nesterov)', (n, d) => {
    checkOptimizer('momentum', n, 1, (b, p, g, [v]) => b.momentumStep(p, g, v, n, 0.1, 0.5, 0.9, false, 0.01, d));
    checkOptimizer('nesterov', n, 1, (b, p, g, [v]) => b.momentumStep(p, g, v, n, 0.1, 1, 0.9, true, 0.01, d));
  });

  it.each(OPT_CASES)('adamStep n=%i decayCount=%i (Adam and AdamW)', (n, d) => {
    for (const decoupled of [false, true]) {
      checkOptimizer(decoupled ? 'adamw' : 'adam', n, 2, (b, p, g, [m, v], t) =>
        b.adamStep(p, g, m, v, n, 1e-3, 0.5, 0.9, 0.999, 1e-8, 1 - 0.9 ** t, 1 - 0.999 ** t, 0.01, decoupled, d));
    }
  });

  // m·out around 2^16; out just above one 64-column block, a multiple of 4 and not
  const BIAS_CASES: [number, number][] = [[255, 257], [256, 256], [128, 513], [1000, 67], [979, 67], [256, 512], [65, 1030]];

  it.each(BIAS_CASES)('denseBackward m=%i out=%i: the bias gradient (and dw, dx)', (m, out) => {
    if (!usable) return;
    const inp = 5;
    const x = randomArray(m * inp, m + 1, 0, 1), wt = randomArray(inp * out, out + 2), dz = randomArray(m * out, m * out);
    const kernel: Kernel = (b) => {
      const dw = b.alloc(inp * out), db = b.alloc(out), dx = b.alloc(m * inp);
      b.denseBackward(dw, db, dx, put(b, dz), put(b, x), put(b, wt), m, inp, out, 1 / m, ACT.relu, 0);
      return [dw, db, dx].map((v) => v.data.slice());
    };
    const [, db] = expectSameOnEveryThreadCount(backends, ['dw', 'db', 'dx'], kernel, 'denseBackward');
    const [, dbr] = kernel(ref);
    const dbBound = new Float32Array(out);
    for (let i = 0; i < m; i++) for (let j = 0; j < out; j++) dbBound[j] += Math.abs(dz[i * out + j]);
    expectClose(db, dbr, (j) => 2 * (m + 2) * U * (1 / m) * dbBound[j] + 1e-30, 'db vs js');
  });

  // m·out around 2^16; rows of blocks of about 4096 elements: several rows, one row, a ragged last block
  const SOFTMAX_CASES: [number, number][] = [[255, 257], [256, 256], [64, 1025], [4097, 16], [2, 40000], [1543, 43]];

  it.each(SOFTMAX_CASES)('denseForward softmax m=%i out=%i', (m, out) => {
    if (!usable) return;
    const inp = 3;
    const x = randomArray(m * inp, m + 7, 0, 1), wt = randomArray(inp * out, out + 8, -1, 1), bias = randomArray(out, out + 9, -1, 1);
    const kernel: Kernel = (b) => {
      const y = b.alloc(m * out);
      b.denseForward(y, put(b, x), put(b, wt), put(b, bias), m, inp, out, ACT.softmax, 0);
      return [y.data.slice()];
    };
    const [y] = expectSameOnEveryThreadCount(backends, ['y'], kernel, 'softmax');
    const [yr] = kernel(ref);
    // the bound of test/wasm.test.ts denseForward (|x|, |w| ≤ 1 bound z's error by the dot product's)
    expectClose(y, yr, (i) => 2 * (inp + 2) * U * (inp + 1) * 2 + 8 * U * Math.abs(yr[i]) + 1e-30, 'softmax vs js');
  });

  const DROPOUT_CASES = [65535, 65536, 65539, 8192 * 9 + 1, 200003];
  const PREV: [string, ActCode][] = [['relu', ACT.relu], ['tanh', ACT.tanh]];

  it.each(DROPOUT_CASES)('dropoutForward and dropoutBackward n=%i', (n) => {
    if (!usable) return;
    const x = randomArray(n, n + 1, -1, 1), dy = randomArray(n, n + 2);
    for (const [name, prevAct] of PREV) {
      const kernel: Kernel = (b) => {
        const y = b.alloc(n), dx = b.alloc(n), xb = put(b, x);
        b.dropoutForward(y, xb, n, 0.3, 17, 5, 2);
        b.dropoutBackward(dx, put(b, dy), xb, n, 0.3, 17, 5, 2, prevAct, 0);
        return [y.data.slice(), dx.data.slice()];
      };
      const got = expectSameOnEveryThreadCount(backends, ['y', 'dx'], kernel, `dropout, prevAct ${name}`);
      const want = kernel(ref);
      // test/layer-kernels.test.ts: forward and relu's backward the bits of js, tanh's within 1e-5
      got.forEach((g, i) => {
        const what = `dropout ${i ? 'dx' : 'y'} vs js, prevAct ${name}`;
        if (i === 0 || prevAct === ACT.relu) expectSameBits(g, want[i], what);
        else expectClose(g, want[i], (j) => Math.max(1e-5, 1e-5 * Math.abs(want[i][j])), what);
      });
    }
  });

  it('disposes its pools', () => {
    for (const b of backends) (b as WasmBackend).dispose();
  });
});

// That the work above reaches the workers at all: a task whose every block traps makes the worker
// that claims a block trap too (as for the GEMM in test/wasm-threads.test.ts), which it never does
// when the op runs on the calling thread alone.
describe('wasm threads: large elementwise ops run on the workers', () => {
  const BAD = 0xfff00000; // far beyond the memory: every block traps
  const n = 1 << 17, m = 256, out = 512;
  type Raw = Record<string, (...args: number[]) => void>;
  const cases: [string, (raw: Raw, ok: number) => void][] = [
    ['sgdStep', (raw) => raw.sgdStep(BAD, BAD, n, 0.1, 1, 0, 0)],
    ['momentumStep', (raw) => raw.momentumStep(BAD, BAD, BAD, n, 0.1, 1, 0.9, 0, 0, 0)],
    ['adamStep', (raw) => raw.adamStep(BAD, BAD, BAD, BAD, n, 1e-3, 1, 0.9, 0.999, 1e-8, 0.1, 0.001, 0, 0, 0)],
    ['dropoutForward', (raw) => raw.dropoutForward(BAD, BAD, n, 0.3, 1, 2, 3)],
    ['dropoutBackward', (raw) => raw.dropoutBackward(BAD, BAD, BAD, n, 0.3, 1, 2, 3, ACT.relu, 0)],
    // dw (1 × 512, valid) first, on the calling thread; then the bias gradient into db
    ['denseBackward (the bias gradient)', (raw, ok) => raw.denseBackward(ok, BAD, 0, ok, ok, ok, m, 1, out, 1, ACT.linear, 0)],
    // batch 1 of a 784 → 512 layer: the GEMV's column ranges
    ['gemm of one row (the GEMV path)', (raw) => raw.gemm(0, 0, 1, 512, 784, 1, BAD, BAD, 0, BAD)],
  ];

  it.each(cases)('%s: a worker takes part (its trap names worker thread 1)', async (_name, call) => {
    const b = await loadWasmBackend(undefined, { threads: 2 });
    await (b as WasmBackend).startThreads(); // else the first call runs every block on the calling thread
    expect(b.threads).toBe(2);
    const raw = (b as unknown as { raw: Raw }).raw;
    const ok = (b.alloc(m * out) as unknown as { ptr: number }).ptr;
    expect(() => call(raw, ok)).toThrow(/out of bounds/);
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
    expect(String(error)).toMatch(/worker thread 1 stopped: .*out of bounds/);
    (b as WasmBackend).dispose();
  }, 30_000);
});
