// The kernel contract: what every backend (native, wasm, js) accepts at its boundary, written once.
// Each kernel's arguments are listed here in order with their kind, range, the floats a buffer
// must hold, and which buffers the kernel writes (an output must not share memory with any other
// buffer argument). The wasm and js backends check calls with `checkKernel`, the native backend's
// JavaScript side with `checkTypes` and its C++ side (native/boundary/args.h) with the same rules and the
// same words; test/boundary.test.ts runs one table of bad calls against all three and expects
// identical errors.
//
// Order of checks, so that the first error is the same everywhere:
//   1. types, in positional order (a number, a boolean, a buffer of this backend);
//   2. ranges of the non-buffer arguments, in positional order;
//   3. buffer lengths, in positional order;
//   4. overlaps: each output, in positional order, against every other buffer in positional order.
// Type errors are TypeErrors, everything else RangeErrors; messages start with the kernel's name.
import { type Buf, type StepDesc, type StepHyper } from './backend.js';
import { ACT, ACT_MAX, F32_HALF_MIN, F32_OVERFLOW, KERNELS, LOSS_MAX, MAX_SIZE, MAX_U32, OPS, OPT, OPT_MAX, PREV_ACT_MAX, HYPER, type HyperName, type ArgContract, type ArgKind, type OpName } from './abi.js';
import type { Program } from './program.js';

export { KERNELS, type ArgContract, type ArgKind } from './abi.js';

export type KernelName = keyof typeof KERNELS;

export { MAX_SIZE };
/** [lo, hi] of the integer kinds; decayCount's hi is the kernel's n. */
const RANGES: Partial<Record<ArgKind, readonly [number, number]>> = {
  size: [0, MAX_SIZE], u32: [0, MAX_U32], act: [0, ACT_MAX], prevAct: [0, PREV_ACT_MAX], loss: [0, LOSS_MAX],
};

/** How a backend's buffers are recognized and placed, for the type and overlap checks. */
export interface BufferSpace {
  /** True for a buffer this backend's kernels can use. */
  accepts(b: unknown): boolean;
  length(b: Buf): number;
  /** The memory a buffer lies in (compared by identity) and its first float there. */
  memory(b: Buf): unknown;
  start(b: Buf): number;
}

/** Any Buf with a Float32Array: what the js backend (and native's Float32Array path) runs on. */
export function isBufLike(b: unknown): b is Buf {
  return typeof b === 'object' && b !== null && (b as Buf).data instanceof Float32Array;
}

/** The buffers of the js backend: any Buf, placed by its Float32Array. */
export const ARRAY_SPACE: BufferSpace = {
  accepts: isBufLike,
  length: (b) => b.data.length,
  memory: (b) => b.data.buffer,
  start: (b) => b.data.byteOffset / 4,
};

/** What a value is, in an error message ("got a string"); native/boundary/args.h describe() says the same. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'undefined': return 'undefined';
    case 'boolean': return 'a boolean';
    case 'number': return 'a number';
    case 'string': return 'a string';
    case 'bigint': return 'a bigint';
    case 'symbol': return 'a symbol';
    case 'function': return 'a function';
    default: return isBufLike(v) ? 'a buffer of another backend' : 'an object';
  }
}

export const isFiniteF32 = (v: number): boolean => Number.isFinite(Math.fround(v));
/** A dropout rate: in [0, 1) once rounded to float32 (0.99999999 rounds to 1). NaN fails. */
export const isRate = (v: unknown): boolean => typeof v === 'number' && v >= 0 && Math.fround(v) < 1;

// The contract's words (native/boundary/args.h builds the same strings).
const msg = {
  number: (name: string, v: unknown) => `${name} must be a number, got ${describe(v)}`,
  bool: (name: string, v: unknown) => `${name} must be a boolean, got ${describe(v)}`,
  buffer: (name: string, v: unknown, nullable: boolean) =>
    `${name} must be a buffer of this backend${nullable ? ' or null' : ''}, got ${describe(v)}`,
  integer: (name: string, v: number, lo: number, hi: number) => `${name} must be an integer in [${lo}, ${hi}], got ${v}`,
  float32: (name: string, v: number) => `${name} must be a finite float32, got ${v}`,
  nonzero: (name: string, v: number) => `${name} must be a nonzero finite float32, got ${v}`,
  rate: (name: string, v: number) => `${name} must be in [0, 1) as a float32, got ${v}`,
  short: (name: string, len: number, expr: string, need: number) => `${name} has ${len} floats, fewer than ${expr} = ${need}`,
  overlap: (a: string, b: string) => `${a} and ${b} overlap (an output must not share memory with another argument)`,
};

/** One kernel's contract, resolved into positions once (the checks run on every call). */
interface Resolved {
  readonly fn: string;
  readonly args: readonly ArgContract[];
  /** per argument: the positions of its `floats` sizes (buffers), or of n (decayCount) */
  readonly sizeAt: readonly (readonly number[])[];
  readonly expr: readonly string[];
  /** [output, other] position pairs in check order */
  readonly pairs: readonly (readonly [number, number])[];
}

function resolve(fn: string, args: readonly ArgContract[]): Resolved {
  const pos = (name: string): number => {
    const i = args.findIndex((a) => a.name === name && a.kind !== 'buffer' && a.kind !== 'buffer?');
    if (i < 0) throw new Error(`contract ${fn}: no size argument ${name}`);
    return i;
  };
  const sizeAt = args.map((a) => (a.floats ? a.floats.map(pos) : a.kind === 'decayCount' ? [pos('n')] : []));
  const bufs = args.map((a, i) => [a, i] as const).filter(([a]) => a.kind === 'buffer' || a.kind === 'buffer?');
  const pairs: [number, number][] = [];
  for (const [o, i] of bufs) {
    if (!o.output) continue;
    for (const [b, j] of bufs) if (j !== i && !(b.output && j < i)) pairs.push([i, j]);
  }
  return { fn, args, sizeAt, expr: args.map((a) => (a.floats ?? []).join('*')), pairs };
}

export const RESOLVED: Record<KernelName, Resolved> = Object.fromEntries(
  Object.entries(KERNELS).map(([fn, args]) => [fn, resolve(fn, args)]),
) as Record<KernelName, Resolved>;

// Scratch for one check at a time (JavaScript is single-threaded): no allocation per call.
const V: unknown[] = new Array<unknown>(16).fill(undefined);
const NEED = new Float64Array(16);

function fail(type: boolean, fn: string, text: string): never {
  V.fill(undefined); // do not keep the caller's buffers alive
  throw type ? new TypeError(`${fn}: ${text}`) : new RangeError(`${fn}: ${text}`);
}

function load(a0: unknown, a1: unknown, a2: unknown, a3: unknown, a4: unknown, a5: unknown, a6: unknown, a7: unknown,
  a8: unknown, a9: unknown, a10: unknown, a11: unknown, a12: unknown, a13: unknown, a14: unknown): void {
  V[0] = a0; V[1] = a1; V[2] = a2; V[3] = a3; V[4] = a4; V[5] = a5; V[6] = a6; V[7] = a7;
  V[8] = a8; V[9] = a9; V[10] = a10; V[11] = a11; V[12] = a12; V[13] = a13; V[14] = a14;
}

function types(space: BufferSpace, k: Resolved): void {
  const args = k.args;
  for (let i = 0; i < args.length; i++) {
    const a = args[i], v = V[i];
    switch (a.kind) {
      case 'buffer': if (!space.accepts(v)) fail(true, k.fn, msg.buffer(a.name, v, false)); break;
      case 'buffer?': if (v !== null && !space.accepts(v)) fail(true, k.fn, msg.buffer(a.name, v, true)); break;
      case 'bool': if (typeof v !== 'boolean') fail(true, k.fn, msg.bool(a.name, v)); break;
      default: if (typeof v !== 'number') fail(true, k.fn, msg.number(a.name, v));
    }
  }
}

function rest(space: BufferSpace, k: Resolved): void {
  const args = k.args;
  // 2. ranges
  for (let i = 0; i < args.length; i++) {
    const a = args[i], kind = a.kind;
    if (kind === 'buffer' || kind === 'buffer?' || kind === 'bool') continue;
    const v = V[i] as number;
    if (kind === 'float32' || kind === 'nonzero') {
      if (!isFiniteF32(v)) fail(false, k.fn, msg.float32(a.name, v));
      if (kind === 'nonzero' && Math.fround(v) === 0) fail(false, k.fn, msg.nonzero(a.name, v));
      continue;
    }
    if (kind === 'rate') {
      if (!isRate(v)) fail(false, k.fn, msg.rate(a.name, v));
      continue;
    }
    const r = RANGES[kind];
    const lo = r ? r[0] : 0, hi = r ? r[1] : (V[k.sizeAt[i][0]] as number);
    if (!(Number.isInteger(v) && v >= lo && v <= hi)) fail(false, k.fn, msg.integer(a.name, v, lo, hi));
  }
  // 3. lengths
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.kind !== 'buffer' && a.kind !== 'buffer?') continue;
    const b = V[i] as Buf | null;
    if (b === null) {
      NEED[i] = 0;
      continue;
    }
    const at = k.sizeAt[i];
    let need = 1;
    for (let j = 0; j < at.length; j++) need *= V[at[j]] as number;
    NEED[i] = need;
    const len = space.length(b);
    if (len < need) fail(false, k.fn, msg.short(a.name, len, k.expr[i], need));
  }
  // 4. overlaps, over the floats each buffer is used for
  const pairs = k.pairs;
  for (let p = 0; p < pairs.length; p++) {
    const i = pairs[p][0], j = pairs[p][1];
    const bi = V[i] as Buf | null, bj = V[j] as Buf | null;
    if (bi === null || bj === null || NEED[i] === 0 || NEED[j] === 0) continue;
    if (space.memory(bi) !== space.memory(bj)) continue;
    const si = space.start(bi), sj = space.start(bj);
    if (si < sj + NEED[j] && sj < si + NEED[i]) fail(false, k.fn, msg.overlap(args[i].name, args[j].name));
  }
  V.fill(undefined);
}

/**
 * Checks a call of kernel `k` against the contract (arguments in the kernel's order; pass fewer,
 * the rest are undefined). Throws the contract's error, or returns having allocated nothing.
 */
export function checkKernel(space: BufferSpace, k: Resolved, a0?: unknown, a1?: unknown, a2?: unknown, a3?: unknown,
  a4?: unknown, a5?: unknown, a6?: unknown, a7?: unknown, a8?: unknown, a9?: unknown, a10?: unknown, a11?: unknown,
  a12?: unknown, a13?: unknown, a14?: unknown): void {
  load(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14);
  types(space, k);
  rest(space, k);
}

/** Only the types (step 1): the native backend checks the rest in C++, with the same words. */
export function checkTypes(space: BufferSpace, k: Resolved, a0?: unknown, a1?: unknown, a2?: unknown, a3?: unknown,
  a4?: unknown, a5?: unknown, a6?: unknown, a7?: unknown, a8?: unknown, a9?: unknown, a10?: unknown, a11?: unknown,
  a12?: unknown, a13?: unknown, a14?: unknown): void {
  load(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14);
  types(space, k);
  V.fill(undefined);
}

// ---------------------------------------------------------------------------------------------
// Compiled steps (backend.ts StepCompiler): the description is checked once, when compiling; the
// hyper-parameters on every run.

/** A run's hyper-parameters in the order of their slots (abi.ts HYPER). */
const HYPER_FIELDS = (Object.keys(HYPER.at) as (keyof typeof HYPER.at)[]).filter((f): f is HyperName => f !== 'loss');

function hyperFail(type: boolean, text: string): never {
  throw type ? new TypeError(`compiled step: ${text}`) : new RangeError(`compiled step: ${text}`);
}


/** Every field of a run's hyper-parameters of its type (numbers, nesterov a boolean). */
export function hyperTypesOk(h: StepHyper): boolean {
  return typeof h === 'object' && h !== null && typeof h.lr === 'number' && typeof h.clipNorm === 'number' &&
    typeof h.weightDecay === 'number' && typeof h.mu === 'number' && typeof h.nesterov === 'boolean' &&
    typeof h.beta1 === 'number' && typeof h.beta2 === 'number' && typeof h.eps === 'number' &&
    typeof h.bc1 === 'number' && typeof h.bc2 === 'number' && (h.step === undefined || typeof h.step === 'number');
}

/** Throws the contract's error for the first thing wrong with a run's hyper-parameters. */
export function checkHyper(h: StepHyper, optimizer: number): never {
  return badHyper(h, optimizer);
}

/** Which field of a refused run is wrong, in the order of HYPER_FIELDS. */
function badHyper(h: StepHyper, optimizer: number): never {
  if (typeof h !== 'object' || h === null) hyperFail(true, `the hyper-parameters must be an object, got ${describe(h)}`);
  for (const f of HYPER_FIELDS) {
    const v = h[f];
    if (f === 'step' && v === undefined) continue;
    if (f === 'nesterov') {
      if (typeof v !== 'boolean') hyperFail(true, msg.bool(f, v));
    } else if (typeof v !== 'number') {
      hyperFail(true, msg.number(f, v));
    } else if (!isFiniteF32(v)) {
      hyperFail(false, msg.float32(f, v));
    }
  }
  const f = Math.fround(h.bc1) === 0 ? 'bc1' : 'bc2';
  if ((optimizer === OPT.adam || optimizer === OPT.adamw) && Math.fround(h[f]) === 0) hyperFail(false, msg.nonzero(f, h[f]));
  // reached only if the stored values were refused and the fields look fine (they changed between)
  hyperFail(false, 'the hyper-parameters changed while being checked');
}

/** A step description's buffers, by name, with the floats each is used for. */
export interface StepBuffer {
  name: string;
  buf: Buf;
  floats: number;
  /** the step writes it (x and y are only read) */
  output: boolean;
}

/**
 * Checks a step description (the contract of StepDesc in backend.ts) and returns its buffers with
 * the floats each is used for. Every message starts with "compileStep: ".
 */
export function checkStep(space: BufferSpace, d: StepDesc): StepBuffer[] {
  const bad = (text: string, type = false): never => {
    throw type ? new TypeError(`compileStep: ${text}`) : new RangeError(`compileStep: ${text}`);
  };
  if (typeof d !== 'object' || d === null) bad(`the description must be an object, got ${describe(d)}`, true);
  const integer = (name: string, v: unknown, lo: number, hi: number): number => {
    if (typeof v !== 'number') bad(msg.number(name, v), true);
    if (!(Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi)) bad(msg.integer(name, v as number, lo, hi));
    return v as number;
  };
  const m = integer('m', d.m, 1, MAX_SIZE);
  if (!Array.isArray(d.dims) || d.dims.length < 2) bad('dims must list the input width and at least one layer\'s units');
  const dims = d.dims;
  dims.forEach((v, i) => integer(`dims[${i}]`, v, 1, MAX_SIZE));
  const L = dims.length - 1;
  for (const key of ['acts', 'alphas', 'outs', 'deltas', 'wOffsets', 'bOffsets'] as const) {
    const a = d[key] as unknown;
    if (!Array.isArray(a) || a.length !== L) {
      bad(`${key} needs ${L} entries (one per layer), got ${Array.isArray(a) ? a.length : describe(a)}`);
    }
  }
  for (let l = 0; l < L; l++) {
    const act = integer(`acts[${l}]`, d.acts[l], 0, ACT_MAX);
    if (act === ACT.softmax && l < L - 1) bad(`acts[${l}]: softmax is only allowed on the output layer`);
    const alpha = d.alphas[l];
    if (typeof alpha !== 'number') bad(msg.number(`alphas[${l}]`, alpha), true);
    if (!isFiniteF32(alpha)) bad(msg.float32(`alphas[${l}]`, alpha));
  }
  integer('loss', d.loss, 0, LOSS_MAX);
  if (d.delta !== undefined) {
    if (typeof d.delta !== 'number') bad(msg.number('delta', d.delta), true);
    if (!isFiniteF32(d.delta)) bad(msg.float32('delta', d.delta));
  }
  const opt = integer('optimizer', d.optimizer, 0, OPT_MAX);
  const n = integer('n', d.n, 1, MAX_SIZE);
  integer('decayCount', d.decayCount, 0, n);
  for (let l = 0; l < L; l++) {
    const inp = dims[l], out = dims[l + 1];
    const wo = integer(`wOffsets[${l}]`, d.wOffsets[l], 0, n), bo = integer(`bOffsets[${l}]`, d.bOffsets[l], 0, n);
    if (wo + inp * out > n) bad(`wOffsets[${l}]: layer ${l}'s W [${wo}, ${wo + inp * out}) is outside the ${n} params`);
    if (bo + out > n) bad(`bOffsets[${l}]: layer ${l}'s b [${bo}, ${bo + out}) is outside the ${n} params`);
  }
  // buffers: type, then length, in the description's order
  const list: [string, Buf | null | undefined, number, string, boolean, boolean][] = [
    // name, buffer, floats, how they read, output, required
    ['x', d.x, m * dims[0], 'm*dims[0]', false, true],
    ['y', d.y, m * dims[L], `m*dims[${L}]`, false, true],
    ['weights', d.weights, m, 'm', false, false],
    ['params', d.params, n, 'n', true, true],
    ['grads', d.grads, n, 'n', true, true],
    ['backup', d.backup, n, 'n', true, true],
    ['state1', d.state1, n, 'n', true, opt !== OPT.sgd],
    ['state2', d.state2, n, 'n', true, opt === OPT.adam || opt === OPT.adamw],
  ];
  for (let l = 0; l < L; l++) list.push([`outs[${l}]`, d.outs[l], m * dims[l + 1], `m*dims[${l + 1}]`, true, true]);
  for (let l = 0; l < L; l++) list.push([`deltas[${l}]`, d.deltas[l], m * dims[l + 1], `m*dims[${l + 1}]`, true, true]);
  const used: StepBuffer[] = [];
  for (const [name, b, floats, expr, output, required] of list) {
    if (!required && (b === null || b === undefined)) continue;
    if (!space.accepts(b)) {
      const why = name === 'state1' || name === 'state2' ? ' (this optimizer keeps its state there)' : '';
      bad(`${name} must be a buffer of this backend${why}, got ${describe(b)}`, true);
    }
    const len = space.length(b as Buf);
    if (len < floats) bad(msg.short(name, len, expr, floats));
    used.push({ name, buf: b as Buf, floats, output });
  }
  // overlaps: sorted by start within each memory, each buffer against the one reaching furthest
  // before it (if it overlaps any earlier one, it overlaps that one)
  const order = used.map((u, i) => ({ u, i, mem: space.memory(u.buf), start: space.start(u.buf) }))
    .filter((e) => e.u.floats > 0);
  const byMemory = new Map<unknown, typeof order>();
  for (const e of order) {
    const list2 = byMemory.get(e.mem);
    if (list2) list2.push(e);
    else byMemory.set(e.mem, [e]);
  }
  for (const group of byMemory.values()) {
    group.sort((a, b) => a.start - b.start || a.i - b.i);
    let reach = group[0];
    for (let j = 1; j < group.length; j++) {
      const cur = group[j];
      if (cur.start < reach.start + reach.u.floats && (cur.u.output || reach.u.output)) {
        const [first, second] = reach.i < cur.i ? [reach, cur] : [cur, reach];
        bad(`${first.u.name} and ${second.u.name} overlap (a buffer the step writes must not share memory with another)`);
      }
      if (cur.start + cur.u.floats > reach.start + reach.u.floats) reach = cur;
    }
  }
  return used;
}

// ---------------------------------------------------------------------------------------------
// Programs (program.ts): each op is held to its kernel's contract once, when compiling.

const RESOLVED_OPS = Object.fromEntries(
  (Object.keys(OPS) as OpName[]).map((name) => [name, resolve(name, OPS[name].operands)]),
) as Record<OpName, Resolved>;

/**
 * Checks every op of a program against its contract (abi.ts OPS: the kernel's, in record order).
 * Messages start with "compileProgram: op i: " and then the kernel contract's words.
 */
export function checkProgram(space: BufferSpace, program: Program): void {
  if (!Array.isArray(program) || program.length === 0) {
    throw new TypeError(`compileProgram: the program must be a non-empty array of ops, got ${Array.isArray(program) ? 'an empty array' : describe(program)}`);
  }
  program.forEach((o: unknown, i) => {
    const name = (o as { op?: unknown } | null)?.op;
    if (typeof name !== 'string' || !Object.hasOwn(OPS, name)) {
      throw new RangeError(`compileProgram: op ${i}: unknown op ${typeof name === 'string' ? `'${name}'` : describe(name)} (known: ${Object.keys(OPS).join(', ')})`);
    }
    const k = RESOLVED_OPS[name as OpName];
    const v = k.args.map((a) => (o as Record<string, unknown>)[a.name]);
    try {
      checkKernel(space, k, ...v);
    } catch (e) {
      const E = e instanceof TypeError ? TypeError : RangeError;
      throw new E(`compileProgram: op ${i}: ${(e as Error).message}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The same contract, kernel by kernel, as one expression each: true when a call certainly keeps
// it. Backends run these on every call (a few nanoseconds) and, only when one says false, the
// table-driven checkKernel / checkTypes above, which name what is wrong. test/boundary.test.ts
// holds both to one table of bad calls on every backend.

const num = (v: unknown): v is number => typeof v === 'number';
const isSize = (v: unknown): boolean => typeof v === 'number' && v >= 0 && v <= MAX_SIZE && Number.isInteger(v);
const isF32 = (v: unknown): boolean => typeof v === 'number' && Math.abs(v) < F32_OVERFLOW;
const isNonzero = (v: unknown): boolean => isF32(v) && Math.abs(v as number) > F32_HALF_MIN;
const isInt = (v: unknown, hi: number): boolean => typeof v === 'number' && v >= 0 && v <= hi && Number.isInteger(v);
const holds = (s: BufferSpace, b: unknown, need: number): boolean => s.accepts(b) && s.length(b as Buf) >= need;
/** o (no floats used) and b (nb) share no float. */
function apart(s: BufferSpace, o: Buf | null, no: number, b: Buf | null, nb: number): boolean {
  if (o === null || b === null || no === 0 || nb === 0 || s.memory(o) !== s.memory(b)) return true;
  const so = s.start(o), sb = s.start(b);
  return so + no <= sb || sb + nb <= so;
}

/** Each kernel's whole contract (types, ranges, lengths, overlaps) as one test. */
export const FAST = {
  gemm: (s: BufferSpace, ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, a: Buf, b: Buf,
    beta: number, c: Buf): boolean =>
    typeof ta === 'boolean' && typeof tb === 'boolean' && isSize(m) && isSize(n) && isSize(k) && isF32(alpha) && isF32(beta) &&
    holds(s, a, m * k) && holds(s, b, k * n) && holds(s, c, m * n) && apart(s, c, m * n, a, m * k) && apart(s, c, m * n, b, k * n),
  denseForward: (s: BufferSpace, y: Buf, x: Buf, w: Buf, b: Buf, m: number, inp: number, out: number, act: number,
    alpha: number): boolean =>
    isSize(m) && isSize(inp) && isSize(out) && isInt(act, ACT_MAX) && isF32(alpha) &&
    holds(s, y, m * out) && holds(s, x, m * inp) && holds(s, w, inp * out) && holds(s, b, out) &&
    apart(s, y, m * out, x, m * inp) && apart(s, y, m * out, w, inp * out) && apart(s, y, m * out, b, out),
  denseBackward: (s: BufferSpace, dw: Buf, db: Buf, dx: Buf | null, dz: Buf, x: Buf, w: Buf, m: number, inp: number,
    out: number, scale: number, prevAct: number, alpha: number): boolean => {
    if (!(isSize(m) && isSize(inp) && isSize(out) && isF32(scale) && isInt(prevAct, PREV_ACT_MAX) && isF32(alpha) &&
      holds(s, dw, inp * out) && holds(s, db, out) && (dx === null || holds(s, dx, m * inp)) && holds(s, dz, m * out) &&
      holds(s, x, m * inp) && holds(s, w, inp * out))) return false;
    const nw = inp * out, nx = m * inp, nz = m * out;
    return apart(s, dw, nw, db, out) && apart(s, dw, nw, dx, nx) && apart(s, dw, nw, dz, nz) && apart(s, dw, nw, x, nx) &&
      apart(s, dw, nw, w, nw) && apart(s, db, out, dx, nx) && apart(s, db, out, dz, nz) && apart(s, db, out, x, nx) &&
      apart(s, db, out, w, nw) && apart(s, dx, nx, dz, nz) && apart(s, dx, nx, x, nx) && apart(s, dx, nx, w, nw);
  },
  lossDelta: (s: BufferSpace, dz: Buf, a: Buf, y: Buf, m: number, n: number, loss: number, act: number,
    alpha: number, delta: number, weights: Buf | null): boolean =>
    isSize(m) && isSize(n) && isInt(loss, LOSS_MAX) && isInt(act, ACT_MAX) && isF32(alpha) && isF32(delta) &&
    holds(s, dz, m * n) && holds(s, a, m * n) && holds(s, y, m * n) && (weights === null || holds(s, weights, m)) &&
    apart(s, dz, m * n, a, m * n) && apart(s, dz, m * n, y, m * n) && apart(s, dz, m * n, weights, m),
  sumSquares: (s: BufferSpace, g: Buf, n: number): boolean => isSize(n) && holds(s, g, n),
  sgdStep: (s: BufferSpace, p: Buf, g: Buf, n: number, lr: number, gradScale: number, weightDecay: number,
    decayCount: number): boolean =>
    isSize(n) && isF32(lr) && isF32(gradScale) && isF32(weightDecay) && isInt(decayCount, n) &&
    holds(s, p, n) && holds(s, g, n) && apart(s, p, n, g, n),
  momentumStep: (s: BufferSpace, p: Buf, g: Buf, v: Buf, n: number, lr: number, gradScale: number, mu: number,
    nesterov: boolean, weightDecay: number, decayCount: number): boolean =>
    isSize(n) && isF32(lr) && isF32(gradScale) && isF32(mu) && typeof nesterov === 'boolean' && isF32(weightDecay) &&
    isInt(decayCount, n) && holds(s, p, n) && holds(s, g, n) && holds(s, v, n) &&
    apart(s, p, n, g, n) && apart(s, p, n, v, n) && apart(s, v, n, g, n),
  adamStep: (s: BufferSpace, p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, gradScale: number, beta1: number,
    beta2: number, eps: number, bc1: number, bc2: number, weightDecay: number, decoupled: boolean,
    decayCount: number): boolean =>
    isSize(n) && isF32(lr) && isF32(gradScale) && isF32(beta1) && isF32(beta2) && isF32(eps) && isNonzero(bc1) &&
    isNonzero(bc2) && isF32(weightDecay) && typeof decoupled === 'boolean' && isInt(decayCount, n) &&
    holds(s, p, n) && holds(s, g, n) && holds(s, m, n) && holds(s, v, n) &&
    apart(s, p, n, g, n) && apart(s, p, n, m, n) && apart(s, p, n, v, n) && apart(s, m, n, g, n) && apart(s, m, n, v, n) &&
    apart(s, v, n, g, n),
  dropoutForward: (s: BufferSpace, y: Buf, x: Buf, n: number, rate: number, seed: number, step: number,
    layer: number): boolean =>
    isSize(n) && isRate(rate) && isInt(seed, MAX_U32) && isInt(step, MAX_U32) && isInt(layer, MAX_U32) &&
    holds(s, y, n) && holds(s, x, n) && apart(s, y, n, x, n),
  dropoutBackward: (s: BufferSpace, dx: Buf, dy: Buf, x: Buf, n: number, rate: number, seed: number, step: number,
    layer: number, prevAct: number, alpha: number): boolean =>
    isSize(n) && isRate(rate) && isInt(seed, MAX_U32) && isInt(step, MAX_U32) && isInt(layer, MAX_U32) &&
    isInt(prevAct, PREV_ACT_MAX) && isF32(alpha) && holds(s, dx, n) && holds(s, dy, n) && holds(s, x, n) &&
    apart(s, dx, n, dy, n) && apart(s, dx, n, x, n),
  batchNormForward: (s: BufferSpace, y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, mean: Buf,
    invStd: Buf, m: number, n: number, update: boolean, momentum: number, eps: number, act: number,
    alpha: number): boolean => {
    if (!(isSize(m) && isSize(n) && typeof update === 'boolean' && isF32(momentum) && isNonzero(eps) &&
      isInt(act, PREV_ACT_MAX) && isF32(alpha) && holds(s, y, m * n) && holds(s, x, m * n) && holds(s, gamma, n) &&
      holds(s, beta, n) && holds(s, runMean, n) && holds(s, runVar, n) && holds(s, mean, n) && holds(s, invStd, n))) return false;
    const mn = m * n;
    return apart(s, y, mn, x, mn) && apart(s, y, mn, gamma, n) && apart(s, y, mn, beta, n) && apart(s, y, mn, runMean, n) &&
      apart(s, y, mn, runVar, n) && apart(s, y, mn, mean, n) && apart(s, y, mn, invStd, n) &&
      apart(s, runMean, n, x, mn) && apart(s, runMean, n, gamma, n) && apart(s, runMean, n, beta, n) &&
      apart(s, runMean, n, runVar, n) && apart(s, runMean, n, mean, n) && apart(s, runMean, n, invStd, n) &&
      apart(s, runVar, n, x, mn) && apart(s, runVar, n, gamma, n) && apart(s, runVar, n, beta, n) &&
      apart(s, runVar, n, mean, n) && apart(s, runVar, n, invStd, n) &&
      apart(s, mean, n, x, mn) && apart(s, mean, n, gamma, n) && apart(s, mean, n, beta, n) && apart(s, mean, n, invStd, n) &&
      apart(s, invStd, n, x, mn) && apart(s, invStd, n, gamma, n) && apart(s, invStd, n, beta, n);
  },
  batchNormInference: (s: BufferSpace, y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, m: number,
    n: number, eps: number, act: number, alpha: number): boolean => {
    if (!(isSize(m) && isSize(n) && isNonzero(eps) && isInt(act, PREV_ACT_MAX) && isF32(alpha))) return false;
    const mn = m * n;
    return holds(s, y, mn) && holds(s, x, mn) && holds(s, gamma, n) && holds(s, beta, n) && holds(s, runMean, n) &&
      holds(s, runVar, n) && apart(s, y, mn, x, mn) && apart(s, y, mn, gamma, n) && apart(s, y, mn, beta, n) &&
      apart(s, y, mn, runMean, n) && apart(s, y, mn, runVar, n);
  },
  batchNormBackward: (s: BufferSpace, dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf,
    invStd: Buf, m: number, n: number, scale: number, prevAct: number, alpha: number): boolean =>
    normBackwardOk(s, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, n, scale, prevAct, alpha),
  layerNormForward: (s: BufferSpace, y: Buf, x: Buf, gamma: Buf, beta: Buf, mean: Buf, invStd: Buf, m: number,
    n: number, eps: number, act: number, alpha: number): boolean => {
    if (!(isSize(m) && isSize(n) && isNonzero(eps) && isInt(act, PREV_ACT_MAX) && isF32(alpha))) return false;
    const mn = m * n;
    return holds(s, y, mn) && holds(s, x, mn) && holds(s, gamma, n) && holds(s, beta, n) && holds(s, mean, m) &&
      holds(s, invStd, m) && apart(s, y, mn, x, mn) && apart(s, y, mn, gamma, n) && apart(s, y, mn, beta, n) &&
      apart(s, y, mn, mean, m) && apart(s, y, mn, invStd, m) && apart(s, mean, m, x, mn) && apart(s, mean, m, gamma, n) &&
      apart(s, mean, m, beta, n) && apart(s, mean, m, invStd, m) && apart(s, invStd, m, x, mn) &&
      apart(s, invStd, m, gamma, n) && apart(s, invStd, m, beta, n);
  },
  layerNormBackward: (s: BufferSpace, dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf,
    invStd: Buf, m: number, n: number, scale: number, prevAct: number, alpha: number): boolean =>
    normBackwardOk(s, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, m, scale, prevAct, alpha),
};

/** batchNormBackward / layerNormBackward: their statistics hold `stats` floats (n per column, m per row). */
function normBackwardOk(s: BufferSpace, dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf,
  invStd: Buf, m: number, n: number, stats: number, scale: number, prevAct: number, alpha: number): boolean {
  if (!(isSize(m) && isSize(n) && isF32(scale) && isInt(prevAct, PREV_ACT_MAX) && isF32(alpha))) return false;
  const mn = m * n;
  if (!((dx === null || holds(s, dx, mn)) && holds(s, dgamma, n) && holds(s, dbeta, n) && holds(s, dy, mn) &&
    holds(s, x, mn) && holds(s, gamma, n) && holds(s, mean, stats) && holds(s, invStd, stats))) return false;
  return apart(s, dx, mn, dgamma, n) && apart(s, dx, mn, dbeta, n) && apart(s, dx, mn, dy, mn) && apart(s, dx, mn, x, mn) &&
    apart(s, dx, mn, gamma, n) && apart(s, dx, mn, mean, stats) && apart(s, dx, mn, invStd, stats) &&
    apart(s, dgamma, n, dbeta, n) && apart(s, dgamma, n, dy, mn) && apart(s, dgamma, n, x, mn) &&
    apart(s, dgamma, n, gamma, n) && apart(s, dgamma, n, mean, stats) && apart(s, dgamma, n, invStd, stats) &&
    apart(s, dbeta, n, dy, mn) && apart(s, dbeta, n, x, mn) && apart(s, dbeta, n, gamma, n) &&
    apart(s, dbeta, n, mean, stats) && apart(s, dbeta, n, invStd, stats);
}

/** Each kernel's types alone (the native backend checks the rest in C++). */
export const FAST_TYPES = {
  gemm: (ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, a: Buf, b: Buf, beta: number,
    c: Buf): boolean =>
    typeof ta === 'boolean' && typeof tb === 'boolean' && num(m) && num(n) && num(k) && num(alpha) && num(beta) &&
    isBufLike(a) && isBufLike(b) && isBufLike(c),
  denseForward: (y: Buf, x: Buf, w: Buf, b: Buf, m: number, inp: number, out: number, act: number, alpha: number): boolean =>
    num(m) && num(inp) && num(out) && num(act) && num(alpha) && isBufLike(y) && isBufLike(x) && isBufLike(w) && isBufLike(b),
  denseBackward: (dw: Buf, db: Buf, dx: Buf | null, dz: Buf, x: Buf, w: Buf, m: number, inp: number, out: number,
    scale: number, prevAct: number, alpha: number): boolean =>
    num(m) && num(inp) && num(out) && num(scale) && num(prevAct) && num(alpha) && isBufLike(dw) && isBufLike(db) &&
    (dx === null || isBufLike(dx)) && isBufLike(dz) && isBufLike(x) && isBufLike(w),
  lossDelta: (dz: Buf, a: Buf, y: Buf, m: number, n: number, loss: number, act: number, alpha: number, delta: number,
    weights: Buf | null): boolean =>
    num(m) && num(n) && num(loss) && num(act) && num(alpha) && num(delta) && isBufLike(dz) && isBufLike(a) &&
    isBufLike(y) && (weights === null || isBufLike(weights)),
  sumSquares: (g: Buf, n: number): boolean => num(n) && isBufLike(g),
  sgdStep: (p: Buf, g: Buf, n: number, lr: number, gradScale: number, weightDecay: number, decayCount: number): boolean =>
    num(n) && num(lr) && num(gradScale) && num(weightDecay) && num(decayCount) && isBufLike(p) && isBufLike(g),
  momentumStep: (p: Buf, g: Buf, v: Buf, n: number, lr: number, gradScale: number, mu: number, nesterov: boolean,
    weightDecay: number, decayCount: number): boolean =>
    num(n) && num(lr) && num(gradScale) && num(mu) && typeof nesterov === 'boolean' && num(weightDecay) &&
    num(decayCount) && isBufLike(p) && isBufLike(g) && isBufLike(v),
  adamStep: (p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, gradScale: number, beta1: number, beta2: number,
    eps: number, bc1: number, bc2: number, weightDecay: number, decoupled: boolean, decayCount: number): boolean =>
    num(n) && num(lr) && num(gradScale) && num(beta1) && num(beta2) && num(eps) && num(bc1) && num(bc2) &&
    num(weightDecay) && typeof decoupled === 'boolean' && num(decayCount) && isBufLike(p) && isBufLike(g) &&
    isBufLike(m) && isBufLike(v),
  dropoutForward: (y: Buf, x: Buf, n: number, rate: number, seed: number, step: number, layer: number): boolean =>
    num(n) && num(rate) && num(seed) && num(step) && num(layer) && isBufLike(y) && isBufLike(x),
  dropoutBackward: (dx: Buf, dy: Buf, x: Buf, n: number, rate: number, seed: number, step: number, layer: number,
    prevAct: number, alpha: number): boolean =>
    num(n) && num(rate) && num(seed) && num(step) && num(layer) && num(prevAct) && num(alpha) && isBufLike(dx) &&
    isBufLike(dy) && isBufLike(x),
  batchNormForward: (y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, mean: Buf, invStd: Buf, m: number,
    n: number, update: boolean, momentum: number, eps: number, act: number, alpha: number): boolean =>
    num(m) && num(n) && typeof update === 'boolean' && num(momentum) && num(eps) && num(act) && num(alpha) &&
    isBufLike(y) && isBufLike(x) && isBufLike(gamma) && isBufLike(beta) && isBufLike(runMean) && isBufLike(runVar) &&
    isBufLike(mean) && isBufLike(invStd),
  batchNormInference: (y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, m: number, n: number, eps: number,
    act: number, alpha: number): boolean =>
    num(m) && num(n) && num(eps) && num(act) && num(alpha) && isBufLike(y) && isBufLike(x) && isBufLike(gamma) &&
    isBufLike(beta) && isBufLike(runMean) && isBufLike(runVar),
  batchNormBackward: (dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf, invStd: Buf, m: number,
    n: number, scale: number, prevAct: number, alpha: number): boolean =>
    num(m) && num(n) && num(scale) && num(prevAct) && num(alpha) && (dx === null || isBufLike(dx)) && isBufLike(dgamma) &&
    isBufLike(dbeta) && isBufLike(dy) && isBufLike(x) && isBufLike(gamma) && isBufLike(mean) && isBufLike(invStd),
  layerNormForward: (y: Buf, x: Buf, gamma: Buf, beta: Buf, mean: Buf, invStd: Buf, m: number, n: number, eps: number,
    act: number, alpha: number): boolean =>
    num(m) && num(n) && num(eps) && num(act) && num(alpha) && isBufLike(y) && isBufLike(x) && isBufLike(gamma) &&
    isBufLike(beta) && isBufLike(mean) && isBufLike(invStd),
  layerNormBackward: (dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf, invStd: Buf, m: number,
    n: number, scale: number, prevAct: number, alpha: number): boolean =>
    num(m) && num(n) && num(scale) && num(prevAct) && num(alpha) && (dx === null || isBufLike(dx)) && isBufLike(dgamma) &&
    isBufLike(dbeta) && isBufLike(dy) && isBufLike(x) && isBufLike(gamma) && isBufLike(mean) && isBufLike(invStd),
};
