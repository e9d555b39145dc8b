// Every native kernel against the js reference, on every ISA this machine runs, at edge sizes.
// Tolerances: max(1e-5, 1e-5·|ref|)·sqrt(k) for sums over k (float32 accumulation against the
// reference's float64), max(1e-6, 1e-6·|ref|) for elementwise kernels.
import { describe, expect, it } from 'vitest';
import { ACT, LOSS, type ActCode, type Buf, type LossCode } from '../src/backends/backend.js';
import { loadNativeAddon, loadNativeBackend } from '../src/backends/native.js';
import { Model } from '../src/model/model.js';
import { ISAS, copyTo, expectClose, fill, native, randBuf, ref, rng } from './native-helpers.js';

const ACTS = Object.entries(ACT) as [string, ActCode][];
const GUARD = 64;

function expectGuards(whole: Buf, inner: number, what: string): void {
  for (let i = 0; i < GUARD; i++) {
    if (whole.data[i] !== 7.5 || whole.data[GUARD + inner + i] !== 7.5) expect.fail(`${what}: wrote outside c (guard ${i})`);
  }
}

it('this machine runs at least the scalar ISA, and reports the newest by default', () => {
  expect(ISAS).toContain('scalar');
  expect(loadNativeBackend().isa).toBe(ISAS[0]);
});

describe.each(ISAS)('native %s', (isa) => {
  const be = native(isa);
  const packed = native(isa, { smallGemm: 0 }); // every GEMM through packing + micro-kernel
  const unpacked = native(isa, { smallGemm: Infinity }); // every GEMM through the small kernel
  const MR = be.kernels.mr, NR = be.kernels.nr;

  it('reports its ISA and tile', () => {
    expect(be.isa).toBe(isa);
    expect(be.name).toBe('native');
    expect(MR).toBeGreaterThan(0);
    expect(NR).toBeGreaterThan(0);
  });

  it('allocates zeroed, 64-byte-aligned buffers; views share storage', () => {
    for (const n of [0, 1, 3, 17, 1000]) {
      const b = be.alloc(n);
      expect(b.length).toBe(n);
      expect(b.data.every((v) => v === 0)).toBe(true);
    }
    const addon = loadNativeAddon();
    for (let i = 0; i < 20; i++) expect(addon.misalignment(be.alloc(i * 7 + 1).data)).toBe(0);
    const b = be.alloc(10);
    const v = b.view(4, 3);
    v.data[0] = 5;
    expect(b.data[4]).toBe(5);
    expect(() => b.view(8, 3)).toThrow(RangeError);
  });

  const sizesM = [1, MR - 1, MR, MR + 1, 2 * MR + 3].filter((v) => v >= 1);
  const sizesN = [1, NR - 1, NR, NR + 1, 2 * NR + 5].filter((v) => v >= 1);
  const cases: [boolean, boolean, string][] = [[false, false, 'NN'], [true, false, 'TN'], [false, true, 'NT']];

  for (const [which, b2] of [['packed', packed], ['unpacked', unpacked]] as const) {
    it(`gemm (${which}): all transpose cases at edge sizes of the ${MR}x${NR} tile, k = 1, 7, 300`, () => {
      const r = rng(1);
      for (const [ta, tb, name] of cases) {
        // the unpacked kernel also has paths by width: n < 8, n <= 16 (one masked vector), wider
        const ns = which === 'unpacked' ? [...sizesN, 2, 7, 8, 15, 16, 17] : sizesN;
        for (const m of sizesM) for (const n of ns) for (const k of [1, 7, 300]) {
          const a = randBuf(b2, m * k, r), b = randBuf(b2, k * n, r);
          // c sits between guard zones that must stay untouched; beta = 0: c must not be read
          const whole = fill(b2.alloc(m * n + 2 * GUARD), 7.5);
          const c = fill(whole.view(GUARD, m * n), NaN);
          b2.gemm(ta, tb, m, n, k, 1, a, b, 0, c);
          expectGuards(whole, m * n, `${isa} ${which} ${name} m=${m} n=${n} k=${k}`);
          const cr = ref.alloc(m * n);
          ref.gemm(ta, tb, m, n, k, 1, copyTo(ref, a), copyTo(ref, b), 0, cr);
          expectClose(c.data, cr.data, m * n, `${isa} ${which} ${name} m=${m} n=${n} k=${k}`, { growth: Math.sqrt(k) });
        }
      }
    });

    it(`gemm (${which}): general alpha and beta`, () => {
      const r = rng(2);
      for (const [ta, tb, name] of cases) {
        for (const [m, n, k] of [[MR + 1, NR + 3, 33], [3, 5, 2], [2 * MR, 2 * NR, 64]]) {
          const a = randBuf(b2, m * k, r), b = randBuf(b2, k * n, r), c = randBuf(b2, m * n, r);
          const cr = copyTo(ref, c);
          b2.gemm(ta, tb, m, n, k, 0.7, a, b, -1.3, c);
          ref.gemm(ta, tb, m, n, k, 0.7, copyTo(ref, a), copyTo(ref, b), -1.3, cr);
          expectClose(c.data, cr.data, m * n, `${isa} ${which} ${name} alpha/beta m=${m} n=${n} k=${k}`, { growth: Math.sqrt(k) });
        }
      }
    });
  }

  it('gemm: narrow outputs (n <= 16, an output layer) past the small-problem cutoff, split over 2 threads', () => {
    // NN and TN outputs at most 16 wide run unpacked at any size where the ISA has that path,
    // in row blocks of 8, 4 and 1: every remainder of m, alpha/beta, and the fused epilogue
    const two = native(isa, { threads: 2 }), r = rng(11);
    for (const [ta, tb, name] of cases.filter(([, tb]) => !tb)) {
      for (const [m, n, k] of [[301, 10, 512], [13, 16, 3000], [1024, 1, 300], [9, 7, 5000], [515, 3, 700]]) {
        const a = randBuf(two, m * k, r), b = randBuf(two, k * n, r), c = randBuf(two, m * n, r);
        const cr = copyTo(ref, c);
        two.gemm(ta, tb, m, n, k, 0.7, a, b, -1.3, c);
        ref.gemm(ta, tb, m, n, k, 0.7, copyTo(ref, a), copyTo(ref, b), -1.3, cr);
        expectClose(c.data, cr.data, m * n, `${isa} narrow ${name} m=${m} n=${n} k=${k}`, { growth: Math.sqrt(k) });
      }
    }
    const [m, inp, out] = [257, 512, 10];
    const x = randBuf(two, m * inp, r, 0, 1), w = randBuf(two, inp * out, r), bias = randBuf(two, out, r);
    for (const act of [ACT.relu, ACT.softmax, ACT.sigmoid]) {
      const y = two.alloc(m * out), yr = ref.alloc(m * out);
      two.denseForward(y, x, w, bias, m, inp, out, act, 0);
      ref.denseForward(yr, copyTo(ref, x), copyTo(ref, w), copyTo(ref, bias), m, inp, out, act, 0);
      expectClose(y.data, yr.data, m * out, `${isa} narrow denseForward act ${act}`, { growth: Math.sqrt(inp) });
    }
  });

  it('gemm: large k (2000) and sizes crossing the cache blocks, all transpose cases', () => {
    const r = rng(3);
    for (const [ta, tb, name] of cases) {
      for (const [m, n, k] of [[1, NR + 1, 2000], [MR + 2, 1, 2000], [37, 45, 2000], [190, 70, 530]]) {
        const a = randBuf(be, m * k, r), b = randBuf(be, k * n, r), c = fill(be.alloc(m * n), NaN);
        packed.gemm(ta, tb, m, n, k, 1, a, b, 0, c);
        const cr = ref.alloc(m * n);
        ref.gemm(ta, tb, m, n, k, 1, copyTo(ref, a), copyTo(ref, b), 0, cr);
        expectClose(c.data, cr.data, m * n, `${isa} ${name} m=${m} n=${n} k=${k}`, { growth: Math.sqrt(k) });
      }
    }
  });

  it('the argument-block path and the Float32Array path give the same bits', () => {
    const r = rng(10);
    const [m, inp, out] = [MR + 3, 40, NR + 5];
    const x = randBuf(be, m * inp, r), w = randBuf(be, inp * out, r), b = randBuf(be, out, r), dz = randBuf(be, m * out, r);
    const y1 = be.alloc(m * out), y2 = be.alloc(m * out);
    be.denseForward(y1, x, w, b, m, inp, out, ACT.tanh, 0);
    be.kernels.denseForward(y2.data, x.data, w.data, b.data, m, inp, out, ACT.tanh, 0);
    expect(Array.from(y1.data)).toEqual(Array.from(y2.data));
    const g = [be.alloc(inp * out), be.alloc(out), be.alloc(m * inp)], h = [be.alloc(inp * out), be.alloc(out), be.alloc(m * inp)];
    be.denseBackward(g[0], g[1], g[2], dz, x, w, m, inp, out, 0.5, ACT.tanh, 0);
    be.kernels.denseBackward(h[0].data, h[1].data, h[2].data, dz.data, x.data, w.data, m, inp, out, 0.5, ACT.tanh, 0);
    for (let i = 0; i < 3; i++) expect(Array.from(g[i].data)).toEqual(Array.from(h[i].data));
    const c1 = be.alloc(inp * inp), c2 = be.alloc(inp * inp);
    be.gemm(true, false, inp, inp, m, 0.3, x, x, 0, c1);
    be.kernels.gemm(true, false, inp, inp, m, 0.3, x.data, x.data, 0, c2.data);
    expect(Array.from(c1.data)).toEqual(Array.from(c2.data));
    const l1 = be.lossDelta(c1.view(0, m * out), y1, y2, m, out, LOSS.mse, ACT.tanh, 0, 1, null);
    const l2 = be.kernels.lossDelta(c2.data, y1.data, y2.data, m, out, LOSS.mse, ACT.tanh, 0, 1, null);
    expect(l1).toBe(l2);
    expect(be.sumSquares(x, m * inp)).toBe(be.kernels.sumSquares(x.data, m * inp));
  });

  it('gemm: k = 0 gives beta·c (and 0 without reading c when beta is 0); m or n = 0 is a no-op', () => {
    const c = fill(be.alloc(6), NaN);
    be.gemm(false, false, 2, 3, 0, 1, be.alloc(0), be.alloc(0), 0, c);
    expect(Array.from(c.data)).toEqual([0, 0, 0, 0, 0, 0]);
    fill(c, 2);
    be.gemm(true, true, 2, 3, 0, 1, be.alloc(0), be.alloc(0), 0.5, c);
    expect(Array.from(c.data)).toEqual([1, 1, 1, 1, 1, 1]);
    be.gemm(false, false, 0, 3, 4, 1, be.alloc(0), be.alloc(12), 0, c);
    expect(Array.from(c.data)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('gemm: the seeds\' matrix examples (MATH.md golden 5)', () => {
    const a = be.alloc(4), b = be.alloc(4), c = be.alloc(16), d = be.alloc(1);
    a.data.set([10, 20, 30, 40]);
    b.data.set([0, 1, 2, 3]);
    be.gemm(false, false, 1, 1, 4, 1, a, b, 0, d);
    expect(d.data[0]).toBe(200);
    be.gemm(false, false, 4, 4, 1, 1, a, b, 0, c);
    expect(Array.from(c.data)).toEqual([0, 10, 20, 30, 0, 20, 40, 60, 0, 30, 60, 90, 0, 40, 80, 120]);
  });

  for (const [which, b2] of [['default', be], ['packed', packed]] as const) {
    it(`denseForward (${which}): every activation, edge sizes`, () => {
      const r = rng(4);
      for (const [actName, act] of ACTS) {
        for (const [m, inp, out] of [[1, 1, 1], [4, 2, 8], [MR + 1, 3, NR + 1], [33, 70, 10], [2 * MR + 1, 130, 2 * NR + 3]]) {
          const x = randBuf(b2, m * inp, r, -2, 2), w = randBuf(b2, inp * out, r), b = randBuf(b2, out, r);
          const y = fill(b2.alloc(m * out), NaN);
          b2.denseForward(y, x, w, b, m, inp, out, act, 0.1);
          const yr = ref.alloc(m * out);
          ref.denseForward(yr, copyTo(ref, x), copyTo(ref, w), copyTo(ref, b), m, inp, out, act, 0.1);
          expectClose(y.data, yr.data, m * out, `${isa} ${which} denseForward ${actName} m=${m} inp=${inp} out=${out}`,
            { growth: Math.sqrt(inp + 1) });
        }
      }
    });

    it(`denseBackward (${which}): every previous activation, with and without dx`, () => {
      const r = rng(5);
      for (const [actName, act] of ACTS.filter(([, a]) => a !== ACT.softmax)) {
        for (const [m, inp, out] of [[1, 1, 1], [4, 8, 1], [MR + 1, NR + 2, 3], [64, 50, 10], [2 * MR + 3, 2 * NR + 1, 40]]) {
          const dz = randBuf(b2, m * out, r), w = randBuf(b2, inp * out, r);
          // x is the previous layer's output: in that activation's range
          const lo = act === ACT.sigmoid || act === ACT.relu ? 0 : -1;
          const x = randBuf(b2, m * inp, r, lo, 1);
          if (act === ACT.relu || act === ACT.leakyRelu) for (let i = 0; i < m * inp; i += 3) x.data[i] = act === ACT.relu ? 0 : -x.data[i] * 0.5;
          for (const withDx of [true, false]) {
            const dw = fill(b2.alloc(inp * out), NaN), db = fill(b2.alloc(out), NaN);
            const dx = withDx ? fill(b2.alloc(m * inp), NaN) : null;
            b2.denseBackward(dw, db, dx, dz, x, w, m, inp, out, 1 / m, act, 0.1);
            const dwr = ref.alloc(inp * out), dbr = ref.alloc(out), dxr = withDx ? ref.alloc(m * inp) : null;
            ref.denseBackward(dwr, dbr, dxr, copyTo(ref, dz), copyTo(ref, x), copyTo(ref, w), m, inp, out, 1 / m, act, 0.1);
            const what = `${isa} ${which} denseBackward ${actName} dx=${withDx} m=${m} inp=${inp} out=${out}`;
            expectClose(dw.data, dwr.data, inp * out, `${what} dw`, { growth: Math.sqrt(m) });
            expectClose(db.data, dbr.data, out, `${what} db`, { growth: Math.sqrt(m) });
            if (dx && dxr) expectClose(dx.data, dxr.data, m * inp, `${what} dx`, { growth: Math.sqrt(out) });
          }
        }
      }
    });
  }

  it('lossDelta: every loss with the activations it is used with, including clamped probabilities, with and without row weights', () => {
    const r = rng(6);
    const regression = ACTS.filter(([, a]) => a !== ACT.softmax);
    const combos: [string, LossCode, ActCode][] = [
      ...regression.map(([n, a]) => [`mse/${n}`, LOSS.mse, a] as [string, LossCode, ActCode]),
      ...regression.map(([n, a]) => [`huber/${n}`, LOSS.huber, a] as [string, LossCode, ActCode]),
      ...regression.map(([n, a]) => [`mae/${n}`, LOSS.meanAbsoluteError, a] as [string, LossCode, ActCode]),
      ['bce/sigmoid', LOSS.binaryCrossEntropy, ACT.sigmoid],
      ['cce/softmax', LOSS.categoricalCrossEntropy, ACT.softmax],
    ];
    const regressionLoss = (loss: LossCode) => loss === LOSS.mse || loss === LOSS.huber || loss === LOSS.meanAbsoluteError;
    for (const [name, loss, act] of combos) {
      for (const [m, n] of [[1, 1], [4, 1], [7, 10], [64, 33]]) {
        for (const weighted of [false, true]) {
          const a = randBuf(be, m * n, r, act === ACT.tanh || act === ACT.linear || act === ACT.leakyRelu ? -1 : 0, 1);
          const y = randBuf(be, m * n, r, 0, 1);
          for (let i = 0; i < m * n; i += 5) { y.data[i] = i % 2; a.data[i] = regressionLoss(loss) ? a.data[i] : (i % 10 === 0 ? 0 : 1); }
          // e = 0 exactly: the MAE subgradient there is 0 on every backend
          if (regressionLoss(loss)) for (let i = 3; i < m * n; i += 7) y.data[i] = a.data[i];
          if (loss === LOSS.categoricalCrossEntropy) for (let i = 1; i < m * n; i += 4) y.data[i] = 0;
          const w = weighted ? randBuf(be, m, r, 0, 3) : null;
          if (w && m > 1) w.data[1] = 0;
          const dz = fill(be.alloc(m * n), NaN), dzr = ref.alloc(m * n);
          const L = be.lossDelta(dz, a, y, m, n, loss, act, 0.1, 0.3, w);
          const Lr = ref.lossDelta(dzr, copyTo(ref, a), copyTo(ref, y), m, n, loss, act, 0.1, 0.3, w && copyTo(ref, w));
          const what = `${isa} ${name} m=${m} n=${n}${weighted ? ' weighted' : ''}`;
          expect(Math.abs(L - Lr), `${what} loss ${L} vs ${Lr}`).toBeLessThanOrEqual(Math.max(1e-5, 1e-5 * Math.abs(Lr)));
          expectClose(dz.data, dzr.data, m * n, `${what} dz`, { abs: 1e-6, rel: 1e-6 });
        }
      }
    }
  });

  it('sumSquares', () => {
    const r = rng(7);
    for (const n of [0, 1, 7, 8, 9, 1000, 12345]) {
      const g = randBuf(be, n, r);
      const s = be.sumSquares(g, n), sr = ref.sumSquares(copyTo(ref, g), n);
      expect(Math.abs(s - sr)).toBeLessThanOrEqual(1e-9 * Math.max(1, sr));
    }
  });

  it('optimizer steps: sgd, momentum (plain/Nesterov), Adam and AdamW, with partial weight decay', () => {
    const r = rng(8);
    for (const n of [1, 5, 17, 1000]) {
      for (const dc of [0, Math.floor(n / 2), n]) {
        const what = `${isa} n=${n} decayCount=${dc}`;
        const p = randBuf(be, n, r), g = randBuf(be, n, r);
        // sgd
        let pn = copyTo(be, p), pr = copyTo(ref, p);
        be.sgdStep(pn, g, n, 0.1, 0.9, 0.01, dc);
        ref.sgdStep(pr, copyTo(ref, g), n, 0.1, 0.9, 0.01, dc);
        expectClose(pn.data, pr.data, n, `${what} sgd`, { abs: 1e-6, rel: 1e-6 });
        // momentum, three steps
        for (const nesterov of [false, true]) {
          pn = copyTo(be, p); pr = copyTo(ref, p);
          const vn = be.alloc(n), vr = ref.alloc(n);
          for (let s = 0; s < 3; s++) {
            be.momentumStep(pn, g, vn, n, 0.05, 1, 0.9, nesterov, 0.01, dc);
            ref.momentumStep(pr, copyTo(ref, g), vr, n, 0.05, 1, 0.9, nesterov, 0.01, dc);
          }
          expectClose(pn.data, pr.data, n, `${what} momentum nesterov=${nesterov} p`, { abs: 1e-6, rel: 1e-6 });
          expectClose(vn.data, vr.data, n, `${what} momentum nesterov=${nesterov} v`, { abs: 1e-6, rel: 1e-6 });
        }
        // adam, three steps
        for (const decoupled of [false, true]) {
          pn = copyTo(be, p); pr = copyTo(ref, p);
          const mn = be.alloc(n), vn = be.alloc(n), mr = ref.alloc(n), vr = ref.alloc(n);
          for (let t = 1; t <= 3; t++) {
            const bc1 = 1 - 0.9 ** t, bc2 = 1 - 0.999 ** t;
            be.adamStep(pn, g, mn, vn, n, 1e-3, 0.5, 0.9, 0.999, 1e-8, bc1, bc2, 0.01, decoupled, dc);
            ref.adamStep(pr, copyTo(ref, g), mr, vr, n, 1e-3, 0.5, 0.9, 0.999, 1e-8, bc1, bc2, 0.01, decoupled, dc);
          }
          expectClose(pn.data, pr.data, n, `${what} adam decoupled=${decoupled} p`, { abs: 1e-6, rel: 1e-6 });
          expectClose(mn.data, mr.data, n, `${what} adam decoupled=${decoupled} m`, { abs: 1e-6, rel: 1e-6 });
          expectClose(vn.data, vr.data, n, `${what} adam decoupled=${decoupled} v`, { abs: 1e-7, rel: 1e-6 });
        }
      }
    }
  });

  it('vector exp, sigmoid and tanh: relative error <= 1e-6 (polynomials vs Math)', () => {
    const n = 20001;
    const x = be.alloc(n), y = be.alloc(n);
    for (let i = 0; i < n; i++) x.data[i] = -87 + (175 * i) / (n - 1);
    be.kernels.vexp(y.data, x.data, n);
    for (let i = 0; i < n; i++) {
      const want = Math.exp(x.data[i]);
      expect(Math.abs(y.data[i] - want) / want, `exp(${x.data[i]}) = ${y.data[i]}, want ${want}`).toBeLessThanOrEqual(1e-6);
    }
    // far tails: 0 below the normal range, finite above
    x.data.set([-200, -100, 1e30, NaN]);
    be.kernels.vexp(y.data, x.data, 4);
    expect(y.data[0]).toBe(0);
    expect(y.data[1]).toBe(0);
    expect(Number.isFinite(y.data[2])).toBe(true);
    expect(Number.isNaN(y.data[3])).toBe(true);
    for (const [name, act, f] of [['sigmoid', ACT.sigmoid, (v: number) => 1 / (1 + Math.exp(-v))],
      ['tanh', ACT.tanh, Math.tanh]] as const) {
      const xs = [0, 1e-30, -1e-8, 0.39999, 0.4, 0.40001, -0.4, 100, -100, 1e6, -1e6];
      for (let i = 0; i < 20000; i++) xs.push(-20 + i / 500);
      const X = be.alloc(xs.length), Y = be.alloc(xs.length);
      X.data.set(xs);
      be.kernels.vact(Y.data, X.data, xs.length, act, 0);
      for (let i = 0; i < xs.length; i++) {
        const want = f(X.data[i]);
        const err = Math.abs(Y.data[i] - want);
        expect(err, `${name}(${X.data[i]}) = ${Y.data[i]}, want ${want}`).toBeLessThanOrEqual(Math.max(1e-30, 1e-6 * Math.abs(want)));
      }
    }
  });
});

describe('native threads', () => {
  for (const isa of ISAS) {
    it(`${isa}: 1 and 2 threads give bitwise identical results (gemm, dense forward/backward)`, () => {
      const one = native(isa, { threads: 1 }), two = native(isa, { threads: 2 });
      expect(two.threads).toBe(2);
      const r = rng(9);
      for (const [ta, tb] of [[false, false], [true, false], [false, true]]) {
        for (const [m, n, k] of [[300, 500, 400], [64, 784, 128], [7, 1000, 300], [1000, 9, 300]]) {
          const a = randBuf(one, m * k, r), b = randBuf(one, k * n, r);
          const c1 = one.alloc(m * n), c2 = two.alloc(m * n);
          one.gemm(ta, tb, m, n, k, 1, a, b, 0, c1);
          two.gemm(ta, tb, m, n, k, 1, a, b, 0, c2);
          expect(Buffer.from(c1.data.buffer, c1.data.byteOffset, m * n * 4)
            .equals(Buffer.from(c2.data.buffer, c2.data.byteOffset, m * n * 4)), `${ta} ${tb} ${m}x${n}x${k}`).toBe(true);
        }
      }
      const [m, inp, out] = [256, 784, 512];
      const x = randBuf(one, m * inp, r, 0, 1), w = randBuf(one, inp * out, r), bias = randBuf(one, out, r);
      const y1 = one.alloc(m * out), y2 = two.alloc(m * out);
      one.denseForward(y1, x, w, bias, m, inp, out, ACT.relu, 0);
      two.denseForward(y2, x, w, bias, m, inp, out, ACT.relu, 0);
      expect(Array.from(y1.data)).toEqual(Array.from(y2.data));
      const dw1 = one.alloc(inp * out), db1 = one.alloc(out), dx1 = one.alloc(m * inp);
      const dw2 = two.alloc(inp * out), db2 = two.alloc(out), dx2 = two.alloc(m * inp);
      one.denseBackward(dw1, db1, dx1, y1, x, w, m, inp, out, 1 / m, ACT.sigmoid, 0);
      two.denseBackward(dw2, db2, dx2, y2, x, w, m, inp, out, 1 / m, ACT.sigmoid, 0);
      expect(Array.from(dw1.data)).toEqual(Array.from(dw2.data));
      expect(Array.from(db1.data)).toEqual(Array.from(db2.data));
      expect(Array.from(dx1.data)).toEqual(Array.from(dx2.data));
    });
  }

  for (const isa of ISAS) {
    it(`${isa}: compiled steps give bitwise identical results on 1 and 2 threads`, async () => {
      // 64·256·300 multiply-adds per GEMM: above the threading threshold, so 2 threads split them
      const r = rng(21), rows = 192, inputs = 300;
      const x = { data: Float32Array.from({ length: rows * inputs }, () => 2 * r() - 1), shape: [rows, inputs] as [number, number] };
      const y = Array.from({ length: rows }, () => Math.floor(r() * 10));
      for (const optimizer of [{ type: 'adam', learningRate: 1e-3, weightDecay: 1e-3, clipNorm: 0.5 }, { type: 'momentum', learningRate: 0.05, nesterov: true }] as const) {
        const train = async (threads: number) => {
          const be = native(isa, { threads });
          expect(be.threads).toBe(threads);
          expect(typeof be.compileStep).toBe('function');
          const model = new Model({ inputs, layers: [{ units: 256, activation: 'relu' }, { units: 64, activation: 'tanh' }, { units: 10, activation: 'softmax' }],
            loss: 'categoricalCrossEntropy', optimizer, seed: 4 }, be);
          const losses: number[] = [];
          await model.fit(x, y, { epochs: 2, batchSize: 64, onBatchEnd: (b) => { losses.push(b.loss); } });
          return { losses, params: model.params.data.slice() };
        };
        const one = await train(1), two = await train(2);
        expect(two.losses, optimizer.type).toEqual(one.losses);
        expect(Buffer.from(two.params.buffer).equals(Buffer.from(one.params.buffer)), optimizer.type).toBe(true);
      }
    });
  }

  it('setThreads clamps to at least 1; the count is per backend instance', () => {
    const a = native(ISAS[0], { threads: 2 }), b = native(ISAS[0], { threads: 1 });
    a.setThreads(0);
    expect(a.threads).toBe(1);
    a.setThreads(3);
    expect(a.threads).toBe(3);
    expect(b.threads).toBe(1);
  });
});

describe('native gatherRows (batch staging)', () => {
  // The rows a JavaScript loop would copy: the reference for the kernel.
  const expected = (src: Float32Array, order: Uint32Array | null, start: number, count: number, cols: number) => {
    const out = new Float32Array(count * cols);
    for (let i = 0; i < count; i++) {
      const r = order ? order[start + i] : start + i;
      out.set(src.subarray(r * cols, (r + 1) * cols), i * cols);
    }
    return out;
  };

  it('copies the ordered rows (and plain row ranges) exactly, on 1 and 2 threads, leaving the rest of dst alone', () => {
    const r = rng(31);
    // 2·10⁴ floats stay on one thread; 128·784 is split over the pool
    for (const [rows, cols, count] of [[50, 1, 7], [300, 33, 200], [2000, 784, 128], [10, 784, 10], [5, 0, 3]]) {
      const src = Float32Array.from({ length: rows * cols }, () => r() * 2 - 1);
      const order = Uint32Array.from({ length: rows }, (_, i) => i).sort(() => r() - 0.5);
      for (const threads of [1, 2]) {
        const be = native(ISAS[0], { threads });
        const start = Math.min(3, rows - count);
        for (const ord of [order, null]) {
          const dst = be.alloc(count * cols + 5);
          dst.data.fill(7.5);
          be.gatherRows(dst, src, ord, start, count, cols);
          expect(Array.from(dst.data.subarray(0, count * cols))).toEqual(Array.from(expected(src, ord, start, count, cols)));
          expect(Array.from(dst.data.subarray(count * cols))).toEqual([7.5, 7.5, 7.5, 7.5, 7.5]);
        }
      }
    }
  });

  it('reads from views with a byteOffset (a slice of a larger set)', () => {
    const be = native(ISAS[0]);
    const all = Float32Array.from({ length: 40 }, (_, i) => i);
    const view = all.subarray(8, 40); // rows 2..9 of 4 columns, seen as rows 0..7
    const dst = be.alloc(8);
    be.gatherRows(dst, view, Uint32Array.of(7, 0), 0, 2, 4);
    expect(Array.from(dst.data)).toEqual([36, 37, 38, 39, 8, 9, 10, 11]);
  });

  it('a row index past the end of src (a hostile order) throws before anything is written', () => {
    const be = native(ISAS[0], { threads: 2 });
    const src = new Float32Array(10 * 4).fill(1), dst = be.alloc(3 * 4);
    for (const [order, start, msg] of [
      [Uint32Array.of(0, 1, 10), 0, /order\[2\] = 10 is not a row of src \(10 rows of 4\)/],
      [Uint32Array.of(0, 4294967295, 1), 0, /order\[1\] = 4294967295/],
      [Uint32Array.of(0, 1), 0, /start \+ count = 3 is past the end of order \(2 entries\)/],
      [Uint32Array.of(0, 1, 2, 3), 2, /past the end of order/],
    ] as const) {
      expect(() => be.gatherRows(dst, src, order, start, 3, 4)).toThrow(msg);
      expect(Array.from(dst.data)).toEqual(new Array(12).fill(0));
    }
    expect(() => be.gatherRows(dst, src, null, 8, 3, 4)).toThrow(/rows \[8, 11\) are not all in src \(10 rows of 4\)/);
    expect(Array.from(dst.data)).toEqual(new Array(12).fill(0));
  });
});
