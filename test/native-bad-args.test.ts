// The native boundary: every exported function, called with each argument replaced by a bad value
// (wrong type, too short, negative/huge/NaN/fractional size, out-of-range code), must throw a
// TypeError or RangeError that names the function and the argument, and never crash or write.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { loadNativeAddon, loadNativeBackend } from '../src/backends/native.js';
import { ACT, LOSS, OPT, type ActCode, type Buf, type LossCode, type OptCode, type StepDesc, type StepHyper } from '../src/backends/backend.js';
import { JsBackend } from '../src/backends/js.js';
import { OPS, OP_MAX, OP_SLOTS, opSlots, type OpName } from '../src/backends/abi.js';
import { trainProgram } from '../src/backends/program.js';

type Kind = 'f32' | 'f32?' | 'u32?' | 'size' | 'bool' | 'real' | 'act' | 'act4' | 'loss';
interface Spec {
  fn: string;
  args: [string, Kind][];
  valid: () => unknown[];
}

const f = (n: number) => new Float32Array(n);
// Shapes used by the valid calls: m=3, n/inp=4, k/out=5
const SPECS: Spec[] = [
  {
    fn: 'gemm',
    args: [['transA', 'bool'], ['transB', 'bool'], ['m', 'size'], ['n', 'size'], ['k', 'size'], ['alpha', 'real'],
      ['a', 'f32'], ['b', 'f32'], ['beta', 'real'], ['c', 'f32']],
    valid: () => [false, true, 3, 4, 5, 1, f(15), f(20), 0, f(12)],
  },
  {
    fn: 'denseForward',
    args: [['y', 'f32'], ['x', 'f32'], ['w', 'f32'], ['b', 'f32'], ['m', 'size'], ['inp', 'size'], ['out', 'size'],
      ['act', 'act'], ['alpha', 'real']],
    valid: () => [f(15), f(12), f(20), f(5), 3, 4, 5, 5, 0.1],
  },
  {
    fn: 'denseBackward',
    args: [['dw', 'f32'], ['db', 'f32'], ['dx', 'f32?'], ['dz', 'f32'], ['x', 'f32'], ['w', 'f32'], ['m', 'size'],
      ['inp', 'size'], ['out', 'size'], ['scale', 'real'], ['prevAct', 'act4'], ['alpha', 'real']],
    valid: () => [f(20), f(5), f(12), f(15), f(12), f(20), 3, 4, 5, 1 / 3, 3, 0],
  },
  {
    fn: 'lossDelta',
    args: [['dz', 'f32'], ['a', 'f32'], ['y', 'f32'], ['m', 'size'], ['n', 'size'], ['loss', 'loss'], ['act', 'act'],
      ['alpha', 'real'], ['delta', 'real'], ['weights', 'f32?']],
    valid: () => [f(12), f(12), f(12), 3, 4, 2, 5, 0, 1, f(3)],
  },
  { fn: 'sumSquares', args: [['g', 'f32'], ['n', 'size']], valid: () => [f(12), 12] },
  {
    fn: 'sgdStep',
    args: [['p', 'f32'], ['g', 'f32'], ['n', 'size'], ['lr', 'real'], ['gradScale', 'real'], ['weightDecay', 'real'],
      ['decayCount', 'size']],
    valid: () => [f(12), f(12), 12, 0.1, 1, 0, 6],
  },
  {
    fn: 'momentumStep',
    args: [['p', 'f32'], ['g', 'f32'], ['v', 'f32'], ['n', 'size'], ['lr', 'real'], ['gradScale', 'real'], ['mu', 'real'],
      ['nesterov', 'bool'], ['weightDecay', 'real'], ['decayCount', 'size']],
    valid: () => [f(12), f(12), f(12), 12, 0.1, 1, 0.9, true, 0, 6],
  },
  {
    fn: 'adamStep',
    args: [['p', 'f32'], ['g', 'f32'], ['m', 'f32'], ['v', 'f32'], ['n', 'size'], ['lr', 'real'], ['gradScale', 'real'],
      ['beta1', 'real'], ['beta2', 'real'], ['eps', 'real'], ['bc1', 'real'], ['bc2', 'real'], ['weightDecay', 'real'],
      ['decoupled', 'bool'], ['decayCount', 'size']],
    valid: () => [f(12), f(12), f(12), f(12), 12, 1e-3, 1, 0.9, 0.999, 1e-8, 0.1, 0.001, 0.01, true, 6],
  },
  {
    fn: 'gatherRows',
    // rows 4, 2, 1 of a 5-row, 4-column src: one float less makes row 4 disappear
    args: [['dst', 'f32'], ['src', 'f32'], ['order', 'u32?'], ['start', 'size'], ['count', 'size'], ['cols', 'size']],
    valid: () => [f(12), f(20), Uint32Array.of(0, 4, 2, 1), 1, 3, 4],
  },
  { fn: 'vexp', args: [['y', 'f32'], ['x', 'f32'], ['n', 'size']], valid: () => [f(8), f(8), 8] },
  {
    fn: 'vact',
    args: [['y', 'f32'], ['x', 'f32'], ['n', 'size'], ['act', 'act4'], ['alpha', 'real']],
    valid: () => [f(8), f(8), 8, 2, 0],
  },
];

const BAD: Record<Kind, [string, (v: unknown) => unknown][]> = {
  f32: [
    ['too short', (v) => f((v as Float32Array).length - 1)],
    ['a Float64Array', (v) => new Float64Array((v as Float32Array).length)],
    ['a plain array', (v) => Array.from(v as Float32Array)],
    ['an Int32Array', (v) => new Int32Array((v as Float32Array).length)],
    ['null', () => null],
    ['undefined', () => undefined],
    ['a number', () => 3],
  ],
  'f32?': [
    ['too short', (v) => f((v as Float32Array).length - 1)],
    ['a Float64Array', (v) => new Float64Array((v as Float32Array).length)],
    ['undefined', () => undefined],
  ],
  'u32?': [
    ['too short', (v) => (v as Uint32Array).subarray(0, 3)],
    ['a Float32Array', (v) => new Float32Array((v as Uint32Array).length)],
    ['an Int32Array', (v) => Int32Array.from(v as Uint32Array)],
    ['a plain array', (v) => Array.from(v as Uint32Array)],
    ['undefined', () => undefined],
  ],
  size: [
    ['negative', () => -1], ['huge', () => 2 ** 40], ['2^31', () => 2 ** 31], ['NaN', () => NaN],
    ['Infinity', () => Infinity], ['fractional', () => 1.5], ['a string', () => '3'], ['undefined', () => undefined],
    ['a bigint', () => 3n],
  ],
  bool: [['a number', () => 1], ['a string', () => 'true'], ['undefined', () => undefined]],
  real: [['a string', () => '0.5'], ['NaN', () => NaN], ['Infinity', () => -Infinity], ['undefined', () => undefined]],
  act: [['out of range', () => 6], ['negative', () => -1], ['fractional', () => 1.5], ['a string', () => 'relu']],
  act4: [['softmax (not allowed here)', () => 5], ['negative', () => -1], ['a string', () => 'relu']],
  loss: [['out of range', () => 5], ['negative', () => -1], ['a string', () => 'mse']],
};

describe('native boundary: bad arguments throw, never crash', () => {
  const be = loadNativeBackend({ threads: 1 });
  const k = be.kernels as unknown as Record<string, (...a: unknown[]) => unknown>;

  for (const spec of SPECS) {
    it(`${spec.fn}: the valid call works, every bad argument throws naming it`, () => {
      expect(() => k[spec.fn](...spec.valid())).not.toThrow();
      let checked = 0;
      spec.args.forEach(([name, kind], i) => {
        for (const [label, make] of BAD[kind]) {
          const args = spec.valid();
          args[i] = make(args[i]);
          let err: unknown = null;
          try {
            k[spec.fn](...args);
          } catch (e) {
            err = e;
          }
          expect(err, `${spec.fn}: ${name} ${label} did not throw`).toBeInstanceOf(Error);
          expect([TypeError, RangeError].some((C) => err instanceof C), `${spec.fn}: ${name} ${label}: ${String(err)}`).toBe(true);
          expect((err as Error).message).toContain(spec.fn);
          expect((err as Error).message).toContain(name);
          checked++;
        }
      });
      // Too few arguments
      expect(() => k[spec.fn]()).toThrow();
      expect(checked).toBeGreaterThan(spec.args.length);
    });
  }

  // The same, through the argument block of the *Fast entry points (what the Backend methods use
  // for Bufs of this addon): argument p at slot 3p, a buffer as id/offset/length at 3p..3p+2.
  for (const spec of SPECS.filter((s) => s.fn !== 'vexp' && s.fn !== 'vact' && s.fn !== 'gatherRows')) {
    it(`${spec.fn}Fast: the valid block works, every bad slot throws naming the argument`, () => {
      const addon = loadNativeAddon();
      const A = be.kernels.args;
      const write = (vals: unknown[]) => {
        A.fill(0);
        vals.forEach((v, p) => {
          if (v instanceof Float32Array) {
            const [, id] = addon.allocBuf(v.length);
            A[3 * p] = id; A[3 * p + 1] = 0; A[3 * p + 2] = v.length;
          } else A[3 * p] = Number(v);
        });
      };
      const call = () => k[`${spec.fn}Fast`]();
      write(spec.valid());
      expect(call).not.toThrow();
      spec.args.forEach(([name, kind], p) => {
        const cases: [string, (A: Float64Array) => void][] = kind.startsWith('f32')
          ? [['too short', (B) => { B[3 * p + 2] -= 1; }], ['an unknown id', (B) => { B[3 * p] = 1e9; }],
            ['a fractional id', (B) => { B[3 * p] += 0.5; }], ['a view past its buffer', (B) => { B[3 * p + 1] = 1; }],
            ['a negative offset', (B) => { B[3 * p + 1] = -1; }], ...(kind === 'f32' ? [['null (-1)', (B: Float64Array) => { B[3 * p] = -1; }] as [string, (B: Float64Array) => void]] : [])]
          : kind === 'size' ? [['negative', (B) => { B[3 * p] = -1; }], ['huge', (B) => { B[3 * p] = 2 ** 40; }], ['NaN', (B) => { B[3 * p] = NaN; }], ['fractional', (B) => { B[3 * p] = 1.5; }]]
            : kind === 'bool' ? [['2', (B) => { B[3 * p] = 2; }], ['NaN', (B) => { B[3 * p] = NaN; }]]
              : kind === 'real' ? [['NaN', (B) => { B[3 * p] = NaN; }], ['Infinity', (B) => { B[3 * p] = Infinity; }]]
                : [['out of range', (B) => { B[3 * p] = 7; }], ['negative', (B) => { B[3 * p] = -1; }]];
        for (const [label, mutate] of cases) {
          write(spec.valid());
          mutate(A);
          let err: unknown = null;
          try {
            call();
          } catch (e) {
            err = e;
          }
          expect(err, `${spec.fn}Fast: ${name} ${label} did not throw`).toBeInstanceOf(Error);
          expect([TypeError, RangeError].some((C) => err instanceof C)).toBe(true);
          expect((err as Error).message, String(err)).toContain(`${spec.fn}: ${name}`);
        }
      });
    });
  }

  it('Backend methods with too-short Bufs throw naming the argument (fast path and Float32Array path)', () => {
    const js = { data: new Float32Array(12), length: 12, view: () => { throw new Error('unused'); } };
    for (const small of [be.alloc(11), be.alloc(20).view(3, 11)]) {
      const ok = be.alloc(64);
      expect(() => be.gemm(false, false, 3, 4, 5, 1, ok, ok, 0, small)).toThrow(/gemm: c has 11 floats, fewer than m\*n = 12/);
      expect(() => be.denseForward(small, ok, ok, ok, 3, 4, 4, 0, 0)).toThrow(/denseForward: y has 11 floats/);
      expect(() => be.denseBackward(ok, ok, small, ok, ok, ok, 3, 4, 4, 1, 0, 0)).toThrow(/denseBackward: dx has 11 floats/);
      expect(() => be.lossDelta(ok, small, ok, 3, 4, 0, 0, 0, 1, null)).toThrow(/lossDelta: a has 11 floats/);
      expect(() => be.sumSquares(small, 12)).toThrow(/sumSquares: g has 11 floats/);
      expect(() => be.sgdStep(ok, small, 12, 0.1, 1, 0, 0)).toThrow(/sgdStep: g has 11 floats/);
      expect(() => be.momentumStep(ok, ok, small, 12, 0.1, 1, 0.9, false, 0, 0)).toThrow(/momentumStep: v has 11 floats/);
      expect(() => be.adamStep(ok, ok, ok, small, 12, 0.1, 1, 0.9, 0.99, 1e-8, 0.1, 0.1, 0, false, 0)).toThrow(/adamStep: v has 11 floats/);
      // a Buf from elsewhere (not this addon's) goes through the Float32Array path, same checks
      expect(() => be.gemm(false, false, 3, 4, 5, 1, js, ok, 0, small)).toThrow(/gemm: a has 12 floats, fewer than m\*k = 15/);
    }
  });

  it('a size so large that m*n overflows 32 bits is rejected by the length check', () => {
    expect(() => k.gemm(false, false, 65536, 65536, 1, 1, f(65536), f(65536), 0, f(16))).toThrow(/c has 16 floats, fewer than m\*n = 4294967296/);
    expect(() => k.denseForward(f(1), f(1), f(1), f(1), 2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1, 0, 0)).toThrow(RangeError);
  });

  it('views with a byteOffset are accepted and their bounds respected', () => {
    const big = be.alloc(40);
    const c = big.view(28, 12);
    const a = be.alloc(15), b = be.alloc(20);
    a.data.fill(1);
    b.data.fill(1);
    be.gemm(false, false, 3, 4, 5, 1, a, b, 0, c);
    expect(Array.from(big.data.subarray(28))).toEqual(new Array(12).fill(5));
    expect(big.data.subarray(0, 28).every((v) => v === 0)).toBe(true);
    expect(() => be.gemm(false, false, 3, 4, 5, 1, a, b, 0, big.view(30, 10))).toThrow(/c has 10 floats/);
  });

  it('addon: create, alloc and misalignment check their arguments', () => {
    const addon = loadNativeAddon();
    expect(() => addon.create(3 as unknown as string, 1)).toThrow(TypeError);
    expect(() => addon.create('', 0)).toThrow(RangeError);
    expect(() => addon.create('', 1.5)).toThrow(RangeError);
    expect(() => addon.create('sse9', 1)).toThrow(/unknown ISA/);
    expect(() => addon.create('', 1, -1)).toThrow(/smallGemm/);
    expect(() => addon.alloc(-1)).toThrow(RangeError);
    expect(() => addon.alloc(NaN)).toThrow(RangeError);
    expect(() => addon.alloc(2 ** 40)).toThrow(RangeError);
    expect(() => addon.alloc('3' as unknown as number)).toThrow(TypeError);
    expect(() => addon.misalignment([1] as unknown as Float32Array)).toThrow(TypeError);
    expect(() => (be.kernels.setThreads as (n: unknown) => number)('2')).toThrow(TypeError);
    expect(() => be.setThreads(NaN)).toThrow(RangeError);
  });

  it('loader: unknown or unsupported ISA and bad thread counts are clear errors', () => {
    expect(() => loadNativeBackend({ isa: 'sse9' })).toThrow(/unknown ISA 'sse9'.*avx512, avx2-fma, neon, scalar/);
    const lacking = ['avx512', 'avx2-fma', 'neon'].find((i) => !be.availableIsas.includes(i))!;
    expect(() => loadNativeBackend({ isa: lacking })).toThrow(new RegExp(`ISA '${lacking}' is not supported by this CPU; it runs`));
    expect(() => loadNativeBackend({ threads: 0 })).toThrow(/threads must be a positive integer/);
    expect(() => loadNativeBackend({ threads: 1.5 })).toThrow(/threads must be a positive integer/);
    const saved = { isa: process.env.DELTAPROP_ISA, threads: process.env.DELTAPROP_THREADS };
    try {
      process.env.DELTAPROP_ISA = 'scalar';
      process.env.DELTAPROP_THREADS = '1';
      const s = loadNativeBackend();
      expect(s.isa).toBe('scalar');
      expect(s.threads).toBe(1);
      expect(loadNativeBackend({ isa: be.availableIsas[0] }).isa).toBe(be.availableIsas[0]); // option wins
      process.env.DELTAPROP_ISA = lacking;
      expect(() => loadNativeBackend()).toThrow(/from DELTAPROP_ISA/);
      process.env.DELTAPROP_ISA = '';
      process.env.DELTAPROP_THREADS = 'lots';
      expect(() => loadNativeBackend()).toThrow(/got lots \(from DELTAPROP_THREADS\)/);
    } finally {
      for (const [k2, v] of [['DELTAPROP_ISA', saved.isa], ['DELTAPROP_THREADS', saved.threads]] as const) {
        if (v === undefined) delete process.env[k2];
        else process.env[k2] = v;
      }
    }
  });
});

// compileStep (backend.ts StepCompiler): a step description is checked once, when compiling. Every
// bad field (a wrong length, a foreign buffer, a huge or non-integral size, an offset outside the
// arena, an unknown code), through the Backend method and through the raw Float64Array of the
// addon, must throw a TypeError or RangeError, never crash, and write nothing.
describe('native compileStep: bad step descriptions throw, never crash', () => {
  const be = loadNativeBackend({ threads: 1 });
  const js = new JsBackend();
  const H: StepHyper = { lr: 0.1, clipNorm: 1, weightDecay: 0.01, mu: 0.9, nesterov: true, beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 0.1, bc2: 0.001 };

  /** A valid 3-5-2 (relu, softmax) step at m = 4; every buffer filled with 0.25. */
  function good(opt: OptCode = OPT.adam): StepDesc {
    const m = 4, dims = [3, 5, 2], n = 3 * 5 + 5 * 2 + 5 + 2;
    const a = (len: number) => { const b = be.alloc(len); b.data.fill(0.25); return b; };
    return {
      m, dims, acts: [ACT.relu, ACT.softmax], alphas: [0, 0], loss: LOSS.categoricalCrossEntropy,
      x: a(m * 3), y: a(m * 2), outs: [a(m * 5), a(m * 2)], deltas: [a(m * 5), a(m * 2)],
      params: a(n), grads: a(n), backup: a(n), n, wOffsets: [0, 15], bOffsets: [25, 30], optimizer: opt,
      state1: opt === OPT.sgd ? null : a(n), state2: opt >= OPT.adam ? a(n) : null, decayCount: 25,
    };
  }
  const bufsOf = (d: StepDesc): Buf[] => [d.x, d.y, d.params, d.grads, d.backup, ...d.outs, ...d.deltas,
    ...(d.state1 ? [d.state1] : []), ...(d.state2 ? [d.state2] : [])];
  /** Throws a TypeError/RangeError naming compileStep, and leaves every buffer as it was. */
  function refused(d: StepDesc, what: string, pattern?: RegExp): void {
    const data = (b: Buf) => (b instanceof Float32Array ? b : b.data);
    const before = bufsOf(d).map((b) => Float32Array.from(data(b)));
    let err: unknown = null;
    try {
      be.compileStep(d);
    } catch (e) {
      err = e;
    }
    expect(err, `${what} did not throw`).toBeInstanceOf(Error);
    expect([TypeError, RangeError].some((C) => err instanceof C), `${what}: ${String(err)}`).toBe(true);
    expect((err as Error).message, what).toContain('compileStep');
    if (pattern) expect((err as Error).message, what).toMatch(pattern);
    bufsOf(d).forEach((b, i) => expect(data(b), `${what}: buffer ${i} written`).toEqual(before[i]));
  }

  it('the valid description compiles and runs, for every optimizer', () => {
    for (const opt of Object.values(OPT)) {
      const d = good(opt);
      const step = be.compileStep(d);
      step.run(H);
      expect(Number.isFinite(step.loss[0]), `optimizer ${opt}`).toBe(true);
    }
  });

  it('every buffer one float too short is refused, naming it', () => {
    const cases: [string, (d: StepDesc) => void, RegExp][] = [
      ['x', (d) => { d.x = be.alloc(11); }, /x has 11 floats, fewer than m\*dims\[0\] = 12/],
      ['y', (d) => { d.y = be.alloc(7); }, /y has 7 floats, fewer than m\*dims\[2\] = 8/],
      ['outs[0]', (d) => { d.outs = [be.alloc(19), d.outs[1]]; }, /outs\[0\] has 19 floats, fewer than m\*dims\[1\] = 20/],
      ['outs[1]', (d) => { d.outs = [d.outs[0], be.alloc(7)]; }, /outs\[1\] has 7 floats/],
      ['deltas[0]', (d) => { d.deltas = [be.alloc(19), d.deltas[1]]; }, /deltas\[0\] has 19 floats/],
      ['deltas[1]', (d) => { d.deltas = [d.deltas[0], be.alloc(7)]; }, /deltas\[1\] has 7 floats/],
      ['params', (d) => { d.params = be.alloc(31); }, /params has 31 floats/],
      ['grads', (d) => { d.grads = be.alloc(31); }, /grads has 31 floats/],
      ['backup', (d) => { d.backup = be.alloc(31); }, /backup has 31 floats/],
      ['state1', (d) => { d.state1 = be.alloc(31); }, /state1 has 31 floats/],
      ['state2', (d) => { d.state2 = be.alloc(31); }, /state2 has 31 floats/],
      ['a view of params', (d) => { d.params = be.alloc(40).view(9, 31); }, /params has 31 floats/],
    ];
    for (const [what, mutate, pattern] of cases) {
      const d = good();
      mutate(d);
      refused(d, what, pattern);
    }
  });

  it('foreign buffers (another backend\'s, a plain object, a Float32Array) are refused', () => {
    const fake = (len: number): Buf => ({ data: new Float32Array(len), length: len, view: () => { throw new Error('unused'); } });
    const cases: [string, (d: StepDesc) => void][] = [
      ['x from the js backend', (d) => { d.x = js.alloc(12); }],
      ['params from the js backend', (d) => { d.params = js.alloc(32); }],
      ['a fake Buf as outs[1]', (d) => { d.outs = [d.outs[0], fake(8)]; }],
      ['a fake Buf as state2', (d) => { d.state2 = fake(32); }],
      ['a bare Float32Array as grads', (d) => { d.grads = new Float32Array(32) as unknown as Buf; }],
    ];
    for (const [what, mutate] of cases) {
      const d = good();
      mutate(d);
      refused(d, what, /must be a buffer of this backend( \(this optimizer keeps its state there\))?, got (a buffer of another backend|an object)/);
    }
  });

  it('huge, negative, NaN and fractional sizes are refused (no overflow, no allocation)', () => {
    const big = [2 ** 31, 2 ** 40, 2 ** 53, 1e300, Infinity, -1, NaN, 2.5];
    for (const v of big) {
      refused({ ...good(), m: v }, `m = ${v}`);
      refused({ ...good(), n: v }, `n = ${v}`);
      refused({ ...good(), decayCount: v }, `decayCount = ${v}`);
      refused({ ...good(), dims: [3, v, 2] }, `hidden width ${v}`);
      refused({ ...good(), dims: [v, 5, 2] }, `input width ${v}`);
      refused({ ...good(), wOffsets: [0, v] }, `wOffset ${v}`);
      refused({ ...good(), bOffsets: [v, 30] }, `bOffset ${v}`);
    }
    // sizes that each fit in 32 bits but whose products do not: the length checks catch them
    refused({ ...good(), m: 2 ** 31 - 1 }, 'm = 2^31-1', /x has 12 floats, fewer than m\*dims\[0\] = 6442450941/);
    refused({ ...good(), dims: [65536, 65536, 2] }, '65536 x 65536 weights', /is outside the \d+ params/);
    refused({ ...good(), m: 65536, dims: [65536, 5, 2] }, 'm·inputs = 2^32', /is outside the \d+ params|fewer than/);
    refused({ ...good(), n: 2 ** 31 - 1, decayCount: 0 }, 'n = 2^31-1', /params has 32 floats/);
  });

  it('inconsistent shapes, offsets and codes are refused', () => {
    const cases: [string, Partial<StepDesc>, RegExp?][] = [
      ['no layers', { dims: [3], acts: [], alphas: [], outs: [], deltas: [], wOffsets: [], bOffsets: [] }, /dims must list the input width and at least one layer/],
      ['one act too few', { acts: [ACT.relu] }, /acts needs 2 entries \(one per layer\), got 1/],
      ['one delta too many', { deltas: [be.alloc(20), be.alloc(8), be.alloc(8)] }, /deltas needs 2 entries \(one per layer\), got 3/],
      ['weights past n', { wOffsets: [0, 23] }, /is outside the \d+ params/],
      ['biases past n', { bOffsets: [25, 31] }, /is outside the \d+ params/],
      ['decayCount > n', { decayCount: 33 }, /decayCount/],
      ['softmax on a hidden layer', { acts: [ACT.softmax, ACT.softmax] }, /softmax/],
      ['act 6', { acts: [6 as ActCode, ACT.softmax] }],
      ['act -1', { acts: [ACT.relu, -1 as ActCode] }],
      ['loss 5', { loss: 5 as LossCode }],
      ['optimizer 4', { optimizer: 4 as OptCode }],
      ['optimizer NaN', { optimizer: NaN as OptCode }],
      ['alpha NaN', { alphas: [NaN, 0] }, /alphas\[0\] must be a finite float32, got NaN/],
      ['alpha Infinity', { alphas: [0, Infinity] }, /alphas\[1\] must be a finite float32, got Infinity/],
      ['alpha 1e39 (Infinity in float32)', { alphas: [1e39, 0] }, /alphas\[0\] must be a finite float32, got 1e\+39/],
      ['momentum without state1', { optimizer: OPT.momentum, state1: null }, /state1 must be a buffer of this backend \(this optimizer keeps its state there\), got null/],
      ['adam without state2', { state2: null }, /state2 must be a buffer of this backend \(this optimizer keeps its state there\), got null/],
    ];
    for (const [what, patch, pattern] of cases) refused({ ...good(), ...patch }, what, pattern);
  });

  /** The op records NativeBackend.compileStep hands the addon (native/boundary/interpreter.cc), captured through a spy. */
  function records(d: StepDesc): Float64Array {
    let raw: Float64Array | null = null;
    const spy = Object.create(be, {
      kernels: { value: { compileProgram: (r: Float64Array) => { raw = r.slice(); return be.kernels.compileProgram(r); } } },
    }) as typeof be;
    spy.compileStep(d);
    return raw!;
  }
  /** The first slot of operand `name` of op `i` (whose op must be `op`) in the records. */
  const slot = (r: Float64Array, i: number, op: OpName, name: string): number => {
    expect(r[i * OP_SLOTS]).toBe(OPS[op].code);
    return i * OP_SLOTS + opSlots(op)[name];
  };
  /** The slots a record uses: its code and its operands (the rest of the fixed-width record is unread). */
  function usedSlots(r: Float64Array): number[] {
    const out: number[] = [];
    for (let i = 0; i < r.length / OP_SLOTS; i++) {
      const name = (Object.keys(OPS) as OpName[]).find((k) => OPS[k].code === r[i * OP_SLOTS])!;
      const last = OPS[name].operands.at(-1)!, slots = opSlots(name);
      const end = slots[last.name] + (last.kind === 'buffer' || last.kind === 'buffer?' ? 3 : 1);
      for (let k = 0; k < end; k++) out.push(i * OP_SLOTS + k);
    }
    return out;
  }

  it('the raw program: every slot set to a bad value throws or compiles a program that runs safely', () => {
    const valid = records(good());
    expect(valid.length).toBe(trainProgram(good()).length * OP_SLOTS);
    const k = be.kernels;
    const values = [NaN, -1, -2, 0.5, 1e300, -Infinity, Infinity, 2 ** 31, 2 ** 53, 1e9, 0, 1, 7, 64];
    const used = usedSlots(valid);
    let threw = 0, ran = 0;
    for (const i of used) {
      for (const v of values) {
        const d = valid.slice();
        d[i] = v;
        let step: { run(): void } | null = null;
        try {
          step = k.compileProgram(d);
        } catch (e) {
          expect([TypeError, RangeError].some((C) => e instanceof C), `slot ${i} = ${v}: ${String(e)}`).toBe(true);
          expect((e as Error).message).toContain('compileProgram');
          threw++;
          continue;
        }
        // accepted (e.g. another valid code, a shorter view, alpha 1e300 rounding to inf): it must
        // stay inside its buffers whatever it computes
        be.kernels.args.set([0.1, 1, 0, 0.9, 1, 0.9, 0.999, 1e-8, 0.1, 0.001]);
        try {
          step.run();
          ran++;
        } catch (e) {
          expect(String(e), `slot ${i} = ${v}`).toMatch(/compiled (step|program)/);
        }
      }
    }
    expect(threw).toBeGreaterThan(used.length * 5);
    expect(ran).toBeGreaterThan(0);
    // wrong container or length
    for (const d of [valid.subarray(0, valid.length - 1), Float64Array.from([...valid, 0]), new Float64Array(0)]) {
      expect(() => k.compileProgram(d), `length ${d.length}`).toThrow(/compileProgram: the program must be one or more op records/);
    }
    for (const d of [Float32Array.from(valid), Array.from(valid), null, undefined, 3]) {
      expect(() => k.compileProgram(d as unknown as Float64Array)).toThrow(TypeError);
    }
    expect(() => (k.compileProgram as (d: Float64Array) => unknown).call({}, valid)).toThrow(/method of its kernel object/);
  });

  it('the raw program: unknown op codes, buffers out of range and freed ids are refused, naming the op', () => {
    const valid = records(good());
    const k = be.kernels;
    for (const code of [0, OP_MAX + 1, 99, -1, 1.5, NaN]) {
      const d = valid.slice();
      d[2 * OP_SLOTS] = code;
      expect(() => k.compileProgram(d), `code ${code}`).toThrow(new RangeError(`compileProgram: op 2: unknown op code ${code} (known: 1 to ${Object.keys(OPS).length})`));
    }
    const x = slot(valid, 0, 'denseForward', 'x');
    const view = valid.slice();
    view[x + 1] = 1; // the same 12 floats, one float further: past the end of x's allocation
    expect(() => k.compileProgram(view)).toThrow('compileProgram: op 0: denseForward: x: view [1, 13) is outside its buffer of 12 floats');
    const short = valid.slice();
    short[x + 2] = 11;
    expect(() => k.compileProgram(short)).toThrow('compileProgram: op 0: denseForward: x has 11 floats, fewer than m*inp = 12');
    const id = valid.slice();
    id[x] = 1e6;
    expect(() => k.compileProgram(id)).toThrow('compileProgram: op 0: denseForward: x: no live buffer with id 1000000');
    const act = valid.slice();
    act[slot(valid, 1, 'denseForward', 'act')] = 6;
    expect(() => k.compileProgram(act)).toThrow('compileProgram: op 1: denseForward: act must be an integer in [0, 5], got 6');
    const prev = valid.slice();
    prev[slot(valid, 3, 'denseBackward', 'prevAct')] = 5; // softmax is never a previous activation
    expect(() => k.compileProgram(prev)).toThrow('compileProgram: op 3: denseBackward: prevAct must be an integer in [0, 4], got 5');
    const dec = valid.slice();
    dec[slot(valid, 7, 'adamUpdate', 'decoupled')] = 2;
    expect(() => k.compileProgram(dec)).toThrow('compileProgram: op 7: adamUpdate: decoupled must be a boolean (0 or 1 in the op record), got 2');
    expect(() => k.compileProgram(valid)).not.toThrow();
  });

  it('the raw program: the loss op\'s row weights and delta are checked as the kernel checks them', () => {
    const m = 4, weights = be.alloc(m);
    weights.data.fill(2);
    const valid = records({ ...good(), weights, delta: 0.5 });
    const k = be.kernels;
    const w = slot(valid, 2, 'lossDelta', 'weights'), delta = slot(valid, 2, 'lossDelta', 'delta');
    expect(valid[w + 2]).toBe(m);
    expect(valid[delta]).toBe(0.5);
    const short = valid.slice();
    short[w + 2] = 3;
    expect(() => k.compileProgram(short)).toThrow('compileProgram: op 2: lossDelta: weights has 3 floats, fewer than m = 4');
    const over = valid.slice();
    over.set([valid[slot(valid, 2, 'lossDelta', 'dz')], valid[slot(valid, 2, 'lossDelta', 'dz') + 1], 4], w); // inside dz
    expect(() => k.compileProgram(over)).toThrow('compileProgram: op 2: lossDelta: dz and weights overlap (an output must not share memory with another argument)');
    const bad = valid.slice();
    bad[delta] = 1e39;
    expect(() => k.compileProgram(bad)).toThrow('compileProgram: op 2: lossDelta: delta must be a finite float32, got 1e+39');
    const none = valid.slice();
    none[w] = -1; // null: every row weighs 1
    expect(() => k.compileProgram(none)).not.toThrow();
    expect(() => k.compileProgram(valid)).not.toThrow();
  });

  it('the raw program: an output that overlaps another operand of its op is refused, as through the Backend', () => {
    const valid = records(good());
    const d = valid.slice();
    // op 3 (layer 1's backward): dx (deltas[0], 20 floats) over params [0, 20), which its w [15, 25) shares
    const dx = slot(valid, 3, 'denseBackward', 'dx'), w = slot(valid, 3, 'denseBackward', 'w');
    expect(valid[w + 1]).toBe(15);
    d.set([d[w], 0, 20], dx);
    expect(() => be.kernels.compileProgram(d)).toThrow('compileProgram: op 3: denseBackward: dx and w overlap (an output must not share memory with another argument)');
    const x = slot(valid, 0, 'denseForward', 'x');
    const y2 = valid.slice();
    y2.set([valid[x], valid[x + 1], 12], slot(valid, 0, 'denseForward', 'y'));
    y2[slot(valid, 0, 'denseForward', 'out')] = 3; // a 3-unit layer whose output is x itself
    y2[slot(valid, 1, 'denseForward', 'inp')] = 3;
    expect(() => be.kernels.compileProgram(y2)).toThrow('compileProgram: op 0: denseForward: y and x overlap (an output must not share memory with another argument)');
    expect(() => be.kernels.compileProgram(valid)).not.toThrow();
  });

  it('a program compiled from raw records whose buffer was garbage-collected throws instead of writing', async () => {
    const d = good();
    const recs = records(d);
    // layer 0's input replaced by a buffer nothing else references
    const addon = loadNativeAddon();
    (() => { const [, id] = addon.allocBuf(12); recs.set([id, 0, 12], slot(recs, 0, 'denseForward', 'x')); })();
    const step = be.kernels.compileProgram(recs);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    be.kernels.args.set([0.1, 0, 0, 0, 0, 0.9, 0.999, 1e-8, 0.1, 0.001]);
    const before = Float32Array.from(d.params.data);
    expect(() => step.run()).toThrow(/compiled program: one of its buffers was freed/);
    expect(d.params.data).toEqual(before);
  });

  it('bad hyper-parameters at run time throw and leave the weights alone', () => {
    const d = good();
    const step = be.compileStep(d);
    const before = Float32Array.from(d.params.data);
    for (const key of ['lr', 'clipNorm', 'weightDecay', 'mu', 'beta1', 'beta2', 'eps', 'bc1', 'bc2'] as const) {
      for (const v of [NaN, Infinity, 1e39]) {
        expect(() => step.run({ ...H, [key]: v }), `${key} = ${v}`).toThrow(new RegExp(`compiled step: ${key} must be a finite float32, got ${String(v).replace('+', '\\+')}`));
      }
      expect(() => step.run({ ...H, [key]: '0.5' as unknown as number }), `${key} = '0.5'`).toThrow(new RegExp(`${key} must be a number, got a string`));
    }
    expect(() => step.run({ ...H, nesterov: 1 as unknown as boolean })).toThrow(/nesterov must be a boolean, got a number/);
    expect(() => step.run({ ...H, bc2: 0 })).toThrow(/compiled step: bc2 must be a nonzero finite float32, got 0/);
    expect(() => step.run({ ...H, bc1: 1e-50 })).toThrow(/compiled step: bc1 must be a nonzero finite float32, got 1e-50/);
    expect(d.params.data).toEqual(before);
  });
});
