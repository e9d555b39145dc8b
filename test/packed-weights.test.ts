// Weights packed once (WeightPacker, the native and wasm backends): denseForwardPacked gives denseForward's
// bits on every ISA this machine runs, at batch sizes on both sides of the few-row path and at the
// edges of the register tile and of the k blocks, for 1 and 2 threads; a packed copy from another
// backend or of other dimensions is refused by name; and a copy made before the weights changed is
// stale by design (the caller packs again, into the same copy if it likes: `into`), which the
// inference Predictor and Model.predict never let happen.
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { ACT } from '../src/backends/backend.js';
import { loadNativeBackend } from '../src/backends/native.js';
import { loadWasmBackend, type WasmBackend } from '../src/backends/wasm.js';
import { ISAS, copyTo, fill, randBuf, rng } from './native-helpers.js';

// Node 20 has relaxed SIMD behind a flag; on before any module is compiled (as in test/wasm.test.ts)
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

const bits = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe.each(ISAS)('native %s: packed weights', (isa) => {
  for (const threads of [1, 2]) {
    it(`denseForwardPacked has denseForward's bits (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const be = loadNativeBackend({ isa, threads });
      const packedPath = loadNativeBackend({ isa, threads, smallGemm: 0 }); // every size through the blocked path
      const { mr, nr } = be.kernels;
      const r = rng(7 + threads);
      for (const b of [be, packedPath]) {
        for (const [m, inp, out] of [[5, 784, 128], [256, 784, 128], [64, 784, 512], [2 * mr + 1, 33, nr + 1], [mr, 1, 2 * nr - 1], [300, 513, 10], [3, 100, 70], [17, 1100, 33]]) {
          const x = randBuf(b, m * inp, r), w = randBuf(b, inp * out, r, -0.1, 0.1), bias = randBuf(b, out, r);
          const packed = b.packWeights(w, inp, out);
          for (const act of [ACT.relu, ACT.softmax, ACT.sigmoid]) {
            const y1 = fill(b.alloc(m * out), NaN), y2 = fill(b.alloc(m * out), NaN);
            b.denseForward(y1, x, w, bias, m, inp, out, act, 0);
            b.denseForwardPacked(y2, x, w, packed, bias, m, inp, out, act, 0);
            expect(bits(y2.data).equals(bits(y1.data)), `${isa} m=${m} ${inp}->${out} act=${act}`).toBe(true);
          }
        }
      }
    });
  }

  it('refuses a packed copy of another backend or of other dimensions, and short buffers', () => {
    const be = loadNativeBackend({ isa, threads: 1 }), other = loadNativeBackend({ isa, threads: 1 });
    const r = rng(3);
    const w = randBuf(be, 20 * 40, r), x = randBuf(be, 8 * 20, r), b = randBuf(be, 40, r), y = be.alloc(8 * 40);
    const packed = be.packWeights(w, 20, 40);
    expect(() => other.denseForwardPacked(copyTo(other, y), copyTo(other, x), copyTo(other, w), packed, copyTo(other, b), 8, 20, 40, ACT.relu, 0))
      .toThrow(/packed must come from packWeights of this backend/);
    expect(() => be.denseForwardPacked(y, x, w, packed, b, 8, 40, 20, ACT.relu, 0)).toThrow(/packed holds 20×40 weights, the layer is 40×20/);
    expect(() => be.denseForwardPacked(y, x.view(0, 10), w, packed, b, 8, 20, 40, ACT.relu, 0)).toThrow(/x/);
    expect(() => be.packWeights(w.view(0, 10), 20, 40)).toThrow(/w/);
  });

  it('a copy packed before the weights changed predicts with the old ones: pack again after a change', () => {
    const be = loadNativeBackend({ isa, threads: 1, smallGemm: 0 });
    const r = rng(5);
    const m = 16, inp = 40, out = 48;
    const w = randBuf(be, inp * out, r), x = randBuf(be, m * inp, r), b = randBuf(be, out, r);
    const old = be.packWeights(w, inp, out);
    w.data[0] += 1; // a weight changes after packing
    const want = be.alloc(m * out), stale = be.alloc(m * out), fresh = be.alloc(m * out);
    be.denseForward(want, x, w, b, m, inp, out, ACT.linear, 0);
    be.denseForwardPacked(stale, x, w, old, b, m, inp, out, ACT.linear, 0);
    be.denseForwardPacked(fresh, x, w, be.packWeights(w, inp, out), b, m, inp, out, ACT.linear, 0);
    expect(bits(fresh.data).equals(bits(want.data))).toBe(true);
    expect(bits(stale.data).equals(bits(want.data))).toBe(false);
    // packed again into the old copy: the same object, now current
    expect(be.packWeights(w, inp, out, old)).toBe(old);
    be.denseForwardPacked(stale, x, w, old, b, m, inp, out, ACT.linear, 0);
    expect(bits(stale.data).equals(bits(want.data))).toBe(true);
    expect(() => be.packWeights(w, out, inp, old)).toThrow(/into holds 40×48 weights, w is 48×40/);
    expect(() => loadNativeBackend({ isa, threads: 1 }).packWeights(copyTo(loadNativeBackend({ isa, threads: 1 }), w), inp, out, old))
      .toThrow(/into must come from packWeights of this backend/);
  });
});

describe.each([{ name: 'simd', relaxed: false }, { name: 'relaxed', relaxed: true }])('wasm $name: packed weights', ({ relaxed }) => {
  it("denseForwardPacked has denseForward's bits, and refuses another backend's copy or other dimensions", async () => {
    const b = (await loadWasmBackend(undefined, { relaxed })) as WasmBackend, other = (await loadWasmBackend(undefined, { relaxed })) as WasmBackend;
    const r = rng(11);
    for (const [m, inp, out] of [[5, 784, 128], [256, 784, 128], [64, 300, 257], [9, 33, 17], [4, 10, 300], [17, 1100, 33], [300, 129, 10]]) {
      const x = randBuf(b, m * inp, r), w = randBuf(b, inp * out, r, -0.1, 0.1), bias = randBuf(b, out, r);
      const packed = b.packWeights(w, inp, out);
      for (const act of [ACT.relu, ACT.softmax, ACT.tanh]) {
        const y1 = fill(b.alloc(m * out), NaN), y2 = fill(b.alloc(m * out), NaN);
        b.denseForward(y1, x, w, bias, m, inp, out, act, 0);
        b.denseForwardPacked(y2, x, w, packed, bias, m, inp, out, act, 0);
        expect(bits(y2.data).equals(bits(y1.data)), `wasm m=${m} ${inp}->${out} act=${act}`).toBe(true);
      }
    }
    const w = randBuf(b, 20 * 40, r), x = randBuf(b, 8 * 20, r), bias = randBuf(b, 40, r), y = b.alloc(8 * 40);
    const packed = b.packWeights(w, 20, 40);
    expect(() => other.denseForwardPacked(copyTo(other, y), copyTo(other, x), copyTo(other, w), packed, copyTo(other, bias), 8, 20, 40, ACT.relu, 0))
      .toThrow(/packed must come from packWeights of this backend/);
    expect(() => b.denseForwardPacked(y, x, w, packed, bias, 8, 40, 20, ACT.relu, 0)).toThrow(/packed holds 20×40 weights, the layer is 40×20/);
    expect(() => b.denseForwardPacked(y, x.view(0, 10), w, packed, bias, 8, 20, 40, ACT.relu, 0)).toThrow(/x/);
    expect(() => b.packWeights(w.view(0, 10), 20, 40)).toThrow(/w has 10 floats/);
    expect(() => b.packWeights(w, -1, 40)).toThrow(/inp must be a non-negative integer/);
    // packing again into a copy (a shape past the small path, so that the copy is read): the same
    // object, stale before, and denseForward's bits for the new weights after
    const [m, inp, out] = [16, 64, 48];
    const w2 = randBuf(b, inp * out, r), x2 = randBuf(b, m * inp, r), b2 = randBuf(b, out, r);
    const copy = b.packWeights(w2, inp, out);
    w2.data[3] += 1;
    const want = b.alloc(m * out), got = b.alloc(m * out);
    b.denseForward(want, x2, w2, b2, m, inp, out, ACT.linear, 0);
    b.denseForwardPacked(got, x2, w2, copy, b2, m, inp, out, ACT.linear, 0);
    expect(bits(got.data).equals(bits(want.data))).toBe(false);
    expect(b.packWeights(w2, inp, out, copy)).toBe(copy);
    b.denseForwardPacked(got, x2, w2, copy, b2, m, inp, out, ACT.linear, 0);
    expect(bits(got.data).equals(bits(want.data))).toBe(true);
    expect(() => b.packWeights(w, 40, 20, packed)).toThrow(/into holds 20×40 weights, w is 40×20/);
    expect(() => other.packWeights(copyTo(other, w), 20, 40, packed)).toThrow(/into must come from packWeights of this backend/);
  });
});
