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
 * A compiled step's hyper-parameters, f64 slots of the native argument block and of the wasm
 * descriptor's hyper-parameter block, then the slot where the run leaves its summed loss (a
 * returned double would be a new heap number each step). nesterov is 0 or 1.
 */
export const HYPER = layout([
  ['lr', 1], ['clipNorm', 1], ['weightDecay', 1], ['mu', 1], ['nesterov', 1], ['beta1', 1], ['beta2', 1],
  ['eps', 1], ['bc1', 1], ['bc2', 1], ['loss', 1],
]);
/** The hyper-parameters a run reads: slots [0, HYPER_INPUTS). */
export const HYPER_INPUTS = HYPER.at.loss;
export type HyperName = Exclude<keyof typeof HYPER.at, 'loss'>;

// ---- native compiled step: the Float64Array desc read by compileStep ------------------------------

/** Header: numbers, then buffers (BUF_SLOTS each); the layer records follow at NATIVE_STEP.size. */
export const NATIVE_STEP = layout([
  ['m', 1], ['layers', 1], ['loss', 1], ['optimizer', 1], ['n', 1], ['decayCount', 1],
  ['x', BUF_SLOTS], ['y', BUF_SLOTS], ['params', BUF_SLOTS], ['grads', BUF_SLOTS], ['backup', BUF_SLOTS],
  ['state1', BUF_SLOTS], ['state2', BUF_SLOTS],
  // the loss's parameter (huber's delta) and the per-row weights of the staged batch (id -1: none)
  ['delta', 1], ['weights', BUF_SLOTS],
]);
/** Per layer: sizes, activation, slope, its W and b offsets in params, its output and delta buffers. */
export const NATIVE_STEP_LAYER = layout([
  ['inp', 1], ['out', 1], ['act', 1], ['alpha', 1], ['wOffset', 1], ['bOffset', 1],
  ['output', BUF_SLOTS], ['delta', BUF_SLOTS],
]);

// ---- wasm compiled step: one allocation in linear memory ----------------------------------------

/** Bytes of the hyper-parameter block (HYPER as f64) at the start of a step's allocation. */
export const WASM_STEP_HYPER_BYTES = 128;
/** Header: u32 / i32 words (addresses are byte addresses); the layer records follow at its size. */
export const WASM_STEP = layout([
  ['m', 1], ['layers', 1], ['loss', 1], ['optimizer', 1], ['n', 1], ['decayCount', 1], ['x', 1], ['y', 1],
  ['params', 1], ['grads', 1], ['backup', 1], ['backupBytes', 1], ['state1', 1], ['state2', 1], ['hyper', 1],
  // huber's delta (f32) and the address of the per-row weights (0: none)
  ['delta', 1], ['weights', 1],
], 20);
/** Per layer: sizes, activation, slope (f32), byte addresses of W, b, dW, db, its output and delta. */
export const WASM_STEP_LAYER = layout([
  ['inp', 1], ['out', 1], ['act', 1], ['alpha', 1], ['w', 1], ['b', 1], ['dw', 1], ['db', 1], ['a', 1], ['delta', 1],
], 12);

if (HYPER.size * 8 > WASM_STEP_HYPER_BYTES) throw new Error('abi: the hyper-parameter block does not fit');
