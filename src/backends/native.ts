// The native backend: the C++ addon (native/), loaded with node-gyp-build from the package root
// (a prebuild in prebuilds/ or a local build in build/; native-addon.ts). Kernels are called with
// the Float32Arrays of the Bufs directly; a call allocates nothing on the JS side.
import { loadNativeAddon, type NativeAddon, type NativeKernels } from './native-addon.js';
import { NativeCompiledForward, NativeCompiledStep } from './native-compiled.js';
import { type ActCode, type Backend, type Buf, type CompiledProgram, type LossCode, type PackedWeights, type StepDesc } from './backend.js';
import { MAX_THREADS, OPT, argSlots } from './abi.js';
import { FAST_TYPES, RESOLVED, checkProgram, checkStep, checkTypes, describe, isBufLike, type BufferSpace } from './contract.js';
import { HYPER_ADAM, HYPER_NONE, encodeProgram, hyperUse, trainProgram, type Program } from './program.js';

export { loadNativeAddon, nativePackageRoot, type NativeAddon, type NativeKernels, type NativeProgram } from './native-addon.js';
export { NativeCompiledStep } from './native-compiled.js';

const K = RESOLVED;

export interface NativeOptions {
  /** Force an ISA: 'avx512', 'avx2-fma', 'neon' or 'scalar' (default: DELTAPROP_ISA, else the newest). */
  isa?: string;
  /** Threads for the kernels (default: DELTAPROP_THREADS, else every hardware thread). */
  threads?: number;
  /**
   * GEMMs with m·n·k at or below this run unpacked (default 32768). For tests: 0 forces the packed,
   * blocked path everywhere, Infinity the unpacked one.
   */
  smallGemm?: number;
}

const ISAS = ['avx512', 'avx2-fma', 'neon', 'scalar'];
// Each kernel's argument slots in the argument block (abi.ts), resolved once.
const GEMM = argSlots('gemm');
const DENSE_FORWARD = argSlots('denseForward');
const DENSE_BACKWARD = argSlots('denseBackward');
const LOSS_DELTA = argSlots('lossDelta');
const SUM_SQUARES = argSlots('sumSquares');
const SGD_STEP = argSlots('sgdStep');
const MOMENTUM_STEP = argSlots('momentumStep');
const ADAM_STEP = argSlots('adamStep');
const DROPOUT_FORWARD = argSlots('dropoutForward');
const DROPOUT_BACKWARD = argSlots('dropoutBackward');
const BN_FORWARD = argSlots('batchNormForward');
const BN_INFERENCE = argSlots('batchNormInference');
const BN_BACKWARD = argSlots('batchNormBackward');
const LN_FORWARD = argSlots('layerNormForward');
const LN_BACKWARD = argSlots('layerNormBackward');

class NativeBuf implements Buf {
  /** id: the addon's name for the whole allocation; offset: this view's start in it, in floats. */
  constructor(readonly data: Float32Array, readonly id: number, readonly offset: number) {}
  get length(): number {
    return this.data.length;
  }
  view(offset: number, length: number): Buf {
    if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 &&
      offset + length <= this.data.length)) {
      throw new RangeError(`view(${offset}, ${length}) is outside a buffer of ${this.data.length} floats`);
    }
    return new NativeBuf(this.data.subarray(offset, offset + length), this.id, this.offset + offset);
  }
}

const isNative = (b: Buf | null): b is NativeBuf => b instanceof NativeBuf;

/**
 * The kernels take any Buf with a Float32Array (this addon's through the argument block, others
 * as Float32Arrays); the types are checked here (contract.ts), the rest in C++ (native/boundary/args.h).
 */
const KERNEL_SPACE: BufferSpace = {
  accepts: isBufLike,
  length: (b) => b.length,
  memory: (b) => b.data.buffer,
  start: (b) => b.data.byteOffset / 4,
};

/** A compiled program names its buffers by id: only this addon's. */
const STEP_SPACE: BufferSpace = {
  accepts: (b) => b instanceof NativeBuf,
  length: (b) => b.length,
  memory: (b) => (b as NativeBuf).id,
  start: (b) => (b as NativeBuf).offset,
};


const putNative = (rec: Float64Array, at: number, b: Buf | null): void => {
  if (b === null) {
    rec[at] = -1;
  } else {
    rec[at] = (b as NativeBuf).id;
    rec[at + 1] = (b as NativeBuf).offset;
    rec[at + 2] = b.length;
  }
};

function envVar(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** Weights packed by one NativeBackend (the layout of its ISA's micro-kernel). */
class NativePackedWeights implements PackedWeights {
  constructor(readonly backend: NativeBackend, readonly inp: number, readonly out: number, readonly buf: Buf) {}
}

export class NativeBackend implements Backend {
  readonly name = 'native' as const;
  readonly asyncPrograms = true;
  readonly asyncSteps = true;
  readonly isa: string;
  /** ISAs this CPU runs, newest first: the values `isa` may be forced to. */
  readonly availableIsas: string[];
  readonly hardwareThreads: number;
  /** The addon's kernels, unwrapped (benchmarks call them with plain Float32Arrays). */
  readonly kernels: NativeKernels;
  private readonly addon: NativeAddon;
  private readonly A: Float64Array;
  private nThreads: number;

  constructor(opts: NativeOptions = {}) {
    this.addon = loadNativeAddon();
    this.availableIsas = this.addon.availableIsas.split(',');
    this.hardwareThreads = this.addon.hardwareThreads;
    const isa = opts.isa ?? envVar('DELTAPROP_ISA') ?? '';
    if (isa !== '' && !ISAS.includes(isa)) {
      throw new Error(`unknown ISA '${isa}'${opts.isa === undefined ? ' (from DELTAPROP_ISA)' : ''}: expected one of ${ISAS.join(', ')}`);
    }
    if (isa !== '' && !this.availableIsas.includes(isa)) {
      throw new Error(`ISA '${isa}'${opts.isa === undefined ? ' (from DELTAPROP_ISA)' : ''} is not supported by this CPU; it runs ${this.availableIsas.join(', ')}`);
    }
    const te = envVar('DELTAPROP_THREADS');
    const threads = opts.threads ?? (te === undefined ? this.hardwareThreads : Number(te));
    if (!(Number.isInteger(threads) && threads >= 1)) {
      throw new Error(`threads must be a positive integer, got ${String(opts.threads ?? te)}${opts.threads === undefined ? ' (from DELTAPROP_THREADS)' : ''}`);
    }
    this.kernels = this.addon.create(isa, Math.min(threads, MAX_THREADS), opts.smallGemm);
    this.isa = this.kernels.isa;
    this.A = this.kernels.args;
    this.nThreads = this.kernels.getThreads();
  }

  get threads(): number {
    return this.nThreads;
  }

  setThreads(n: number): void {
    this.nThreads = this.kernels.setThreads(n);
  }

  alloc(length: number): Buf {
    const [data, id] = this.addon.allocBuf(length);
    return new NativeBuf(data, id, 0);
  }

  // Each kernel: with Bufs of this addon, arguments go through the argument block (the slots of
  // argSlots, buffers as id/offset/length) and one bare call; other Bufs as Float32Arrays.

  private buf(at: number, b: NativeBuf): void {
    const A = this.A;
    A[at] = b.id;
    A[at + 1] = b.offset;
    A[at + 2] = b.data.length;
  }

  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Buf, b: Buf, beta: number, c: Buf): void {
    if (!FAST_TYPES.gemm(transA, transB, m, n, k, alpha, a, b, beta, c)) checkTypes(KERNEL_SPACE, K.gemm, transA, transB, m, n, k, alpha, a, b, beta, c);
    if (isNative(a) && isNative(b) && isNative(c)) {
      const A = this.A;
      const S = GEMM;
      A[S.transA] = +transA; A[S.transB] = +transB; A[S.m] = m; A[S.n] = n; A[S.k] = k; A[S.alpha] = alpha;
      this.buf(S.a, a); this.buf(S.b, b); A[S.beta] = beta; this.buf(S.c, c);
      this.kernels.gemmFast();
    } else {
      this.kernels.gemm(transA, transB, m, n, k, alpha, a.data, b.data, beta, c.data);
    }
  }

  denseForward(y: Buf, x: Buf, w: Buf, b: Buf, m: number, inp: number, out: number,
    act: ActCode, alpha: number): void {
    if (!FAST_TYPES.denseForward(y, x, w, b, m, inp, out, act, alpha)) checkTypes(KERNEL_SPACE, K.denseForward, y, x, w, b, m, inp, out, act, alpha);
    if (isNative(y) && isNative(x) && isNative(w) && isNative(b)) {
      const A = this.A;
      const S = DENSE_FORWARD;
      this.buf(S.y, y); this.buf(S.x, x); this.buf(S.w, w); this.buf(S.b, b);
      A[S.m] = m; A[S.inp] = inp; A[S.out] = out; A[S.act] = act; A[S.alpha] = alpha;
      this.kernels.denseForwardFast();
    } else {
      this.kernels.denseForward(y.data, x.data, w.data, b.data, m, inp, out, act, alpha);
    }
  }

  denseBackward(dw: Buf, db: Buf, dx: Buf | null, dz: Buf, x: Buf, w: Buf,
    m: number, inp: number, out: number, scale: number, prevAct: ActCode, alpha: number): void {
    if (!FAST_TYPES.denseBackward(dw, db, dx, dz, x, w, m, inp, out, scale, prevAct, alpha)) checkTypes(KERNEL_SPACE, K.denseBackward, dw, db, dx, dz, x, w, m, inp, out, scale, prevAct, alpha);
    if (isNative(dw) && isNative(db) && (dx === null || isNative(dx)) && isNative(dz) && isNative(x) && isNative(w)) {
      const A = this.A;
      const S = DENSE_BACKWARD;
      this.buf(S.dw, dw); this.buf(S.db, db);
      if (dx === null) A[S.dx] = -1;
      else this.buf(S.dx, dx);
      this.buf(S.dz, dz); this.buf(S.x, x); this.buf(S.w, w);
      A[S.m] = m; A[S.inp] = inp; A[S.out] = out; A[S.scale] = scale; A[S.prevAct] = prevAct; A[S.alpha] = alpha;
      this.kernels.denseBackwardFast();
    } else {
      this.kernels.denseBackward(dw.data, db.data, dx === null ? null : dx.data, dz.data, x.data, w.data,
        m, inp, out, scale, prevAct, alpha);
    }
  }

  lossDelta(dz: Buf, a: Buf, y: Buf, m: number, n: number, loss: LossCode, act: ActCode,
    alpha: number, delta: number, weights: Buf | null): number {
    if (!FAST_TYPES.lossDelta(dz, a, y, m, n, loss, act, alpha, delta, weights)) checkTypes(KERNEL_SPACE, K.lossDelta, dz, a, y, m, n, loss, act, alpha, delta, weights);
    if (isNative(dz) && isNative(a) && isNative(y) && (weights === null || isNative(weights))) {
      const A = this.A;
      const S = LOSS_DELTA;
      this.buf(S.dz, dz); this.buf(S.a, a); this.buf(S.y, y);
      A[S.m] = m; A[S.n] = n; A[S.loss] = loss; A[S.act] = act; A[S.alpha] = alpha; A[S.delta] = delta;
      if (weights === null) A[S.weights] = -1;
      else this.buf(S.weights, weights);
      return this.kernels.lossDeltaFast();
    }
    return this.kernels.lossDelta(dz.data, a.data, y.data, m, n, loss, act, alpha, delta, weights === null ? null : weights.data);
  }

  sumSquares(g: Buf, n: number): number {
    if (!FAST_TYPES.sumSquares(g, n)) checkTypes(KERNEL_SPACE, K.sumSquares, g, n);
    if (isNative(g)) {
      this.buf(SUM_SQUARES.g, g);
      this.A[SUM_SQUARES.n] = n;
      return this.kernels.sumSquaresFast();
    }
    return this.kernels.sumSquares(g.data, n);
  }

  sgdStep(p: Buf, g: Buf, n: number, lr: number, gradScale: number, weightDecay: number,
    decayCount: number): void {
    if (!FAST_TYPES.sgdStep(p, g, n, lr, gradScale, weightDecay, decayCount)) checkTypes(KERNEL_SPACE, K.sgdStep, p, g, n, lr, gradScale, weightDecay, decayCount);
    if (isNative(p) && isNative(g)) {
      const A = this.A;
      const S = SGD_STEP;
      this.buf(S.p, p); this.buf(S.g, g);
      A[S.n] = n; A[S.lr] = lr; A[S.gradScale] = gradScale; A[S.weightDecay] = weightDecay; A[S.decayCount] = decayCount;
      this.kernels.sgdStepFast();
    } else {
      this.kernels.sgdStep(p.data, g.data, n, lr, gradScale, weightDecay, decayCount);
    }
  }

  momentumStep(p: Buf, g: Buf, v: Buf, n: number, lr: number, gradScale: number, mu: number,
    nesterov: boolean, weightDecay: number, decayCount: number): void {
    if (!FAST_TYPES.momentumStep(p, g, v, n, lr, gradScale, mu, nesterov, weightDecay, decayCount)) checkTypes(KERNEL_SPACE, K.momentumStep, p, g, v, n, lr, gradScale, mu, nesterov, weightDecay, decayCount);
    if (isNative(p) && isNative(g) && isNative(v)) {
      const A = this.A;
      const S = MOMENTUM_STEP;
      this.buf(S.p, p); this.buf(S.g, g); this.buf(S.v, v);
      A[S.n] = n; A[S.lr] = lr; A[S.gradScale] = gradScale; A[S.mu] = mu; A[S.nesterov] = +nesterov;
      A[S.weightDecay] = weightDecay; A[S.decayCount] = decayCount;
      this.kernels.momentumStepFast();
    } else {
      this.kernels.momentumStep(p.data, g.data, v.data, n, lr, gradScale, mu, nesterov, weightDecay, decayCount);
    }
  }

  adamStep(p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, gradScale: number,
    beta1: number, beta2: number, eps: number, bc1: number, bc2: number,
    weightDecay: number, decoupled: boolean, decayCount: number): void {
    if (!FAST_TYPES.adamStep(p, g, m, v, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled, decayCount)) checkTypes(KERNEL_SPACE, K.adamStep, p, g, m, v, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled, decayCount);
    if (isNative(p) && isNative(g) && isNative(m) && isNative(v)) {
      const A = this.A;
      const S = ADAM_STEP;
      this.buf(S.p, p); this.buf(S.g, g); this.buf(S.m, m); this.buf(S.v, v);
      A[S.n] = n; A[S.lr] = lr; A[S.gradScale] = gradScale; A[S.beta1] = beta1; A[S.beta2] = beta2; A[S.eps] = eps;
      A[S.bc1] = bc1; A[S.bc2] = bc2; A[S.weightDecay] = weightDecay; A[S.decoupled] = +decoupled;
      A[S.decayCount] = decayCount;
      this.kernels.adamStepFast();
    } else {
      this.kernels.adamStep(p.data, g.data, m.data, v.data, n, lr, gradScale, beta1, beta2, eps, bc1, bc2,
        weightDecay, decoupled, decayCount);
    }
  }

  /** w (inp, out) packed once for denseForwardPacked (WeightPacker); pack again when w changes. */
  packWeights(w: Buf, inp: number, out: number, into?: PackedWeights): PackedWeights {
    if (!isBufLike(w)) throw new TypeError(`packWeights: w must be a buffer of this backend, got ${describe(w)}`);
    if (into !== undefined) {
      if (!(into instanceof NativePackedWeights) || into.backend !== this) throw new TypeError('packWeights: into must come from packWeights of this backend');
      if (into.inp !== inp || into.out !== out) throw new RangeError(`packWeights: into holds ${into.inp}×${into.out} weights, w is ${inp}×${out}`);
    }
    const packed = into ?? new NativePackedWeights(this, inp, out, this.alloc(this.kernels.packedWeightsLength(inp, out)));
    this.kernels.packWeights(packed.buf.data, w.data, inp, out);
    return packed;
  }

  denseForwardPacked(y: Buf, x: Buf, w: Buf, packed: PackedWeights, b: Buf, m: number, inp: number, out: number,
    act: ActCode, alpha: number): void {
    if (!(packed instanceof NativePackedWeights) || packed.backend !== this) {
      throw new TypeError('denseForwardPacked: packed must come from packWeights of this backend (its layout is that of its ISA)');
    }
    if (packed.inp !== inp || packed.out !== out) {
      throw new RangeError(`denseForwardPacked: packed holds ${packed.inp}×${packed.out} weights, the layer is ${inp}×${out}`);
    }
    if (!isBufLike(y) || !isBufLike(x) || !isBufLike(w) || !isBufLike(b)) {
      throw new TypeError('denseForwardPacked: y, x, w and b must be buffers of this backend');
    }
    this.kernels.denseForwardPacked(y.data, x.data, w.data, packed.buf.data, b.data, m, inp, out, act, alpha);
  }

  dropoutForward(y: Buf, x: Buf, n: number, rate: number, seed: number, step: number, layer: number): void {
    if (!FAST_TYPES.dropoutForward(y, x, n, rate, seed, step, layer)) checkTypes(KERNEL_SPACE, K.dropoutForward, y, x, n, rate, seed, step, layer);
    if (isNative(y) && isNative(x)) {
      const A = this.A, S = DROPOUT_FORWARD;
      this.buf(S.y, y); this.buf(S.x, x);
      A[S.n] = n; A[S.rate] = rate; A[S.seed] = seed; A[S.step] = step; A[S.layer] = layer;
      this.kernels.dropoutForwardFast();
    } else {
      this.kernels.dropoutForward(y.data, x.data, n, rate, seed, step, layer);
    }
  }

  dropoutBackward(dx: Buf, dy: Buf, x: Buf, n: number, rate: number, seed: number, step: number, layer: number,
    prevAct: ActCode, alpha: number): void {
    if (!FAST_TYPES.dropoutBackward(dx, dy, x, n, rate, seed, step, layer, prevAct, alpha)) checkTypes(KERNEL_SPACE, K.dropoutBackward, dx, dy, x, n, rate, seed, step, layer, prevAct, alpha);
    if (isNative(dx) && isNative(dy) && isNative(x)) {
      const A = this.A, S = DROPOUT_BACKWARD;
      this.buf(S.dx, dx); this.buf(S.dy, dy); this.buf(S.x, x);
      A[S.n] = n; A[S.rate] = rate; A[S.seed] = seed; A[S.step] = step; A[S.layer] = layer; A[S.prevAct] = prevAct;
      A[S.alpha] = alpha;
      this.kernels.dropoutBackwardFast();
    } else {
      this.kernels.dropoutBackward(dx.data, dy.data, x.data, n, rate, seed, step, layer, prevAct, alpha);
    }
  }

  batchNormForward(y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, update: boolean, momentum: number, eps: number, act: ActCode, alpha: number): void {
    if (!FAST_TYPES.batchNormForward(y, x, gamma, beta, runMean, runVar, mean, invStd, m, n, update, momentum, eps, act, alpha)) {
      checkTypes(KERNEL_SPACE, K.batchNormForward, y, x, gamma, beta, runMean, runVar, mean, invStd, m, n, update, momentum, eps, act, alpha);
    }
    if (isNative(y) && isNative(x) && isNative(gamma) && isNative(beta) && isNative(runMean) && isNative(runVar) &&
      isNative(mean) && isNative(invStd)) {
      const A = this.A, S = BN_FORWARD;
      this.buf(S.y, y); this.buf(S.x, x); this.buf(S.gamma, gamma); this.buf(S.beta, beta);
      this.buf(S.runMean, runMean); this.buf(S.runVar, runVar); this.buf(S.mean, mean); this.buf(S.invStd, invStd);
      A[S.m] = m; A[S.n] = n; A[S.update] = +update; A[S.momentum] = momentum; A[S.eps] = eps; A[S.act] = act;
      A[S.alpha] = alpha;
      this.kernels.batchNormForwardFast();
    } else {
      this.kernels.batchNormForward(y.data, x.data, gamma.data, beta.data, runMean.data, runVar.data, mean.data,
        invStd.data, m, n, update, momentum, eps, act, alpha);
    }
  }

  batchNormInference(y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, m: number, n: number,
    eps: number, act: ActCode, alpha: number): void {
    if (!FAST_TYPES.batchNormInference(y, x, gamma, beta, runMean, runVar, m, n, eps, act, alpha)) {
      checkTypes(KERNEL_SPACE, K.batchNormInference, y, x, gamma, beta, runMean, runVar, m, n, eps, act, alpha);
    }
    if (isNative(y) && isNative(x) && isNative(gamma) && isNative(beta) && isNative(runMean) && isNative(runVar)) {
      const A = this.A, S = BN_INFERENCE;
      this.buf(S.y, y); this.buf(S.x, x); this.buf(S.gamma, gamma); this.buf(S.beta, beta);
      this.buf(S.runMean, runMean); this.buf(S.runVar, runVar);
      A[S.m] = m; A[S.n] = n; A[S.eps] = eps; A[S.act] = act; A[S.alpha] = alpha;
      this.kernels.batchNormInferenceFast();
    } else {
      this.kernels.batchNormInference(y.data, x.data, gamma.data, beta.data, runMean.data, runVar.data, m, n, eps, act, alpha);
    }
  }

  batchNormBackward(dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, scale: number, prevAct: ActCode, alpha: number): void {
    if (!FAST_TYPES.batchNormBackward(dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha)) {
      checkTypes(KERNEL_SPACE, K.batchNormBackward, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha);
    }
    if (this.normBackwardFast(BN_BACKWARD, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha)) {
      this.kernels.batchNormBackwardFast();
    } else {
      this.kernels.batchNormBackward(dx === null ? null : dx.data, dgamma.data, dbeta.data, dy.data, x.data, gamma.data,
        mean.data, invStd.data, m, n, scale, prevAct, alpha);
    }
  }

  layerNormForward(y: Buf, x: Buf, gamma: Buf, beta: Buf, mean: Buf, invStd: Buf, m: number, n: number,
    eps: number, act: ActCode, alpha: number): void {
    if (!FAST_TYPES.layerNormForward(y, x, gamma, beta, mean, invStd, m, n, eps, act, alpha)) {
      checkTypes(KERNEL_SPACE, K.layerNormForward, y, x, gamma, beta, mean, invStd, m, n, eps, act, alpha);
    }
    if (isNative(y) && isNative(x) && isNative(gamma) && isNative(beta) && isNative(mean) && isNative(invStd)) {
      const A = this.A, S = LN_FORWARD;
      this.buf(S.y, y); this.buf(S.x, x); this.buf(S.gamma, gamma); this.buf(S.beta, beta);
      this.buf(S.mean, mean); this.buf(S.invStd, invStd);
      A[S.m] = m; A[S.n] = n; A[S.eps] = eps; A[S.act] = act; A[S.alpha] = alpha;
      this.kernels.layerNormForwardFast();
    } else {
      this.kernels.layerNormForward(y.data, x.data, gamma.data, beta.data, mean.data, invStd.data, m, n, eps, act, alpha);
    }
  }

  layerNormBackward(dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, scale: number, prevAct: ActCode, alpha: number): void {
    if (!FAST_TYPES.layerNormBackward(dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha)) {
      checkTypes(KERNEL_SPACE, K.layerNormBackward, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha);
    }
    if (this.normBackwardFast(LN_BACKWARD, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha)) {
      this.kernels.layerNormBackwardFast();
    } else {
      this.kernels.layerNormBackward(dx === null ? null : dx.data, dgamma.data, dbeta.data, dy.data, x.data, gamma.data,
        mean.data, invStd.data, m, n, scale, prevAct, alpha);
    }
  }

  /** Fills the argument block of a normalization backward kernel when every buffer is this addon's. */
  private normBackwardFast(S: typeof BN_BACKWARD, dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf,
    mean: Buf, invStd: Buf, m: number, n: number, scale: number, prevAct: number, alpha: number): boolean {
    if (!((dx === null || isNative(dx)) && isNative(dgamma) && isNative(dbeta) && isNative(dy) && isNative(x) &&
      isNative(gamma) && isNative(mean) && isNative(invStd))) return false;
    const A = this.A;
    if (dx === null) A[S.dx] = -1;
    else this.buf(S.dx, dx);
    this.buf(S.dgamma, dgamma); this.buf(S.dbeta, dbeta); this.buf(S.dy, dy); this.buf(S.x, x);
    this.buf(S.gamma, gamma); this.buf(S.mean, mean); this.buf(S.invStd, invStd);
    A[S.m] = m; A[S.n] = n; A[S.scale] = scale; A[S.prevAct] = prevAct; A[S.alpha] = alpha;
    return true;
  }

  sumSquaresOf(src: Float32Array): number {
    if (!(src instanceof Float32Array)) throw new TypeError(`sumSquaresOf: src must be a Float32Array, got ${describe(src)}`);
    return this.kernels.sumSquares(src, src.length);
  }

  gatherRows(dst: Buf, src: Float32Array, order: Uint32Array | null, start: number, count: number, cols: number): void {
    if (!isBufLike(dst)) throw new TypeError(`gatherRows: dst must be a buffer of this backend, got ${describe(dst)}`);
    this.kernels.gatherRows(dst.data, src, order, start, count, cols);
  }

  /**
   * A program (program.ts) as one native call (native/boundary/interpreter.cc): the same kernels in
   * the same order as interpreter.ts calling them one by one, so the same bits. Checked once here
   * (contract.ts) and again in C++; each run checks only that its buffers are still alive. Bufs
   * must come from this backend.
   */
  compileProgram(program: Program): CompiledProgram {
    checkProgram(STEP_SPACE, program);
    const compiled = this.kernels.compileProgram(encodeProgram(program, putNative));
    const use = hyperUse(program);
    if (use === HYPER_NONE) return new NativeCompiledForward(this.A, compiled.run, program, program.some((o) => o.op === 'lossDelta'));
    // the optimizer only picks which of checkHyper's rules apply (bc1, bc2 nonzero for Adam)
    return new NativeCompiledStep(this.A, compiled, program, use === HYPER_ADAM ? OPT.adam : OPT.sgd);
  }

  /** The whole step (forward, loss, backward, clip, backup, update) as one native call. */
  compileStep(desc: StepDesc): NativeCompiledStep {
    // the contract (the same checks and words as the wasm backend's); C++ checks the program again
    checkStep(STEP_SPACE, desc);
    return this.compileProgram(trainProgram(desc)) as NativeCompiledStep;
  }
}

/**
 * Loads the native backend (synchronously). Throws an Error saying what was tried and why it
 * failed: no prebuild and no local build, an ISA this CPU lacks, a bad thread count.
 */
export function loadNativeBackend(opts: NativeOptions = {}): NativeBackend {
  return new NativeBackend(opts);
}
