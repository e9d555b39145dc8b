// Kernel-boundary fuzzing through the public Backend interface (src/backends/backend.ts). A case
// is a call of one kernel with valid, seeded arguments, then (most of the time) one argument
// replaced by a mutation: a wrong length, a wrong type, a number out of contract, an aliased
// buffer. Each mutation says what it expects:
//   valid    the call must succeed, and every buffer must match the js reference (finite where the
//            reference is), including the floats past what the kernel may write;
//   invalid  the call must throw a clear error (oracle.ts errorProblem) and leave every buffer as
//            it was;
//   either   a call at the edge of the contract (a size of 0, another backend's buffer): either
//            outcome, but success must match the reference and an error must be clear.
// Every case is generated from (seed, index) alone, so that one case replays by itself.
import { ACT, LOSS, OPT, type Backend, type Buf, type StepDesc, type StepHyper } from '../../src/backends/backend.js';
import { JsBackend } from '../../src/backends/js.js';
import { interpretedStep } from '../../src/backends/interpreter.js';
import { rng } from '../rng.js';
import { errorProblem, firstMismatch, close, sameBits, snapshot } from './oracle.js';
import { caseSeed, type CaseOutcome, type Suite } from './protocol.js';

export type Expect = 'valid' | 'invalid' | 'either';
type R = () => number;

// ---------------------------------------------------------------------------------------------
// Argument plans: what to pass, made real on a backend by materialize()

interface Fill { seed: number; lo: number; hi: number; nan?: boolean }
type Plan =
  | { t: 'buf'; len: number; fill: Fill; offset?: number }
  | { t: 'foreign'; len: number; fill: Fill }
  | { t: 'shared'; group: number; offset: number; len: number }
  | { t: 'bare'; len: number; fill: Fill }
  | { t: 'fake'; dataLen: number; length: number; fill: Fill }
  | { t: 'src'; len: number; fill: Fill }
  | { t: 'u32'; values: number[] }
  | { t: 'value'; v: unknown };

type Kind = 'in' | 'in?' | 'out' | 'inout' | 'out?' | 'size' | 'count' | 'real' | 'nonzero' | 'bool' | 'act' | 'act4' | 'loss' | 'src' | 'order';
interface ArgDef { name: string; kind: Kind }
const isBufKind = (k: Kind): boolean => k === 'in' || k === 'in?' || k === 'out' || k === 'inout' || k === 'out?';
const isOutKind = (k: Kind): boolean => k === 'out' || k === 'inout' || k === 'out?';

interface KernelSpec {
  name: string;
  defs: ArgDef[];
  /** Valid scalar values (numbers, booleans, null for a nullable buffer left out) and fills for buffers. */
  gen(r: R): unknown[];
  /** Required length per buffer argument (by position), from the scalar values. */
  needs(v: unknown[]): Record<number, number>;
  /** The computation on the reference (the js backend, or a loop here for gatherRows). */
  ref?(js: Backend, args: unknown[]): unknown;
}

const int = (r: R, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const uni = (r: R, lo: number, hi: number): number => lo + r() * (hi - lo);
const dim = (r: R): number => (r() < 0.15 ? 1 : int(r, 1, 7));
const fill = (r: R, lo = -2, hi = 2): Fill => ({ seed: Math.floor(r() * 2 ** 32), lo, hi });
const N = (v: unknown): number => v as number;

const SPECS: KernelSpec[] = [
  {
    name: 'gemm',
    defs: [{ name: 'transA', kind: 'bool' }, { name: 'transB', kind: 'bool' }, { name: 'm', kind: 'size' }, { name: 'n', kind: 'size' },
      { name: 'k', kind: 'size' }, { name: 'alpha', kind: 'real' }, { name: 'a', kind: 'in' }, { name: 'b', kind: 'in' },
      { name: 'beta', kind: 'real' }, { name: 'c', kind: 'inout' }],
    gen: (r) => {
      const beta = r() < 0.4 ? 0 : uni(r, -2, 2);
      // beta = 0: c is not read, so it may hold NaN (backend.ts)
      return [r() < 0.5, r() < 0.5, dim(r), dim(r), dim(r), uni(r, -2, 2), fill(r), fill(r), beta,
        beta === 0 && r() < 0.5 ? { ...fill(r), nan: true } : fill(r)];
    },
    needs: (v) => ({ 6: N(v[2]) * N(v[4]), 7: N(v[4]) * N(v[3]), 9: N(v[2]) * N(v[3]) }),
  },
  {
    name: 'denseForward',
    defs: [{ name: 'y', kind: 'out' }, { name: 'x', kind: 'in' }, { name: 'w', kind: 'in' }, { name: 'b', kind: 'in' },
      { name: 'm', kind: 'size' }, { name: 'inp', kind: 'size' }, { name: 'out', kind: 'size' }, { name: 'act', kind: 'act' },
      { name: 'alpha', kind: 'real' }],
    gen: (r) => [fill(r), fill(r), fill(r, -1, 1), fill(r, -1, 1), dim(r), dim(r), dim(r), int(r, 0, 5), uni(r, 0, 0.5)],
    needs: (v) => ({ 0: N(v[4]) * N(v[6]), 1: N(v[4]) * N(v[5]), 2: N(v[5]) * N(v[6]), 3: N(v[6]) }),
  },
  {
    name: 'denseBackward',
    defs: [{ name: 'dw', kind: 'out' }, { name: 'db', kind: 'out' }, { name: 'dx', kind: 'out?' }, { name: 'dz', kind: 'in' },
      { name: 'x', kind: 'in' }, { name: 'w', kind: 'in' }, { name: 'm', kind: 'size' }, { name: 'inp', kind: 'size' },
      { name: 'out', kind: 'size' }, { name: 'scale', kind: 'real' }, { name: 'prevAct', kind: 'act4' }, { name: 'alpha', kind: 'real' }],
    gen: (r) => {
      const m = dim(r);
      return [fill(r), fill(r), r() < 0.3 ? null : fill(r), fill(r), fill(r, -1, 1), fill(r), m, dim(r), dim(r), 1 / m, int(r, 0, 4), uni(r, 0, 0.5)];
    },
    needs: (v) => ({ 0: N(v[7]) * N(v[8]), 1: N(v[8]), 2: N(v[6]) * N(v[7]), 3: N(v[6]) * N(v[8]), 4: N(v[6]) * N(v[7]), 5: N(v[7]) * N(v[8]) }),
  },
  {
    name: 'lossDelta',
    defs: [{ name: 'dz', kind: 'out' }, { name: 'a', kind: 'in' }, { name: 'y', kind: 'in' }, { name: 'm', kind: 'size' },
      { name: 'n', kind: 'size' }, { name: 'loss', kind: 'loss' }, { name: 'act', kind: 'act' }, { name: 'alpha', kind: 'real' },
      { name: 'delta', kind: 'real' }, { name: 'weights', kind: 'in?' }],
    gen: (r) => [fill(r), fill(r, 0.01, 0.99), fill(r, 0, 1), dim(r), dim(r), int(r, 0, 4), int(r, 0, 5), uni(r, 0, 0.5),
      uni(r, 0.1, 2), r() < 0.5 ? null : fill(r, 0, 2)],
    needs: (v) => ({ 0: N(v[3]) * N(v[4]), 1: N(v[3]) * N(v[4]), 2: N(v[3]) * N(v[4]), 9: N(v[3]) }),
  },
  {
    name: 'sumSquares',
    defs: [{ name: 'g', kind: 'in' }, { name: 'n', kind: 'size' }],
    gen: (r) => [fill(r), int(r, 1, 40)],
    needs: (v) => ({ 0: N(v[1]) }),
  },
  {
    name: 'sgdStep',
    defs: [{ name: 'p', kind: 'inout' }, { name: 'g', kind: 'in' }, { name: 'n', kind: 'size' }, { name: 'lr', kind: 'real' },
      { name: 'gradScale', kind: 'real' }, { name: 'weightDecay', kind: 'real' }, { name: 'decayCount', kind: 'count' }],
    gen: (r) => {
      const n = int(r, 1, 40);
      return [fill(r), fill(r), n, uni(r, 0, 0.5), uni(r, 0, 2), uni(r, 0, 0.1), int(r, 0, n)];
    },
    needs: (v) => ({ 0: N(v[2]), 1: N(v[2]) }),
  },
  {
    name: 'momentumStep',
    defs: [{ name: 'p', kind: 'inout' }, { name: 'g', kind: 'in' }, { name: 'v', kind: 'inout' }, { name: 'n', kind: 'size' },
      { name: 'lr', kind: 'real' }, { name: 'gradScale', kind: 'real' }, { name: 'mu', kind: 'real' }, { name: 'nesterov', kind: 'bool' },
      { name: 'weightDecay', kind: 'real' }, { name: 'decayCount', kind: 'count' }],
    gen: (r) => {
      const n = int(r, 1, 40);
      return [fill(r), fill(r), fill(r, -1, 1), n, uni(r, 0, 0.5), uni(r, 0, 2), uni(r, 0, 0.99), r() < 0.5, uni(r, 0, 0.1), int(r, 0, n)];
    },
    needs: (v) => ({ 0: N(v[3]), 1: N(v[3]), 2: N(v[3]) }),
  },
  {
    name: 'adamStep',
    defs: [{ name: 'p', kind: 'inout' }, { name: 'g', kind: 'in' }, { name: 'm', kind: 'inout' }, { name: 'v', kind: 'inout' },
      { name: 'n', kind: 'size' }, { name: 'lr', kind: 'real' }, { name: 'gradScale', kind: 'real' }, { name: 'beta1', kind: 'real' },
      { name: 'beta2', kind: 'real' }, { name: 'eps', kind: 'real' }, { name: 'bc1', kind: 'nonzero' }, { name: 'bc2', kind: 'nonzero' },
      { name: 'weightDecay', kind: 'real' }, { name: 'decoupled', kind: 'bool' }, { name: 'decayCount', kind: 'count' }],
    gen: (r) => {
      const n = int(r, 1, 40);
      // v is a second moment: never negative
      return [fill(r), fill(r), fill(r, -1, 1), fill(r, 0.01, 1), n, uni(r, 1e-4, 0.1), uni(r, 0, 2), uni(r, 0, 0.99), uni(r, 0.9, 0.9999),
        10 ** uni(r, -8, -3), uni(r, 0.05, 1), uni(r, 0.001, 1), uni(r, 0, 0.1), r() < 0.5, int(r, 0, n)];
    },
    needs: (v) => ({ 0: N(v[4]), 1: N(v[4]), 2: N(v[4]), 3: N(v[4]) }),
  },
  {
    name: 'gatherRows',
    defs: [{ name: 'dst', kind: 'out' }, { name: 'src', kind: 'src' }, { name: 'order', kind: 'order' }, { name: 'start', kind: 'size' },
      { name: 'count', kind: 'size' }, { name: 'cols', kind: 'size' }],
    gen: (r) => {
      const rows = int(r, 1, 8), cols = int(r, 1, 5), count = int(r, 1, rows);
      const useOrder = r() < 0.6;
      const start = int(r, 0, rows - count);
      const order = useOrder ? shuffled(r, rows) : null;
      return [fill(r), { rows, fill: fill(r) }, order, start, count, cols];
    },
    needs: (v) => ({ 0: N(v[4]) * N(v[5]) }),
    ref: (_js, a) => {
      const [dst, src, order, start, count, cols] = a as [Buf, Float32Array, Uint32Array | null, number, number, number];
      for (let i = 0; i < count; i++) {
        const row = order ? order[start + i] : start + i;
        dst.data.set(src.subarray(row * cols, row * cols + cols), i * cols);
      }
    },
  },
];

function shuffled(r: R, n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Mutations

interface Mutation {
  label: string;
  expect: Expect;
  /** Arguments an error may name. */
  names: string[];
  apply(plans: Plan[], vals: unknown[]): void;
}

const BAD_NUMBERS: [string, unknown][] = [
  ['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity], ['1e39 (overflows float32)', 1e39], ['-1e39', -1e39],
  ['3.5e38 (overflows float32)', 3.5e38], ['the string "0.5"', '0.5'], ['null', null], ['undefined', undefined], ['true', true],
  ['an object', {}], ['an array [1]', [1]],
];
const BAD_SIZES: [string, unknown][] = [
  ['-1', -1], ['1.5', 1.5], ['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity], ['2^31', 2 ** 31], ['2^32 + 1', 2 ** 32 + 1],
  ['2^53', 2 ** 53], ['1e39', 1e39], ['the string "3"', '3'], ['null', null], ['undefined', undefined], ['true', true], ['an object', {}],
  ['a bigint 3n', 3n],
];
const BAD_BOOLS: [string, unknown][] = [['1', 1], ['0', 0], ['the string "true"', 'true'], ['null', null], ['undefined', undefined], ['an object', {}]];
const BAD_CODES: [string, unknown][] = [
  ['-1', -1], ['1.5', 1.5], ['NaN', NaN], ['2^31', 2 ** 31], ['99', 99], ['null', null], ['undefined', undefined], ['true', true],
];
const BAD_BUFS: [string, (need: number, r: R) => Plan][] = [
  ['null', () => ({ t: 'value', v: null })],
  ['undefined', () => ({ t: 'value', v: undefined })],
  ['the number 3', () => ({ t: 'value', v: 3 })],
  ['a string', () => ({ t: 'value', v: 'buffer' })],
  ['true', () => ({ t: 'value', v: true })],
  ['an empty object', () => ({ t: 'value', v: {} })],
  ['a plain array', (need) => ({ t: 'value', v: new Array(need).fill(0.5) })],
  ['a bare Float32Array (not a Buf)', (need, r) => ({ t: 'bare', len: need, fill: fill(r) })],
  ['a Buf-like object whose data is one float short', (need, r) => ({ t: 'fake', dataLen: need - 1, length: need, fill: fill(r) })],
];

function mutationsFor(spec: KernelSpec, i: number, vals: unknown[], r: R): Mutation[] {
  const def = spec.defs[i], name = def.name, out: Mutation[] = [];
  const needs = spec.needs(vals);
  const setValue = (label: string, v: unknown, expect: Expect = 'invalid', names = [name]): Mutation =>
    ({ label, expect, names, apply: (p) => { p[i] = { t: 'value', v }; } });
  // a size or count changed to a valid integer: which buffers become too short decides
  const resize = (label: string, v: number, otherwise: Expect): Mutation => {
    const next = vals.slice();
    next[i] = v;
    const grown = Object.entries(spec.needs(next)).filter(([j, len]) => len > (needs[Number(j)] ?? 0) && vals[Number(j)] !== null);
    const expect: Expect = grown.length > 0 ? 'invalid' : otherwise;
    return {
      label, expect, names: [name, ...grown.map(([j]) => spec.defs[Number(j)].name), ...(name === 'n' && spec.defs.some((d) => d.name === 'decayCount') ? ['decayCount'] : [])],
      apply: (p, vs) => {
        p[i] = { t: 'value', v };
        vs[i] = v;
      },
    };
  };
  switch (def.kind) {
    case 'in': case 'in?': case 'out': case 'inout': case 'out?': {
      const need = needs[i];
      if (vals[i] === null) {
        // dx left out (null): give it back, or pass undefined
        out.push(setValue('undefined instead of null', undefined));
        break;
      }
      if (need >= 1) out.push({ label: 'one float too short', expect: 'invalid', names: [name], apply: (p) => { (p[i] as { len: number }).len = need - 1; } });
      if (need >= 2) out.push({ label: 'empty (0 floats)', expect: 'invalid', names: [name], apply: (p) => { (p[i] as { len: number }).len = 0; } });
      for (const [label, make] of BAD_BUFS) {
        if (label.includes('one float short') && need < 1) continue;
        if (label === 'null' && (def.kind === 'out?' || def.kind === 'in?')) continue; // null is how a caller leaves dx (or the weights) out
        out.push({ label, expect: 'invalid', names: [name], apply: (p) => { p[i] = make(need, r); } });
      }
      if (def.kind === 'out?') out.push(setValue('null (no dx)', null, 'valid'));
      if (def.kind === 'in?') out.push(setValue('null (none)', null, 'valid'));
      out.push({ label: 'a view at an offset into a larger buffer', expect: 'valid', names: [name],
        apply: (p) => { (p[i] as { offset?: number }).offset = int(r, 1, 9); } });
      out.push({ label: 'longer than needed (the tail must stay untouched)', expect: 'valid', names: [name],
        apply: (p) => { (p[i] as { len: number }).len = need + int(r, 1, 6); } });
      out.push({ label: "a Buf of another backend (js)", expect: 'either', names: [name],
        apply: (p) => { p[i] = { t: 'foreign', len: need, fill: (p[i] as { fill: Fill }).fill }; } });
      // an output overlapping another buffer argument
      if (isOutKind(def.kind) && need >= 1) {
        for (const [j, other] of spec.defs.entries()) {
          if (j === i || !isBufKind(other.kind) || vals[j] === null || !(needs[j] >= 1)) continue;
          const exact = needs[j] === need;
          out.push({
            label: exact ? `the same buffer as ${other.name}` : `overlapping ${other.name}`, expect: 'invalid', names: [name, other.name],
            apply: (p) => {
              const shift = exact ? 0 : Math.floor(need / 2);
              p[i] = { t: 'shared', group: 0, offset: 0, len: need };
              p[j] = { t: 'shared', group: 0, offset: shift, len: needs[j] };
            },
          });
        }
      }
      break;
    }
    case 'size': case 'count': {
      for (const [label, v] of BAD_SIZES) out.push(setValue(label, v));
      const v = vals[i] as number;
      if (def.kind === 'count') {
        const n = vals[spec.defs.findIndex((d) => d.name === 'n')] as number;
        out.push(setValue('n + 1 (past the arena)', n + 1, 'either'));
        out.push(setValue('0', 0, 'valid'));
        out.push(setValue('n', n, 'valid'));
      } else if (spec.name !== 'gatherRows') {
        out.push(resize('one more than the buffers hold', v + 1, 'valid'));
        out.push(resize('2^31 - 1', 2 ** 31 - 1, 'either'));
        out.push(resize('0', 0, 'either'));
      }
      break;
    }
    case 'real': case 'nonzero':
      for (const [label, v] of BAD_NUMBERS) out.push(setValue(label, v));
      if (def.kind === 'nonzero') out.push(setValue('0', 0));
      else out.push(setValue('0', 0, 'valid'));
      break;
    case 'bool':
      for (const [label, v] of BAD_BOOLS) out.push(setValue(label, v));
      out.push(setValue('the other boolean', !vals[i], 'valid'));
      break;
    case 'act': case 'act4': case 'loss': {
      for (const [label, v] of BAD_CODES) out.push(setValue(label, v));
      const top = def.kind === 'act' ? 5 : def.kind === 'act4' ? 4 : 4;
      out.push(setValue(`${top + 1} (one past the last code)`, top + 1));
      out.push(setValue(`the name ${def.kind === 'loss' ? '"mse"' : '"relu"'} instead of the code`, def.kind === 'loss' ? 'mse' : 'relu'));
      if (def.kind === 'act4') out.push(setValue('5 (softmax, never a previous layer)', 5));
      out.push(setValue('another valid code', (Number(vals[i]) + 1 + int(r, 0, top - 1)) % (top + 1), 'valid'));
      break;
    }
    case 'src': {
      const s = vals[i] as { rows: number; fill: Fill };
      const cols = vals[5] as number;
      for (const [label, make] of BAD_BUFS.slice(0, 7)) out.push({ label, expect: 'invalid', names: [name], apply: (p) => { p[i] = make(s.rows * cols, r); } });
      out.push({ label: 'a Float64Array', expect: 'invalid', names: [name], apply: (p) => { p[i] = { t: 'value', v: new Float64Array(s.rows * cols) }; } });
      out.push({ label: 'a Buf instead of a Float32Array', expect: 'invalid', names: [name], apply: (p) => { p[i] = { t: 'buf', len: s.rows * cols, fill: s.fill }; } });
      // one float short: the last row is gone, so a gather that reads it must throw
      const usesLast = (() => {
        const [, , order, start, count] = vals as [unknown, unknown, number[] | null, number, number];
        for (let k = 0; k < count; k++) if ((order ? order[start + k] : start + k) === s.rows - 1) return true;
        return false;
      })();
      out.push({ label: 'one float too short', expect: usesLast ? 'invalid' : 'valid', names: [name, 'order', 'start', 'count', 'rows'],
        apply: (p) => { (p[i] as { len: number }).len = s.rows * cols - 1; } });
      break;
    }
    case 'order': {
      const order = vals[i] as number[] | null;
      if (order === null) {
        out.push(setValue('undefined instead of null', undefined));
        break;
      }
      const start = vals[3] as number, count = vals[4] as number, rows = (vals[1] as { rows: number }).rows;
      out.push({ label: 'an entry past the last row of src', expect: 'invalid', names: [name, 'src'],
        apply: (p) => { const v = order.slice(); v[start + int(r, 0, count - 1)] = rows + int(r, 0, 2 ** 31); p[i] = { t: 'u32', values: v }; } });
      out.push({ label: 'shorter than start + count', expect: 'invalid', names: [name, 'start', 'count'],
        apply: (p) => { p[i] = { t: 'u32', values: order.slice(0, start + count - 1) }; } });
      out.push(setValue('a Float32Array', Float32Array.from(order)));
      out.push(setValue('an Int32Array', Int32Array.from(order)));
      out.push(setValue('a plain array', order.slice()));
      out.push(setValue('the number 0', 0));
      out.push(setValue('null (rows in order)', null, 'either'));
      break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Making plans real

function filled(len: number, f: Fill): Float32Array {
  const a = new Float32Array(len);
  if (f.nan) return a.fill(NaN);
  const r = rng(f.seed);
  for (let i = 0; i < len; i++) a[i] = f.lo + r() * (f.hi - f.lo);
  return a;
}

interface Made {
  args: unknown[];
  /** Every float array the call could touch, by argument position (buffers, roots of shared groups). */
  watched: { pos: number; label: string; get(): Float32Array }[];
}

function planFromValue(def: ArgDef, v: unknown, need: number): Plan {
  if (isBufKind(def.kind)) return v === null ? { t: 'value', v: null } : { t: 'buf', len: need, fill: v as Fill };
  if (def.kind === 'src') {
    const s = v as { rows: number; fill: Fill };
    return { t: 'src', len: s.rows, fill: s.fill }; // len in rows here; fixed up by the caller with cols
  }
  if (def.kind === 'order') return v === null ? { t: 'value', v: null } : { t: 'u32', values: v as number[] };
  return { t: 'value', v };
}

function materialize(plans: Plan[], be: Backend, foreign: Backend): Made {
  const args: unknown[] = [], watched: Made['watched'] = [];
  const groups = new Map<number, Buf>();
  for (const [pos, p] of plans.entries()) {
    if (p.t !== 'shared') continue;
    const size = Math.max(...plans.filter((q): q is Extract<Plan, { t: 'shared' }> => q.t === 'shared' && q.group === p.group).map((q) => q.offset + q.len));
    if (!groups.has(p.group)) {
      const root = be.alloc(size);
      root.data.set(filled(size, { seed: 1234 + pos, lo: -1, hi: 1 }));
      groups.set(p.group, root);
      watched.push({ pos, label: 'shared storage', get: () => root.data });
    }
  }
  for (const [pos, p] of plans.entries()) {
    switch (p.t) {
      case 'buf': {
        const off = p.offset ?? 0;
        const root = be.alloc(off + p.len);
        root.data.set(filled(off + p.len, { ...p.fill, seed: p.fill.seed ^ 0x5bd1e995 }));
        const b = off ? root.view(off, p.len) : root;
        b.data.set(filled(p.len, p.fill));
        args.push(b);
        watched.push({ pos, label: 'buffer', get: () => root.data });
        break;
      }
      case 'foreign': {
        const b = foreign.alloc(p.len);
        b.data.set(filled(p.len, p.fill));
        args.push(b);
        watched.push({ pos, label: 'buffer', get: () => b.data });
        break;
      }
      case 'shared': {
        args.push(groups.get(p.group)!.view(p.offset, p.len));
        break;
      }
      case 'bare': case 'src': {
        const a = filled(p.len, p.fill);
        args.push(a);
        watched.push({ pos, label: 'array', get: () => a });
        break;
      }
      case 'fake': {
        const data = filled(p.dataLen, p.fill);
        args.push({ data, length: p.length, view: () => { throw new Error('a Buf-like test object has no views'); } });
        watched.push({ pos, label: 'array', get: () => data });
        break;
      }
      case 'u32': args.push(Uint32Array.from(p.values)); break;
      case 'value': args.push(p.v); break;
    }
  }
  return { args, watched };
}

// ---------------------------------------------------------------------------------------------
// One case

interface KernelCase {
  spec: KernelSpec;
  vals: unknown[];
  plans: Plan[];
  mutation: Mutation | null;
  /** The argument list ends early (a missing argument). */
  arity: number;
}

function describeValue(def: ArgDef, p: Plan): string {
  switch (p.t) {
    case 'buf': return `${def.name}[${p.len}${p.offset ? ` at +${p.offset}` : ''}]`;
    case 'foreign': return `${def.name}[${p.len}, js]`;
    case 'shared': return `${def.name}[shared +${p.offset}, ${p.len}]`;
    case 'bare': return `${def.name}=Float32Array(${p.len})`;
    case 'fake': return `${def.name}={data: ${p.dataLen}, length: ${p.length}}`;
    case 'src': return `${def.name}=Float32Array(${p.len})`;
    case 'u32': return `${def.name}=Uint32Array[${p.values.join(',')}]`;
    case 'value': return `${def.name}=${fmt(p.v)}`;
  }
}

function fmt(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number') return Number.isInteger(v) || !Number.isFinite(v) ? String(v) : v.toPrecision(4);
  if (v === null || v === undefined || typeof v === 'boolean') return String(v);
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as Float32Array).length})`;
  if (Array.isArray(v)) return `[${v.length} items]`;
  return JSON.stringify(v);
}

function makeKernelCase(spec: KernelSpec, r: R): KernelCase {
  const vals = spec.gen(r);
  const needs = spec.needs(vals);
  const plans = spec.defs.map((d, i) => planFromValue(d, vals[i], needs[i] ?? 0));
  if (spec.name === 'gatherRows') {
    const src = plans[1] as { len: number };
    src.len *= vals[5] as number; // rows → floats
  }
  let mutation: Mutation | null = null, arity = spec.defs.length;
  if (r() >= 0.2) {
    if (r() < 0.03) {
      arity = spec.defs.length - 1;
      mutation = { label: `called without its last argument (${spec.defs[arity].name})`, expect: 'invalid', names: [spec.defs[arity].name], apply: () => {} };
    } else {
      const i = int(r, 0, spec.defs.length - 1);
      const ms = mutationsFor(spec, i, vals, r);
      mutation = ms[int(r, 0, ms.length - 1)];
      mutation = { ...mutation, label: `${spec.defs[i].name}: ${mutation.label}` };
      mutation.apply(plans, vals);
    }
  }
  return { spec, vals, plans, mutation, arity };
}

function describeKernelCase(c: KernelCase): string {
  const args = c.spec.defs.slice(0, c.arity).map((d, i) => describeValue(d, c.plans[i])).join(', ');
  return `${c.spec.name}(${args})${c.mutation ? ` — mutation ${c.mutation.label} (${c.mutation.expect})` : ' — valid call'}`;
}

const call = (be: Backend, name: string, args: unknown[]): unknown =>
  (be as unknown as Record<string, (...a: unknown[]) => unknown>)[name](...args);

interface Ctx {
  backend: Backend;
  name: string;
  foreign: Backend;
  kernels: string[];
}

function runKernelCase(ctx: Ctx, c: KernelCase): CaseOutcome {
  const what = describeKernelCase(c);
  const expect: Expect = c.mutation?.expect ?? 'valid';
  const label = c.mutation?.label ?? 'valid call';
  const sig = (category: string) => `${c.spec.name}: ${label.replace(/\d+(\.\d+)?/g, '#')} → ${category}`;
  const fail = (category: string, detail: string): CaseOutcome => ({ failure: { category, signature: sig(category), what, detail }, bucket: `${expect}: ${category}` });

  const made = materialize(c.plans, ctx.backend, ctx.foreign);
  const before = made.watched.map((w) => snapshot(w.get()));
  let result: unknown, error: unknown = null, threw = false;
  try {
    result = call(ctx.backend, c.spec.name, made.args.slice(0, c.arity));
  } catch (e) {
    threw = true;
    error = e;
  }
  if (threw) {
    if (expect === 'valid') return fail('refused', `a valid call threw ${String(error)}`);
    const problem = errorProblem(error, c.spec.name, c.mutation!.names);
    if (problem) return fail('unclear', problem);
    const wrote = made.watched.find((w, k) => !sameBits(w.get(), before[k]));
    if (wrote) return fail('wrote', `threw ${String(error)} but changed ${c.spec.defs[wrote.pos]?.name ?? 'a buffer'} first`);
    return { failure: null, bucket: `${expect}: threw ${(error as Error).name}` };
  }
  if (expect === 'invalid') {
    return fail('accepted', `did not throw (returned ${fmt(result)}); expected an error naming ${c.mutation!.names.join(' or ')}`);
  }
  // success: compare with the reference
  const js = new JsBackend();
  const ref = materialize(c.plans, js, js);
  let refResult: unknown;
  try {
    refResult = c.spec.ref ? c.spec.ref(js, ref.args) : call(js, c.spec.name, ref.args);
  } catch (e) {
    return fail('wrong', `the reference itself threw ${String(e)}`);
  }
  if (typeof refResult === 'number' || typeof result === 'number') {
    if (!(typeof result === 'number' && typeof refResult === 'number' && close(result, refResult))) {
      return fail('wrong', `returned ${fmt(result)}, the reference ${fmt(refResult)}`);
    }
    if (!Number.isFinite(result)) return fail('wrong', `returned ${result} on a valid call`);
  }
  for (const [k, w] of made.watched.entries()) {
    const got = w.get(), want = ref.watched[k].get();
    const at = firstMismatch(got, want);
    const name = c.spec.defs[w.pos].name;
    if (at >= 0) return fail('wrong', `${name}[${at}] = ${got[at]}, the reference has ${want[at]} (length ${got.length})`);
    const bad = got.findIndex((x, i) => !Number.isFinite(x) && Number.isFinite(before[k] ? new Float32Array(before[k].buffer)[i] : 0));
    if (bad >= 0) return fail('wrong', `${name}[${bad}] became ${got[bad]} on a valid call`);
  }
  return { failure: null, bucket: `${expect}: ok` };
}

// ---------------------------------------------------------------------------------------------
// compileStep and run (backend.ts StepCompiler): a tiny network's step description, mutated

interface StepPlan {
  m: number; dims: number[]; acts: number[]; alphas: number[]; loss: number; optimizer: number; n: number; decayCount: number;
  wOffsets: number[]; bOffsets: number[];
  bufs: Record<string, Plan | Plan[]>;
  extra: Record<string, unknown>;
}

const STEP_BUFS = ['x', 'y', 'params', 'grads', 'backup', 'state1', 'state2'] as const;

function genStep(r: R): StepPlan {
  const L = int(r, 1, 3), loss = int(r, 0, 2);
  const dims = [int(r, 1, 4)];
  for (let l = 0; l < L - 1; l++) dims.push(int(r, 1, 6));
  dims.push(loss === LOSS.categoricalCrossEntropy ? int(r, 2, 4) : int(r, 1, 3));
  const acts: number[] = [];
  for (let l = 0; l < L - 1; l++) acts.push(int(r, 0, 4));
  acts.push(loss === LOSS.categoricalCrossEntropy ? ACT.softmax : loss === LOSS.binaryCrossEntropy ? ACT.sigmoid : int(r, 0, 4));
  const m = int(r, 1, 5);
  let w = 0;
  const wOffsets: number[] = [], bOffsets: number[] = [];
  for (let l = 0; l < L; l++) { wOffsets.push(w); w += dims[l] * dims[l + 1]; }
  let b = w;
  for (let l = 0; l < L; l++) { bOffsets.push(b); b += dims[l + 1]; }
  const n = b, optimizer = int(r, 0, 3);
  const buf = (len: number, lo = -1, hi = 1): Plan => ({ t: 'buf', len, fill: fill(r, lo, hi) });
  return {
    m, dims, acts, alphas: acts.map((a) => (a === ACT.leakyRelu ? uni(r, 0, 0.3) : 0)), loss, optimizer, n, decayCount: w, wOffsets, bOffsets,
    bufs: {
      x: buf(m * dims[0]), y: buf(m * dims[L], 0, 1), params: buf(n, -0.5, 0.5), grads: buf(n), backup: buf(n),
      state1: optimizer === OPT.sgd ? { t: 'value', v: null } : buf(n, -0.1, 0.1),
      state2: optimizer >= OPT.adam ? buf(n, 0, 0.1) : { t: 'value', v: null },
      outs: dims.slice(1).map((u) => buf(m * u)), deltas: dims.slice(1).map((u) => buf(m * u)),
    },
    extra: {},
  };
}

function genHyper(r: R): StepHyper {
  return { lr: uni(r, 1e-3, 0.3), clipNorm: r() < 0.5 ? 0 : uni(r, 0.1, 2), weightDecay: uni(r, 0, 0.05), mu: uni(r, 0, 0.95), nesterov: r() < 0.5,
    beta1: uni(r, 0.5, 0.95), beta2: uni(r, 0.9, 0.999), eps: 1e-8, bc1: uni(r, 0.1, 1), bc2: uni(r, 0.01, 1) };
}

interface StepCase {
  kind: 'compileStep' | 'run';
  plan: StepPlan;
  hyper: Record<string, unknown>;
  label: string;
  expect: Expect;
  names: string[];
}

function stepMutations(s: StepPlan, r: R): { label: string; expect: Expect; names: string[]; apply(s: StepPlan): void }[] {
  const out: ReturnType<typeof stepMutations> = [];
  const L = s.dims.length - 1;
  const set = (field: string, label: string, v: unknown, expect: Expect = 'invalid', names = [field]) =>
    out.push({ label: `${field} = ${label}`, expect, names, apply: (p) => { (p as unknown as Record<string, unknown>)[field] = v; p.extra[field] = v; } });
  for (const f of ['m', 'n', 'decayCount', 'loss', 'optimizer']) {
    for (const [label, v] of [['-1', -1], ['1.5', 1.5], ['NaN', NaN], ['2^31', 2 ** 31], ['2^53', 2 ** 53], ['a string', '2'], ['null', null], ['undefined', undefined]] as [string, unknown][]) set(f, label, v);
  }
  set('m', '0', 0);
  set('m', 'one more than x holds', s.m + 1, 'invalid', ['m', 'x', 'y', 'outs', 'deltas']);
  set('n', 'one more than params holds', s.n + 1, 'invalid', ['n', 'params', 'grads', 'backup', 'state1', 'state2']);
  set('decayCount', 'n + 1', s.n + 1);
  set('loss', '5', 5);
  set('optimizer', '4', 4);
  for (const f of ['dims', 'acts', 'alphas', 'wOffsets', 'bOffsets'] as const) {
    const l = int(r, 0, (f === 'dims' ? L : L - 1));
    const bad: [string, unknown][] = f === 'alphas'
      ? [['NaN', NaN], ['Infinity', Infinity], ['1e39', 1e39], ['a string', '0.1'], ['null', null]]
      : f === 'acts' ? [['6', 6], ['99', 99], ['-1', -1], ['1.5', 1.5], ['"relu"', 'relu'], ['null', null]]
        : [['-1', -1], ['1.5', 1.5], ['NaN', NaN], ['2^31', 2 ** 31], ['a string', '1'], ['null', null], ...(f === 'dims' ? [['0', 0]] : [['n', s.n]]) as [string, unknown][]];
    for (const [label, v] of bad) {
      out.push({ label: `${f}[${l}] = ${label}`, expect: 'invalid', names: f === 'dims' ? ['dims', 'wOffsets', 'bOffsets', 'x', 'y', 'outs', 'deltas', 'n', 'params'] : [f],
        apply: (p) => { p[f] = p[f].slice(); p[f][l] = v as number; } });
    }
    out.push({ label: `${f} one entry short`, expect: 'invalid', names: [f, 'dims', 'acts', 'alphas', 'outs', 'deltas', 'wOffsets', 'bOffsets'],
      apply: (p) => { p[f] = p[f].slice(0, -1); } });
    out.push({ label: `${f} = null`, expect: 'invalid', names: [f], apply: (p) => { (p as unknown as Record<string, unknown>)[f] = null; } });
  }
  if (L >= 2) out.push({ label: 'softmax on a hidden layer', expect: 'invalid', names: ['acts'], apply: (p) => { p.acts = p.acts.slice(); p.acts[0] = ACT.softmax; } });
  const bufNames: [string, number | null][] = [...STEP_BUFS.map((b) => [b, null] as [string, null]),
    ...Array.from({ length: L }, (_, l) => [`outs`, l] as [string, number]), ...Array.from({ length: L }, (_, l) => [`deltas`, l] as [string, number])];
  for (const [b, l] of bufNames) {
    const get = (p: StepPlan): Plan => (l === null ? p.bufs[b] as Plan : (p.bufs[b] as Plan[])[l]);
    const put = (p: StepPlan, v: Plan) => { if (l === null) p.bufs[b] = v; else { p.bufs[b] = (p.bufs[b] as Plan[]).slice(); (p.bufs[b] as Plan[])[l] = v; } };
    const field = l === null ? b : `${b}[${l}]`;
    const cur = get(s);
    if (cur.t !== 'buf') {
      // a state the optimizer does not use: giving one is fine
      out.push({ label: `${field} given though unused`, expect: 'valid', names: [b], apply: (p) => put(p, { t: 'buf', len: s.n, fill: fill(r, 0, 0.1) }) });
      continue;
    }
    out.push({ label: `${field} one float too short`, expect: 'invalid', names: [b], apply: (p) => put(p, { ...cur, len: cur.len - 1 }) });
    // (a longer params would ask backup for more than n floats: the copy covers params.length)
    if (b !== 'params') out.push({ label: `${field} longer than needed`, expect: 'valid', names: [b], apply: (p) => put(p, { ...cur, len: cur.len + int(r, 1, 5) }) });
    out.push({ label: `${field} a view at an offset`, expect: 'valid', names: [b], apply: (p) => put(p, { ...cur, offset: int(r, 1, 7) }) });
    for (const [label, make] of [...BAD_BUFS, ["a Buf of another backend (js)", (need: number) => ({ t: 'foreign', len: need, fill: cur.fill }) as Plan]] as [string, (need: number, r: R) => Plan][]) {
      if (label.includes('one float short') && cur.len < 1) continue;
      out.push({ label: `${field} ${label}`, expect: 'invalid', names: [b], apply: (p) => put(p, make(cur.len, r)) });
    }
  }
  // overlapping buffers: outputs over inputs or over each other
  const alias = (a: [string, number | null], b: [string, number | null]) => {
    const name = ([f, l]: [string, number | null]) => (l === null ? f : `${f}[${l}]`);
    out.push({
      label: `${name(a)} overlaps ${name(b)}`, expect: 'invalid', names: [a[0], b[0]],
      apply: (p) => {
        const len = (x: [string, number | null]) => ((x[1] === null ? p.bufs[x[0]] : (p.bufs[x[0]] as Plan[])[x[1]]) as { len: number }).len;
        const la = len(a), lb = len(b);
        const setp = (x: [string, number | null], v: Plan) => { if (x[1] === null) p.bufs[x[0]] = v; else { p.bufs[x[0]] = (p.bufs[x[0]] as Plan[]).slice(); (p.bufs[x[0]] as Plan[])[x[1]] = v; } };
        setp(a, { t: 'shared', group: 0, offset: 0, len: la });
        setp(b, { t: 'shared', group: 0, offset: Math.floor(la / 2), len: lb });
      },
    });
  };
  alias(['deltas', L - 1], ['params', null]);
  alias(['outs', 0], ['x', null]);
  alias(['grads', null], ['params', null]);
  alias(['backup', null], ['params', null]);
  alias(['outs', L - 1], ['y', null]);
  alias(['deltas', 0], ['outs', 0]);
  if (s.optimizer !== OPT.sgd) alias(['state1', null], ['grads', null]);
  if (s.optimizer >= OPT.adam) alias(['state2', null], ['state1', null]);
  if (s.optimizer !== OPT.sgd) out.push({ label: 'state1 = null (the optimizer needs it)', expect: 'invalid', names: ['state1'], apply: (p) => { p.bufs.state1 = { t: 'value', v: null }; } });
  if (s.optimizer >= OPT.adam) out.push({ label: 'state2 = null (adam needs it)', expect: 'invalid', names: ['state2'], apply: (p) => { p.bufs.state2 = { t: 'value', v: null }; } });
  return out;
}

const HYPER_FIELDS = ['lr', 'clipNorm', 'weightDecay', 'mu', 'beta1', 'beta2', 'eps', 'bc1', 'bc2'] as const;

function makeStepCase(r: R, kind: 'compileStep' | 'run'): StepCase {
  const plan = genStep(r);
  const hyper = genHyper(r) as unknown as Record<string, unknown>;
  if (r() < 0.2) return { kind, plan, hyper, label: 'valid step', expect: 'valid', names: [] };
  if (kind === 'compileStep') {
    const ms = stepMutations(plan, r);
    const mu = ms[int(r, 0, ms.length - 1)];
    mu.apply(plan);
    return { kind, plan, hyper, label: mu.label, expect: mu.expect, names: mu.names };
  }
  const f = r() < 0.1 ? 'nesterov' : HYPER_FIELDS[int(r, 0, HYPER_FIELDS.length - 1)];
  const bad: [string, unknown][] = f === 'nesterov' ? BAD_BOOLS
    : [...BAD_NUMBERS, ...(f === 'bc1' || f === 'bc2' ? [['0', 0]] as [string, unknown][] : [])];
  const [label, v] = bad[int(r, 0, bad.length - 1)];
  hyper[f] = v;
  // the bias corrections divide only in Adam's update: sgd and momentum ignore a zero there
  const ignored = v === 0 && (f === 'bc1' || f === 'bc2') && plan.optimizer !== OPT.adam && plan.optimizer !== OPT.adamw;
  return { kind, plan, hyper, label: `${f} = ${label}`, expect: ignored ? 'valid' : 'invalid', names: [f] };
}

function materializeStep(p: StepPlan, be: Backend, foreign: Backend): { desc: StepDesc; made: Made; order: string[] } {
  const order: string[] = [], plans: Plan[] = [];
  for (const b of STEP_BUFS) { order.push(b); plans.push(p.bufs[b] as Plan); }
  const L = (p.bufs.outs as Plan[]).length;
  for (let l = 0; l < L; l++) { order.push(`outs[${l}]`); plans.push((p.bufs.outs as Plan[])[l]); }
  const D = (p.bufs.deltas as Plan[]).length;
  for (let l = 0; l < D; l++) { order.push(`deltas[${l}]`); plans.push((p.bufs.deltas as Plan[])[l]); }
  const made = materialize(plans, be, foreign);
  const at = (name: string) => made.args[order.indexOf(name)];
  const desc = {
    m: p.m, dims: p.dims, acts: p.acts, alphas: p.alphas, loss: p.loss, optimizer: p.optimizer, n: p.n, decayCount: p.decayCount,
    wOffsets: p.wOffsets, bOffsets: p.bOffsets,
    x: at('x'), y: at('y'), params: at('params'), grads: at('grads'), backup: at('backup'), state1: at('state1'), state2: at('state2'),
    outs: Array.from({ length: L }, (_, l) => at(`outs[${l}]`)), deltas: Array.from({ length: D }, (_, l) => at(`deltas[${l}]`)),
  } as unknown as StepDesc;
  return { desc, made, order };
}

function describeStepCase(c: StepCase): string {
  const p = c.plan;
  const list = (a: unknown) => (Array.isArray(a) ? a.map(fmt).join(',') : fmt(a));
  const net = `${list(p.dims)} acts [${list(p.acts)}] loss ${fmt(p.loss)} optimizer ${fmt(p.optimizer)} m ${fmt(p.m)} n ${fmt(p.n)}`;
  return `${c.kind === 'run' ? 'compileStep(valid) then run(h)' : 'compileStep(desc)'} on a ${net} — ${c.expect === 'valid' && c.label === 'valid step' ? 'valid' : `mutation ${c.label} (${c.expect})`}`;
}

function runStepCase(ctx: Ctx, c: StepCase): CaseOutcome {
  const what = describeStepCase(c);
  const sig = (category: string) => `${c.kind}: ${c.label.replace(/\d+(\.\d+)?/g, '#')} → ${category}`;
  const fail = (category: string, detail: string): CaseOutcome => ({ failure: { category, signature: sig(category), what, detail }, bucket: `${c.expect}: ${category}` });
  const { desc, made, order } = materializeStep(c.plan, ctx.backend, ctx.foreign);
  const before = made.watched.map((w) => snapshot(w.get()));
  let step: { run(h: StepHyper): void; loss: Float64Array } | null = null;
  let error: unknown = null, threw = false;
  try {
    step = ctx.backend.compileStep!(desc);
    if (c.kind === 'run' || c.expect !== 'invalid') step.run(c.hyper as unknown as StepHyper);
  } catch (e) {
    threw = true;
    error = e;
  }
  const kernel = c.kind === 'run' && step ? 'run' : 'compileStep';
  if (threw) {
    if (c.expect === 'valid') return fail('refused', `a valid step threw ${String(error)}`);
    if (kernel !== c.kind) return fail('refused', `the valid description did not compile: ${String(error)}`);
    const problem = errorProblem(error, kernel, c.names);
    if (problem) return fail('unclear', problem);
    const wrote = made.watched.find((w, k) => !sameBits(w.get(), before[k]));
    if (wrote) return fail('wrote', `threw ${String(error)} but changed ${order[wrote.pos]} first`);
    return { failure: null, bucket: `${c.expect}: threw ${(error as Error).name}` };
  }
  if (c.expect === 'invalid') {
    if (c.kind === 'compileStep') {
      // compiled: does a run stay safe? (it is reported as accepted either way)
      try { step!.run(c.hyper as unknown as StepHyper); } catch { /* a run may still refuse */ }
    }
    return fail('accepted', `${kernel} did not throw; expected an error naming ${c.names.join(' or ')}`);
  }
  // valid: the same step on the js reference, kernel by kernel
  const js = new JsBackend();
  const ref = materializeStep(c.plan, js, js);
  const refStep = interpretedStep(js, ref.desc);
  try {
    refStep.run(c.hyper as unknown as StepHyper);
  } catch (e) {
    return fail('wrong', `the reference itself threw ${String(e)}`);
  }
  if (!close(step!.loss[0], refStep.loss[0]) || !Number.isFinite(step!.loss[0])) {
    return fail('wrong', `loss ${step!.loss[0]}, the reference ${refStep.loss[0]}`);
  }
  for (const [k, w] of made.watched.entries()) {
    const got = w.get(), want = ref.made.watched[k].get();
    const at = firstMismatch(got, want);
    if (at >= 0) return fail('wrong', `${order[w.pos]}[${at}] = ${got[at]}, the reference has ${want[at]}`);
  }
  return { failure: null, bucket: `${c.expect}: ok` };
}

// ---------------------------------------------------------------------------------------------
// The suite

type AnyCase = { type: 'kernel'; c: KernelCase } | { type: 'step'; c: StepCase } | { type: 'stale'; fn: string; n: number; fill: Fill };

/**
 * On native, every 800th case (the last of a batch of 400) keeps one raw function of a kernel
 * object whose backend is then dropped and collected, and calls it: it must still work (the
 * function keeps what its native code uses alive) or refuse with a clear error, never read
 * freed memory. Scheduled, not drawn: a crash costs a child, and at a batch's end no other case.
 */
export const STALE_EVERY = 800;

function makeCase(ctx: Ctx, seed: number, index: number): AnyCase {
  const r = rng(caseSeed(seed, index));
  if (ctx.name === 'native' && index % STALE_EVERY === STALE_EVERY - 1) {
    return { type: 'stale', fn: pick(r, ['sumSquares', 'gemm']), n: int(r, 1, 64), fill: fill(r) };
  }
  const kernel = ctx.kernels[int(r, 0, ctx.kernels.length - 1)];
  if (kernel === 'compileStep' || kernel === 'run') return { type: 'step', c: makeStepCase(r, kernel) };
  return { type: 'kernel', c: makeKernelCase(SPECS.find((s) => s.name === kernel)!, r) };
}

export async function loadTestBackend(name: string): Promise<Backend> {
  if (name === 'js') return new JsBackend();
  if (name === 'wasm') return (await import('../../src/backends/wasm.js')).loadWasmBackend();
  if (name === 'native') return (await import('../../src/backends/native.js')).loadNativeBackend();
  throw new Error(`unknown backend ${name}`);
}

/** The kernels fuzzed on a backend: the optional ones only where the backend has them. */
export function kernelsOf(be: Backend): string[] {
  const ks = SPECS.filter((s) => s.name !== 'gatherRows' || typeof be.gatherRows === 'function').map((s) => s.name);
  if (typeof be.compileStep === 'function') ks.push('compileStep', 'run');
  return ks;
}

const pick = <T>(r: R, a: readonly T[]): T => a[int(r, 0, a.length - 1)];

let collect: (() => void) | null = null;
async function collectGarbage(): Promise<void> {
  if (!collect) {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function describeStale(k: Extract<AnyCase, { type: 'stale' }>): string {
  return `native kernels.${k.fn} kept after its backend was dropped and collected, then called (n = ${k.n})`;
}

async function runStaleCase(k: Extract<AnyCase, { type: 'stale' }>): Promise<CaseOutcome> {
  const what = describeStale(k);
  const { loadNativeBackend } = await import('../../src/backends/native.js');
  const fn = (() => (loadNativeBackend({ threads: 1 }).kernels as unknown as Record<string, (...a: unknown[]) => unknown>)[k.fn])();
  await collectGarbage();
  const x = filled(k.n, k.fill), c = new Float32Array(k.n);
  let got: unknown;
  try {
    got = k.fn === 'sumSquares' ? fn(x, k.n) : fn(false, false, k.n, 1, 1, 1, x, Float32Array.of(2), 0, c);
  } catch (e) {
    const problem = errorProblem(e, k.fn, ['kernel', 'backend', 'this']);
    if (problem && !(e instanceof Error && e.message.startsWith(`${k.fn}: `))) {
      return { failure: { category: 'unclear', signature: `stale kernel function ${k.fn} → unclear`, what, detail: problem }, bucket: 'stale: unclear' };
    }
    return { failure: null, bucket: 'stale: threw' };
  }
  const want = k.fn === 'sumSquares' ? x.reduce((s, v) => s + v * v, 0) : null;
  const ok = k.fn === 'sumSquares' ? typeof got === 'number' && close(got, want!) : c.every((v, i) => close(v, 2 * x[i]));
  if (!ok) return { failure: { category: 'wrong', signature: `stale kernel function ${k.fn} → wrong`, what, detail: `returned ${String(got)}; expected ${want ?? '2·x in c'}` }, bucket: 'stale: wrong' };
  return { failure: null, bucket: 'stale: ok' };
}

export const kernelSuite: Suite = {
  async setup(backend) {
    const be = await loadTestBackend(backend);
    const ctx: Ctx = { backend: be, name: backend, foreign: new JsBackend(), kernels: kernelsOf(be) };
    return ctx;
  },
  run(ctx, seed, index) {
    const k = makeCase(ctx as Ctx, seed, index);
    return k.type === 'kernel' ? runKernelCase(ctx as Ctx, k.c) : k.type === 'step' ? runStepCase(ctx as Ctx, k.c) : runStaleCase(k);
  },
  describe(ctx, seed, index) {
    const k = makeCase(ctx as Ctx, seed, index);
    return k.type === 'kernel' ? describeKernelCase(k.c) : k.type === 'step' ? describeStepCase(k.c) : describeStale(k);
  },
};
