// The wasm backend's kernels against the js reference, for both builds (plain SIMD and relaxed
// SIMD), at edge sizes around the 4×8 tile and the 256-deep / 64-row / 2048-column blocks.
// Tolerances follow float32 error bounds: a dot product of length k may be off by about
// k·u·Σ|a·b| (u = 2⁻²⁴), elementwise functions by a few ulps relative.
import v8 from 'node:v8';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { runInNewContext } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { ACT, LOSS, OPT, type ActCode, type Backend, type Buf, type LossCode, type OptCode, type StepDesc, type StepHyper } from '../src/backends/backend.js';
import { JsBackend } from '../src/backends/js.js';
import { interpretedStep } from '../src/backends/interpreter.js';
import { loadWasmBackend, relaxedSimdSupported, simdSupported, WasmBackend } from '../src/backends/wasm.js';
import { rng } from './rng.js';

// Node 20's V8 has relaxed SIMD behind a flag (on by default from Node 22); it must be on before
// any module is compiled, so that the relaxed build is tested here too.
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
// a collector to call, for the memory-recycling test
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const U = 2 ** -24;
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

/** Fails with the first index whose error exceeds its bound, naming the case. */
function expectClose(got: Float32Array, want: Float32Array, bound: (i: number) => number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= bound(i))) {
      expect.fail(`${what}: index ${i}: got ${got[i]}, want ${want[i]} (error ${err}, bound ${bound(i)})`);
    }
  }
}

const abs = (a: Float32Array): Float32Array => a.map(Math.abs);

/** Σ_p |op(a)[i,p]|·|op(b)[p,j]| for every (i,j), through the reference gemm on absolute values. */
function absProduct(transA: boolean, transB: boolean, m: number, n: number, k: number, a: Float32Array, b: Float32Array): Float32Array {
  const c = ref.alloc(m * n);
  ref.gemm(transA, transB, m, n, k, 1, put(ref, abs(a)), put(ref, abs(b)), 0, c);
  return c.data;
}

const BUILDS = [
  { name: 'simd', relaxed: false, isa: 'wasm-simd128' },
  { name: 'relaxed', relaxed: true, isa: 'wasm-relaxed-simd' },
] as const;

/**
 * A step descriptor for a net of `dims` (acts per layer) at batch m, with filled inputs, targets
 * and parameters (weights first, then biases, as the model lays them out).
 */
function stepDesc(b: Backend, m: number, dims: number[], acts: ActCode[], loss: LossCode, optimizer: OptCode, seed: number): StepDesc {
  const L = dims.length - 1;
  let weights = 0, biases = 0;
  const wOffsets: number[] = [], bOffsets: number[] = [];
  for (let l = 0; l < L; l++) { wOffsets.push(weights); weights += dims[l] * dims[l + 1]; }
  for (let l = 0; l < L; l++) { bOffsets.push(weights + biases); biases += dims[l + 1]; }
  const n = weights + biases, outs = dims[L], r = rng(seed);
  const y = new Float32Array(m * outs);
  for (let i = 0; i < m; i++) {
    if (loss === LOSS.categoricalCrossEntropy) y[i * outs + Math.floor(r() * outs)] = 1;
    else for (let j = 0; j < outs; j++) y[i * outs + j] = loss === LOSS.mse ? 2 * r() - 1 : r() < 0.5 ? 0 : 1;
  }
  const adam = optimizer === OPT.adam || optimizer === OPT.adamw;
  return {
    m, dims, acts, alphas: acts.map((a) => (a === ACT.leakyRelu ? 0.1 : 0)), loss,
    x: put(b, randomArray(m * dims[0], seed + 1)), y: put(b, y),
    outs: dims.slice(1).map((d) => b.alloc(m * d)), deltas: dims.slice(1).map((d) => b.alloc(m * d)),
    params: put(b, randomArray(n, seed + 2, -0.8, 0.8)), grads: b.alloc(n), backup: b.alloc(n), n, wOffsets, bOffsets,
    optimizer, state1: optimizer === OPT.sgd ? null : b.alloc(n), state2: adam ? b.alloc(n) : null, decayCount: weights,
  };
}

const HYPER: StepHyper = { lr: 0.05, clipNorm: 0, weightDecay: 0.01, mu: 0.9, nesterov: true, beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 1, bc2: 1 };

describe('feature detection', () => {
  it('finds SIMD and (with the flag) relaxed SIMD in this Node', () => {
    expect(simdSupported()).toBe(true);
    expect(relaxedSimdSupported()).toBe(true);
  });

  it('picks the relaxed build by default where it validates', async () => {
    const b = await loadWasmBackend();
    expect(b.isa).toBe('wasm-relaxed-simd');
    expect(b.name).toBe('wasm');
    // every hardware thread unless fewer are asked (test/wasm-threads.test.ts tests the pool)
    expect(b.threads).toBe(availableParallelism());
    (b as WasmBackend).dispose();
    const one = await loadWasmBackend(undefined, { threads: 1 });
    expect(one.threads).toBe(1);
    one.setThreads(4);
    expect(one.threads).toBe(1);
    const all = await loadWasmBackend(undefined, { threads: availableParallelism() });
    expect(all.isa).toBe('wasm-relaxed-simd');
    expect(all.threads).toBe(availableParallelism());
    all.setThreads(availableParallelism() + 4);
    expect(all.threads).toBe(availableParallelism());
    (all as WasmBackend).dispose();
  });
});

describe.each(BUILDS)('wasm kernels, $name build', ({ relaxed, isa }) => {
  let w: Backend;
  beforeAll(async () => {
    w = await loadWasmBackend(undefined, { relaxed });
  });

  it('reports its isa', () => {
    expect(w.isa).toBe(isa);
  });

  // (m, n, k): 1, below / at / above the 4×8 tile, odd sizes, k at and past the 256-deep block,
  // m past the 64-row block, n past the 2048-column block, k = 0. Products m·n·k up to 16384 take
  // the unpacked small-problem path, larger ones the packed one: both appear, with edges.
  const GEMM_SIZES: [number, number, number][] = [
    [1, 1, 1], [3, 5, 2], [4, 8, 1], [4, 8, 4], [5, 9, 3], [7, 15, 17], [8, 16, 256], [9, 17, 257],
    [4, 8, 600], [65, 33, 31], [130, 3, 70], [3, 2050, 5], [2, 3, 0], [1, 40, 9], [40, 1, 9],
    [13, 1, 7], [3, 1, 0], // one output column: the vectors run over rows
  ];
  const CASES = GEMM_SIZES.flatMap((s) => [[false, false], [true, false], [false, true], [true, true]]
    .map(([ta, tb]) => [...s, ta, tb] as [number, number, number, boolean, boolean]));

  it.each(CASES)('gemm m=%i n=%i k=%i transA=%s transB=%s', (m, n, k, ta, tb) => {
    const a = randomArray(m * k, m * 131 + k), b = randomArray(k * n, n * 137 + k + 1);
    const c0 = randomArray(m * n, m + n + k);
    const bound = absProduct(ta, tb, m, n, k, a, b);
    for (const [alpha, beta] of [[1, 0], [-0.5, 0], [1.5, 0.7], [1, 1]]) {
      const cw = put(w, c0), cr = put(ref, c0);
      if (beta === 0) cw.data.fill(NaN); // beta = 0: c must not be read
      w.gemm(ta, tb, m, n, k, alpha, put(w, a), put(w, b), beta, cw);
      ref.gemm(ta, tb, m, n, k, alpha, put(ref, a), put(ref, b), beta, cr);
      expectClose(cw.data, cr.data,
        (i) => 2 * (k + 2) * U * (Math.abs(alpha) * bound[i] + Math.abs(beta * c0[i])) + 1e-30,
        `gemm alpha=${alpha} beta=${beta}`);
    }
  });

  it('computes the seeds\' matrix examples exactly', () => {
    const row = put(w, new Float32Array([10, 20, 30, 40])), col = put(w, new Float32Array([0, 1, 2, 3]));
    const dot = w.alloc(1);
    w.gemm(false, false, 1, 1, 4, 1, row, col, 0, dot);
    expect(dot.data[0]).toBe(200);
    const outer = w.alloc(16);
    w.gemm(false, false, 4, 4, 1, 1, row, col, 0, outer);
    expect(Array.from(outer.data)).toEqual([0, 10, 20, 30, 0, 20, 40, 60, 0, 30, 60, 90, 0, 40, 80, 120]);
  });

  // exp, sigmoid and tanh approximations over a sweep, including tanh's series / exp-form seam
  it.each([
    ['sigmoid', ACT.sigmoid], ['tanh', ACT.tanh], ['relu', ACT.relu], ['leakyRelu', ACT.leakyRelu], ['linear', ACT.linear],
  ] as [string, ActCode][])('%s is accurate to 8 ulps over [-30, 30]', (_n, act) => {
    const zs: number[] = [];
    for (let z = -30; z <= 30; z += 0.0137) zs.push(z);
    for (const t of [1e-7, 1e-5, 1e-3, 0.1, 0.4999, 0.5, 0.5001, 0.7, 9, 15]) zs.push(t, -t);
    zs.push(0);
    const z = new Float32Array(zs);
    const y = w.alloc(z.length), yr = ref.alloc(z.length);
    const one = new Float32Array([1]), zero = new Float32Array([0]);
    w.denseForward(y, put(w, z), put(w, one), put(w, zero), z.length, 1, 1, act, 0.1);
    ref.denseForward(yr, put(ref, z), put(ref, one), put(ref, zero), z.length, 1, 1, act, 0.1);
    expectClose(y.data, yr.data, (i) => 8 * U * Math.abs(yr.data[i]) + 1e-38, `activation ${act}`);
  });

  const ACTS: [string, ActCode][] = [
    ['linear', ACT.linear], ['sigmoid', ACT.sigmoid], ['tanh', ACT.tanh], ['relu', ACT.relu],
    ['leakyRelu', ACT.leakyRelu], ['softmax', ACT.softmax],
  ];
  const DENSE_SIZES: [number, number, number][] = [
    [1, 1, 1], [3, 5, 7], [4, 8, 8], [5, 3, 9], [13, 10, 33], [64, 784, 128], [7, 300, 2], [2, 1, 1],
    [33, 70, 13], // packed path with row and column edges in the fused epilogue
  ];

  it.each(ACTS.flatMap(([an, a]) => DENSE_SIZES.map(([m, inp, out]) => [an, a, m, inp, out] as const)))(
    'denseForward %s m=%i in=%i out=%i', (_an, act, m, inp, out) => {
      const x = randomArray(m * inp, m + inp, 0, 1), wt = randomArray(inp * out, inp + out, -3 / Math.sqrt(inp), 3 / Math.sqrt(inp));
      const b = randomArray(out, out + 5, -1, 1);
      const y = w.alloc(m * out), yr = ref.alloc(m * out);
      y.data.fill(NaN); // overwritten, never read
      w.denseForward(y, put(w, x), put(w, wt), put(w, b), m, inp, out, act, 0.01);
      ref.denseForward(yr, put(ref, x), put(ref, wt), put(ref, b), m, inp, out, act, 0.01);
      const zb = absProduct(false, false, m, out, inp, x, wt);
      // error of z (dot product bound) carried through a 1-Lipschitz function (2× for softmax),
      // plus the function's own few ulps
      expectClose(y.data, yr.data,
        (i) => 2 * (inp + 2) * U * (zb[i] + Math.abs(b[i % out])) * 2 + 8 * U * Math.abs(yr.data[i]) + 1e-30,
        `denseForward act=${act}`);
      if (act === ACT.softmax) {
        for (let i = 0; i < m; i++) {
          let s = 0;
          for (let j = 0; j < out; j++) s += y.data[i * out + j];
          expect(Math.abs(s - 1)).toBeLessThan(4 * out * U + 1e-6);
        }
      }
    });

  const PREV: [string, ActCode][] = ACTS.filter(([, a]) => a !== ACT.softmax);
  const BACK_SIZES: [number, number, number][] = [
    [1, 1, 1], [4, 8, 8], [3, 5, 7], [5, 9, 3], [64, 784, 128], [33, 17, 10], [257, 6, 9],
    [65, 40, 11], // packed path for dw and for dx with the derivative epilogue on edges
    [37, 9, 1], [6, 1, 5], // one output column (dw of a binary output layer; dx of a 1-input layer)
  ];

  it.each(PREV.flatMap(([an, a]) => BACK_SIZES.map(([m, inp, out]) => [an, a, m, inp, out] as const)))(
    'denseBackward prevAct %s m=%i in=%i out=%i', (_an, prevAct, m, inp, out) => {
      // x is a previous layer's output, so it lies in that activation's range
      const lo = prevAct === ACT.sigmoid || prevAct === ACT.relu ? 0 : -1;
      const x = randomArray(m * inp, m * 3 + inp, lo, 1);
      if (prevAct === ACT.relu || prevAct === ACT.leakyRelu) for (let i = 0; i < x.length; i += 3) x[i] = prevAct === ACT.relu ? 0 : -x[i];
      const wt = randomArray(inp * out, inp + out * 7), dz = randomArray(m * out, m + out * 11);
      const scale = 1 / m;
      const dw = w.alloc(inp * out), db = w.alloc(out), dx = w.alloc(m * inp);
      dw.data.fill(NaN); db.data.fill(NaN); dx.data.fill(NaN);
      const dwr = ref.alloc(inp * out), dbr = ref.alloc(out), dxr = ref.alloc(m * inp);
      const xw = put(w, x), ww = put(w, wt), dzw = put(w, dz);
      w.denseBackward(dw, db, dx, dzw, xw, ww, m, inp, out, scale, prevAct, 0.01);
      ref.denseBackward(dwr, dbr, dxr, put(ref, dz), put(ref, x), put(ref, wt), m, inp, out, scale, prevAct, 0.01);
      const dwBound = absProduct(true, false, inp, out, m, x, dz);
      expectClose(dw.data, dwr.data, (i) => 2 * (m + 2) * U * scale * dwBound[i] + 1e-30, 'dw');
      const dbBound = new Float32Array(out);
      for (let i = 0; i < m; i++) for (let j = 0; j < out; j++) dbBound[j] += Math.abs(dz[i * out + j]);
      expectClose(db.data, dbr.data, (j) => 2 * (m + 2) * U * scale * dbBound[j] + 1e-30, 'db');
      const dxBound = absProduct(false, true, m, inp, out, dz, wt);
      expectClose(dx.data, dxr.data, (i) => 2 * (out + 4) * U * dxBound[i] * 1.5 + 1e-30, 'dx');
      // without dx: dw and db the same, and a dx buffer is left alone
      const dx2 = put(w, new Float32Array(m * inp).fill(7));
      const dw2 = w.alloc(inp * out), db2 = w.alloc(out);
      w.denseBackward(dw2, db2, null, dzw, xw, ww, m, inp, out, scale, prevAct, 0.01);
      expect(Array.from(dw2.data)).toEqual(Array.from(dw.data));
      expect(Array.from(db2.data)).toEqual(Array.from(db.data));
      expect(dx2.data.every((v) => v === 7)).toBe(true);
    });

  const LOSSES: [string, LossCode, string, ActCode][] = [
    ['mse', LOSS.mse, 'linear', ACT.linear], ['mse', LOSS.mse, 'sigmoid', ACT.sigmoid], ['mse', LOSS.mse, 'tanh', ACT.tanh],
    ['mse', LOSS.mse, 'relu', ACT.relu], ['mse', LOSS.mse, 'leakyRelu', ACT.leakyRelu],
    ['binaryCrossEntropy', LOSS.binaryCrossEntropy, 'sigmoid', ACT.sigmoid],
    ['categoricalCrossEntropy', LOSS.categoricalCrossEntropy, 'softmax', ACT.softmax],
    ['huber', LOSS.huber, 'linear', ACT.linear], ['huber', LOSS.huber, 'tanh', ACT.tanh], ['huber', LOSS.huber, 'relu', ACT.relu],
    ['meanAbsoluteError', LOSS.meanAbsoluteError, 'linear', ACT.linear],
    ['meanAbsoluteError', LOSS.meanAbsoluteError, 'sigmoid', ACT.sigmoid],
    ['meanAbsoluteError', LOSS.meanAbsoluteError, 'leakyRelu', ACT.leakyRelu],
  ];

  it.each(LOSSES.flatMap((l) => [[1, 1], [4, 3], [7, 10], [64, 10], [5, 1]].flatMap(([m, n]) => [
    [...l, m, n, 'unweighted'] as const, [...l, m, n, 'weighted'] as const])))(
    'lossDelta %s with %s output m=%i n=%i, %s', (_ln, loss, _an, act, m, n, weighting) => {
      const r = rng(m * 100 + n + loss * 7 + act + (weighting === 'weighted' ? 5000 : 0));
      const a = new Float32Array(m * n), y = new Float32Array(m * n);
      for (let i = 0; i < m; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) {
          const idx = i * n + j;
          if (act === ACT.sigmoid || act === ACT.softmax) a[idx] = r();
          else if (act === ACT.tanh) a[idx] = 2 * r() - 1;
          else if (act === ACT.relu) a[idx] = r() < 0.3 ? 0 : 2 * r();
          else a[idx] = 4 * r() - 2;
          s += a[idx];
          y[idx] = loss === LOSS.mse || loss === LOSS.huber || loss === LOSS.meanAbsoluteError ? 2 * r() - 1 : r() < 0.5 ? 0 : 1;
        }
        if (act === ACT.softmax) {
          for (let j = 0; j < n; j++) a[i * n + j] /= s;
          for (let j = 0; j < n; j++) y[i * n + j] = j === i % n ? 1 : 0;
        }
      }
      if (loss === LOSS.binaryCrossEntropy && m * n > 2) { a[0] = 0; y[0] = 1; a[1] = 1; y[1] = 0; } // clamped logs
      if (loss === LOSS.meanAbsoluteError && m * n > 2) y[2] = a[2]; // e = 0: the subgradient 0
      const rowWeights = new Float32Array(m).map(() => 3 * r());
      if (m > 1) rowWeights[0] = 0;
      const weighted = weighting === 'weighted';
      const dz = w.alloc(m * n), dzr = ref.alloc(m * n);
      dz.data.fill(NaN);
      const L = w.lossDelta(dz, put(w, a), put(w, y), m, n, loss, act, 0.01, 0.5, weighted ? put(w, rowWeights) : null);
      const Lr = ref.lossDelta(dzr, put(ref, a), put(ref, y), m, n, loss, act, 0.01, 0.5, weighted ? put(ref, rowWeights) : null);
      expect(Number.isFinite(L)).toBe(true);
      expect(Math.abs(L - Lr)).toBeLessThanOrEqual(1e-6 * Math.abs(Lr) + 1e-12);
      const wMax = weighted ? 3 : 1;
      expectClose(dz.data, dzr.data, (i) => 4 * U * wMax * (Math.abs(dzr.data[i]) + 2 * Math.abs(a[i] - y[i]) * 2 / n) + 1e-30, 'dz');
    });

  it.each([0, 1, 3, 4, 5, 17, 1000, 100003])('sumSquares n=%i', (n) => {
    const g = randomArray(n + 3, n + 1);
    expect(Math.abs(w.sumSquares(put(w, g), n) - ref.sumSquares(put(ref, g), n))).toBeLessThanOrEqual(1e-12 * n * 4 + 1e-30);
  });

  // n = 37 with decay on a prefix of 13 puts the boundary inside a vector and leaves a tail
  const OPT_CASES: [number, number][] = [[37, 13], [37, 0], [37, 37], [1, 1], [8, 4], [1001, 600]];

  function checkOptimizer(label: string, n: number, stateCount: number,
    step: (b: Backend, p: Buf, g: Buf, s: Buf[]) => void): void {
    const p0 = randomArray(n, n + 3), gs = [randomArray(n, n + 4), randomArray(n, n + 5), randomArray(n, n + 6)];
    const pw = put(w, p0), pr = put(ref, p0);
    const sw = Array.from({ length: stateCount }, () => w.alloc(n));
    const sr = Array.from({ length: stateCount }, () => ref.alloc(n));
    for (const g of gs) {
      step(w, pw, put(w, g), sw);
      step(ref, pr, put(ref, g), sr);
    }
    expectClose(pw.data, pr.data, (i) => 1e-5 * Math.abs(pr.data[i]) + 1e-6, `${label} p`);
    for (let s = 0; s < stateCount; s++) {
      // state sums terms of size ~1 that may cancel: an absolute bound of a few ulps of 1
      expectClose(sw[s].data, sr[s].data, (i) => 1e-5 * Math.abs(sr[s].data[i]) + 1e-6, `${label} state ${s}`);
    }
  }

  it.each(OPT_CASES)('sgdStep n=%i decayCount=%i', (n, d) => {
    checkOptimizer('sgd', n, 0, (b, p, g) => b.sgdStep(p, g, n, 0.1, 0.5, 0.01, d));
    checkOptimizer('sgd no decay', n, 0, (b, p, g) => b.sgdStep(p, g, n, 0.3, 1, 0, d));
  });

  it.each(OPT_CASES)('momentumStep n=%i decayCount=%i (plain and Nesterov)', (n, d) => {
    checkOptimizer('momentum', n, 1, (b, p, g, [v]) => b.momentumStep(p, g, v, n, 0.1, 0.5, 0.9, false, 0.01, d));
    checkOptimizer('nesterov', n, 1, (b, p, g, [v]) => b.momentumStep(p, g, v, n, 0.1, 1, 0.9, true, 0.01, d));
  });

  it.each(OPT_CASES)('adamStep n=%i decayCount=%i (Adam and AdamW)', (n, d) => {
    let t = 0;
    const adam = (decoupled: boolean) => (b: Backend, p: Buf, g: Buf, [m, v]: Buf[]) => {
      // the same t sequence on both backends: one counter per pair of calls
      const tt = Math.floor(t++ / 2) + 1;
      b.adamStep(p, g, m, v, n, 1e-3, 0.5, 0.9, 0.999, 1e-8, 1 - 0.9 ** tt, 1 - 0.999 ** tt, 0.01, decoupled, d);
    };
    checkOptimizer('adam', n, 2, adam(false));
    t = 0;
    checkOptimizer('adamw', n, 2, adam(true));
  });

  // compileStep: one call per step (assembly/interpreter.ts), the same bits as the TS interpreter's kernels one by one
  const STEP_NETS: [string, number, number[], ActCode[], LossCode][] = [
    ['2-8-1 tanh/sigmoid bce', 4, [2, 8, 1], [ACT.tanh, ACT.sigmoid], LOSS.binaryCrossEntropy],
    ['12-16-9-5 relu/leaky/softmax cce', 7, [12, 16, 9, 5], [ACT.relu, ACT.leakyRelu, ACT.softmax], LOSS.categoricalCrossEntropy],
    ['3-2 linear mse', 1, [3, 2], [ACT.linear], LOSS.mse],
    ['70-40-3 sigmoid/linear mse (packed GEMMs)', 33, [70, 40, 3], [ACT.sigmoid, ACT.linear], LOSS.mse],
  ];
  const STEP_OPTS = Object.entries(OPT) as [string, OptCode][];
  it.each(STEP_NETS.flatMap(([label, m, ...net]) => STEP_OPTS.map(([name, code]) => [label, m, name, ...net, code] as const)))(
    'compiled step %s (m=%i), %s: same bits as kernel by kernel', (_label, m, _opt, dims, acts, loss, opt) => {
      const a = stepDesc(w, m, dims, acts, loss, opt, 11), b = stepDesc(w, m, dims, acts, loss, opt, 11);
      const compiled = w.compileStep!(a), kernels = interpretedStep(w, b);
      for (let t = 1; t <= 5; t++) {
        // clipping on in some steps, with a norm that does clip
        const h = { ...HYPER, clipNorm: t % 2 ? 0.05 : 0, nesterov: t !== 3, bc1: 1 - 0.9 ** t, bc2: 1 - 0.999 ** t };
        compiled.run(h);
        kernels.run(h);
        expect(compiled.loss[0]).toBe(kernels.loss[0]);
        for (const k of ['params', 'grads', 'backup', 'state1', 'state2'] as const) {
          if (a[k] === null) continue;
          expect(Buffer.from(a[k]!.data.slice().buffer).equals(Buffer.from(b[k]!.data.slice().buffer)), `${k} after step ${t}`).toBe(true);
        }
        for (let l = 0; l < dims.length - 1; l++) {
          expect(Buffer.from(a.outs[l].data.slice().buffer).equals(Buffer.from(b.outs[l].data.slice().buffer)), `outs[${l}]`).toBe(true);
          expect(Buffer.from(a.deltas[l].data.slice().buffer).equals(Buffer.from(b.deltas[l].data.slice().buffer)), `deltas[${l}]`).toBe(true);
        }
      }
    });

  it('compiled step: a loss that is not finite stops before the backward pass and the update', () => {
    const d = stepDesc(w, 4, [2, 8, 1], [ACT.linear, ACT.linear], LOSS.mse, OPT.adam, 3);
    const step = w.compileStep!(d);
    d.x.data[0] = NaN;
    d.grads.data.fill(7);
    const params = d.params.data.slice();
    step.run({ ...HYPER, bc1: 0.1, bc2: 0.001 });
    expect(Number.isFinite(step.loss[0])).toBe(false);
    expect(Array.from(d.params.data)).toEqual(Array.from(params));
    expect(d.grads.data.every((v) => v === 7)).toBe(true);
    expect(d.backup.data.every((v) => v === 0)).toBe(true);
    expect(d.state1!.data.every((v) => v === 0)).toBe(true);
  });
});

describe('wasm memory', () => {
  it('keeps every Buf valid across memory growth', async () => {
    // one thread: a memory that is not shared detaches its old views when it grows
    const w = await loadWasmBackend(undefined, { threads: 1 });
    const a = put(w, randomArray(1000, 1));
    const b = put(w, randomArray(1000, 2));
    const c = w.alloc(1000);
    const before = a.data;
    const copy = Float32Array.from(before);
    const view = a.view(10, 20);
    const viewCopy = Float32Array.from(view.data);
    const pagesBefore = (w as WasmBackend).memory.buffer.byteLength;
    const big = w.alloc(8_000_000); // 32 MB: forces the memory to grow
    expect((w as WasmBackend).memory.buffer.byteLength).toBeGreaterThan(pagesBefore);
    expect(before.byteLength).toBe(0); // the old view was detached, as the Buf contract warns
    expect(Array.from(a.data)).toEqual(Array.from(copy));
    expect(Array.from(view.data)).toEqual(Array.from(viewCopy));
    expect(big.data.length).toBe(8_000_000);
    expect(big.data[7_999_999]).toBe(0);
    // kernels on old and new buffers still agree with the reference
    w.gemm(false, false, 10, 10, 10, 1, a, b, 0, c);
    const cr = ref.alloc(100);
    ref.gemm(false, false, 10, 10, 10, 1, put(ref, copy), put(ref, b.data), 0, cr);
    expectClose(c.data.subarray(0, 100), cr.data, (i) => 1e-5 * (1 + Math.abs(cr.data[i])), 'gemm after growth');
  });

  it('hands out zero-filled, non-overlapping buffers', async () => {
    const w = await loadWasmBackend();
    const bufs = [3, 1, 64, 5, 1000].map((n) => w.alloc(n));
    for (const b of bufs) expect(b.data.every((v) => v === 0)).toBe(true);
    bufs.forEach((b, i) => b.data.fill(i + 1));
    bufs.forEach((b, i) => expect(b.data.every((v) => v === i + 1)).toBe(true));
  });

  it('recycles the memory of buffers nobody references, zeroed, and never a live view\'s', async () => {
    // one thread: a pool's per-thread scratch (4 MB more on 2 threads) would leave room for too few 4 MB buffers
    const w = (await loadWasmBackend(undefined, { maxMemoryMB: 24, threads: 1 })) as WasmBackend;
    const collect = async (): Promise<void> => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 5)); // finalizers run as tasks after a collection
      }
    };
    // a view outlives its buffer's last direct reference: its bytes must stay allocated
    let keep: Buf | null = put(w, new Float32Array(1000).fill(3)).view(100, 10);
    const used = w.bytesUsed;
    // 40 × 4 MB through a 24 MB memory: only possible if dropped buffers are recycled
    for (let i = 0; i < 40; i++) {
      const b = w.alloc(1_000_000);
      expect(b.data[0] === 0 && b.data[999_999] === 0 && b.data[500_000] === 0, `alloc ${i} is zeroed`).toBe(true);
      b.data.fill(i + 1);
      if (i % 4 === 3) await collect();
    }
    await collect();
    expect(w.bytesUsed).toBeLessThan(used + 4_000_000 * 4);
    expect(Array.from(keep.data)).toEqual(new Array(10).fill(3));
    keep = null;
    expect(w.bytesReserved).toBeLessThanOrEqual(24 * 1048576);
  });

  it('throws a clear RangeError beyond the memory limit, and keeps working', async () => {
    const w = await loadWasmBackend(undefined, { maxMemoryMB: 8 });
    expect(() => w.alloc(4_000_000)).toThrow(RangeError);
    expect(() => w.alloc(4_000_000)).toThrow('wasm backend: cannot allocate 4000000 floats (15.3 MB): memory limit 8.0 MB reached');
    // fill the limit with smaller buffers: the last one that does not fit fails the same way
    let thrown: unknown = null;
    try {
      for (let i = 0; i < 100; i++) w.alloc(250_000);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(RangeError);
    expect(String(thrown)).toMatch(/cannot allocate 250000 floats \(1\.0 MB\): memory limit 8\.0 MB reached/);
    const small = put(w, new Float32Array([1, 2, 3]));
    expect(w.sumSquares(small, 3)).toBe(14);
    await expect(loadWasmBackend(undefined, { maxMemoryMB: 0 })).rejects.toThrow(RangeError);
    await expect(loadWasmBackend(undefined, { maxMemoryMB: 1 })).rejects.toThrow(/memory limit of 1.0 MB is below the kernels' own 2.\d MB/);
  });

  it('rejects foreign or short buffers at the boundary', async () => {
    const w = await loadWasmBackend();
    const other = await loadWasmBackend();
    const a = w.alloc(4), b = w.alloc(4), c = w.alloc(4);
    expect(() => w.gemm(false, false, 2, 2, 2, 1, a, other.alloc(4), 0, c)).toThrow(TypeError);
    expect(() => w.gemm(false, false, 2, 2, 2, 1, a, ref.alloc(4), 0, c)).toThrow(TypeError);
    expect(() => w.gemm(false, false, 2, 3, 2, 1, a, b, 0, c)).toThrow('gemm: b has 4 floats, fewer than k*n = 6');
    expect(() => w.gemm(false, false, -1, 3, 2, 1, a, b, 0, c)).toThrow(RangeError);
    expect(() => a.view(2, 3)).toThrow(RangeError);
    expect(() => w.alloc(1.5)).toThrow(RangeError);
  });

  it('checks a compiled step\'s descriptor once, with a clear error, and keeps working', async () => {
    const w = await loadWasmBackend();
    const other = await loadWasmBackend();
    const good = (): StepDesc => stepDesc(w, 4, [2, 8, 1], [ACT.tanh, ACT.sigmoid], LOSS.binaryCrossEntropy, OPT.adam, 5);
    const bad = (change: (d: StepDesc) => void): (() => unknown) => () => {
      const d = good();
      change(d);
      return w.compileStep!(d);
    };
    expect(bad((d) => { d.x = other.alloc(8); })).toThrow(TypeError);
    expect(bad((d) => { d.x = other.alloc(8); })).toThrow('compileStep: x must be a buffer of this backend, got a buffer of another backend');
    expect(bad((d) => { d.params = ref.alloc(33); })).toThrow(TypeError);
    expect(bad((d) => { d.outs[0] = w.alloc(31); })).toThrow('compileStep: outs[0] has 31 floats, fewer than m*dims[1] = 32');
    expect(bad((d) => { d.y = w.alloc(3); })).toThrow(/y has 3 floats, fewer than m\*dims\[2\] = 4/);
    expect(bad((d) => { d.backup = w.alloc(32); })).toThrow(/backup has 32 floats, fewer than n = 33/);
    expect(bad((d) => { d.state2 = null; })).toThrow('compileStep: state2 must be a buffer of this backend (this optimizer keeps its state there), got null');
    expect(bad((d) => { d.wOffsets[1] = 26; })).toThrow("compileStep: wOffsets[1]: layer 1's W [26, 34) is outside the 33 params");
    expect(bad((d) => { d.bOffsets[0] = -1; })).toThrow(/bOffsets\[0\] must be an integer in \[0, 33\], got -1/);
    expect(bad((d) => { d.acts = [ACT.softmax, ACT.sigmoid]; })).toThrow(/acts\[0\]: softmax is only allowed on the output layer/);
    expect(bad((d) => { d.acts = [9 as ActCode, ACT.sigmoid]; })).toThrow(/acts\[0\] must be an integer in \[0, 5\], got 9/);
    expect(bad((d) => { d.deltas = d.deltas.slice(1); })).toThrow(/deltas needs 2 entries \(one per layer\), got 1/);
    expect(bad((d) => { d.m = 0; })).toThrow(/m must be an integer in \[1, 2147483647\], got 0/);
    expect(bad((d) => { d.dims = [2, 8.5, 1]; })).toThrow(/dims\[1\] must be an integer in \[1, 2147483647\], got 8.5/);
    expect(bad((d) => { d.decayCount = 40; })).toThrow(/decayCount must be an integer in \[0, 33\]/);
    expect(bad((d) => { d.optimizer = 7 as OptCode; })).toThrow(/optimizer must be an integer in \[0, 3\], got 7/);
    expect(bad((d) => { d.loss = 5 as LossCode; })).toThrow(/loss must be an integer in \[0, 4\], got 5/);
    expect(bad(() => undefined)).not.toThrow();
    // the step survives memory growth (its hyper-parameter view is re-resolved)
    const d = good(), step = w.compileStep!(d);
    step.run({ ...HYPER, bc1: 0.1, bc2: 0.001 });
    const before = step.loss[0];
    w.alloc(8_000_000);
    step.run({ ...HYPER, bc1: 0.19, bc2: 0.002 });
    expect(Number.isFinite(step.loss[0])).toBe(true);
    expect(Number.isFinite(before)).toBe(true);
    expect(d.backup.data.some((v, i) => v !== d.params.data[i])).toBe(true);
  });
});

describe('wasm loading', () => {
  const file = (name: string): URL => new URL(`../wasm/${name}`, import.meta.url);

  it('accepts a compiled WebAssembly.Module (as Cloudflare Workers need), bytes, a path and a file URL', async () => {
    const bytes = readFileSync(file('deltaprop-simd.wasm'));
    const fromModule = await loadWasmBackend(new WebAssembly.Module(bytes));
    const fromBytes = await loadWasmBackend(bytes);
    const fromPath = await loadWasmBackend(file('deltaprop-simd.wasm').pathname);
    const fromUrl = await loadWasmBackend(file('deltaprop-relaxed.wasm'));
    const fromHref = await loadWasmBackend(pathToFileURL(file('deltaprop-simd.wasm').pathname).href);
    expect([fromModule, fromBytes, fromPath, fromUrl, fromHref].map((b) => b.isa))
      .toEqual(['wasm-simd128', 'wasm-simd128', 'wasm-simd128', 'wasm-relaxed-simd', 'wasm-simd128']);
    // every one of them computes
    for (const b of [fromModule, fromUrl]) {
      const x = put(b, new Float32Array([1, 2, 3, 4]));
      const y = b.alloc(4);
      b.gemm(false, false, 2, 2, 2, 1, x, x, 0, y);
      expect(Array.from(y.data)).toEqual([7, 10, 15, 22]);
    }
  });

  it('chooses between both builds given as { simd, relaxed }', async () => {
    const simd = new WebAssembly.Module(readFileSync(file('deltaprop-simd.wasm')));
    const relaxed = new WebAssembly.Module(readFileSync(file('deltaprop-relaxed.wasm')));
    expect((await loadWasmBackend({ simd, relaxed })).isa).toBe('wasm-relaxed-simd');
    expect((await loadWasmBackend({ simd, relaxed }, { relaxed: false })).isa).toBe('wasm-simd128');
    expect((await loadWasmBackend({ simd })).isa).toBe('wasm-simd128');
    await expect(loadWasmBackend({ simd }, { relaxed: true })).rejects.toThrow(/no relaxed build/);
  });

  it('explains a missing file and a module that is not a kernel build', async () => {
    await expect(loadWasmBackend('/nonexistent/deltaprop-simd.wasm')).rejects.toThrow();
    const empty = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    await expect(loadWasmBackend(empty)).rejects.toThrow(/does not import env.memory/);
  });
});
