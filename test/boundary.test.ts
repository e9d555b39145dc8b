// One table of bad kernel calls, run against every backend (native, wasm, js): each must be
// refused with the same error (class and message, naming the kernel, the argument and what was
// wrong), and must write nothing. The table is built from the kernel contract
// (src/backends/contract.ts) and checked against hand-written messages for the defects it exists
// for: numbers that are finite in float64 but not in float32, unknown codes, null buffers,
// coerced types, outputs that overlap inputs.
import { describe, expect, it } from 'vitest';
import type { Backend, Buf, StepHyper } from '../src/backends/backend.js';
import { FAST, FAST_TYPES, KERNELS, isBufLike, type ArgContract, type BufferSpace, type KernelName } from '../src/backends/contract.js';
import { JsBackend } from '../src/backends/js.js';
import { loadNativeBackend } from '../src/backends/native.js';
import { loadWasmBackend } from '../src/backends/wasm.js';

const backends: Backend[] = [loadNativeBackend({ threads: 1 }), await loadWasmBackend(), new JsBackend()];

// sizes of the valid calls
const SIZES: Record<string, number> = { m: 3, n: 4, k: 5, inp: 4, out: 5 };
const NUMBERS: Record<string, number> = {
  alpha: 0.5, beta: 0, scale: 1 / 3, lr: 0.1, gradScale: 1, weightDecay: 0.01, mu: 0.9, beta1: 0.9, beta2: 0.999,
  eps: 1e-8, bc1: 0.1, bc2: 0.001, rate: 0.25, momentum: 0.99, seed: 7, step: 4294967295, layer: 2, delta: 1,
};
const CODES: Record<string, number> = { act: 1, prevAct: 3, loss: 0 };
const BOOLS: Record<string, boolean> = { transA: false, transB: true, nesterov: true, decoupled: true, update: true };
// the optimizers' n: 12 floats, 6 of them decayed
const N_OPT = 12;

/** A value to put in argument `a` of a valid call on backend `be` (buffers: fresh, filled). */
function validArg(be: Backend, fn: KernelName, a: ArgContract): unknown {
  const n = fn === 'sumSquares' || fn.endsWith('Step') ? N_OPT : SIZES.n;
  if (a.kind === 'buffer' || a.kind === 'buffer?') {
    const len = a.floats!.reduce((p, s) => p * (s === 'n' ? n : SIZES[s]), 1);
    const b = be.alloc(len);
    for (let i = 0; i < len; i++) b.data[i] = 0.25 + 0.01 * i;
    return b;
  }
  if (a.kind === 'size') return a.name === 'n' ? n : SIZES[a.name];
  if (a.kind === 'u32' || a.kind === 'rate') return NUMBERS[a.name];
  if (a.kind === 'decayCount') return N_OPT / 2;
  if (a.kind === 'bool') return BOOLS[a.name];
  if (a.kind === 'act' || a.kind === 'prevAct' || a.kind === 'loss') return CODES[a.name];
  return NUMBERS[a.name];
}

interface Case {
  fn: KernelName;
  label: string;
  /** makes the call's arguments on one backend */
  args: (be: Backend) => unknown[];
}

function validArgs(be: Backend, fn: KernelName): unknown[] {
  return KERNELS[fn].map((a) => validArg(be, fn, a));
}

// Bad values per kind, each with a label.
const BAD: Record<string, [string, unknown][]> = {
  number: [['null', null], ['undefined', undefined], ["'2'", '2'], ['true', true], ['a bigint', 2n], ['an object', {}]],
  size: [['-1', -1], ['1.5', 1.5], ['NaN', NaN], ['Infinity', Infinity], ['2^31', 2 ** 31]],
  float32: [['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity], ['1e39', 1e39], ['-1e39', -1e39], ['3.5e38', 3.5e38]],
  bool: [['1', 1], ["'true'", 'true'], ['null', null], ['undefined', undefined]],
  buffer: [['null', null], ['undefined', undefined], ['a number', 3], ['a plain object', {}], ['a Float32Array', new Float32Array(64)]],
};

function cases(): Case[] {
  const out: Case[] = [];
  for (const fn of Object.keys(KERNELS) as KernelName[]) {
    const contract = KERNELS[fn] as readonly ArgContract[];
    contract.forEach((a, i) => {
      const put = (label: string, v: unknown | ((be: Backend, args: unknown[]) => unknown)) => out.push({
        fn, label: `${a.name} = ${label}`,
        args: (be) => {
          const args = validArgs(be, fn);
          args[i] = typeof v === 'function' ? (v as (be: Backend, args: unknown[]) => unknown)(be, args) : v;
          return args;
        },
      });
      if (a.kind === 'buffer' || a.kind === 'buffer?') {
        for (const [label, v] of BAD.buffer) if (!(a.kind === 'buffer?' && v === null)) put(label, v);
        put('one float too short', (be: Backend, args: unknown[]) => {
          const b = args[i] as Buf;
          return be.alloc(b.length + 1).view(1, b.length - 1);
        });
        return;
      }
      if (a.kind === 'bool') {
        for (const [label, v] of BAD.bool) put(label, v);
        return;
      }
      for (const [label, v] of BAD.number) put(label, v);
      if (a.kind === 'float32' || a.kind === 'nonzero') for (const [label, v] of BAD.float32) put(label, v);
      else if (a.kind === 'size') for (const [label, v] of BAD.size) put(label, v);
      else if (a.kind === 'u32') for (const [label, v] of [...BAD.size.filter(([l]) => l !== '2^31'), ['2^32', 2 ** 32]] as [string, number][]) put(label, v);
      else if (a.kind === 'rate') for (const v of [-0.1, 1, 1.5, 0.99999999, NaN, Infinity]) put(String(v), v);
      else if (a.kind === 'decayCount') for (const v of [-1, 1.5, N_OPT + 1, NaN]) put(String(v), v);
      else for (const v of [-1, 0.5, a.kind === 'act' ? 6 : a.kind === 'prevAct' ? 5 : 5, 99]) put(String(v), v);
      if (a.kind === 'nonzero') put('1e-50 (0 in float32)', 1e-50);
    });
    // every output against every other buffer: sharing one float is refused, adjacent is fine
    const bufs = contract.map((a, i) => [a, i] as const).filter(([a]) => a.kind === 'buffer' || a.kind === 'buffer?');
    for (const [o, i] of bufs) {
      if (!o.output) continue;
      for (const [b, j] of bufs) {
        if (j === i) continue;
        out.push({
          fn, label: `${o.name} overlapping ${b.name} by one float`,
          args: (be) => {
            const args = validArgs(be, fn);
            const lo = (args[i] as Buf).length, lb = (args[j] as Buf).length;
            const big = be.alloc(lo + lb);
            args[i] = big.view(0, lo);
            args[j] = big.view(lo - 1, lb);
            return args;
          },
        });
      }
    }
  }
  return out;
}

/** The error a call throws on one backend ('' when it does not throw), and whether it wrote. */
function attempt(be: Backend, c: Case): { error: string; wrote: boolean } {
  const args = c.args(be);
  const bufs = args.filter((v): v is Buf => typeof v === 'object' && v !== null && (v as Buf).data instanceof Float32Array);
  const before = bufs.map((b) => Float32Array.from(b.data));
  let error = '';
  try {
    (be[c.fn] as (...a: unknown[]) => unknown).apply(be, args);
  } catch (e) {
    error = `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
  const wrote = bufs.some((b, k) => !b.data.every((v, x) => Object.is(v, before[k][x])));
  return { error, wrote };
}

describe('the kernel contract: every backend refuses the same bad calls with the same error', () => {
  const all = cases();

  it('the valid calls run on every backend', () => {
    for (const fn of Object.keys(KERNELS) as KernelName[]) {
      for (const be of backends) {
        expect(() => (be[fn] as (...a: unknown[]) => unknown).apply(be, validArgs(be, fn)), `${be.name} ${fn}`).not.toThrow();
      }
    }
  });

  it(`${all.length} bad calls: identical errors naming the kernel and the argument, nothing written`, () => {
    expect(all.length).toBeGreaterThan(300);
    for (const c of all) {
      const got = backends.map((be) => ({ be: be.name, ...attempt(be, c) }));
      const what = `${c.fn}(${c.label})`;
      for (const g of got) {
        expect(g.error, `${what} on ${g.be} did not throw`).not.toBe('');
        expect(g.error, `${what} on ${g.be}`).toMatch(new RegExp(`^(TypeError|RangeError): ${c.fn}: `));
        expect(g.error, `${what} on ${g.be}: the argument is not named`).toContain(c.label.split(' ')[0]);
        expect(g.wrote, `${what} on ${g.be} wrote to a buffer`).toBe(false);
      }
      expect(new Set(got.map((g) => g.error)).size, `${what}: ${got.map((g) => `${g.be}: ${g.error}`).join(' | ')}`).toBe(1);
    }
  });

  it('the one-expression guards of the hot path agree with the table: true for every valid call, false for every bad one', () => {
    // (a guard that said true to a bad call would let it through; false to a good one costs a slow check)
    const space: BufferSpace = {
      accepts: isBufLike, length: (b) => b.length, memory: (b) => b.data.buffer, start: (b) => b.data.byteOffset / 4,
    };
    const js = backends.find((b) => b.name === 'js')!;
    const fast = FAST as unknown as Record<KernelName, (s: BufferSpace, ...a: unknown[]) => boolean>;
    const types = FAST_TYPES as unknown as Record<KernelName, (...a: unknown[]) => boolean>;
    for (const fn of Object.keys(KERNELS) as KernelName[]) {
      expect(fast[fn](space, ...validArgs(js, fn)), fn).toBe(true);
      expect(types[fn](...validArgs(js, fn)), fn).toBe(true);
    }
    for (const c of all) expect(fast[c.fn](space, ...c.args(js)), `${c.fn}(${c.label})`).toBe(false);
    // the types-only guard says false exactly to the calls whose error is a TypeError
    for (const c of all) {
      const typeError = attempt(js, c).error.startsWith('TypeError');
      expect(types[c.fn](...c.args(js)), `${c.fn}(${c.label})`).toBe(!typeError);
    }
  });

  it('outputs adjacent to their inputs (sharing no float) are accepted', () => {
    for (const fn of Object.keys(KERNELS) as KernelName[]) {
      const contract = KERNELS[fn] as readonly ArgContract[];
      for (const be of backends) {
        const args = validArgs(be, fn);
        const idx = contract.map((a, i) => i).filter((i) => contract[i].kind.startsWith('buffer'));
        const lens = idx.map((i) => (args[i] as Buf).length);
        const big = be.alloc(lens.reduce((s, l) => s + l, 0));
        let at = 0;
        idx.forEach((i, k) => { args[i] = big.view(at, lens[k]); at += lens[k]; });
        expect(() => (be[fn] as (...a: unknown[]) => unknown).apply(be, args), `${be.name} ${fn}`).not.toThrow();
      }
    }
  });

  // The defects this contract was written for, in the words every backend uses.
  const EXPECTED: [string, KernelName, (be: Backend, a: unknown[]) => void, string][] = [
    ['sgdStep lr = 1e39 (finite in float64, Infinity in float32)', 'sgdStep', (_, a) => { a[3] = 1e39; },
      'RangeError: sgdStep: lr must be a finite float32, got 1e+39'],
    ['gemm alpha = 1e39', 'gemm', (_, a) => { a[5] = 1e39; }, 'RangeError: gemm: alpha must be a finite float32, got 1e+39'],
    ['denseForward act = 99', 'denseForward', (_, a) => { a[7] = 99; }, 'RangeError: denseForward: act must be an integer in [0, 5], got 99'],
    ['lossDelta loss = 7', 'lossDelta', (_, a) => { a[5] = 7; }, 'RangeError: lossDelta: loss must be an integer in [0, 4], got 7'],
    ['lossDelta delta = 1e39', 'lossDelta', (_, a) => { a[8] = 1e39; }, 'RangeError: lossDelta: delta must be a finite float32, got 1e+39'],
    ['lossDelta weights one row short', 'lossDelta', (be, a) => { a[9] = be.alloc(2); },
      'RangeError: lossDelta: weights has 2 floats, fewer than m = 3'],
    ['lossDelta weights = undefined (null means none)', 'lossDelta', (_, a) => { a[9] = undefined; },
      'TypeError: lossDelta: weights must be a buffer of this backend or null, got undefined'],
    ['lossDelta dz = weights', 'lossDelta', (_, a) => { a[9] = (a[0] as Buf).view(0, 3); },
      'RangeError: lossDelta: dz and weights overlap (an output must not share memory with another argument)'],
    ['sgdStep lr = NaN', 'sgdStep', (_, a) => { a[3] = NaN; }, 'RangeError: sgdStep: lr must be a finite float32, got NaN'],
    ['sgdStep decayCount = -1', 'sgdStep', (_, a) => { a[6] = -1; }, 'RangeError: sgdStep: decayCount must be an integer in [0, 12], got -1'],
    ['adamStep decayCount = 2.5', 'adamStep', (_, a) => { a[14] = 2.5; }, 'RangeError: adamStep: decayCount must be an integer in [0, 12], got 2.5'],
    ['gemm a = null', 'gemm', (_, a) => { a[6] = null; }, 'TypeError: gemm: a must be a buffer of this backend, got null'],
    ['sumSquares g = undefined', 'sumSquares', (_, a) => { a[0] = undefined; }, 'TypeError: sumSquares: g must be a buffer of this backend, got undefined'],
    ['gemm m = null (the argument block coerced it to 0)', 'gemm', (_, a) => { a[2] = null; }, 'TypeError: gemm: m must be a number, got null'],
    ["gemm k = '2' (coerced to 2)", 'gemm', (_, a) => { a[4] = '2'; }, 'TypeError: gemm: k must be a number, got a string'],
    ['gemm transA = 1 (coerced to true)', 'gemm', (_, a) => { a[0] = 1; }, 'TypeError: gemm: transA must be a boolean, got a number'],
    ['denseForward alpha = true (coerced to 1)', 'denseForward', (_, a) => { a[8] = true; }, 'TypeError: denseForward: alpha must be a number, got a boolean'],
    ['adamStep bc2 = 1e-50 (0 in float32: a division by zero)', 'adamStep', (_, a) => { a[11] = 1e-50; },
      'RangeError: adamStep: bc2 must be a nonzero finite float32, got 1e-50'],
    ['gemm c = b', 'gemm', (_, a) => { a[9] = a[7]; },
      'RangeError: gemm: c and b overlap (an output must not share memory with another argument)'],
    ['sgdStep p = g', 'sgdStep', (_, a) => { a[0] = a[1]; },
      'RangeError: sgdStep: p and g overlap (an output must not share memory with another argument)'],
    ['denseBackward dx = dz', 'denseBackward', (be, a) => { const s = be.alloc(20); a[2] = s.view(0, 12); a[3] = s.view(5, 15); },
      'RangeError: denseBackward: dx and dz overlap (an output must not share memory with another argument)'],
  ];
  it.each(EXPECTED)('%s', (_, fn, change, message) => {
    for (const be of backends) {
      const c: Case = { fn, label: '', args: (b) => { const a = validArgs(b, fn); change(b, a); return a; } };
      expect(attempt(be, c), be.name).toEqual({ error: message, wrote: false });
    }
  });
});

describe('compiled steps: the same description and hyper-parameter checks on native and wasm', () => {
  const compilers = backends.filter((b) => b.compileStep);
  const H: StepHyper = { lr: 0.1, clipNorm: 0, weightDecay: 0, mu: 0.9, nesterov: false, beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 0.1, bc2: 0.001 };
  function desc(be: Backend) {
    const B = (n: number) => { const b = be.alloc(n); b.data.fill(0.5); return b; };
    const m = 2, n = 2 * 3 + 3 + 3 + 1;
    return {
      m, dims: [2, 3, 1], acts: [3, 1] as (0 | 1 | 2 | 3 | 4 | 5)[], alphas: [0, 0], loss: 1 as const, x: B(4), y: B(2),
      outs: [B(6), B(2)], deltas: [B(6), B(2)], params: B(n), grads: B(n), backup: B(n), n, wOffsets: [0, 6], bOffsets: [9, 12],
      optimizer: 2 as const, state1: B(n), state2: B(n), decayCount: 9,
    };
  }
  type Desc = ReturnType<typeof desc>;
  const bad: [string, (d: Desc) => void, string][] = [
    ['a delta aliasing params', (d) => { d.deltas[0] = d.params.view(0, 6); },
      'RangeError: compileStep: params and deltas[0] overlap (a buffer the step writes must not share memory with another)'],
    ['the backup inside the grads', (d) => { d.backup = d.grads; },
      'RangeError: compileStep: grads and backup overlap (a buffer the step writes must not share memory with another)'],
    ['the input batch inside a layer\'s output', (d) => { d.x = d.outs[0].view(1, 4); },
      'RangeError: compileStep: x and outs[0] overlap (a buffer the step writes must not share memory with another)'],
    ['outs[0] one float too short', (d) => { d.outs[0] = d.outs[0].view(0, 5); },
      'RangeError: compileStep: outs[0] has 5 floats, fewer than m*dims[1] = 6'],
    ['decayCount -1', (d) => { d.decayCount = -1; }, 'RangeError: compileStep: decayCount must be an integer in [0, 13], got -1'],
    ['alpha 1e39', (d) => { d.alphas[0] = 1e39; }, 'RangeError: compileStep: alphas[0] must be a finite float32, got 1e+39'],
    ['act 99', (d) => { d.acts[1] = 99 as never; }, 'RangeError: compileStep: acts[1] must be an integer in [0, 5], got 99'],
    ['x null', (d) => { d.x = null as never; }, 'TypeError: compileStep: x must be a buffer of this backend, got null'],
    ['weights one row short', (d) => { (d as { weights?: Buf }).weights = d.x.view(0, 1); },
      'RangeError: compileStep: weights has 1 floats, fewer than m = 2'],
    ['weights inside a delta', (d) => { (d as { weights?: Buf }).weights = d.deltas[0].view(0, 2); },
      'RangeError: compileStep: weights and deltas[0] overlap (a buffer the step writes must not share memory with another)'],
    ['delta NaN', (d) => { (d as { delta?: number }).delta = NaN; }, 'RangeError: compileStep: delta must be a finite float32, got NaN'],
  ];
  it.each(bad)('refuses %s, with the same words on every backend', (_, change, message) => {
    for (const be of compilers) {
      const d = desc(be);
      change(d);
      let error = '';
      try {
        be.compileStep!(d);
      } catch (e) {
        error = `${(e as Error).constructor.name}: ${(e as Error).message}`;
      }
      expect(error, be.name).toBe(message);
    }
  });

  const hyper: [string, Partial<Record<keyof StepHyper, unknown>>, string][] = [
    ['lr NaN', { lr: NaN }, 'RangeError: compiled step: lr must be a finite float32, got NaN'],
    ['lr 1e39', { lr: 1e39 }, 'RangeError: compiled step: lr must be a finite float32, got 1e+39'],
    ["lr '0.1'", { lr: '0.1' }, 'TypeError: compiled step: lr must be a number, got a string'],
    ['nesterov 1', { nesterov: 1 }, 'TypeError: compiled step: nesterov must be a boolean, got a number'],
    ['bc1 0', { bc1: 0 }, 'RangeError: compiled step: bc1 must be a nonzero finite float32, got 0'],
    ['eps Infinity', { eps: Infinity }, 'RangeError: compiled step: eps must be a finite float32, got Infinity'],
  ];
  it.each(hyper)('a run with %s is refused and changes nothing', (_, patch, message) => {
    for (const be of compilers) {
      const d = desc(be);
      const step = be.compileStep!(d);
      const before = Float32Array.from(d.params.data);
      let error = '';
      try {
        step.run({ ...H, ...patch } as StepHyper);
      } catch (e) {
        error = `${(e as Error).constructor.name}: ${(e as Error).message}`;
      }
      expect(error, be.name).toBe(message);
      expect(d.params.data, be.name).toEqual(before);
      step.run(H); // and it still runs
      expect(Number.isFinite(step.loss[0]), be.name).toBe(true);
    }
  });
});
