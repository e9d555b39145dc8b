// The native boundary: every exported function, called with each argument replaced by a bad value
// (wrong type, too short, negative/huge/NaN/fractional size, out-of-range code), must throw a
// TypeError or RangeError that names the function and the argument, and never crash or write.
import { describe, expect, it } from 'vitest';
import { loadNativeAddon, loadNativeBackend } from '../src/backends/native.js';

type Kind = 'f32' | 'f32?' | 'size' | 'bool' | 'real' | 'act' | 'act4' | 'loss';
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
      ['alpha', 'real']],
    valid: () => [f(12), f(12), f(12), 3, 4, 2, 5, 0],
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
  size: [
    ['negative', () => -1], ['huge', () => 2 ** 40], ['2^31', () => 2 ** 31], ['NaN', () => NaN],
    ['Infinity', () => Infinity], ['fractional', () => 1.5], ['a string', () => '3'], ['undefined', () => undefined],
    ['a bigint', () => 3n],
  ],
  bool: [['a number', () => 1], ['a string', () => 'true'], ['undefined', () => undefined]],
  real: [['a string', () => '0.5'], ['NaN', () => NaN], ['Infinity', () => -Infinity], ['undefined', () => undefined]],
  act: [['out of range', () => 6], ['negative', () => -1], ['fractional', () => 1.5], ['a string', () => 'relu']],
  act4: [['softmax (not allowed here)', () => 5], ['negative', () => -1], ['a string', () => 'relu']],
  loss: [['out of range', () => 3], ['negative', () => -1], ['a string', () => 'mse']],
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
  for (const spec of SPECS.filter((s) => s.fn !== 'vexp' && s.fn !== 'vact')) {
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
      expect(() => be.lossDelta(ok, small, ok, 3, 4, 0, 0, 0)).toThrow(/lossDelta: a has 11 floats/);
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
