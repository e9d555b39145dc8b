// Programs (src/backends/program.ts) on the backends that compile them: a compiled program gives
// the bits of the TypeScript interpreter running the same ops kernel by kernel on the same backend
// (forward passes, hand-made programs, a run of elementwise ops the native interpreter splits over
// threads), and a bad program is refused when compiling with one clear message on every backend.
import { describe, expect, it } from 'vitest';
import { ACT, LOSS, OPT, type Backend, type Buf, type StepDesc } from '../src/backends/backend.js';
import { interpret } from '../src/backends/interpreter.js';
import { JsBackend } from '../src/backends/js.js';
import { loadNativeBackend } from '../src/backends/native.js';
import { forwardProgram, gradientProgram, trainProgram, type Op, type Program } from '../src/backends/program.js';
import { BACKENDS } from './backends.js';

const COMPILING = BACKENDS.filter((b) => b.compileProgram);

function fill(b: Buf, seed: number): Buf {
  let s = seed;
  const d = b.data;
  for (let i = 0; i < d.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    d[i] = (s / 2 ** 32) * 2 - 1;
  }
  return b;
}

/** A 5-7-3 (tanh, softmax) network at m = 6, every buffer filled from `seed`. */
function desc(be: Backend, seed: number): StepDesc {
  const m = 6, dims = [5, 7, 3], n = 5 * 7 + 7 * 3 + 7 + 3;
  const a = (len: number, k: number) => fill(be.alloc(len), seed + k);
  return {
    m, dims, acts: [ACT.tanh, ACT.softmax], alphas: [0, 0], loss: LOSS.categoricalCrossEntropy,
    x: a(m * 5, 1), y: a(m * 3, 2), outs: [a(m * 7, 3), a(m * 3, 4)], deltas: [a(m * 7, 5), a(m * 3, 6)],
    params: a(n, 7), grads: a(n, 8), backup: a(n, 9), n, wOffsets: [0, 35], bOffsets: [56, 63], optimizer: OPT.momentum,
    state1: a(n, 10), state2: null, decayCount: 56,
  };
}

const bits = (b: Buf): Buffer => Buffer.from(b.data.slice().buffer);
const H = { lr: 0.1, clipNorm: 0.3, weightDecay: 0.01, mu: 0.9, nesterov: true, beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 0.1, bc2: 0.001 };

describe.each(COMPILING.map((b) => [b.name, b] as const))('programs compiled on %s', (_name, be) => {
  const buffersOf = (d: StepDesc): Buf[] => [d.x, d.y, ...d.outs, ...d.deltas, d.params, d.grads, d.backup, d.state1!];

  it.each([
    ['the forward pass', forwardProgram],
    ['the gradients (forward, loss, backward)', gradientProgram],
    ['a training step', trainProgram],
  ] as const)('%s in one call: the same bits as the TypeScript interpreter', (_what, build) => {
    const a = desc(be, 3), b = desc(be, 3);
    const compiled = be.compileProgram!(build(a));
    const ref = build(b), loss = new Float64Array(1);
    for (let t = 0; t < 3; t++) {
      compiled.run(H);
      interpret(be, ref, H, loss);
      if (build !== forwardProgram) expect(compiled.loss[0]).toBe(loss[0]);
    }
    buffersOf(a).forEach((buf, i) => expect(bits(buf).equals(bits(buffersOf(b)[i])), `buffer ${i}`).toBe(true));
  });

  it('a forward pass reads no hyper-parameters: run(null) is enough, and the loss slot is left alone', () => {
    const d = desc(be, 4);
    const p = be.compileProgram!(forwardProgram(d));
    p.run(null);
    const ref = desc(be, 4);
    interpret(be, forwardProgram(ref), null, new Float64Array(1));
    expect(bits(d.outs[1]).equals(bits(ref.outs[1]))).toBe(true);
  });

  it('a run of elementwise ops, joinable or not (buffers one float apart), gives the interpreter\'s bits', () => {
    // 70k floats: above the native interpreter's threading threshold, so a joined run is split in ranges
    const n = 70_000, make = (seed: number) => ({ p: fill(be.alloc(n + 1), seed), g: fill(be.alloc(n), seed + 1), v: fill(be.alloc(n), seed + 2), c: be.alloc(n + 1) });
    const ops = (s: ReturnType<typeof make>): Program => [
      { op: 'copy', dst: s.c.view(0, n), src: s.p.view(0, n), n },
      { op: 'momentumUpdate', p: s.p.view(0, n), g: s.g, v: s.v, n, decayCount: 1000 },
      // shifted by one float from the copy's destination: must not run range by range with it
      { op: 'copy', dst: s.c.view(1, n), src: s.v, n },
      { op: 'sgdUpdate', p: s.c.view(0, n), g: s.g, n, decayCount: n },
    ];
    const a = make(5), b = make(5);
    be.compileProgram!(ops(a)).run(H);
    interpret(be, ops(b), H, new Float64Array(1));
    for (const k of ['p', 'g', 'v', 'c'] as const) expect(bits(a[k]).equals(bits(b[k])), k).toBe(true);
  });
});

describe('bad programs are refused when compiling, with the same words on every backend', () => {
  const cases: [string, (be: Backend, d: StepDesc) => unknown, string][] = [
    ['an empty program', () => [], 'TypeError: compileProgram: the program must be a non-empty array of ops, got an empty array'],
    ['not an array', () => ({ op: 'copy' }), 'TypeError: compileProgram: the program must be a non-empty array of ops, got an object'],
    ['an unknown op', (_be, d) => [...forwardProgram(d), { op: 'dropout', x: d.x }],
      "RangeError: compileProgram: op 2: unknown op 'dropout' (known: denseForward, lossDelta, denseBackward, clipNorm, copy, sgdUpdate, momentumUpdate, adamUpdate, dropoutForward, dropoutBackward, batchNormForward, batchNormInference, batchNormBackward, layerNormForward, layerNormBackward, gatherRows)"],
    ['a null op', (_be, d) => [forwardProgram(d)[0], null], 'RangeError: compileProgram: op 1: unknown op undefined (known: denseForward, lossDelta, denseBackward, clipNorm, copy, sgdUpdate, momentumUpdate, adamUpdate, dropoutForward, dropoutBackward, batchNormForward, batchNormInference, batchNormBackward, layerNormForward, layerNormBackward, gatherRows)'],
    ['a buffer too short', (be, d) => [{ ...forwardProgram(d)[0], y: be.alloc(41) }],
      'RangeError: compileProgram: op 0: denseForward: y has 41 floats, fewer than m*out = 42'],
    ['a size past its buffer', (_be, d) => [{ ...(trainProgram(d)[7] as Op), n: 67 }],
      'RangeError: compileProgram: op 0: momentumUpdate: p has 66 floats, fewer than n = 67'],
    ['a foreign buffer', (_be, d) => [{ ...forwardProgram(d)[0], x: new JsBackend().alloc(30) }],
      'TypeError: compileProgram: op 0: denseForward: x must be a buffer of this backend, got a buffer of another backend'],
    ['a missing operand', (_be, d) => [{ op: 'copy', dst: d.backup, n: 66 }],
      'TypeError: compileProgram: op 0: copy: src must be a buffer of this backend, got undefined'],
    ['a bad code', (_be, d) => [{ ...forwardProgram(d)[1], act: 9 }],
      'RangeError: compileProgram: op 0: denseForward: act must be an integer in [0, 5], got 9'],
    ['decoupled not a boolean', (_be, d) => [{ op: 'adamUpdate', p: d.params, g: d.grads, m: d.state1, v: d.backup, n: 66, decoupled: 1, decayCount: 0 }],
      'TypeError: compileProgram: op 0: adamUpdate: decoupled must be a boolean, got a number'],
    ['an output over an input', (_be, d) => [{ op: 'copy', dst: d.params.view(1, 60), src: d.params, n: 60 }],
      'RangeError: compileProgram: op 0: copy: dst and src overlap (an output must not share memory with another argument)'],
  ];
  for (const [what, make, message] of cases) {
    it(what, () => {
      const seen = COMPILING.map((be) => {
        const d = desc(be, 1);
        const before = bits(d.params);
        try {
          be.compileProgram!(make(be, d) as Program);
          return `${be.name}: compiled`;
        } catch (e) {
          expect(bits(d.params).equals(before)).toBe(true);
          return `${(e as Error).name}: ${(e as Error).message}`;
        }
      });
      for (const s of seen) expect(s).toBe(message);
    });
  }
});

// gatherRows: a batch staged inside the program (off-thread training), on every backend: the js
// backend runs it through the TypeScript interpreter, native and wasm in their own as well.
describe.each(BACKENDS.map((b) => [b.name, b] as const))('the gatherRows op on %s', (_name, be) => {
  const ROWS = 9, COLS = 5;
  const setup = (m: number, cols = COLS) => {
    const src = fill(be.alloc(ROWS * cols), 7), dst = be.alloc(m * cols), idx = be.alloc(m);
    const op: Op = { op: 'gatherRows', dst, src, idx, m, rows: ROWS, cols };
    return { src, dst, idx, op };
  };
  // the interpreters of this backend: kernel by kernel, and compiled where it compiles programs
  const runners = (program: Program): [string, () => void][] => [
    ['interpret', () => interpret(be, program, null, new Float64Array(1))],
    ...(be.compileProgram ? [['compiled', ((c) => () => c.run(null))(be.compileProgram(program))] as [string, () => void]] : []),
  ];
  const expected = (src: Buf, rows: number[], cols: number): Float32Array => {
    const out = new Float32Array(rows.length * cols);
    rows.forEach((r, i) => out.set(src.data.subarray(r * cols, (r + 1) * cols), i * cols));
    return out;
  };

  it('copies row idx[i] of src into row i of dst, repeats and the last row included, whatever idx holds on each run', () => {
    const s = setup(6);
    for (const [how, run] of runners([s.op])) {
      for (const rows of [[8, 0, 3, 3, 7, 1], [0, 1, 2, 3, 4, 5], [8, 8, 8, 8, 8, 8]]) {
        s.idx.data.set(rows);
        s.dst.data.fill(NaN);
        run();
        expect(Buffer.from(s.dst.data.slice().buffer).equals(Buffer.from(expected(s.src, rows, COLS).buffer)), `${how} ${rows}`).toBe(true);
      }
    }
  });

  it('splits a large batch over threads with the same result (256 rows of 784)', () => {
    const rows = 300, cols = 784, m = 256;
    const src = fill(be.alloc(rows * cols), 3), dst = be.alloc(m * cols), idx = be.alloc(m);
    for (let i = 0; i < m; i++) idx.data[i] = (i * 97 + 13) % rows;
    const want = expected(src, Array.from(idx.data), cols);
    for (const [how, run] of runners([{ op: 'gatherRows', dst, src, idx, m, rows, cols }])) {
      dst.data.fill(0);
      run();
      expect(Buffer.from(dst.data.slice().buffer).equals(Buffer.from(want.buffer)), how).toBe(true);
    }
  });

  it('a row number outside src, negative, fractional or NaN is a RangeError naming it, and nothing is copied', () => {
    const s = setup(4);
    for (const [how, run] of runners([s.op])) {
      const prefix = how === 'interpret' ? 'interpret' : 'compiled program';
      for (const [bad, shown] of [[9, '9'], [-1, '-1'], [2.5, '2.5'], [NaN, 'NaN'], [1e30, '1.0000000150474662e+30'], [Infinity, 'Infinity']] as const) {
        s.idx.data.set([0, 1, 2, 3]);
        s.idx.data[2] = bad;
        s.dst.data.fill(42);
        expect(run, `${how} ${bad}`).toThrow(new RangeError(`${prefix}: op 0 (gatherRows): idx[2] = ${shown} is not a row of src (an integer in [0, ${ROWS}))`));
        expect(s.dst.data.every((v) => v === 42), `${how} ${bad}: dst untouched`).toBe(true);
      }
      // the same program runs again once the row numbers are good
      s.idx.data.set([3, 2, 1, 0]);
      run();
      expect(Array.from(s.dst.data.subarray(0, COLS))).toEqual(Array.from(s.src.data.subarray(3 * COLS, 4 * COLS)));
    }
  });

});

describe.each(COMPILING.map((b) => [b.name, b] as const))('the gatherRows op compiled on %s', (_name, be) => {
  const ROWS = 9, COLS = 5;
  it('a bad row number ends a compiled step before it updates anything', () => {
    const d = desc(be, 5);
    const src = fill(be.alloc(ROWS * 5), 11), idx = be.alloc(6);
    const program: Program = [{ op: 'gatherRows', dst: d.x, src, idx, m: 6, rows: ROWS, cols: 5 }, ...trainProgram(d)];
    const compiled = be.compileProgram!(program);
    const before = bits(d.params);
    idx.data.set([0, 1, 2, 3, 4, 99]);
    expect(() => compiled.run(H)).toThrow(/compiled program: op 0 \(gatherRows\): idx\[5\] = 99 is not a row of src/);
    expect(bits(d.params).equals(before)).toBe(true);
    idx.data.set([0, 1, 2, 3, 4, 5]);
    compiled.run(H);
    expect(bits(d.params).equals(before)).toBe(false);
  });

  it('is checked once when compiling, as every op: a source shorter than rows*cols, an output over an input', () => {
    const src = fill(be.alloc(ROWS * COLS), 7);
    const s = { src, op: { op: 'gatherRows', dst: be.alloc(4 * COLS), src, idx: be.alloc(4), m: 4, rows: ROWS, cols: COLS } as Op };
    expect(() => be.compileProgram!([{ ...s.op, rows: ROWS + 1 } as Op]))
      .toThrow(new RangeError(`compileProgram: op 0: gatherRows: src has ${ROWS * COLS} floats, fewer than rows*cols = ${(ROWS + 1) * COLS}`));
    expect(() => be.compileProgram!([{ ...s.op, idx: be.alloc(3) } as Op]))
      .toThrow(new RangeError('compileProgram: op 0: gatherRows: idx has 3 floats, fewer than m = 4'));
    expect(() => be.compileProgram!([{ ...s.op, dst: s.src.view(0, 4 * COLS) } as Op]))
      .toThrow(new RangeError('compileProgram: op 0: gatherRows: dst and src overlap (an output must not share memory with another argument)'));
  });
});

describe.skipIf(!BACKENDS.some((b) => b.name === 'native'))('native programs and threads', () => {
  it('a training program gives the same bits on 1 and 2 threads (the update split over threads)', () => {
    const run = (threads: number): Buffer[] => {
      const be = loadNativeBackend({ threads });
      const n = 80_000, p = fill(be.alloc(n), 1), g = fill(be.alloc(n), 2), m = be.alloc(n), v = be.alloc(n), c = be.alloc(n);
      const program: Program = [{ op: 'clipNorm', g, n }, { op: 'copy', dst: c, src: p, n },
        { op: 'adamUpdate', p, g, m, v, n, decoupled: true, decayCount: 50_000 }];
      const compiled = be.compileProgram(program);
      for (let t = 0; t < 3; t++) compiled.run(H);
      return [p, m, v, c].map(bits);
    };
    const one = run(1), two = run(2);
    one.forEach((b, i) => expect(b.equals(two[i]), `buffer ${i}`).toBe(true));
  });
});

describe('the TypeScript interpreter', () => {
  it('runs on any backend, and an update op without hyper-parameters is a clear error before it writes', () => {
    const js = new JsBackend(), d = desc(js, 2);
    const program = trainProgram(d), loss = new Float64Array(1);
    const before = bits(d.params);
    expect(() => interpret(js, program, null, loss)).toThrow(new TypeError('interpret: op 5 (clipNorm) reads the hyper-parameters, but none were given'));
    expect(bits(d.params).equals(before)).toBe(true);
    interpret(js, program, H, loss);
    expect(Number.isFinite(loss[0])).toBe(true);
    expect(bits(d.params).equals(before)).toBe(false);
    expect(bits(d.backup).equals(before)).toBe(true); // the copy op: the params from before the update
  });
});
