// The wasm backend: the AssemblyScript kernels of assembly/ called on buffers of one linear memory
// (arena.ts), each call checked against the kernel contract, and compiled programs run by the
// module's interpreter (assembly/interpreter.ts) from op records laid out by abi.ts.
import { type ActCode, type Backend, type Buf, type CompiledProgram, type CompiledStep, type LossCode, type PackedWeights, type StepDesc, type StepHyper } from '../backend.js';
import { HYPER, OPT, PROGRAM_HYPER_BYTES } from '../abi.js';
import { FAST, RESOLVED, checkHyper, checkKernel, checkProgram, checkStep, hyperTypesOk, type BufferSpace } from '../contract.js';
import { HYPER_ADAM, encodeProgram, hyperUse, programGatherFault, trainProgram, type Program } from '../program.js';
import { Arena, WasmBuf } from './arena.js';
import type { WasmPool } from './pool.js';

const K = RESOLVED;
/** A checked buffer's byte address. */
const ptr = (b: Buf): number => (b as WasmBuf).ptr;

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  relaxedBuild(): number;
  gemm(transA: number, transB: number, m: number, n: number, k: number, alpha: number, a: number, b: number, beta: number, c: number): void;
  denseForward(y: number, x: number, w: number, b: number, m: number, inp: number, out: number, act: number, alpha: number): void;
  denseBackward(dw: number, db: number, dx: number, dz: number, x: number, w: number, m: number, inp: number, out: number,
    scale: number, prevAct: number, alpha: number): void;
  lossDelta(dz: number, a: number, y: number, m: number, n: number, loss: number, act: number, alpha: number,
    delta: number, weights: number): number;
  sumSquares(g: number, n: number): number;
  sgdStep(p: number, g: number, n: number, lr: number, gradScale: number, weightDecay: number, decayCount: number): void;
  momentumStep(p: number, g: number, v: number, n: number, lr: number, gradScale: number, mu: number, nesterov: number,
    weightDecay: number, decayCount: number): void;
  adamStep(p: number, g: number, m: number, v: number, n: number, lr: number, gradScale: number, beta1: number, beta2: number,
    eps: number, bc1: number, bc2: number, weightDecay: number, decoupled: number, decayCount: number): void;
  dropoutForward(y: number, x: number, n: number, rate: number, seed: number, step: number, layer: number): void;
  dropoutBackward(dx: number, dy: number, x: number, n: number, rate: number, seed: number, step: number, layer: number,
    prevAct: number, alpha: number): void;
  batchNormForward(y: number, x: number, gamma: number, beta: number, runMean: number, runVar: number, mean: number,
    invStd: number, m: number, n: number, update: number, momentum: number, eps: number, act: number, alpha: number): void;
  batchNormInference(y: number, x: number, gamma: number, beta: number, runMean: number, runVar: number, m: number,
    n: number, eps: number, act: number, alpha: number): void;
  batchNormBackward(dx: number, dgamma: number, dbeta: number, dy: number, x: number, gamma: number, mean: number,
    invStd: number, m: number, n: number, scale: number, prevAct: number, alpha: number): void;
  layerNormForward(y: number, x: number, gamma: number, beta: number, mean: number, invStd: number, m: number, n: number,
    eps: number, act: number, alpha: number): void;
  layerNormBackward(dx: number, dgamma: number, dbeta: number, dy: number, x: number, gamma: number, mean: number,
    invStd: number, m: number, n: number, scale: number, prevAct: number, alpha: number): void;
  /**
   * Runs `count` op records at byte `ops` with the hyper-parameter block at byte `h` (checked when
   * `use` says so); leaves the loss in the block; returns 1 when the hyper-parameters are refused.
   */
  runProgram(ops: number, count: number, h: number, use: number): number;
  /** Turns `count` op records at byte `ops` into the words runProgram reads, in place, once. */
  resolveProgram(ops: number, count: number): void;
  packedWeightsLength(inp: number, out: number): number;
  packWeights(dst: number, w: number, inp: number, out: number): void;
  denseForwardPacked(y: number, x: number, w: number, packed: number, b: number, m: number, inp: number, out: number, act: number, alpha: number): void;
  /** Threads build: threads taking part in kernels from now on, clamped to [1, pool]. */
  poolSetActive(n: number): number;
  /** Threads build: asks the workers to leave their loop. */
  poolQuit(): void;
}

// Workers of a backend nobody references any more are stopped (the pool must not outlive it).
const pools = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry<{ pool: WasmPool; quit: () => void }>(({ pool, quit }) => pool.dispose(quit))
  : null;

// Every export of a threads build, checked after the call: a worker that stopped on an error has
// left its task, and its message is in the control block (pool.check throws it). Checked before
// too: a worker that exited (its 'exit' event) would never take part again.
function checkedExports(raw: Exports, pool: WasmPool): Exports {
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(raw)) {
    if (typeof v !== 'function' || name === 'poolQuit') {
      out[name] = v;
      continue;
    }
    const f = v as (...args: number[]) => number;
    out[name] = (...args: number[]): number => {
      pool.check();
      const r = f(...args);
      pool.check();
      return r;
    };
  }
  return out as unknown as Exports;
}

/** Weights packed by one WasmBackend's packWeights. */
class WasmPackedWeights implements PackedWeights {
  constructor(readonly backend: WasmBackend, readonly inp: number, readonly out: number, readonly buf: Buf) {}
}

// A compiled program in one allocation: the hyper-parameter block (HYPER, f64) first, then the
// op records (abi.ts OP_SLOTS f64 each), which the module resolves in place into words.
const H = HYPER.at;

/** A buffer operand on wasm: id 0 (the one linear memory), its first float's index there, its length. */
const putWasm = (rec: Float64Array, at: number, b: Buf | null): void => {
  if (b === null) {
    rec[at] = -1;
  } else {
    rec[at] = 0;
    rec[at + 1] = (b as WasmBuf).ptr / 4;
    rec[at + 2] = b.length;
  }
};

export class WasmBackend implements Backend {
  readonly name = 'wasm' as const;
  readonly isa: string;
  readonly memory: WebAssembly.Memory;
  private reason?: string;
  private k: Exports;
  private readonly raw: Exports;
  private readonly arena: Arena;
  private pool: WasmPool | null = null;
  private nThreads = 1;

  /** `base`: the arena's first byte (default heapBase(): one thread's GEMM scratch). */
  constructor(instance: WebAssembly.Instance, memory: WebAssembly.Memory, maxBytes: number, base?: number) {
    this.raw = this.k = instance.exports as unknown as Exports;
    this.memory = memory;
    this.isa = this.k.relaxedBuild() ? 'wasm-relaxed-simd' : 'wasm-simd128';
    this.arena = new Arena(memory, base ?? this.k.heapBase(), maxBytes);
  }

  /**
   * Runs the kernels on `pool` (loadWasmBackend, threads build): its size is the thread count.
   * Its workers start with the first kernel that splits its work (or startThreads()).
   */
  attachPool(pool: WasmPool): void {
    this.pool = pool;
    this.k = checkedExports(this.raw, pool);
    this.nThreads = pool.size;
    this.reason = undefined;
    const raw = this.raw;
    // (not a closure over the backend: the pool is held by the finalization registry below)
    pool.onStartFailed = () => raw.poolSetActive(1);
    pools?.register(this, { pool, quit: () => raw.poolQuit() }, this);
  }

  /**
   * Starts the worker threads now rather than at the first kernel that splits its work; resolves
   * when they take part (or could not start: `threads` is then 1 and `threadsReason` says why).
   */
  startThreads(): Promise<void> {
    return this.pool?.start() ?? Promise.resolve();
  }

  /** Whether worker threads are running for this backend (they start lazily). */
  get workersStarted(): boolean {
    return this.pool?.started ?? false;
  }

  /** Threads the kernels run on (once its workers start, for a pool: see startThreads). */
  get threads(): number {
    return this.pool?.startFailed ? 1 : this.nThreads;
  }

  /** Why the kernels run on one thread (unset when they run on a pool). */
  get threadsReason(): string | undefined {
    return this.pool?.startFailed ? `the worker threads did not start: ${this.pool.startFailed}` : this.reason;
  }

  set threadsReason(why: string | undefined) {
    this.reason = why;
  }

  /** Threads for the kernels from now on: at most the pool's size (1 without a pool). */
  setThreads(n: number): void {
    if (this.pool && !this.pool.startFailed) this.nThreads = this.raw.poolSetActive(Number.isFinite(n) ? Math.floor(n) : 1);
  }

  /**
   * Stops the worker threads (a no-op on one thread). The backend refuses kernels afterwards
   * (without a pool it keeps working: nothing was started).
   */
  dispose(): void {
    if (!this.pool) return;
    pools?.unregister(this);
    const raw = this.raw;
    this.pool.dispose(() => raw.poolQuit());
  }

  /** Bytes of linear memory in use by live buffers and the kernels' scratch. */
  get bytesUsed(): number {
    return this.arena.bytesUsed;
  }

  /** Bytes of linear memory the module has (grows, never shrinks). */
  get bytesReserved(): number {
    return this.arena.bytesReserved;
  }

  alloc(length: number): Buf {
    return this.arena.alloc(length);
  }

  // The boundary: every call is checked against the kernel contract (contract.ts: buffers ours and
  // long enough, no output sharing memory with another argument, numbers in range and finite in
  // float32), so that a bad call throws here, with the same words as every backend, instead of
  // writing over another buffer. The addresses are then the Bufs' own.
  private readonly space: BufferSpace = {
    accepts: (b) => b instanceof WasmBuf && b.owner === this.arena,
    length: (b) => b.length,
    memory: () => this,
    start: (b) => (b as WasmBuf).ptr / 4,
  };

  /** w (inp, out) packed once for denseForwardPacked (WeightPacker); pack again when w changes. */
  packWeights(w: Buf, inp: number, out: number, into?: PackedWeights): PackedWeights {
    for (const [name, v] of [['inp', inp], ['out', out]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 2 ** 30) throw new RangeError(`packWeights: ${name} must be a non-negative integer, got ${String(v)}`);
    }
    if (!this.space.accepts(w)) throw new TypeError('packWeights: w must be a buffer of this backend');
    if (w.length < inp * out) throw new RangeError(`packWeights: w has ${w.length} floats, inp*out = ${inp * out}`);
    if (into !== undefined) {
      if (!(into instanceof WasmPackedWeights) || into.backend !== this) throw new TypeError('packWeights: into must come from packWeights of this backend');
      if (into.inp !== inp || into.out !== out) throw new RangeError(`packWeights: into holds ${into.inp}×${into.out} weights, w is ${inp}×${out}`);
    }
    const packed = into ?? new WasmPackedWeights(this, inp, out, this.alloc(this.k.packedWeightsLength(inp, out)));
    this.k.packWeights((packed.buf as WasmBuf).ptr, (w as WasmBuf).ptr, inp, out);
    return packed;
  }

  denseForwardPacked(y: Buf, x: Buf, w: Buf, packed: PackedWeights, b: Buf, m: number, inp: number, out: number,
    act: ActCode, alpha: number): void {
    if (!(packed instanceof WasmPackedWeights) || packed.backend !== this) {
      throw new TypeError('denseForwardPacked: packed must come from packWeights of this backend');
    }
    if (packed.inp !== inp || packed.out !== out) {
      throw new RangeError(`denseForwardPacked: packed holds ${packed.inp}×${packed.out} weights, the layer is ${inp}×${out}`);
    }
    // every other argument as denseForward checks it
    if (!FAST.denseForward(this.space, y, x, w, b, m, inp, out, act, alpha)) checkKernel(this.space, K.denseForward, y, x, w, b, m, inp, out, act, alpha);
    this.k.denseForwardPacked((y as WasmBuf).ptr, (x as WasmBuf).ptr, (w as WasmBuf).ptr, (packed.buf as WasmBuf).ptr, (b as WasmBuf).ptr,
      m, inp, out, act, alpha);
  }

  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Buf, b: Buf, beta: number, c: Buf): void {
    if (!FAST.gemm(this.space, transA, transB, m, n, k, alpha, a, b, beta, c)) checkKernel(this.space, K.gemm, transA, transB, m, n, k, alpha, a, b, beta, c);
    this.k.gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, (a as WasmBuf).ptr, (b as WasmBuf).ptr, beta, (c as WasmBuf).ptr);
  }

  denseForward(y: Buf, x: Buf, w: Buf, b: Buf, m: number, inp: number, out: number,
    act: ActCode, alpha: number): void {
    if (!FAST.denseForward(this.space, y, x, w, b, m, inp, out, act, alpha)) checkKernel(this.space, K.denseForward, y, x, w, b, m, inp, out, act, alpha);
    this.k.denseForward((y as WasmBuf).ptr, (x as WasmBuf).ptr, (w as WasmBuf).ptr, (b as WasmBuf).ptr, m, inp, out, act, alpha);
  }

  denseBackward(dw: Buf, db: Buf, dx: Buf | null, dz: Buf, x: Buf, w: Buf,
    m: number, inp: number, out: number, scale: number, prevAct: ActCode, alpha: number): void {
    if (!FAST.denseBackward(this.space, dw, db, dx, dz, x, w, m, inp, out, scale, prevAct, alpha)) checkKernel(this.space, K.denseBackward, dw, db, dx, dz, x, w, m, inp, out, scale, prevAct, alpha);
    this.k.denseBackward((dw as WasmBuf).ptr, (db as WasmBuf).ptr, dx === null ? 0 : (dx as WasmBuf).ptr, (dz as WasmBuf).ptr,
      (x as WasmBuf).ptr, (w as WasmBuf).ptr, m, inp, out, scale, prevAct, alpha);
  }

  lossDelta(dz: Buf, a: Buf, y: Buf, m: number, n: number, loss: LossCode, act: ActCode,
    alpha: number, delta: number, weights: Buf | null): number {
    if (!FAST.lossDelta(this.space, dz, a, y, m, n, loss, act, alpha, delta, weights)) checkKernel(this.space, K.lossDelta, dz, a, y, m, n, loss, act, alpha, delta, weights);
    return this.k.lossDelta((dz as WasmBuf).ptr, (a as WasmBuf).ptr, (y as WasmBuf).ptr, m, n, loss, act, alpha, delta,
      weights === null ? 0 : (weights as WasmBuf).ptr);
  }

  sumSquares(g: Buf, n: number): number {
    if (!FAST.sumSquares(this.space, g, n)) checkKernel(this.space, K.sumSquares, g, n);
    return this.k.sumSquares((g as WasmBuf).ptr, n);
  }

  sgdStep(p: Buf, g: Buf, n: number, lr: number, gradScale: number, weightDecay: number,
    decayCount: number): void {
    if (!FAST.sgdStep(this.space, p, g, n, lr, gradScale, weightDecay, decayCount)) checkKernel(this.space, K.sgdStep, p, g, n, lr, gradScale, weightDecay, decayCount);
    this.k.sgdStep((p as WasmBuf).ptr, (g as WasmBuf).ptr, n, lr, gradScale, weightDecay, decayCount);
  }

  momentumStep(p: Buf, g: Buf, v: Buf, n: number, lr: number, gradScale: number, mu: number,
    nesterov: boolean, weightDecay: number, decayCount: number): void {
    if (!FAST.momentumStep(this.space, p, g, v, n, lr, gradScale, mu, nesterov, weightDecay, decayCount)) checkKernel(this.space, K.momentumStep, p, g, v, n, lr, gradScale, mu, nesterov, weightDecay, decayCount);
    this.k.momentumStep((p as WasmBuf).ptr, (g as WasmBuf).ptr, (v as WasmBuf).ptr, n, lr, gradScale, mu,
      nesterov ? 1 : 0, weightDecay, decayCount);
  }

  adamStep(p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, gradScale: number,
    beta1: number, beta2: number, eps: number, bc1: number, bc2: number,
    weightDecay: number, decoupled: boolean, decayCount: number): void {
    if (!FAST.adamStep(this.space, p, g, m, v, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled, decayCount)) checkKernel(this.space, K.adamStep, p, g, m, v, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled, decayCount);
    this.k.adamStep((p as WasmBuf).ptr, (g as WasmBuf).ptr, (m as WasmBuf).ptr, (v as WasmBuf).ptr, n, lr,
      gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled ? 1 : 0, decayCount);
  }

  dropoutForward(y: Buf, x: Buf, n: number, rate: number, seed: number, step: number, layer: number): void {
    if (!FAST.dropoutForward(this.space, y, x, n, rate, seed, step, layer)) checkKernel(this.space, K.dropoutForward, y, x, n, rate, seed, step, layer);
    this.k.dropoutForward(ptr(y), ptr(x), n, rate, seed, step, layer);
  }

  dropoutBackward(dx: Buf, dy: Buf, x: Buf, n: number, rate: number, seed: number, step: number, layer: number,
    prevAct: ActCode, alpha: number): void {
    if (!FAST.dropoutBackward(this.space, dx, dy, x, n, rate, seed, step, layer, prevAct, alpha)) checkKernel(this.space, K.dropoutBackward, dx, dy, x, n, rate, seed, step, layer, prevAct, alpha);
    this.k.dropoutBackward(ptr(dx), ptr(dy), ptr(x), n, rate, seed, step, layer, prevAct, alpha);
  }

  batchNormForward(y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, update: boolean, momentum: number, eps: number, act: ActCode, alpha: number): void {
    if (!FAST.batchNormForward(this.space, y, x, gamma, beta, runMean, runVar, mean, invStd, m, n, update, momentum, eps, act, alpha)) {
      checkKernel(this.space, K.batchNormForward, y, x, gamma, beta, runMean, runVar, mean, invStd, m, n, update, momentum, eps, act, alpha);
    }
    this.k.batchNormForward(ptr(y), ptr(x), ptr(gamma), ptr(beta), ptr(runMean), ptr(runVar), ptr(mean), ptr(invStd), m, n,
      update ? 1 : 0, momentum, eps, act, alpha);
  }

  batchNormInference(y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, m: number, n: number,
    eps: number, act: ActCode, alpha: number): void {
    if (!FAST.batchNormInference(this.space, y, x, gamma, beta, runMean, runVar, m, n, eps, act, alpha)) {
      checkKernel(this.space, K.batchNormInference, y, x, gamma, beta, runMean, runVar, m, n, eps, act, alpha);
    }
    this.k.batchNormInference(ptr(y), ptr(x), ptr(gamma), ptr(beta), ptr(runMean), ptr(runVar), m, n, eps, act, alpha);
  }

  batchNormBackward(dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, scale: number, prevAct: ActCode, alpha: number): void {
    if (!FAST.batchNormBackward(this.space, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha)) {
      checkKernel(this.space, K.batchNormBackward, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha);
    }
    this.k.batchNormBackward(dx === null ? 0 : ptr(dx), ptr(dgamma), ptr(dbeta), ptr(dy), ptr(x), ptr(gamma), ptr(mean),
      ptr(invStd), m, n, scale, prevAct, alpha);
  }

  layerNormForward(y: Buf, x: Buf, gamma: Buf, beta: Buf, mean: Buf, invStd: Buf, m: number, n: number,
    eps: number, act: ActCode, alpha: number): void {
    if (!FAST.layerNormForward(this.space, y, x, gamma, beta, mean, invStd, m, n, eps, act, alpha)) {
      checkKernel(this.space, K.layerNormForward, y, x, gamma, beta, mean, invStd, m, n, eps, act, alpha);
    }
    this.k.layerNormForward(ptr(y), ptr(x), ptr(gamma), ptr(beta), ptr(mean), ptr(invStd), m, n, eps, act, alpha);
  }

  layerNormBackward(dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, scale: number, prevAct: ActCode, alpha: number): void {
    if (!FAST.layerNormBackward(this.space, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha)) {
      checkKernel(this.space, K.layerNormBackward, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha);
    }
    this.k.layerNormBackward(dx === null ? 0 : ptr(dx), ptr(dgamma), ptr(dbeta), ptr(dy), ptr(x), ptr(gamma), ptr(mean),
      ptr(invStd), m, n, scale, prevAct, alpha);
  }

  /**
   * A program (program.ts) in one call to the module (assembly/interpreter.ts). Checked here, once,
   * op by op against its kernel's contract (every buffer ours and long enough, outputs apart from
   * the other operands, the codes known); the module trusts the records it is given.
   */
  compileProgram(program: Program): CompiledProgram {
    checkProgram(this.space, program);
    const records = encodeProgram(program, putWasm);
    const rec = this.alloc(PROGRAM_HYPER_BYTES / 4 + records.length * 2) as WasmBuf; // zeroed
    // alloc may have grown the memory: views after it
    new Float64Array(this.arena.buffer, rec.ptr + PROGRAM_HYPER_BYTES, records.length).set(records);
    this.k.resolveProgram(rec.ptr + PROGRAM_HYPER_BYTES, program.length);
    const use = hyperUse(program);
    return new WasmCompiledProgram(this.arena, rec, this.k.runProgram, program, program.length, use,
      use === HYPER_ADAM ? OPT.adam : OPT.sgd);
  }

  /** The training program of a step description in one call to the module. */
  compileStep(desc: StepDesc): CompiledStep {
    checkStep(this.space, desc); // the contract, the same as on the native backend
    return this.compileProgram(trainProgram(desc)) as CompiledStep;
  }
}

/** One compiled program: its allocation (held: the module reads it) and its ops (which hold its buffers). */
class WasmCompiledProgram implements CompiledStep {
  readonly loss = new Float64Array(1);
  /** f64 index of the hyper-parameter block (allocations are 64-byte aligned). */
  private readonly at: number;
  private readonly ops: number;

  constructor(private readonly owner: Arena, private readonly rec: WasmBuf,
    private readonly run_: (ops: number, count: number, h: number, use: number) => number, readonly program: Program,
    private readonly count: number, private readonly use: number, private readonly optimizer: number) {
    this.at = rec.ptr / 8;
    this.ops = rec.ptr + PROGRAM_HYPER_BYTES;
  }

  /** The last hyper-parameter object whose fields were all of the right type. */
  private typed: StepHyper | null = null;

  private checkTypes(h: StepHyper): void {
    if (!hyperTypesOk(h)) checkHyper(h, this.optimizer);
    this.typed = h;
  }

  run(h: StepHyper | null): void {
    // owner.f64 follows memory growth; a view of the program's own would need a check per run
    const v = this.owner.f64, at = this.at;
    if (this.use !== 0) {
      // the contract (contract.ts): the types here, when the object is new (a Float64Array would
      // take '0.1' as 0.1 and null as 0), the values in the module on every run (runProgram
      // returns 1 and does nothing when they are out of contract). More checking here would cost
      // the batch loop an inlining, and a boxed number a step.
      if (h !== this.typed) this.checkTypes(h!);
      const k = h!;
      v[at + H.lr] = k.lr;
      v[at + H.clipNorm] = k.clipNorm;
      v[at + H.weightDecay] = k.weightDecay;
      v[at + H.mu] = k.mu;
      v[at + H.nesterov] = +k.nesterov;
      v[at + H.beta1] = k.beta1;
      v[at + H.beta2] = k.beta2;
      v[at + H.eps] = k.eps;
      v[at + H.bc1] = k.bc1;
      v[at + H.bc2] = k.bc2;
      v[at + H.step] = k.step ?? 0;
    }
    const status = this.run_(this.ops, this.count, this.rec.ptr, this.use);
    if (status === 2) throw new RangeError(`compiled program: ${programGatherFault(this.program) ?? 'a gatherRows op\'s row numbers changed while being checked'}`);
    if (status !== 0) checkHyper(h!, this.optimizer);
    this.loss[0] = v[at + H.loss];
  }
}
