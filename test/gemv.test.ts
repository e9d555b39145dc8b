// The few-row (GEMV) path of every backend's GEMM and dense forward, the inference path at batch
// 1..4, against the js reference: m = 1..4 around it (5 takes the packed path), odd widths and
// depths, k = 1, widths that end a register block exactly or one past it, on every ISA this
// machine runs and both wasm builds; and the bits of native's split over threads.
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { ACT, type ActCode, type Backend } from '../src/backends/backend.js';
import { loadWasmBackend } from '../src/backends/wasm.js';
import { ISAS, copyTo, expectClose, fill, native, randBuf, ref, rng } from './native-helpers.js';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

const GUARD = 32;
const MS = [1, 2, 3, 4, 5];
// 1 and 7 are under one vector; 16·12 = 192 is the widest AVX-512 block at m = 1, 64 the AVX2 one at
// m = 4 ... and one past or short of them; 300 and 777 cross several blocks with a ragged end
const NS = [1, 7, 9, 17, 31, 33, 63, 64, 65, 96, 127, 129, 191, 192, 193, 300, 777];
const KS = [1, 2, 7, 33, 784];

function checkGemm(be: Backend, what: string, seed: number): void {
  const r = rng(seed);
  for (const m of MS) for (const n of NS) for (const k of KS) {
    if (m * n * k > 2e6) continue;
    const a = randBuf(be, m * k, r), b = randBuf(be, k * n, r);
    const whole = fill(be.alloc(m * n + 2 * GUARD), 7.5);
    const c = fill(whole.view(GUARD, m * n), NaN); // beta = 0 must not read c
    be.gemm(false, false, m, n, k, 1, a, b, 0, c);
    for (let i = 0; i < GUARD; i++) {
      if (whole.data[i] !== 7.5 || whole.data[GUARD + m * n + i] !== 7.5) expect.fail(`${what} m=${m} n=${n} k=${k}: wrote outside c`);
    }
    const cr = ref.alloc(m * n);
    ref.gemm(false, false, m, n, k, 1, copyTo(ref, a), copyTo(ref, b), 0, cr);
    expectClose(c.data, cr.data, m * n, `${what} gemm m=${m} n=${n} k=${k}`, { growth: Math.sqrt(k) });
  }
  // alpha and beta
  for (const [m, n, k] of [[1, 129, 33], [3, 65, 7], [4, 300, 1], [2, 17, 784]]) {
    const a = randBuf(be, m * k, r), b = randBuf(be, k * n, r), c = randBuf(be, m * n, r);
    const cr = copyTo(ref, c);
    be.gemm(false, false, m, n, k, 0.75, a, b, -1.5, c);
    ref.gemm(false, false, m, n, k, 0.75, copyTo(ref, a), copyTo(ref, b), -1.5, cr);
    expectClose(c.data, cr.data, m * n, `${what} gemm alpha/beta m=${m} n=${n} k=${k}`, { growth: Math.sqrt(k) });
  }
}

function checkDense(be: Backend, what: string, seed: number): void {
  const r = rng(seed);
  const acts = Object.entries(ACT) as [string, ActCode][];
  for (const m of [1, 2, 3, 4]) for (const [inp, out] of [[784, 128], [784, 512], [33, 65], [1, 300], [512, 10]]) {
    for (const [name, act] of acts) {
      const x = randBuf(be, m * inp, r), w = randBuf(be, inp * out, r, -0.1, 0.1), b = randBuf(be, out, r);
      const y = fill(be.alloc(m * out), NaN);
      be.denseForward(y, x, w, b, m, inp, out, act, 0.05);
      const yr = ref.alloc(m * out);
      ref.denseForward(yr, copyTo(ref, x), copyTo(ref, w), copyTo(ref, b), m, inp, out, act, 0.05);
      expectClose(y.data, yr.data, m * out, `${what} denseForward ${name} m=${m} ${inp}->${out}`, { growth: Math.sqrt(inp) });
    }
  }
}

describe.each(ISAS)('native %s: few-row GEMM', (isa) => {
  it('gemm at m = 1..5 against the reference, c untouched outside', () => checkGemm(native(isa), `native ${isa}`, 1));
  it('denseForward at batch 1..4, every activation', () => checkDense(native(isa), `native ${isa}`, 2));
  it('the same bits for 1 and 2 threads (columns split over the pool)', () => {
    const one = native(isa, { threads: 1 }), two = native(isa, { threads: 2 });
    const r = rng(3);
    for (const [m, inp, out] of [[1, 784, 512], [4, 512, 512], [3, 1000, 777]]) {
      const x = randBuf(one, m * inp, r), w = randBuf(one, inp * out, r, -0.1, 0.1), b = randBuf(one, out, r);
      const y1 = one.alloc(m * out), y2 = two.alloc(m * out);
      one.denseForward(y1, x, w, b, m, inp, out, ACT.relu, 0);
      two.denseForward(y2, copyTo(two, x), copyTo(two, w), copyTo(two, b), m, inp, out, ACT.relu, 0);
      expect(Buffer.from(y2.data.buffer, y2.data.byteOffset, y2.data.byteLength)
        .equals(Buffer.from(y1.data.buffer, y1.data.byteOffset, y1.data.byteLength)), `${isa} m=${m} ${inp}->${out}`).toBe(true);
    }
  });
});

describe.each([{ name: 'simd', relaxed: false }, { name: 'relaxed', relaxed: true }])('wasm $name: few-row GEMM', ({ relaxed }) => {
  it('gemm at m = 1..5 against the reference, c untouched outside', async () => {
    checkGemm(await loadWasmBackend(undefined, { relaxed }), `wasm relaxed=${relaxed}`, 4);
  });
  it('denseForward at batch 1..4, every activation', async () => {
    checkDense(await loadWasmBackend(undefined, { relaxed }), `wasm relaxed=${relaxed}`, 5);
  });
});
