// The cross-language contract, written once: every number that the TypeScript side, the C++ addon
// (native/) and the AssemblyScript module (assembly/) must agree on. `npm run gen`
// (scripts/gen-abi.mjs, through src/backends/abi-gen.ts) writes native/abi.h and assembly/abi.ts
// from this file; test/abi.test.ts fails when those are stale. Layouts are lists of fields whose
// offsets are counted here, never by hand.

/** Activation codes. */
export const ACT = { linear: 0, sigmoid: 1, tanh: 2, relu: 3, leakyRelu: 4, softmax: 5 } as const;
export type ActivationName = keyof typeof ACT;
export type ActCode = (typeof ACT)[ActivationName];

/** Loss codes. */
export const LOSS = { mse: 0, binaryCrossEntropy: 1, categoricalCrossEntropy: 2, huber: 3, meanAbsoluteError: 4 } as const;
export type LossName = keyof typeof LOSS;
export type LossCode = (typeof LOSS)[LossName];

/** Optimizer codes of a compiled training step. */
export const OPT = { sgd: 0, momentum: 1, adam: 2, adamw: 3 } as const;
export type OptCode = (typeof OPT)[keyof typeof OPT];

const maxOf = (codes: Record<string, number>): number => Math.max(...Object.values(codes));
/** The largest code of each kind: the ranges the boundaries accept (prevAct is never softmax). */
export const ACT_MAX = maxOf(ACT);
export const PREV_ACT_MAX = ACT.softmax - 1;
export const LOSS_MAX = maxOf(LOSS);
export const OPT_MAX = maxOf(OPT);
if (ACT.softmax !== ACT_MAX) throw new Error('abi: softmax must be the last activation (prevAct excludes it by range)');

/** Probabilities are clamped to [EPS_PROB, 1 - EPS_PROB] inside log() (as Keras does). */
export const EPS_PROB = 1e-7;

/** The largest u32 argument (the dropout generator's seed, step and layer). */
export const MAX_U32 = 4294967295;

/**
 * The smallest normal float32 (2^-126). Optimizer state below it is stored as 0: a subnormal moment
 * makes every multiply of it take a microcode assist on x86, and changes no parameter.
 */
export const F32_MIN_NORMAL = 1.1754943508222875e-38;

/** The largest size argument: sizes are int32 on the JavaScript side. */
export const MAX_SIZE = 2147483647;
/** The smallest magnitude that rounds to infinity in float32 (2^128 − 2^103): finite below it. */
export const F32_OVERFLOW = 3.4028235677973366e38;
/** The largest magnitude that rounds to 0 in float32 (2^-150): a nonzero float32 is above it. */
export const F32_HALF_MIN = 7.006492321624085e-46;
/** The most threads a native kernel object runs on. */
export const MAX_THREADS = 256;

/** A layout: each field's offset in units (slots, words), counted from the widths in order. */
export interface Layout<K extends string> {
  readonly at: { readonly [key in K]: number };
  /** Units the fields take (before any padding). */
  readonly used: number;
  /** Units one record takes (at least `used`). */
  readonly size: number;
}

function layout<K extends string>(fields: readonly (readonly [K, number])[], size?: number): Layout<K> {
  const at = {} as Record<K, number>;
  let used = 0;
  for (const [name, width] of fields) {
    at[name] = used;
    used += width;
  }
  if (size !== undefined && size < used) throw new Error(`abi: a record of ${size} units cannot hold ${used}`);
  return { at, used, size: size ?? used };
}

/** The width of a buffer in a native slot layout: its id (−1 for null), offset and length. */
export const BUF_SLOTS = 3;

export type ArgKind =
  | 'buffer' // a buffer of this backend
  | 'buffer?' // the same, or null
  | 'size' // an integer in [0, 2^31 − 1]
  | 'decayCount' // an integer in [0, n]
  | 'float32' // a number that is finite once rounded to float32 (1e39 is not: it becomes Infinity)
  | 'nonzero' // the same, and not 0 once rounded (a divisor)
  | 'act' // an activation code, ACT above
  | 'prevAct' // an activation code other than softmax
  | 'loss' // a loss code, LOSS above
  | 'rate' // a number in [0, 1) once rounded to float32 (a dropout rate)
  | 'u32' // an integer in [0, 2^32 − 1] (the dropout generator's key words)
  | 'bool';

export interface ArgContract {
  readonly name: string;
  readonly kind: ArgKind;
  /** Buffers: the size arguments whose product is the fewest floats it must hold. */
  readonly floats?: readonly string[];
  /** Buffers the kernel writes: they must not share memory with any other buffer argument. */
  readonly output?: boolean;
}

const buf = (name: string, floats: string[], output = false): ArgContract => ({ name, kind: 'buffer', floats, output });
const arg = (name: string, kind: ArgKind): ArgContract => ({ name, kind });

/**
 * Every kernel of the Backend interface, its arguments in order (backend.ts documents the math):
 * the order of the wasm exports' parameters and of the native entry points' arguments.
 */
export const KERNELS = {
  gemm: [arg('transA', 'bool'), arg('transB', 'bool'), arg('m', 'size'), arg('n', 'size'), arg('k', 'size'),
    arg('alpha', 'float32'), buf('a', ['m', 'k']), buf('b', ['k', 'n']), arg('beta', 'float32'), buf('c', ['m', 'n'], true)],
  denseForward: [buf('y', ['m', 'out'], true), buf('x', ['m', 'inp']), buf('w', ['inp', 'out']), buf('b', ['out']),
    arg('m', 'size'), arg('inp', 'size'), arg('out', 'size'), arg('act', 'act'), arg('alpha', 'float32')],
  denseBackward: [buf('dw', ['inp', 'out'], true), buf('db', ['out'], true),
    { name: 'dx', kind: 'buffer?', floats: ['m', 'inp'], output: true }, buf('dz', ['m', 'out']), buf('x', ['m', 'inp']),
    buf('w', ['inp', 'out']), arg('m', 'size'), arg('inp', 'size'), arg('out', 'size'), arg('scale', 'float32'),
    arg('prevAct', 'prevAct'), arg('alpha', 'float32')],
  // delta: huber's threshold (read by huber only); weights: one factor per row, or null for all 1
  lossDelta: [buf('dz', ['m', 'n'], true), buf('a', ['m', 'n']), buf('y', ['m', 'n']), arg('m', 'size'), arg('n', 'size'),
    arg('loss', 'loss'), arg('act', 'act'), arg('alpha', 'float32'), arg('delta', 'float32'),
    { name: 'weights', kind: 'buffer?', floats: ['m'] }],
  sumSquares: [buf('g', ['n']), arg('n', 'size')],
  sgdStep: [buf('p', ['n'], true), buf('g', ['n']), arg('n', 'size'), arg('lr', 'float32'), arg('gradScale', 'float32'),
    arg('weightDecay', 'float32'), arg('decayCount', 'decayCount')],
  momentumStep: [buf('p', ['n'], true), buf('g', ['n']), buf('v', ['n'], true), arg('n', 'size'), arg('lr', 'float32'),
    arg('gradScale', 'float32'), arg('mu', 'float32'), arg('nesterov', 'bool'), arg('weightDecay', 'float32'),
    arg('decayCount', 'decayCount')],
  adamStep: [buf('p', ['n'], true), buf('g', ['n']), buf('m', ['n'], true), buf('v', ['n'], true), arg('n', 'size'),
    arg('lr', 'float32'), arg('gradScale', 'float32'), arg('beta1', 'float32'), arg('beta2', 'float32'),
    arg('eps', 'float32'), arg('bc1', 'nonzero'), arg('bc2', 'nonzero'), arg('weightDecay', 'float32'),
    arg('decoupled', 'bool'), arg('decayCount', 'decayCount')],
  // The layers beyond dense (backend.ts documents the math).
  dropoutForward: [buf('y', ['n'], true), buf('x', ['n']), arg('n', 'size'), arg('rate', 'rate'), arg('seed', 'u32'),
    arg('step', 'u32'), arg('layer', 'u32')],
  dropoutBackward: [buf('dx', ['n'], true), buf('dy', ['n']), buf('x', ['n']), arg('n', 'size'), arg('rate', 'rate'),
    arg('seed', 'u32'), arg('step', 'u32'), arg('layer', 'u32'), arg('prevAct', 'prevAct'), arg('alpha', 'float32')],
  batchNormForward: [buf('y', ['m', 'n'], true), buf('x', ['m', 'n']), buf('gamma', ['n']), buf('beta', ['n']),
    buf('runMean', ['n'], true), buf('runVar', ['n'], true), buf('mean', ['n'], true), buf('invStd', ['n'], true),
    arg('m', 'size'), arg('n', 'size'), arg('update', 'bool'), arg('momentum', 'float32'), arg('eps', 'nonzero'),
    arg('act', 'prevAct'), arg('alpha', 'float32')],
  batchNormInference: [buf('y', ['m', 'n'], true), buf('x', ['m', 'n']), buf('gamma', ['n']), buf('beta', ['n']),
    buf('runMean', ['n']), buf('runVar', ['n']), arg('m', 'size'), arg('n', 'size'), arg('eps', 'nonzero'),
    arg('act', 'prevAct'), arg('alpha', 'float32')],
  batchNormBackward: [{ name: 'dx', kind: 'buffer?', floats: ['m', 'n'], output: true }, buf('dgamma', ['n'], true),
    buf('dbeta', ['n'], true), buf('dy', ['m', 'n']), buf('x', ['m', 'n']), buf('gamma', ['n']), buf('mean', ['n']),
    buf('invStd', ['n']), arg('m', 'size'), arg('n', 'size'), arg('scale', 'float32'), arg('prevAct', 'prevAct'),
    arg('alpha', 'float32')],
  layerNormForward: [buf('y', ['m', 'n'], true), buf('x', ['m', 'n']), buf('gamma', ['n']), buf('beta', ['n']),
    buf('mean', ['m'], true), buf('invStd', ['m'], true), arg('m', 'size'), arg('n', 'size'), arg('eps', 'nonzero'),
    arg('act', 'prevAct'), arg('alpha', 'float32')],
  layerNormBackward: [{ name: 'dx', kind: 'buffer?', floats: ['m', 'n'], output: true }, buf('dgamma', ['n'], true),
    buf('dbeta', ['n'], true), buf('dy', ['m', 'n']), buf('x', ['m', 'n']), buf('gamma', ['n']), buf('mean', ['m']),
    buf('invStd', ['m']), arg('m', 'size'), arg('n', 'size'), arg('scale', 'float32'), arg('prevAct', 'prevAct'),
    arg('alpha', 'float32')],
} as const satisfies Record<string, readonly ArgContract[]>;

// ---- native argument block (the Float64Array `args` of a kernel object) --------------------------

/** Argument position p of a *Fast entry point is read from slot ARG_STRIDE·p (a buffer: 3 slots). */
export const ARG_STRIDE = BUF_SLOTS;
/** The argument names of a kernel. */
export type ArgName<F extends keyof typeof KERNELS> = (typeof KERNELS)[F][number]['name'];

/** Each argument's first slot in the argument block, for kernel `fn`. */
export function argSlots<F extends keyof typeof KERNELS>(fn: F): { readonly [name in ArgName<F>]: number } {
  const out: Record<string, number> = {};
  KERNELS[fn].forEach((a: ArgContract, p: number) => { out[a.name] = ARG_STRIDE * p; });
  return Object.freeze(out) as { readonly [name in ArgName<F>]: number };
}

/** Doubles in the argument block: the longest kernel (adamStep, 15 arguments) times ARG_STRIDE, rounded up. */
export const ARG_SLOTS = 48;
if (Math.max(...Object.values(KERNELS).map((k) => k.length)) * ARG_STRIDE > ARG_SLOTS) {
  throw new Error('abi: the argument block is too short for the longest kernel');
}

/**
 * A program's hyper-parameters (the numbers that change from run to run), f64 slots of the native
 * argument block and of the wasm program's hyper-parameter block, then the slot where the run
 * leaves its summed loss (a returned double would be a new heap number each step). nesterov is 0
 * or 1.
 */
export const HYPER = layout([
  ['lr', 1], ['clipNorm', 1], ['weightDecay', 1], ['mu', 1], ['nesterov', 1], ['beta1', 1], ['beta2', 1],
  ['eps', 1], ['bc1', 1], ['bc2', 1], ['step', 1], ['loss', 1],
]);
/** The hyper-parameters a run reads: slots [0, HYPER_INPUTS). */
export const HYPER_INPUTS = HYPER.at.loss;
export type HyperName = Exclude<keyof typeof HYPER.at, 'loss'>;

// ---- programs: a training step or a forward pass as a list of ops --------------------------------
//
// TypeScript builds a program once per (network, batch size) (src/backends/program.ts) and each
// backend runs it with one interpreter: src/backends/interpreter.ts (kernel by kernel, through the
// Backend), native/boundary/interpreter.cc (the addon, one call), assembly/interpreter.ts (the
// module, one call). An op is one kernel call. Its operands are listed here in record order, with
// the kernel contract's kinds (buffers, sizes, codes, constants), and any hyper-parameters it reads
// from the HYPER block on each run.
//
// To add an op: (1) its kernel on every backend (js.ts, native/, assembly/); (2) an entry below
// with the next code; (3) `npm run gen`; (4) one case in each of the three interpreters, and in
// the native interpreter's compile-time check (the same reader as the kernel's entry point);
// (5) its builder in program.ts. The record layout, the generated slot names and the TypeScript
// checks follow from the entry.

/** A program op: its code, the kernel it calls, its operands in record order, the hyper-parameters it reads. */
export interface OpContract {
  readonly code: number;
  readonly kernel: string;
  readonly operands: readonly ArgContract[];
  readonly hyper: readonly HyperName[];
  /** Elementwise over [0, n): the native interpreter may split a run of such ops into ranges over threads. */
  readonly elementwise?: boolean;
}

const op = (code: number, kernel: string, operands: readonly ArgContract[], hyper: readonly HyperName[] = [],
  elementwise = false): OpContract => ({ code, kernel, operands, hyper, elementwise });

/**
 * The op table. Codes start at 1 (a zeroed record is no op). Semantics beyond the kernel's:
 * - lossDelta leaves the summed loss in HYPER's loss slot; a loss that is not finite ends the
 *   program there (the step updates nothing);
 * - clipNorm sets the run's gradScale (1 when HYPER.clipNorm <= 0 or the norm of g is at most
 *   clipNorm, else clipNorm / ‖g‖) for the update ops after it; gradScale starts each run at 1;
 * - the update ops take lr, weightDecay and their optimizer's numbers from HYPER and gradScale
 *   from the last clipNorm.
 */
export const OPS = {
  denseForward: op(1, 'denseForward', KERNELS.denseForward),
  lossDelta: op(2, 'lossDelta', KERNELS.lossDelta),
  denseBackward: op(3, 'denseBackward', KERNELS.denseBackward),
  clipNorm: op(4, 'sumSquares', KERNELS.sumSquares, ['clipNorm']),
  copy: op(5, 'copy', [buf('dst', ['n'], true), buf('src', ['n']), arg('n', 'size')], [], true),
  sgdUpdate: op(6, 'sgdStep', [buf('p', ['n'], true), buf('g', ['n']), arg('n', 'size'), arg('decayCount', 'decayCount')],
    ['lr', 'weightDecay'], true),
  momentumUpdate: op(7, 'momentumStep', [buf('p', ['n'], true), buf('g', ['n']), buf('v', ['n'], true), arg('n', 'size'),
    arg('decayCount', 'decayCount')], ['lr', 'weightDecay', 'mu', 'nesterov'], true),
  adamUpdate: op(8, 'adamStep', [buf('p', ['n'], true), buf('g', ['n']), buf('m', ['n'], true), buf('v', ['n'], true),
    arg('n', 'size'), arg('decoupled', 'bool'), arg('decayCount', 'decayCount')],
  ['lr', 'weightDecay', 'beta1', 'beta2', 'eps', 'bc1', 'bc2'], true),
  // The layers beyond dense. Dropout takes its step key from HYPER's step (the network's count of
  // training steps), so that one compiled program draws a new mask every step.
  dropoutForward: op(9, 'dropoutForward', [buf('y', ['n'], true), buf('x', ['n']), arg('n', 'size'), arg('rate', 'rate'),
    arg('seed', 'u32'), arg('layer', 'u32')], ['step']),
  dropoutBackward: op(10, 'dropoutBackward', [buf('dx', ['n'], true), buf('dy', ['n']), buf('x', ['n']), arg('n', 'size'),
    arg('rate', 'rate'), arg('seed', 'u32'), arg('layer', 'u32'), arg('prevAct', 'prevAct'), arg('alpha', 'float32')], ['step']),
  batchNormForward: op(11, 'batchNormForward', KERNELS.batchNormForward),
  batchNormInference: op(12, 'batchNormInference', KERNELS.batchNormInference),
  batchNormBackward: op(13, 'batchNormBackward', KERNELS.batchNormBackward),
  layerNormForward: op(14, 'layerNormForward', KERNELS.layerNormForward),
  layerNormBackward: op(15, 'layerNormBackward', KERNELS.layerNormBackward),
  // Batch staging inside the program (off-thread training): row idx[i] of src (rows, cols) into
  // row i of dst (m, cols). idx holds the row numbers as floats (exact integers up to 2^24); each
  // run checks every one (an integer in [0, rows)) before it copies anything, and a bad one ends
  // the run with an error that names it.
  gatherRows: op(16, 'gatherRows', [buf('dst', ['m', 'cols'], true), buf('src', ['rows', 'cols']), buf('idx', ['m']),
    arg('m', 'size'), arg('rows', 'size'), arg('cols', 'size')]),
} as const satisfies Record<string, OpContract>;
export type OpName = keyof typeof OPS;
export const OP_MAX = Math.max(...Object.values(OPS).map((o) => o.code));

/** Each operand's first slot in an op record (slot 0 is the op code): buffers take BUF_SLOTS, numbers 1. */
export function opSlots(name: OpName): Readonly<Record<string, number>> {
  const out: Record<string, number> = {};
  let at = 1;
  for (const a of OPS[name].operands as readonly ArgContract[]) {
    out[a.name] = at;
    at += a.kind === 'buffer' || a.kind === 'buffer?' ? BUF_SLOTS : 1;
  }
  return Object.freeze(out);
}
const recordUsed = (name: OpName): number => {
  const s = opSlots(name), last = (OPS[name].operands as readonly ArgContract[]).at(-1)!;
  return s[last.name] + (last.kind === 'buffer' || last.kind === 'buffer?' ? BUF_SLOTS : 1);
};

/**
 * One op record: f64 slots, the op code then its operands (a buffer as id, offset and length in
 * floats, id -1 for null: on native the registry id and the view's offset in its allocation, on
 * wasm id 0 and the float index in linear memory). The same layout on both backends; a program is
 * OP_SLOTS · ops doubles.
 */
export const OP_SLOTS = Math.max(...(Object.keys(OPS) as OpName[]).map(recordUsed));
{
  const codes = Object.values(OPS).map((o) => o.code);
  if (new Set(codes).size !== codes.length || codes.some((c, i) => c !== i + 1)) {
    throw new Error('abi: op codes must be 1, 2, 3, … in table order');
  }
}

/** Bytes of the hyper-parameter block (HYPER as f64) before a wasm program's records. */
export const PROGRAM_HYPER_BYTES = 128;
if (HYPER.size * 8 > PROGRAM_HYPER_BYTES) throw new Error('abi: the hyper-parameter block does not fit');
