// The wasm backend: the AssemblyScript kernels of assembly/ called on buffers of one linear memory
// (arena.ts), each call checked against the kernel contract, and compiled training steps
// (assembly/step.ts) whose descriptor layout comes from abi.ts.
import { type ActCode, type Backend, type Buf, type CompiledStep, type LossCode, type StepDesc, type StepHyper } from '../backend.js';
import { HYPER, WASM_STEP, WASM_STEP_HYPER_BYTES, WASM_STEP_LAYER } from '../abi.js';
import { FAST, RESOLVED, checkHyper, checkKernel, checkStep, hyperTypesOk, type BufferSpace } from '../contract.js';
import { Arena, WasmBuf } from './arena.js';

const K = RESOLVED;

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
  /** Leaves the loss in the hyper-parameter block; returns 1 when the hyper-parameters are refused. */
  trainStep(desc: number): number;
}

// The compiled-step descriptor of assembly/step.ts (abi.ts), in one allocation: the
// hyper-parameter block (HYPER, f64) first, then the header (u32 words), then one record per layer.
const D_BASE = WASM_STEP_HYPER_BYTES; // byte offset of the header in the allocation
const D = WASM_STEP.at, R = WASM_STEP_LAYER.at, H = HYPER.at;
const D_HEADER_WORDS = WASM_STEP.size;
const LAYER_WORDS = WASM_STEP_LAYER.size;

export class WasmBackend implements Backend {
  readonly name = 'wasm' as const;
  readonly isa: string;
  readonly threads = 1;
  readonly memory: WebAssembly.Memory;
  private readonly k: Exports;
  private readonly arena: Arena;

  constructor(instance: WebAssembly.Instance, memory: WebAssembly.Memory, maxBytes: number) {
    this.k = instance.exports as unknown as Exports;
    this.memory = memory;
    this.isa = this.k.relaxedBuild() ? 'wasm-relaxed-simd' : 'wasm-simd128';
    this.arena = new Arena(memory, this.k.heapBase(), maxBytes);
  }

  setThreads(_n: number): void {}

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

  // The whole step of src/backends/step.ts in one call to the module (assembly/step.ts). The
  // descriptor is checked here, once: every buffer ours and long enough for its shape, every
  // layer's W / b window inside the n params, the codes known.
  compileStep(desc: StepDesc): CompiledStep {
    const used = checkStep(this.space, desc); // the contract, the same as on the native backend
    const { m, dims, n } = desc;
    const L = dims.length - 1;
    const ptr = (b: Buf | null | undefined): number => (b ? (b as WasmBuf).ptr : 0);
    const params = ptr(desc.params), grads = ptr(desc.grads), backup = ptr(desc.backup);
    const state1 = ptr(desc.state1), state2 = ptr(desc.state2), x = ptr(desc.x), y = ptr(desc.y), weights = ptr(desc.weights);
    const outs = desc.outs.map(ptr), deltas = desc.deltas.map(ptr);

    const rec = this.alloc(D_BASE / 4 + D_HEADER_WORDS + L * LAYER_WORDS) as WasmBuf; // zeroed
    // alloc may have grown the memory: views after it
    const base = (rec.ptr + D_BASE) / 4;
    const u32 = new Uint32Array(this.arena.buffer), f32 = new Float32Array(this.arena.buffer);
    u32[base + D.m] = m;
    u32[base + D.layers] = L;
    u32[base + D.loss] = desc.loss;
    u32[base + D.optimizer] = desc.optimizer;
    u32[base + D.n] = n;
    u32[base + D.decayCount] = desc.decayCount;
    u32[base + D.x] = x;
    u32[base + D.y] = y;
    u32[base + D.params] = params;
    u32[base + D.grads] = grads;
    u32[base + D.backup] = backup;
    u32[base + D.backupBytes] = n * 4; // the n params the contract checked backup for
    u32[base + D.state1] = state1;
    u32[base + D.state2] = state2;
    u32[base + D.hyper] = rec.ptr;
    f32[base + D.delta] = desc.delta ?? 1;
    u32[base + D.weights] = weights;
    for (let l = 0; l < L; l++) {
      const wo = desc.wOffsets[l], bo = desc.bOffsets[l];
      const r = base + D_HEADER_WORDS + l * LAYER_WORDS;
      u32[r + R.inp] = dims[l];
      u32[r + R.out] = dims[l + 1];
      u32[r + R.act] = desc.acts[l];
      f32[r + R.alpha] = desc.alphas[l];
      u32[r + R.w] = params + wo * 4;
      u32[r + R.b] = params + bo * 4;
      u32[r + R.dw] = grads + wo * 4;
      u32[r + R.db] = grads + bo * 4;
      u32[r + R.a] = outs[l];
      u32[r + R.delta] = deltas[l];
    }
    // the step holds every buffer it names, so that none is recycled while it can run
    const keep = used.map((u) => u.buf);
    return new WasmCompiledStep(this.arena, rec, this.k.trainStep, keep, desc.optimizer);
  }
}

/** One compiled step: its descriptor allocation (held: the module reads it) and the buffers it names. */
class WasmCompiledStep implements CompiledStep {
  readonly loss = new Float64Array(1);
  /** f64 index of the hyper-parameter block (allocations are 64-byte aligned). */
  private readonly at: number;

  constructor(private readonly owner: Arena, private readonly desc: WasmBuf,
    private readonly run_: (d: number) => number, readonly keep: readonly Buf[], private readonly optimizer: number) {
    this.at = desc.ptr / 8;
  }

  /** The last hyper-parameter object whose fields were all of the right type. */
  private typed: StepHyper | null = null;

  private checkTypes(h: StepHyper): void {
    if (!hyperTypesOk(h)) checkHyper(h, this.optimizer);
    this.typed = h;
  }

  run(h: StepHyper): void {
    // the contract (contract.ts): the types here, when the object is new (a Float64Array would take
    // '0.1' as 0.1 and null as 0), the values in the module on every run (trainStep returns 1 and
    // does nothing when they are out of contract). More checking here would cost the batch loop an
    // inlining, and a boxed number a step.
    if (h !== this.typed) this.checkTypes(h);
    // owner.f64 follows memory growth; a view of the step's own would need a check per run
    const v = this.owner.f64, at = this.at;
    v[at + H.lr] = h.lr;
    v[at + H.clipNorm] = h.clipNorm;
    v[at + H.weightDecay] = h.weightDecay;
    v[at + H.mu] = h.mu;
    v[at + H.nesterov] = +h.nesterov;
    v[at + H.beta1] = h.beta1;
    v[at + H.beta2] = h.beta2;
    v[at + H.eps] = h.eps;
    v[at + H.bc1] = h.bc1;
    v[at + H.bc2] = h.bc2;
    if (this.run_(this.desc.ptr + D_BASE) !== 0) checkHyper(h, this.optimizer);
    this.loss[0] = v[at + H.loss];
  }
}
