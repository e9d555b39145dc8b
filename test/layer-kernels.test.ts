// The kernels of the layers beyond dense (dropout, batch and layer normalization): every native
// ISA and the wasm module against the js reference at edge sizes, the dropout mask bitwise equal
// on every backend and thread count, hand-worked golden numbers for tiny cases, and the backward
// kernels against finite differences of an independent float64 forward pass, alone and chained
// (dense → batch normalization (relu) → dropout (a fixed mask) → dense, and layer normalization).
import { describe, expect, it } from 'vitest';
import { ACT, type ActCode, type Backend, type Buf } from '../src/backends/backend.js';
import { JsBackend, dropoutHash, dropoutKey, dropoutThreshold } from '../src/backends/js.js';
import { loadWasmBackend } from '../src/backends/wasm.js';
import { ISAS, expectClose, native, rng } from './native-helpers.js';

const ref = new JsBackend();
const wasm = await loadWasmBackend();
const others: [string, Backend][] = [
  ...ISAS.flatMap((isa): [string, Backend][] => [[`native ${isa}`, native(isa)], [`native ${isa} 2 threads`, native(isa, { threads: 2 })]]),
  ['wasm', wasm],
];
const ACTS: ActCode[] = [ACT.linear, ACT.sigmoid, ACT.tanh, ACT.relu, ACT.leakyRelu];

function on(be: Backend, data: ArrayLike<number>): Buf {
  const b = be.alloc(data.length);
  b.data.set(data);
  return b;
}
const rand = (n: number, r: () => number, lo = -2, hi = 2): Float32Array => Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
/** Outputs of a previous layer with activation `act` (so that g'(x) is meaningful). */
function activated(n: number, r: () => number, act: ActCode): Float32Array {
  const z = rand(n, r);
  return z.map((v) => (act === ACT.sigmoid ? 1 / (1 + Math.exp(-v)) : act === ACT.tanh ? Math.tanh(v) :
    act === ACT.relu ? Math.max(0, v) : act === ACT.leakyRelu ? (v > 0 ? v : 0.1 * v) : v));
}
const bitsEqual = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && new Uint32Array(a.buffer, a.byteOffset, a.length).every((v, i) => v === new Uint32Array(b.buffer, b.byteOffset, b.length)[i]);

describe('dropout', () => {
  it('the generator gives the documented hashes (an independent implementation computed them)', () => {
    const [k1, k2] = dropoutKey(1, 0, 0);
    expect([k1, k2]).toEqual([0x19737334, 0x37ccde68]);
    expect(Array.from({ length: 8 }, (_, i) => dropoutHash(i, k1, k2) >>> 8))
      .toEqual([4440650, 12963306, 14296859, 9239601, 10683922, 8924856, 11747843, 15033383]);
    expect(dropoutThreshold(0.5)).toBe(8388608);
    // rate 0.5 keeps the elements whose top 24 bits are ≥ 2^23: 0 1 1 1 1 1 1 1
    const y = ref.alloc(8);
    ref.dropoutForward(y, on(ref, [1, 2, 3, 4, 5, 6, 7, 8]), 8, 0.5, 1, 0, 0);
    expect(Array.from(y.data)).toEqual([0, 4, 6, 8, 10, 12, 14, 16]);
  });

  it('keeps about 1 − rate of the elements, and a different key gives a different mask', () => {
    const n = 100_000, x = on(ref, new Float32Array(n).fill(1)), y = ref.alloc(n), y2 = ref.alloc(n);
    for (const rate of [0, 0.2, 0.5, 0.9]) {
      ref.dropoutForward(y, x, n, rate, 42, 7, 3);
      const kept = y.data.reduce((s, v) => s + (v !== 0 ? 1 : 0), 0) / n;
      expect(Math.abs(kept - (1 - rate)), `rate ${rate}`).toBeLessThan(0.01);
      if (rate > 0) expect(y.data[y.data.findIndex((v) => v !== 0)]).toBe(Math.fround(1 / Math.fround(1 - Math.fround(rate))));
    }
    ref.dropoutForward(y, x, n, 0.5, 42, 7, 3);
    for (const [seed, step, layer] of [[43, 7, 3], [42, 8, 3], [42, 7, 4]]) {
      ref.dropoutForward(y2, x, n, 0.5, seed, step, layer);
      const same = y.data.reduce((s, v, i) => s + ((v !== 0) === (y2.data[i] !== 0) ? 1 : 0), 0) / n;
      expect(Math.abs(same - 0.5), `key ${seed},${step},${layer}`).toBeLessThan(0.01);
    }
  });

  it('the mask and the outputs are bitwise the same on every backend and thread count', () => {
    const r = rng(5);
    for (const n of [0, 1, 3, 4, 7, 8, 17, 1000, 4099]) {
      for (const rate of [0, 0.2, 0.5, 0.9]) {
        for (const [seed, step, layer] of [[0, 0, 0], [1, 2, 3], [4294967295, 4294967295, 4294967295]]) {
          const x = rand(n, r), dy = rand(n, r);
          const want = ref.alloc(n);
          ref.dropoutForward(want, on(ref, x), n, rate, seed, step, layer);
          for (const act of [ACT.linear, ACT.relu, ACT.leakyRelu] as ActCode[]) {
            const xa = activated(n, r, act);
            const wantDx = ref.alloc(n);
            ref.dropoutBackward(wantDx, on(ref, dy), on(ref, xa), n, rate, seed, step, layer, act, 0.1);
            for (const [name, be] of others) {
              const got = be.alloc(n), gotDx = be.alloc(n);
              be.dropoutForward(got, on(be, x), n, rate, seed, step, layer);
              be.dropoutBackward(gotDx, on(be, dy), on(be, xa), n, rate, seed, step, layer, act, 0.1);
              const what = `${name} n=${n} rate=${rate} key=${seed},${step},${layer}`;
              expect(bitsEqual(got.data, want.data), `${what} forward`).toBe(true);
              expect(bitsEqual(gotDx.data, wantDx.data), `${what} backward act ${act}`).toBe(true);
            }
          }
        }
      }
    }
  });

  it('backward through sigmoid and tanh outputs matches the reference', () => {
    const r = rng(6), n = 257;
    for (const act of [ACT.sigmoid, ACT.tanh] as ActCode[]) {
      const dy = rand(n, r), xa = activated(n, r, act), want = ref.alloc(n);
      ref.dropoutBackward(want, on(ref, dy), on(ref, xa), n, 0.3, 9, 1, 2, act, 0);
      for (const [name, be] of others) {
        const got = be.alloc(n);
        be.dropoutBackward(got, on(be, dy), on(be, xa), n, 0.3, 9, 1, 2, act, 0);
        expectClose(got.data, want.data, n, `${name} dropoutBackward act ${act}`);
      }
    }
  });
});

/** Runs one normalization forward + backward on a backend from the same inputs; returns every output. */
function runNorm(be: Backend, kind: 'bn' | 'ln', m: number, n: number, inputs: Record<string, Float32Array>, act: ActCode,
  prevAct: ActCode, update: boolean, withDx: boolean): Record<string, Float32Array> {
  const stats = kind === 'bn' ? n : m;
  const y = be.alloc(m * n), mean = be.alloc(stats), invStd = be.alloc(stats);
  const runMean = on(be, inputs.runMean), runVar = on(be, inputs.runVar);
  const x = on(be, inputs.x), gamma = on(be, inputs.gamma), beta = on(be, inputs.beta), dy = on(be, inputs.dy);
  if (kind === 'bn') be.batchNormForward(y, x, gamma, beta, runMean, runVar, mean, invStd, m, n, update, 0.9, 1e-3, act, 0.1);
  else be.layerNormForward(y, x, gamma, beta, mean, invStd, m, n, 1e-3, act, 0.1);
  const dx = withDx ? be.alloc(m * n) : null, dgamma = be.alloc(n), dbeta = be.alloc(n);
  if (kind === 'bn') be.batchNormBackward(dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, 0.5, prevAct, 0.1);
  else be.layerNormBackward(dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, 0.5, prevAct, 0.1);
  const out: Record<string, Float32Array> = { y: y.data.slice(), mean: mean.data.slice(), invStd: invStd.data.slice(),
    runMean: runMean.data.slice(), runVar: runVar.data.slice(), dgamma: dgamma.data.slice(), dbeta: dbeta.data.slice() };
  if (dx) out.dx = dx.data.slice();
  if (kind === 'bn') {
    const yi = be.alloc(m * n);
    be.batchNormInference(yi, x, gamma, beta, runMean, runVar, m, n, 1e-3, act, 0.1);
    out.inference = yi.data.slice();
  }
  return out;
}

describe.each(['bn', 'ln'] as const)('%s normalization kernels', (kind) => {
  it('every native ISA and wasm match the reference at edge sizes, every activation', () => {
    const r = rng(kind === 'bn' ? 11 : 12);
    for (const m of [0, 1, 2, 5, 33]) {
      for (const n of [0, 1, 3, 16, 17, 67]) {
        for (const act of ACTS) {
          const prevAct = ACTS[(act + m + n) % ACTS.length];
          const inputs = {
            x: activated(m * n, r, prevAct), gamma: rand(n, r, 0.5, 1.5), beta: rand(n, r, -0.5, 0.5), dy: rand(m * n, r),
            runMean: rand(n, r, -0.1, 0.1), runVar: rand(n, r, 0.5, 1.5),
          };
          const update = (m + n) % 2 === 0, withDx = m !== 2;
          const want = runNorm(ref, kind, m, n, inputs, act, prevAct, update, withDx);
          for (const [name, be] of others) {
            const got = runNorm(be, kind, m, n, inputs, act, prevAct, update, withDx);
            for (const key of Object.keys(want)) {
              const growth = key === 'dx' || key.startsWith('d') ? Math.sqrt(Math.max(m, n, 1)) * 4 : Math.sqrt(Math.max(m, n, 1));
              expectClose(got[key], want[key], want[key].length, `${name} ${kind} ${key} m=${m} n=${n} act=${act} prev=${prevAct}`,
                { abs: 2e-5, rel: 2e-5, growth });
            }
          }
        }
      }
    }
  });
});

describe('golden numbers, worked by hand (float64), on every backend', () => {
  const all: [string, Backend][] = [['js', ref], ...others];
  it('batch normalization of the column [1, 2, 3], γ = 2, β = 0.5, ε = 1e-3, momentum 0.99', () => {
    // μ = 2, σ² = 2/3, r = 1/√(2/3 + 0.001) = 1.2238273448; y = 2·(x − 2)·r + 0.5
    // dy = [1, 0, −1]: S = 0, T = Σ dy·x̂ = −2r; dx = γ·r·(dy − x̂·T/3)
    for (const [name, be] of all) {
      const y = be.alloc(3), mean = be.alloc(1), invStd = be.alloc(1), rm = on(be, [0]), rv = on(be, [1]);
      const x = on(be, [1, 2, 3]), gamma = on(be, [2]), beta = on(be, [0.5]);
      be.batchNormForward(y, x, gamma, beta, rm, rv, mean, invStd, 3, 1, true, 0.99, 1e-3, ACT.linear, 0);
      expectClose(y.data, Float32Array.of(-1.9476546896530014, 0.5, 2.9476546896530014), 3, `${name} y`);
      expectClose(invStd.data, Float32Array.of(1.2238273448265007), 1, `${name} invStd`);
      expectClose(rm.data, Float32Array.of(0.02), 1, `${name} running mean`);
      expectClose(rv.data, Float32Array.of(0.9966666666666667), 1, `${name} running variance`);
      const dx = be.alloc(3), dg = be.alloc(1), db = be.alloc(1);
      be.batchNormBackward(dx, dg, db, on(be, [1, 0, -1]), x, gamma, mean, invStd, 3, 1, 1, ACT.linear, 0);
      expectClose(dg.data, Float32Array.of(-2.4476546896530014), 1, `${name} dgamma`);
      expectClose(db.data, Float32Array.of(0), 1, `${name} dbeta`);
      // ε alone keeps dx from 0: dy lies along x̂
      expectClose(dx.data, Float32Array.of(0.003665983059889082, 0, -0.003665983059889082), 3, `${name} dx`, { abs: 1e-6, rel: 1e-3 });
      const yi = be.alloc(3);
      be.batchNormInference(yi, x, gamma, beta, rm, rv, 3, 1, 1e-3, ACT.relu, 0);
      // relu(2·(x − 0.02)/√(0.99667 + 0.001) + 0.5)
      const want = [1, 2, 3].map((v) => Math.max(0, 2 * (v - 0.02) / Math.sqrt(0.9966666666666667 + 1e-3) + 0.5));
      expectClose(yi.data, Float32Array.from(want), 3, `${name} inference`);
    }
  });

  it('layer normalization of the row [1, 2, 3, 6], γ = [1, 0.5, 2, 1], β = [0, 0.1, 0, −0.2]', () => {
    // μ = 3, σ² = 3.5, r = 1/√3.501 = 0.5344461398
    for (const [name, be] of all) {
      const y = be.alloc(4), mean = be.alloc(1), invStd = be.alloc(1);
      const x = on(be, [1, 2, 3, 6]), gamma = on(be, [1, 0.5, 2, 1]);
      be.layerNormForward(y, x, gamma, on(be, [0, 0.1, 0, -0.2]), mean, invStd, 1, 4, 1e-3, ACT.linear, 0);
      expectClose(y.data, Float32Array.of(-1.0688922796581097, -0.16722306991452743, 0, 1.4033384194871645), 4, `${name} y`);
      expect(mean.data[0]).toBe(3);
      const dx = be.alloc(4), dg = be.alloc(4), db = be.alloc(4);
      be.layerNormBackward(dx, dg, db, on(be, [0.5, -1, 0.25, 1]), x, gamma, mean, invStd, 1, 4, 1, ACT.linear, 0);
      expectClose(dx.data, Float32Array.of(0.2576248691028302, -0.3722308215383238, 0.06680576747863186, 0.04780018495686176), 4, `${name} dx`);
      expectClose(dg.data, Float32Array.of(-0.5344461398290549, 0.5344461398290549, 0, 1.6033384194871645), 4, `${name} dgamma`);
      expectClose(db.data, Float32Array.of(0.5, -1, 0.25, 1), 4, `${name} dbeta`);
    }
  });
});

// ---- finite differences against a float64 forward pass ------------------------------------------

type Vec = Float64Array;
const f64 = (a: ArrayLike<number>): Vec => Float64Array.from(a);
function act64(z: number, act: ActCode, alpha: number): number {
  switch (act) {
    case ACT.sigmoid: return 1 / (1 + Math.exp(-z));
    case ACT.tanh: return Math.tanh(z);
    case ACT.relu: return Math.max(0, z);
    case ACT.leakyRelu: return z > 0 ? z : alpha * z;
    default: return z;
  }
}
function bn64(x: Vec, g: Vec, b: Vec, m: number, n: number, eps: number, act: ActCode): Vec {
  const y = new Float64Array(m * n);
  for (let j = 0; j < n; j++) {
    let mu = 0, v = 0;
    for (let i = 0; i < m; i++) mu += x[i * n + j] / m;
    for (let i = 0; i < m; i++) v += (x[i * n + j] - mu) ** 2 / m;
    for (let i = 0; i < m; i++) y[i * n + j] = act64(g[j] * (x[i * n + j] - mu) / Math.sqrt(v + eps) + b[j], act, 0.1);
  }
  return y;
}
function ln64(x: Vec, g: Vec, b: Vec, m: number, n: number, eps: number, act: ActCode): Vec {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    let mu = 0, v = 0;
    for (let j = 0; j < n; j++) mu += x[i * n + j] / n;
    for (let j = 0; j < n; j++) v += (x[i * n + j] - mu) ** 2 / n;
    for (let j = 0; j < n; j++) y[i * n + j] = act64(g[j] * (x[i * n + j] - mu) / Math.sqrt(v + eps) + b[j], act, 0.1);
  }
  return y;
}
function dense64(x: Vec, w: Vec, b: Vec, m: number, inp: number, out: number, act: ActCode): Vec {
  const y = new Float64Array(m * out);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < out; j++) {
      let z = b[j];
      for (let p = 0; p < inp; p++) z += x[i * inp + p] * w[p * out + j];
      y[i * out + j] = act64(z, act, 0.1);
    }
  }
  return y;
}
/** Central difference of f with respect to each entry of p (perturbed in place). */
function numeric(p: Vec, f: () => number, h = 1e-6): Vec {
  const g = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const v = p[i];
    p[i] = v + h; const up = f();
    p[i] = v - h; const down = f();
    p[i] = v;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}
function expectGrad(got: ArrayLike<number>, want: Vec, what: string): void {
  const scaleOf = Math.max(1e-3, ...Array.from(want, Math.abs));
  for (let i = 0; i < want.length; i++) {
    expect(Math.abs(got[i] - want[i]), `${what}[${i}]: ${got[i]} vs numeric ${want[i]}`).toBeLessThan(2e-3 * scaleOf + 1e-5);
  }
}

describe('backward kernels against finite differences (float64 forward, loss Σ c·y)', () => {
  // loss = Σ c_ij · y_ij, so dy = c; the backward kernels' dx and parameter gradients are its gradient
  for (const kind of ['bn', 'ln'] as const) {
    for (const act of [ACT.linear, ACT.tanh] as ActCode[]) {
      it(`${kind} with output activation ${act}: dx, dγ, dβ on every backend`, () => {
        const r = rng(21 + act), m = 6, n = 5;
        const x = f64(rand(m * n, r)), g = f64(rand(n, r, 0.5, 1.5)), b = f64(rand(n, r, -0.5, 0.5)), c = f64(rand(m * n, r));
        const fwd = kind === 'bn' ? bn64 : ln64;
        const loss = (): number => fwd(x, g, b, m, n, 1e-3, act).reduce((s, v, i) => s + c[i] * v, 0);
        // dy is the delta at the pre-activation: c ⊙ g'(z), from the float64 forward
        const lin = fwd(x, g, b, m, n, 1e-3, ACT.linear);
        const dy = Float32Array.from(lin, (z, i) => c[i] * (act === ACT.tanh ? 1 - Math.tanh(z) ** 2 : 1));
        const wantX = numeric(x, loss), wantG = numeric(g, loss), wantB = numeric(b, loss);
        for (const [name, be] of [['js', ref] as [string, Backend], ...others]) {
          const y = be.alloc(m * n), stats = kind === 'bn' ? n : m, mean = be.alloc(stats), invStd = be.alloc(stats);
          const X = on(be, x), G = on(be, g), B = on(be, b);
          if (kind === 'bn') be.batchNormForward(y, X, G, B, be.alloc(n), on(be, new Float32Array(n).fill(1)), mean, invStd, m, n, false, 0.99, 1e-3, act, 0);
          else be.layerNormForward(y, X, G, B, mean, invStd, m, n, 1e-3, act, 0);
          const dx = be.alloc(m * n), dg = be.alloc(n), db = be.alloc(n);
          if (kind === 'bn') be.batchNormBackward(dx, dg, db, on(be, dy), X, G, mean, invStd, m, n, 1, ACT.linear, 0);
          else be.layerNormBackward(dx, dg, db, on(be, dy), X, G, mean, invStd, m, n, 1, ACT.linear, 0);
          expectGrad(dx.data, wantX, `${name} ${kind} dx`);
          expectGrad(dg.data, wantG, `${name} ${kind} dgamma`);
          expectGrad(db.data, wantB, `${name} ${kind} dbeta`);
        }
      });
    }
  }

  it('dense → batch normalization (relu) → dropout (a fixed mask) → dense (linear), mse: every gradient', () => {
    const r = rng(31), m = 7, inp = 4, hid = 6, out = 3, rate = 0.3, key = [5, 11, 1] as const;
    const x = f64(rand(m * inp, r)), w1 = f64(rand(inp * hid, r, -0.7, 0.7)), b1 = f64(rand(hid, r, -0.2, 0.2));
    const g = f64(rand(hid, r, 0.5, 1.5)), be_ = f64(rand(hid, r, -0.3, 0.3));
    const w2 = f64(rand(hid * out, r, -0.7, 0.7)), b2 = f64(rand(out, r, -0.2, 0.2)), t = f64(rand(m * out, r));
    // the mask as a float64 factor per element, from the reference kernel on ones
    const maskBuf = ref.alloc(m * hid);
    ref.dropoutForward(maskBuf, on(ref, new Float32Array(m * hid).fill(1)), m * hid, rate, ...key);
    const mask = f64(maskBuf.data);
    expect(mask.some((v) => v === 0) && mask.some((v) => v !== 0)).toBe(true);
    const loss = (): number => {
      const a1 = dense64(x, w1, b1, m, inp, hid, ACT.linear);
      const a2 = bn64(a1, g, be_, m, hid, 1e-3, ACT.relu).map((v, i) => v * mask[i]);
      const a3 = dense64(a2, w2, b2, m, hid, out, ACT.linear);
      return a3.reduce((s, v, i) => s + (v - t[i]) ** 2 / out, 0) / m;
    };
    const want = [w1, b1, g, be_, w2, b2].map((p) => numeric(p, loss));
    for (const [name, be] of [['js', ref] as [string, Backend], ...others]) {
      const X = on(be, x), W1 = on(be, w1), B1 = on(be, b1), G = on(be, g), BE = on(be, be_), W2 = on(be, w2), B2 = on(be, b2);
      const a1 = be.alloc(m * hid), a2 = be.alloc(m * hid), a3 = be.alloc(m * hid), a4 = be.alloc(m * out);
      const mean = be.alloc(hid), invStd = be.alloc(hid);
      be.denseForward(a1, X, W1, B1, m, inp, hid, ACT.linear, 0);
      be.batchNormForward(a2, a1, G, BE, be.alloc(hid), on(be, new Float32Array(hid).fill(1)), mean, invStd, m, hid, true, 0.99, 1e-3, ACT.relu, 0);
      be.dropoutForward(a3, a2, m * hid, rate, ...key);
      be.denseForward(a4, a3, W2, B2, m, hid, out, ACT.linear, 0);
      const d4 = be.alloc(m * out), d3 = be.alloc(m * hid), d2 = be.alloc(m * hid), d1 = be.alloc(m * hid);
      be.lossDelta(d4, a4, on(be, t), m, out, 0, ACT.linear, 0, 1, null);
      const dw2 = be.alloc(hid * out), db2 = be.alloc(out), dg = be.alloc(hid), dbe = be.alloc(hid), dw1 = be.alloc(inp * hid), db1 = be.alloc(hid);
      be.denseBackward(dw2, db2, d3, d4, a3, W2, m, hid, out, 1 / m, ACT.linear, 0); // dropout's output is linear
      be.dropoutBackward(d2, d3, a2, m * hid, rate, ...key, ACT.relu, 0); // through the relu of BN's output
      be.batchNormBackward(d1, dg, dbe, d2, a1, G, mean, invStd, m, hid, 1 / m, ACT.linear, 0);
      be.denseBackward(dw1, db1, null, d1, X, W1, m, inp, hid, 1 / m, ACT.linear, 0);
      [dw1, db1, dg, dbe, dw2, db2].forEach((got, k) => expectGrad(got.data, want[k], `${name} ${['dW1', 'db1', 'dγ', 'dβ', 'dW2', 'db2'][k]}`));
    }
  });

  it('dense (tanh) → layer normalization → dense (linear), mse: every gradient', () => {
    const r = rng(32), m = 5, inp = 3, hid = 8, out = 2;
    const x = f64(rand(m * inp, r)), w1 = f64(rand(inp * hid, r, -0.7, 0.7)), b1 = f64(rand(hid, r, -0.2, 0.2));
    const g = f64(rand(hid, r, 0.5, 1.5)), bt = f64(rand(hid, r, -0.3, 0.3));
    const w2 = f64(rand(hid * out, r, -0.7, 0.7)), b2 = f64(rand(out, r, -0.2, 0.2)), t = f64(rand(m * out, r));
    const loss = (): number => {
      const a1 = dense64(x, w1, b1, m, inp, hid, ACT.tanh);
      const a2 = ln64(a1, g, bt, m, hid, 1e-3, ACT.linear);
      return dense64(a2, w2, b2, m, hid, out, ACT.linear).reduce((s, v, i) => s + (v - t[i]) ** 2 / out, 0) / m;
    };
    const want = [w1, b1, g, bt, w2, b2].map((p) => numeric(p, loss));
    for (const [name, be] of [['js', ref] as [string, Backend], ...others]) {
      const X = on(be, x), W1 = on(be, w1), B1 = on(be, b1), G = on(be, g), BT = on(be, bt), W2 = on(be, w2), B2 = on(be, b2);
      const a1 = be.alloc(m * hid), a2 = be.alloc(m * hid), a3 = be.alloc(m * out), mean = be.alloc(m), invStd = be.alloc(m);
      be.denseForward(a1, X, W1, B1, m, inp, hid, ACT.tanh, 0);
      be.layerNormForward(a2, a1, G, BT, mean, invStd, m, hid, 1e-3, ACT.linear, 0);
      be.denseForward(a3, a2, W2, B2, m, hid, out, ACT.linear, 0);
      const d3 = be.alloc(m * out), d2 = be.alloc(m * hid), d1 = be.alloc(m * hid);
      be.lossDelta(d3, a3, on(be, t), m, out, 0, ACT.linear, 0, 1, null);
      const dw2 = be.alloc(hid * out), db2 = be.alloc(out), dg = be.alloc(hid), dbt = be.alloc(hid), dw1 = be.alloc(inp * hid), db1 = be.alloc(hid);
      be.denseBackward(dw2, db2, d2, d3, a2, W2, m, hid, out, 1 / m, ACT.linear, 0);
      be.layerNormBackward(d1, dg, dbt, d2, a1, G, mean, invStd, m, hid, 1 / m, ACT.tanh, 0);
      be.denseBackward(dw1, db1, null, d1, X, W1, m, inp, hid, 1 / m, ACT.linear, 0);
      [dw1, db1, dg, dbt, dw2, db2].forEach((got, k) => expectGrad(got.data, want[k], `${name} ${['dW1', 'db1', 'dγ', 'dβ', 'dW2', 'db2'][k]}`));
    }
  });
});
