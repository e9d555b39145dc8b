// The kernel set every backend implements (js reference, native addon, wasm module), with one
// meaning for all of them. The network (src/model/network.ts) owns the loop; a backend owns the arithmetic
// and every buffer the kernels touch.
//
// Conventions shared by all kernels:
// - row-major float32; a dense layer's W is (in, out), b is (out);
// - "dz" is the delta at a layer's pre-activation, per sample (not divided by m); the 1/m of the
//   batch mean enters through `scale` in denseBackward;
// - activation derivatives are computed from the saved output a = g(z) (MATH.md);
// - a kernel never allocates, never reads an output buffer it is told to overwrite (beta = 0), and
//   trusts its arguments: shapes are checked once, in the facade and at the native/wasm boundary.

import type { ActCode, LossCode, OptCode } from './abi.js';
import type { Program } from './program.js';

// The codes live with the rest of the cross-language contract (abi.ts); re-exported for importers.
export { ACT, EPS_PROB, LOSS, OPT, type ActCode, type ActivationName, type LossCode, type LossName, type OptCode } from './abi.js';

/**
 * A float32 buffer owned by a backend. `data` may be a new object after any `alloc` on the same
 * backend (a WebAssembly memory that grows detaches its old views), so read it when needed and do
 * not keep it across allocations.
 */
export interface Buf {
  readonly length: number;
  readonly data: Float32Array;
  /** A window [offset, offset + length) onto the same storage. */
  view(offset: number, length: number): Buf;
}

export type BackendName = 'native' | 'wasm' | 'js';

/**
 * A dense layer's weights w (inp, out) packed once in the layout of one backend's blocked GEMM
 * (WeightPacker). It is a copy: when w changes, pack it again (a stale copy would predict with the
 * old weights).
 */
export interface PackedWeights {
  readonly inp: number;
  readonly out: number;
}

/**
 * Optional capability: weights packed once for inference, where the blocked GEMM otherwise packs
 * the weights of every layer on every call (a batch of 256 rows uses them once per call).
 */
export interface WeightPacker {
  /**
   * `into`, when given (a packed copy from this backend, of the same inp and out), is overwritten
   * and returned: packing again after w changed allocates nothing.
   */
  packWeights(w: Buf, inp: number, out: number, into?: PackedWeights): PackedWeights;
  /**
   * denseForward with `packed` (from packWeights of this backend, of these w) read by the blocked
   * path: the same bits as denseForward. The paths for few rows and narrow outputs read w.
   */
  denseForwardPacked(y: Buf, x: Buf, w: Buf, packed: PackedWeights, b: Buf, m: number, inp: number, out: number,
    act: ActCode, alpha: number): void;
}

export interface Backend extends Partial<StepCompiler>, Partial<WeightPacker> {
  readonly name: BackendName;
  /** Instruction set the kernels run on, e.g. 'avx512', 'avx2-fma', 'wasm-simd128', 'js'. */
  readonly isa: string;
  /** Threads the kernels may use. */
  readonly threads: number;
  /** Why the kernels run on one thread where more were asked or the machine has more (wasm). */
  readonly threadsReason?: string;
  /** Sets the thread count (clamped to at least 1); a backend without threads keeps 1. */
  setThreads(n: number): void;
  /**
   * Its compiled training steps have runAsync and wait (CompiledStep): they can run on the
   * backend's own threads while the caller's event loop runs (native).
   */
  readonly asyncPrograms?: boolean;
  /** Its compiled training steps also have runStepsAsync and stop: several steps per hand-off (native). */
  readonly asyncSteps?: boolean;

  /** A zero-filled buffer of `length` floats. */
  alloc(length: number): Buf;

  /**
   * c = alpha·op(a)·op(b) + beta·c, op(x) = xᵀ when its flag is set.
   * op(a) (m,k), op(b) (k,n), c (m,n); stored a is (m,k) or (k,m) when transA, b is (k,n) or (n,k)
   * when transB. When beta is 0, c is not read (it may hold NaN).
   */
  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Buf, b: Buf, beta: number, c: Buf): void;

  /**
   * y = act(x·w + b), fused. x (m,inp), w (inp,out), b (out), y (m,out).
   * Softmax is taken over each row (max-subtracted). `alpha` is the leaky-ReLU slope.
   */
  denseForward(y: Buf, x: Buf, w: Buf, b: Buf, m: number, inp: number, out: number,
    act: ActCode, alpha: number): void;

  /**
   * Backward pass of one dense layer, from dz (m,out), the delta at its pre-activation:
   *   dw = scale·xᵀ·dz            (inp,out)   overwritten
   *   db = scale·Σ_rows dz        (out)       overwritten
   *   dx = (dz·wᵀ) ⊙ g'(x)        (m,inp)     overwritten, only when dx is not null
   * x (m,inp) is the previous layer's output, g its activation (`prevAct`, with slope `alpha`),
   * so dx is the delta at the previous layer's pre-activation. prevAct is never softmax.
   */
  denseBackward(dw: Buf, db: Buf, dx: Buf | null, dz: Buf, x: Buf, w: Buf,
    m: number, inp: number, out: number, scale: number, prevAct: ActCode, alpha: number): void;

  /**
   * Loss of a batch and the output delta, fused. a (m,n) is the output layer's output (after its
   * activation `act`, slope `alpha`), y (m,n) the targets, dz (m,n) receives the delta at the
   * output pre-activation. With e = a − y, each sample's loss L and dL/da are (a mean over its n
   * outputs, except categorical cross-entropy's sum; Keras's definitions):
   *   mse:  L = mean_j e²                           dz = (2/n)·e·g'(a)
   *   binaryCrossEntropy (sigmoid output):
   *         L = −mean_j [y log a + (1−y) log(1−a)]  dz = (a−y)/n
   *   categoricalCrossEntropy (softmax output):
   *         L = −Σ_j y log a                        dz = a − y
   *   huber (threshold `delta`):
   *         L = mean_j (|e| ≤ δ ? e²/2 : δ(|e| − δ/2))   dz = clamp(e, −δ, δ)/n·g'(a)
   *   meanAbsoluteError:
   *         L = mean_j |e|                          dz = sign(e)/n·g'(a)   (0 at e = 0)
   * `weights` (m), when not null, multiplies row i's loss and its delta by weights[i]. Returns the
   * (weighted) loss summed over the m samples. `delta` is read by huber only. Probabilities
   * inside log() are clamped to [EPS_PROB, 1−EPS_PROB].
   */
  lossDelta(dz: Buf, a: Buf, y: Buf, m: number, n: number, loss: LossCode, act: ActCode,
    alpha: number, delta: number, weights: Buf | null): number;

  /** Σ g[i]² over the first n entries (for clipping by global norm). */
  sumSquares(g: Buf, n: number): number;

  // Optimizer updates: one pass over the flat arenas (params p, grads g, state v/m), n entries.
  // The gradient used is  ĝ = gradScale·g + weightDecay·p  for i < decayCount (the weights, which
  // the arena places first), ĝ = gradScale·g for the biases after them. `gradScale` carries
  // clipping by norm (1 when off). AdamW instead decays decoupled: p -= lr·weightDecay·p.

  /** p -= lr·ĝ */
  sgdStep(p: Buf, g: Buf, n: number, lr: number, gradScale: number, weightDecay: number,
    decayCount: number): void;

  /** v = mu·v + ĝ;  p -= lr·(nesterov ? ĝ + mu·v : v)   (PyTorch's formulation) */
  momentumStep(p: Buf, g: Buf, v: Buf, n: number, lr: number, gradScale: number, mu: number,
    nesterov: boolean, weightDecay: number, decayCount: number): void;

  /**
   * m = β1·m + (1−β1)·ĝ;  v = β2·v + (1−β2)·ĝ²;  p -= lr·(m/bc1) / (sqrt(v/bc2) + eps)
   * with bc1 = 1−β1ᵗ, bc2 = 1−β2ᵗ computed by the caller. When `decoupled` (AdamW), ĝ has no decay
   * term and p -= lr·weightDecay·p is applied first, for i < decayCount.
   */
  adamStep(p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, gradScale: number,
    beta1: number, beta2: number, eps: number, bc1: number, bc2: number,
    weightDecay: number, decoupled: boolean, decayCount: number): void;

  // ---- layers beyond dense ------------------------------------------------------------------
  // Each backward kernel takes dy, the delta at its own layer's pre-activation (per sample, not
  // divided by m, as for denseBackward), and writes dx, the delta at the previous layer's
  // pre-activation: the gradient with respect to its input x, times g'(x) of the previous layer's
  // activation (`prevAct`, slope `alpha`). Learnable parameters' gradients are multiplied by
  // `scale` (1/m for the batch mean). The forward kernels apply their own activation `act`
  // (never softmax) after the affine part.

  /**
   * Inverted dropout over n floats: y = keep(i) ? x·s : 0, s = f32(1 / f32(1 − rate)).
   * keep(i) comes from a counter-based generator, the same on every backend and thread count:
   *   fmix(h) = murmur3's 32-bit finalizer (h ^= h>>>16; h *= 0x85ebca6b; h ^= h>>>13;
   *             h *= 0xc2b2ae35; h ^= h>>>16), all arithmetic mod 2^32;
   *   k1 = fmix(fmix(fmix(seed + 0x9e3779b9) ^ step) ^ (layer + 0x7f4a7c15));  k2 = fmix(k1 + 0x9e3779b9);
   *   h(i) = fmix(fmix(i ^ k1) + k2);   keep(i) ⇔ (h(i) >>> 8) ≥ ⌊f32(rate)·2^24⌋.
   * i is the element's index in the (rows × width) batch.
   */
  dropoutForward(y: Buf, x: Buf, n: number, rate: number, seed: number, step: number, layer: number): void;

  /** dx = keep(i) ? (dy·s)·g'(x) : 0, with the mask of dropoutForward for the same key. */
  dropoutBackward(dx: Buf, dy: Buf, x: Buf, n: number, rate: number, seed: number, step: number, layer: number,
    prevAct: ActCode, alpha: number): void;

  /**
   * Batch normalization in training (Keras's BatchNormalization), per column j of x (m,n):
   *   μ = (1/m) Σ_i x_ij;  σ² = (1/m) Σ_i (x_ij − μ)²  (biased);  r = 1/√(σ² + eps)
   *   x̂ = (x − μ)·r;  y = act(γ·x̂ + β)
   * mean, invStd (n) receive μ and r for the backward pass. When `update`, the running statistics
   * move: runMean = momentum·runMean + (1 − momentum)·μ, runVar the same with σ². m = 0 writes nothing.
   */
  batchNormForward(y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, update: boolean, momentum: number, eps: number, act: ActCode, alpha: number): void;

  /** Batch normalization in inference: y = act(γ·(x − runMean)/√(runVar + eps) + β). */
  batchNormInference(y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, m: number, n: number,
    eps: number, act: ActCode, alpha: number): void;

  /**
   * Backward of batchNormForward, per column, with x̂ recomputed from x, mean and invStd:
   *   S = Σ_i dy_ij;  T = Σ_i dy_ij·x̂_ij
   *   dx = γ·r·(dy − S/m − x̂·T/m) ⊙ g'(x)   (when dx is not null)
   *   dgamma = scale·T;  dbeta = scale·S
   */
  batchNormBackward(dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, scale: number, prevAct: ActCode, alpha: number): void;

  /**
   * Layer normalization (Keras's LayerNormalization over the last axis), per row i of x (m,n):
   *   μ = (1/n) Σ_j x_ij;  σ² = (1/n) Σ_j (x_ij − μ)²;  r = 1/√(σ² + eps);  y = act(γ·(x − μ)·r + β)
   * mean, invStd (m) receive μ and r per row.
   */
  layerNormForward(y: Buf, x: Buf, gamma: Buf, beta: Buf, mean: Buf, invStd: Buf, m: number, n: number,
    eps: number, act: ActCode, alpha: number): void;

  /**
   * Backward of layerNormForward, per row, with ĝ = dy·γ and x̂ recomputed:
   *   dx = r·(ĝ − mean_j ĝ − x̂·mean_j(ĝ·x̂)) ⊙ g'(x)   (when dx is not null)
   *   dgamma = scale·Σ_i dy·x̂;  dbeta = scale·Σ_i dy
   */
  layerNormBackward(dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, scale: number, prevAct: ActCode, alpha: number): void;

  /**
   * Optional batch staging: row i of dst = row order[start + i] of src (row start + i when order
   * is null), for i < count, each `cols` floats. A backend that has it copies a shuffled batch
   * faster than a JavaScript loop can (the data set is far larger than the caches).
   */
  gatherRows?(dst: Buf, src: Float32Array, order: Uint32Array | null, start: number, count: number, cols: number): void;

  /**
   * Optional: Σ src[i]² (in double) of an array outside backend memory. A NaN or ±Infinity makes
   * it non-finite; fit checks its rows with it before the first step, where a SIMD pass reads the
   * data several times faster than a JavaScript scan.
   */
  sumSquaresOf?(src: Float32Array): number;
}

/**
 * One network's training step at one batch size, described once for `Backend.compileStep`.
 * Layer l's W (dims[l], dims[l+1]) starts at params[wOffsets[l]], its b (dims[l+1]) at
 * params[bOffsets[l]]; grads, backup, state1 and state2 have the params layout (n entries).
 */
export interface StepDesc {
  m: number;
  /** [inputs, units of layer 1, …, units of layer L] */
  dims: number[];
  /** Activation and leaky-ReLU slope per layer. */
  acts: ActCode[];
  alphas: number[];
  loss: LossCode;
  /** The loss's parameter (huber's delta, default 1; lossDelta reads it for huber only). */
  delta?: number;
  /** The staged batch: x (m, dims[0]) and targets y (m, dims[L]). */
  x: Buf;
  y: Buf;
  /** The staged batch's per-row weights (m), or null (the default): every row weighs 1. */
  weights?: Buf | null;
  /** Per layer: its output (m, dims[l+1]) and the delta at its pre-activation (m, dims[l+1]). */
  outs: Buf[];
  deltas: Buf[];
  params: Buf;
  grads: Buf;
  /** Receives a copy of params before the update (the last good weights). */
  backup: Buf;
  n: number;
  wOffsets: number[];
  bOffsets: number[];
  optimizer: OptCode;
  /** momentum: velocity; adam/adamw: first moment (state1) and second moment (state2). */
  state1: Buf | null;
  state2: Buf | null;
  /** The first decayCount params (the weights) take weight decay. */
  decayCount: number;
}

/** Per-step numbers for a compiled step; the caller reuses one object. */
export interface StepHyper {
  lr: number;
  /** Clip the global gradient norm to this; 0 = off. */
  clipNorm: number;
  weightDecay: number;
  /** momentum */
  mu: number;
  nesterov: boolean;
  /** adam / adamw, with bias corrections bc1 = 1−β1ᵗ, bc2 = 1−β2ᵗ */
  beta1: number;
  beta2: number;
  eps: number;
  bc1: number;
  bc2: number;
  /** The dropout ops' step key: an integer in [0, 2^32) (absent: 0). */
  step?: number;
}

/**
 * A program (program.ts) compiled by a backend into one call. `run` executes every op in order, as
 * interpreter.ts does kernel by kernel, with the same bits; a lossDelta op leaves the summed loss
 * in `loss[0]` and, when it is not finite, ends the run.
 */
export interface CompiledProgram {
  /** `h`: the hyper-parameters the program's update ops read; a program without such ops ignores it. */
  run(h: StepHyper | null): void;
  /**
   * The summed loss of the last run. An array, not a return value: a returned number is a new
   * heap number each step wherever V8 does not inline the call.
   */
  readonly loss: Float64Array;
}

/**
 * A compiled training step (program.ts trainProgram): denseForward per layer; lossDelta; if the
 * loss is finite: denseBackward per layer (scale 1/m), the clip scale (sumSquares of the n grads
 * when clipNorm > 0: gradScale = clipNorm/‖g‖ if ‖g‖ > clipNorm, else 1), backup ← params, and the
 * optimizer update. Leaves the summed loss in `loss[0]` (not finite: nothing after lossDelta ran).
 */
export interface CompiledStep extends CompiledProgram {
  run(h: StepHyper): void;
  /**
   * Optional (native): the same run on another thread, so that the caller's event loop stays free;
   * the same bits as `run`. Resolves with the summed loss (also left in `loss[0]`). It is in
   * flight from the call until `wait()` returns or the promise settles: meanwhile `run` and a
   * second `runAsync` throw, and nothing may write the program's buffers. A second `runAsync`
   * also waits for the first one's promise.
   */
  runAsync?(h: StepHyper): Promise<number>;
  /**
   * Optional (native), for a program of `steps` or more copies of one training step's ops
   * (opsPerStep each): runs its first `steps` steps one after another on another thread, as
   * `steps` runAsync calls would but with one hand-off to the event loop. Step s reads `h` with
   * Adam's bias corrections bc[2s], bc[2s + 1] and step number (h.step ?? 0) + s; its summed loss
   * goes into losses[s]. Ends after the first step whose loss is not finite (the steps after it
   * do not run), or after the step in progress once `stop()` is called. Resolves with the steps
   * that ran. In flight as runAsync is.
   */
  runStepsAsync?(h: StepHyper, bc: Float64Array, steps: number, opsPerStep: number, losses: Float64Array): Promise<number>;
  /** Blocks until a `runAsync` in flight has finished its arithmetic; returns at once if none is. */
  wait?(): void;
  /** Asks a `runStepsAsync` in flight to end after the step it is in (then `wait()` is one step's wait). */
  stop?(): void;
}

/**
 * Optional capability: backends whose per-call cost is large next to a tiny net's work (an N-API
 * or wasm boundary crossing per kernel) run a whole program in one call, with their own
 * interpreter (native/boundary/interpreter.cc, assembly/interpreter.ts). Results must be bitwise
 * the same as interpreter.ts running the same program kernel by kernel on the same backend.
 */
export interface StepCompiler {
  /** Checks every op against its contract once (contract.ts checkProgram); each run only that its buffers live. */
  compileProgram(program: Program): CompiledProgram;
  /** The training program of a step description (checked as contract.ts checkStep says), compiled. */
  compileStep(desc: StepDesc): CompiledStep;
}
