// The network a Model trains: its arenas (params, grads, optimizer state, the backup), the
// buffers for each batch size (plans), batch staging, and the programs of each plan (a training
// step, a forward pass: src/backends/program.ts builds them), run in one backend call where the
// backend compiles programs, else op by op (src/backends/interpreter.ts). Model (model.ts) is the
// public face; fit.ts drives the epochs. Beside it: the shared types (plan.ts), the arenas'
// layout (layout.ts), the programs of layers beyond dense (stack-ops.ts), batch staging
// (staging.ts, resident-rows.ts) and the correct-prediction counts (row-matches.ts).
import { LOSS, OPT, type Backend, type Buf, type CompiledProgram, type CompiledStep, type LossCode, type StepDesc, type StepHyper } from '../backends/backend.js';
import { interpret } from '../backends/interpreter.js';
import { forwardProgram, gradientProgram, trainProgram, type Op, type Program } from '../backends/program.js';
import { checkFinite, checkStagedFinite, InputError, toTargets, type Matrix, type TargetInput } from '../data.js';
import { Random } from '../random.js';
import { checkBatchSize, checkSpec, isClassificationLoss, isDense, MAX_BUFFER_FLOATS, type DenseSpec, type ModelSpec, type Normalization } from '../spec.js';
import { arenaSizes, layoutLayers } from './layout.js';
import type { LayerInfo, PassMode, Plan, ResidentRows, StackLayer, StepChunk } from './plan.js';
import { residentRows } from './resident-rows.js';
import { chunkSteps, compileChunk, stageChunkIndices } from './step-chunk.js';
import { argmaxMatches, argmaxMatchesWeighted, thresholdMatches, thresholdMatchesWeighted } from './row-matches.js';
import { stackBackwardOps, stackForwardOps } from './stack-ops.js';
import { GEMV_ROWS, PackedForward } from './packed-forward.js';
import { stageRows } from './staging.js';

export class Network {
  readonly spec: ModelSpec;
  readonly backend: Backend;
  /** All weights, then all biases, in one arena. */
  readonly params: Buf;
  readonly grads: Buf;
  readonly paramCount: number;
  /**
   * Run each program (training step, forward pass) as one backend call where the backend compiles
   * programs (Model.fusedSteps); else op by op through the Backend's kernels.
   */
  fusedSteps = true;
  readonly layers: LayerInfo[];
  private readonly decayCount: number;
  private readonly loss: LossCode;
  /** The loss's parameter (huber's delta; the kernels ignore it for the other losses). */
  private readonly delta: number;
  private readonly classifier: boolean;
  private state1: Buf | null = null;
  private state2: Buf | null = null;
  /** The params from before the last update, restored when training diverges. */
  backup: Buf | null = null;
  private step = 0;
  private readonly hyper: StepHyper;
  /**
   * The last step's summed loss. An array, not a return value: a returned number is a new heap
   * number each step wherever V8 does not inline the call.
   */
  readonly stepLoss = new Float64Array(1);
  /** Where a program without a loss op would leave one (never read). */
  private readonly noLoss = new Float64Array(1);
  /** The step running off the thread (trainStepAsync), until its promise settles. */
  private inFlight: CompiledStep | null = null;
  private capacity = 0;
  private plans = new Map<number, Plan>();
  /** The plan plan() returned last: every batch of an epoch but its last has the same m. */
  private lastPlan: Plan | null = null;
  private actStore: Buf[] = [];
  private deltaStore: Buf[] = [];
  private xStore: Buf | null = null;
  private yStore: Buf | null = null;
  private wStore: Buf | null = null;

  /** The whole layer sequence, when it has layers beyond dense (else null: the dense-only path). */
  readonly stack: StackLayer[] | null;
  /** Batch normalization's running means and variances (not trained: outside params), or null. */
  readonly stats: Buf | null;
  readonly statCount: number;
  /** The stats from before the last training step (restored with the params when it diverges). */
  private statsBackup: Buf | null = null;
  /** Counts training forward passes: the dropout generator's step key. */
  private passes = 0;
  private meanStore: (Buf | null)[] = [];
  private invStdStore: (Buf | null)[] = [];
  /**
   * Counts the changes of params (paramsChanged): every write this network makes or is told of.
   * Packed copies of the weights (predictFast) are tagged with it.
   */
  private paramsVersion = 0;
  /**
   * Set once the live params arena has been handed out (Model.params): writes through it are not
   * counted, so from then on predict packs nothing and runs the forward program (today's path).
   */
  private paramsShared = false;
  /** predict's forward pass on packed weights, where the backend packs them (dense-only networks). */
  private readonly packedForward: PackedForward | null;

  constructor(spec: ModelSpec, backend: Backend) {
    this.spec = checkSpec(spec);
    this.backend = backend;
    this.loss = LOSS[this.spec.loss];
    this.delta = this.spec.huberDelta ?? 1;
    this.classifier = isClassificationLoss(this.spec.loss);
    const sizes = arenaSizes(this.spec);
    this.decayCount = sizes.weights;
    this.paramCount = sizes.weights + sizes.biases + sizes.normParams;
    this.params = backend.alloc(this.paramCount);
    this.grads = backend.alloc(this.paramCount);
    this.statCount = sizes.statCount;
    this.stats = sizes.statCount > 0 ? backend.alloc(sizes.statCount) : null;
    ({ layers: this.layers, stack: this.stack } = layoutLayers(this.spec, sizes, this.params, this.grads, this.stats));
    this.packedForward = this.stack ? null : PackedForward.of(backend, this.layers);
    const o = this.spec.optimizer;
    this.hyper = {
      lr: o.learningRate, clipNorm: o.clipNorm ?? 0, weightDecay: o.weightDecay ?? 0,
      mu: o.type === 'momentum' ? (o.momentum ?? 0.9) : 0, nesterov: o.type === 'momentum' && (o.nesterov ?? false),
      beta1: o.type === 'adam' || o.type === 'adamw' ? (o.beta1 ?? 0.9) : 0,
      beta2: o.type === 'adam' || o.type === 'adamw' ? (o.beta2 ?? 0.999) : 0,
      eps: o.type === 'adam' || o.type === 'adamw' ? (o.epsilon ?? 1e-8) : 0, bc1: 1, bc2: 1,
    };
    this.initialize(this.spec.seed ?? 0);
  }

  /** Layers in the stack (or dense layers when there is no stack). */
  private get depth(): number {
    return this.stack ? this.stack.length : this.layers.length;
  }

  get inputs(): number {
    return this.spec.inputs;
  }

  get outputs(): number {
    return this.layers[this.layers.length - 1].out;
  }

  /**
   * Seeded initialization, computed in float64 on the host and stored as float32, so every backend
   * starts from the same bits: He normal (std √(2/in)) or Glorot uniform (±√(6/(in+out))); biases 0.
   */
  initialize(seed: number): void {
    const rng = new Random(seed);
    const p = this.params.data;
    p.fill(0);
    let off = 0;
    const denseSpecs = this.spec.layers.filter(isDense) as DenseSpec[];
    for (let l = 0; l < this.layers.length; l++) {
      const { inp, out } = this.layers[l];
      const he = denseSpecs[l].init === 'he';
      const scale = he ? Math.sqrt(2 / inp) : Math.sqrt(6 / (inp + out));
      for (let i = 0; i < inp * out; i++) p[off + i] = he ? scale * rng.normal() : scale * (2 * rng.uniform() - 1);
      off += inp * out;
    }
    // normalization: γ = 1, β = 0; running mean 0, variance 1 (Keras's initializers)
    for (const e of this.stack ?? []) {
      if (e.kind === 'batchNormalization' || e.kind === 'layerNormalization') {
        e.gamma.data.fill(1);
        e.runMean?.data.fill(0);
        e.runVar?.data.fill(1);
      }
    }
    this.passes = 0;
    this.paramsChanged();
    this.resetOptimizer();
  }

  /** Records a change of params (any write to the arena): packed copies of the weights are stale. */
  paramsChanged(): void {
    this.paramsVersion++;
  }

  /**
   * The live params arena, for a caller that may write it without telling (Model.params): predict
   * stops using packed copies for good, since it cannot see such writes.
   */
  shareParams(): Buf {
    this.paramsShared = true;
    return this.params;
  }

  /** Sets every parameter (paramCount values, checked finite), laid out as params. */
  setParams(values: ArrayLike<number>, what = 'setParams'): void {
    if (values?.length !== this.paramCount) throw new InputError(`${what}: expected ${this.paramCount} values, got ${values?.length ?? typeof values}`);
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) throw new InputError(`${what}: value ${i} is not finite`);
    this.params.data.set(values);
    this.paramsChanged();
  }

  /** Puts back params saved before (the backup of a diverged step, the best epoch's weights). */
  restoreParams(saved: Float32Array): void {
    this.params.data.set(saved);
    this.paramsChanged();
  }

  /** Whether predict's packed copies hold the current params (for tests: a copy is made once, kept until a change). */
  packedCurrent(): boolean {
    return this.packedForward !== null && this.packedForward.holds(this.paramsVersion);
  }

  /** The running statistics (batch normalization's means and variances, layer by layer), a copy. */
  getStats(): Float32Array {
    return this.stats ? this.stats.data.slice() : new Float32Array(0);
  }

  /** Sets the running statistics (statCount values; variances must be ≥ 0). */
  setStats(values: ArrayLike<number>): void {
    if (values.length !== this.statCount) throw new InputError(`setStats: expected ${this.statCount} values, got ${values.length}`);
    let at = 0;
    for (const e of this.stack ?? []) {
      if (e.kind !== 'batchNormalization') continue;
      for (let j = 0; j < 2 * e.width; j++) {
        const v = values[at + j];
        if (!Number.isFinite(v) || (j >= e.width && v < 0)) {
          throw new InputError(`setStats: ${j < e.width ? 'running mean' : 'running variance'} ${j % e.width} of a batch normalization is ${v}`);
        }
      }
      at += 2 * e.width;
    }
    this.stats?.data.set(values);
    this.paramsChanged();
  }

  /** Dense layer l's weights (in, out) and bias (out), copies (normalization parameters: see params). */
  getWeights(): { w: Float32Array; b: Float32Array }[] {
    return this.layers.map((l) => ({ w: l.w.data.slice(), b: l.b.data.slice() }));
  }

  /** Sets every layer's weights (in, out) and bias (out); checks shapes and finiteness. */
  setWeights(weights: { w: ArrayLike<number>; b: ArrayLike<number> }[]): void {
    if (!Array.isArray(weights) || weights.length !== this.layers.length) {
      throw new InputError(`setWeights: expected ${this.layers.length} layers, got ${Array.isArray(weights) ? weights.length : typeof weights}`);
    }
    weights.forEach((lw, i) => {
      const l = this.layers[i];
      if (lw?.w?.length !== l.inp * l.out || lw?.b?.length !== l.out) {
        throw new InputError(`setWeights: layer ${i + 1} needs w of ${l.inp}×${l.out} and b of ${l.out} values`);
      }
      for (let j = 0; j < lw.w.length; j++) if (!Number.isFinite(lw.w[j])) throw new InputError(`setWeights: layer ${i + 1} w[${j}] is not finite`);
      for (let j = 0; j < lw.b.length; j++) if (!Number.isFinite(lw.b[j])) throw new InputError(`setWeights: layer ${i + 1} b[${j}] is not finite`);
    });
    weights.forEach((lw, i) => {
      this.layers[i].w.data.set(lw.w);
      this.layers[i].b.data.set(lw.b);
    });
    this.paramsChanged();
  }

  /** Restarts the optimizer (step count and moment estimates). */
  resetOptimizer(): void {
    this.step = 0;
    this.state1?.data.fill(0);
    this.state2?.data.fill(0);
  }

  // ---------------------------------------------------------------------------------------------
  // Buffers

  /** The plan for batches of m rows; buffers grow (and plans are rebuilt) only for a larger m. */
  plan(m: number): Plan {
    // a field compare instead of a Map lookup on each step: tiny steps (tiny-xor's) feel the lookup
    const last = this.lastPlan;
    if (last !== null && last.m === m) return last;
    return (this.lastPlan = this.planFor(m));
  }

  private planFor(m: number): Plan {
    const cached = this.plans.get(m);
    if (cached) return cached;
    if (m > this.capacity) {
      checkBatchSize(this.spec, m);
      // doubling (for fewer regrowths) only as far as a buffer may go
      let widest = this.inputs;
      for (const l of this.layers) widest = Math.max(widest, l.out);
      for (const e of this.stack ?? []) widest = Math.max(widest, e.width);
      this.capacity = Math.max(m, Math.min(this.capacity * 2, Math.floor(MAX_BUFFER_FLOATS / widest)));
      this.plans.clear();
      const widths = this.stack ? this.stack.map((e) => e.width) : this.layers.map((l) => l.out);
      this.actStore = widths.map((w) => this.backend.alloc(this.capacity * w));
      this.deltaStore = widths.map((w) => this.backend.alloc(this.capacity * w));
      // per normalization layer: batch statistics per column, layer statistics per row
      const statFloats = (this.stack ?? []).map((e) => (e.kind === 'batchNormalization' ? e.width : e.kind === 'layerNormalization' ? this.capacity : 0));
      this.meanStore = statFloats.map((n) => (n > 0 ? this.backend.alloc(n) : null));
      this.invStdStore = statFloats.map((n) => (n > 0 ? this.backend.alloc(n) : null));
      this.xStore = this.backend.alloc(this.capacity * this.inputs);
      this.yStore = this.backend.alloc(this.capacity * this.outputs);
      this.wStore = this.backend.alloc(this.capacity);
    }
    const widths = this.stack ? this.stack.map((e) => e.width) : this.layers.map((l) => l.out);
    const statView = (b: Buf | null, i: number): Buf | null =>
      b === null ? null : this.stack![i].kind === 'layerNormalization' ? b.view(0, m) : b;
    const p: Plan = {
      m,
      acts: widths.map((w, i) => this.actStore[i].view(0, m * w)),
      deltas: widths.map((w, i) => this.deltaStore[i].view(0, m * w)),
      means: this.meanStore.map(statView),
      invStds: this.invStdStore.map(statView),
      x: this.xStore!.view(0, m * this.inputs),
      y: this.yStore!.view(0, m * this.outputs),
      w: this.wStore!.view(0, m),
      weighted: false,
    };
    this.plans.set(m, p);
    return p;
  }

  optimizerState(): void {
    const o = this.spec.optimizer;
    if (o.type !== 'sgd' && !this.state1) this.state1 = this.backend.alloc(this.paramCount);
    if ((o.type === 'adam' || o.type === 'adamw') && !this.state2) this.state2 = this.backend.alloc(this.paramCount);
    if (!this.backup) this.backup = this.backend.alloc(this.paramCount);
  }

  // ---------------------------------------------------------------------------------------------
  // The loop

  /** Forward pass of the rows in plan.x (inference unless told); the output is plan.acts[last]. */
  forward(p: Plan, mode: PassMode = 'inference'): void {
    this.settle(); // a batch training off the thread shares the buffers
    if (this.stack) {
      if (mode !== 'inference') {
        interpret(this.backend, stackForwardOps(this.stack!, p, mode, this.dropoutSeed()), this.stackHyper(), this.noLoss);
        return;
      }
      p.forward ??= stackForwardOps(this.stack!, p, 'inference', this.dropoutSeed());
      p.compiledForward = this.runOps(p.forward, p.compiledForward, null, this.noLoss);
      return;
    }
    if (this.fusedSteps && this.backend.compileProgram) {
      const compiled = p.compiledForward ?? (p.compiledForward = this.backend.compileProgram(p.forward ?? this.forwardOps(p)));
      compiled.run(null);
      return;
    }
    interpret(this.backend, p.forward ?? this.forwardOps(p), null, this.noLoss);
  }

  private forwardOps(p: Plan): Program {
    return (p.forward = forwardProgram(this.describe(p)));
  }

  /** Loss summed over the batch; fills the output delta. */
  lossDelta(p: Plan): number {
    const last = this.layers[this.layers.length - 1], out = this.depth - 1;
    return this.backend.lossDelta(p.deltas[out], p.acts[out], p.y, p.m, last.out, this.loss, last.act, last.alpha, this.delta,
      p.weighted ? p.w : null);
  }

  /** Gradients of the mean loss over the staged batch into the grads arena; returns the summed loss. */
  gradients(p: Plan): number {
    if (this.stack) {
      // batch statistics and the next step's dropout masks, with nothing moving (PassMode 'gradients')
      const out = new Float64Array(1);
      interpret(this.backend, [...stackForwardOps(this.stack!, p, 'gradients', this.dropoutSeed()), ...this.stackBackward(p)], this.stackHyper(), out);
      return out[0];
    }
    const out = new Float64Array(1);
    interpret(this.backend, gradientProgram(this.describe(p)), null, out);
    return out[0];
  }

  /** The hyper-parameters with the step key of the next training step (for passes outside one). */
  private stackHyper(): StepHyper {
    this.hyper.step = this.passes >>> 0;
    return this.hyper;
  }

  /** The dropout generator's key words for a pass: the model's seed and the pass count (mod 2^32). */
  private dropoutSeed(): number {
    return (this.spec.seed ?? 0) >>> 0;
  }

  private stackBackward(p: Plan): Op[] {
    return stackBackwardOps(this.stack!, p, this.dropoutSeed(), this.layers[this.layers.length - 1], this.loss, this.delta);
  }

  /** Runs a program of this network: in one backend call where it compiles programs (kept in `slot`), else op by op. */
  private runOps(program: Program, compiled: CompiledProgram | undefined, h: StepHyper | null, loss: Float64Array): CompiledProgram | undefined {
    if (this.fusedSteps && this.backend.compileProgram) {
      const c = compiled ?? this.backend.compileProgram(program);
      c.run(h);
      loss[0] = c.loss[0];
      return c;
    }
    interpret(this.backend, program, h, loss);
    return compiled;
  }

  /**
   * The end of a training step after the backward pass, as the program tail trainProgram ends
   * with: clip by norm, backup <- params, the optimizer's update (program.ts ops; compiled where
   * the backend compiles programs).
   */
  private updateOps(): Program {
    const p = this.params, g = this.grads, n = this.paramCount, decayCount = this.decayCount, o = this.spec.optimizer;
    const ops: Op[] = [{ op: 'clipNorm', g, n }, { op: 'copy', dst: this.backup!, src: p, n }];
    if (o.type === 'sgd') ops.push({ op: 'sgdUpdate', p, g, n, decayCount });
    else if (o.type === 'momentum') ops.push({ op: 'momentumUpdate', p, g, v: this.state1!, n, decayCount });
    else ops.push({ op: 'adamUpdate', p, g, m: this.state1!, v: this.state2!, n, decoupled: o.type === 'adamw', decayCount });
    return ops;
  }

  /** A training step of a network with layers beyond dense: one program (stats backup, forward, loss, backward, update). */
  private trainStack(p: Plan, h: StepHyper): void {
    const weighted = p.weighted;
    let program = weighted ? p.trainWeighted : p.train;
    if (!program) {
      // the running statistics move in the forward pass: copied first, to restore if the step diverges
      const backup: Op[] = this.stats ? [{ op: 'copy', dst: this.statsBackupBuf(), src: this.stats, n: this.statCount }] : [];
      program = [...backup, ...stackForwardOps(this.stack!, p, 'train', this.dropoutSeed()), ...this.stackBackward(p), ...this.updateOps()];
      if (weighted) p.trainWeighted = program;
      else p.train = program;
    }
    h.step = this.passes >>> 0;
    if (weighted) p.compiledTrainWeighted = this.runOps(program, p.compiledTrainWeighted, h, this.stepLoss);
    else p.compiledTrain = this.runOps(program, p.compiledTrain, h, this.stepLoss);
    if (!Number.isFinite(this.stepLoss[0])) {
      if (this.stats) this.stats.data.set(this.statsBackupBuf().data);
      return;
    }
    this.passes++;
  }

  private statsBackupBuf(): Buf {
    return this.statsBackup ?? (this.statsBackup = this.backend.alloc(this.statCount));
  }


  /**
   * One training step on a batch already staged in plan.x / plan.y: forward, loss, backward,
   * clip, backup, update (program.ts trainProgram). Leaves the summed loss (before the update) in
   * stepLoss[0].
   */
  trainStep(p: Plan, lr: number): void {
    const h = this.hyperFor(lr);
    this.paramsChanged(); // the update writes params
    if (this.stack) {
      this.trainStack(p, h);
      if (Number.isFinite(this.stepLoss[0])) this.step++;
      return;
    }
    if (this.fusedSteps && this.backend.compileProgram) {
      const compiled = p.weighted
        ? (p.compiledTrainWeighted ??= this.backend.compileProgram(this.trainOps(p)))
        : (p.compiledTrain ??= this.backend.compileProgram(this.trainOps(p)));
      compiled.run(h);
      this.stepLoss[0] = compiled.loss[0];
    } else {
      interpret(this.backend, this.trainOps(p), h, this.stepLoss);
    }
    if (Number.isFinite(this.stepLoss[0])) this.step++;
  }

  /** The hyper-parameters of the next step at rate lr (Adam's bias corrections of its step count). */
  private hyperFor(lr: number): StepHyper {
    const h = this.hyper, o = this.spec.optimizer;
    h.lr = lr;
    if (o.type === 'adam' || o.type === 'adamw') {
      h.bc1 = 1 - Math.pow(h.beta1, this.step + 1);
      h.bc2 = 1 - Math.pow(h.beta2, this.step + 1);
    }
    return h;
  }

  /**
   * Whether fit can run this network's batches off the thread: the backend runs programs on its
   * own threads and steps are compiled (networks with layers beyond dense train on the thread for now).
   */
  canTrainOffThread(): boolean {
    return this.fusedSteps && !!this.backend.asyncPrograms && !!this.backend.compileProgram && !this.stack;
  }

  /** Multiply-adds of a training step on m rows: the forward GEMMs, dW's, and dX's but the first layer's. */
  stepMultiplyAdds(m: number): number {
    return this.layers.reduce((sum, l, i) => sum + m * l.inp * l.out * (i === 0 ? 2 : 3), 0);
  }

  /**
   * Refuses X when it holds a NaN or ±Infinity, naming the first (row and column), before any
   * step runs. The backend's reduction over host arrays, where it has one, reads it in place (12 ms
   * for 24 M values on native, against 52 ms for the scan); the scan names the value.
   */
  checkRowsFinite(X: Matrix, what: string): void {
    const b = this.backend;
    if (b.sumSquaresOf) checkStagedFinite(b.sumSquaresOf(X.data), X, 0, X.shape[0], what);
    else checkFinite(X.data, X.shape[1], what);
  }

  /** residentRows (resident-rows.ts) of this network's backend and normalization. */
  residentRows(X: Matrix, Y: Matrix, W: Float32Array | null): ResidentRows | null {
    return residentRows(this.backend, X, Y, W, this.spec.normalization);
  }

  /**
   * Stages a batch for trainStepAsync(p, lr, rows) to gather: the row numbers order[start + i]
   * (start + i without an order), i < m, of the resident rows into p.idx. m writes, no copy.
   */
  stageIndices(p: Plan, rows: ResidentRows, start: number, order?: Uint32Array): void {
    this.settle(); // the step in flight reads idx
    const idx = (p.idx ??= this.backend.alloc(p.m)).data, m = p.m;
    if (order) for (let i = 0; i < m; i++) idx[i] = order[start + i];
    else for (let i = 0; i < m; i++) idx[i] = start + i;
    p.weighted = rows.w !== null;
  }

  /**
   * trainStep on the backend's threads (canTrainOffThread): the same program and bits, while the
   * event loop runs. Readers (predict, evaluate, getWeights) call settle() first. With `rows`,
   * the step first gathers its batch from them (the row numbers stageIndices wrote), else it
   * trains on the batch stage() staged. The batch's outputs, targets and weights are left in
   * p.outCopy, p.yCopy and (weighted) p.wCopy.
   */
  async trainStepAsync(p: Plan, lr: number, rows: ResidentRows | null = null): Promise<void> {
    const h = this.hyperFor(lr);
    // counted before the step starts: a predict while it runs settles first, then packs its result
    this.paramsChanged();
    let compiled = rows ? (p.gatherFrom === rows ? p.compiledTrainGather : undefined)
      : p.weighted ? p.compiledTrainAsyncWeighted : p.compiledTrainAsync;
    if (!compiled) {
      const L = this.layers.length, n = p.m * this.outputs, m = p.m;
      const outCopy = p.outCopy ??= this.backend.alloc(n), yCopy = p.yCopy ??= this.backend.alloc(n);
      const wCopy = p.weighted ? (p.wCopy ??= this.backend.alloc(m)) : null;
      const gather: Op[] = [];
      if (rows) {
        const idx = p.idx!, count = rows.rows;
        gather.push({ op: 'gatherRows', dst: p.x, src: rows.x, idx, m, rows: count, cols: this.inputs },
          { op: 'gatherRows', dst: p.y, src: rows.y, idx, m, rows: count, cols: this.outputs });
        if (rows.w) gather.push({ op: 'gatherRows', dst: p.w, src: rows.w, idx, m, rows: count, cols: 1 });
      }
      // with or without the staged weights, as the batch was staged (the weights stay put until the next stage)
      const ops: Op[] = [...gather, ...this.trainOps(p), { op: 'copy', dst: outCopy, src: p.acts[L - 1], n },
        { op: 'copy', dst: yCopy, src: p.y, n }];
      if (wCopy) ops.push({ op: 'copy', dst: wCopy, src: p.w, n: m });
      compiled = this.backend.compileProgram!(ops) as CompiledStep;
      if (rows) {
        p.compiledTrainGather = compiled;
        p.gatherFrom = rows;
      } else if (p.weighted) {
        p.compiledTrainAsyncWeighted = compiled;
      } else {
        p.compiledTrainAsync = compiled;
      }
      if (!compiled.runAsync) throw new Error(`backend ${this.backend.name}: asyncPrograms is set, but its compiled programs have no runAsync`);
    }
    this.inFlight = compiled;
    try {
      this.stepLoss[0] = await compiled.runAsync!(h);
    } finally {
      this.inFlight = null;
    }
    if (Number.isFinite(this.stepLoss[0])) this.step++;
  }

  /** How many batches of p's size trainStepsAsync may train per hand-off, at most `wanted` (1: one a call). */
  chunkSteps(p: Plan, wanted: number): number {
    return chunkSteps(this.backend, p, this.outputs, wanted);
  }

  /**
   * Stages `steps` batches for trainStepsAsync to gather from `rows`: the row numbers of batch
   * positions [start, start + steps·m) of `order` (in order without one). Returns the plan's
   * chunk (compiled on first use, for at least `steps` steps), whose out, y and w slices hold
   * each step's outputs, targets and weights after the steps ran.
   */
  stageChunk(p: Plan, rows: ResidentRows, start: number, steps: number, order?: Uint32Array): StepChunk {
    this.settle(); // the steps in flight read idx
    p.weighted = rows.w !== null;
    let c = p.chunk;
    if (!c || c.from !== rows || c.steps < steps) {
      p.chunk = undefined; // let the old one's buffers go before the new one's
      c = p.chunk = compileChunk(this.backend, p, rows, steps, this.trainOps(p), p.acts[this.layers.length - 1], this.inputs, this.outputs);
    }
    stageChunkIndices(c, p.m, start, steps, order);
    return c;
  }

  /**
   * `steps` training steps of the batches stageChunk staged, in one hand-off to the backend's
   * threads: the bits of `steps` trainStepAsync calls. Ends after the first step whose loss is not
   * finite (its update did not run; the steps after it did not run), or after the step in
   * progress once stopSoon() is called. Resolves with the steps that ran; their losses are in
   * chunk.losses and the last in stepLoss[0].
   */
  async trainStepsAsync(p: Plan, lr: number, steps: number): Promise<number> {
    const c = p.chunk!, h = this.hyperFor(lr), bc = c.bc, o = this.spec.optimizer;
    const adam = o.type === 'adam' || o.type === 'adamw';
    for (let s = 0; s < steps; s++) {
      // hyperFor's expressions for the steps to come, so that each step's bits are a single step's
      bc[2 * s] = adam ? 1 - Math.pow(h.beta1, this.step + 1 + s) : h.bc1;
      bc[2 * s + 1] = adam ? 1 - Math.pow(h.beta2, this.step + 1 + s) : h.bc2;
    }
    this.paramsChanged(); // counted before the steps start, as in trainStepAsync
    this.inFlight = c.compiled;
    let ran: number;
    try {
      ran = await c.compiled.runStepsAsync!(h, bc, steps, c.opsPerStep, c.losses);
    } finally {
      this.inFlight = null;
    }
    const last = c.losses[ran - 1];
    this.stepLoss[0] = last;
    this.step += Number.isFinite(last) ? ran : ran - 1;
    return ran;
  }

  /** Asks the steps in flight (trainStepsAsync) to end after the one in progress: stopTraining. */
  stopSoon(): void {
    this.inFlight?.stop?.();
  }

  /** Drops the plans' gathering programs of `rows` (at the end of a fit), so that its copy can be freed. */
  releaseRows(rows: ResidentRows): void {
    this.settle();
    for (const p of this.plans.values()) {
      if (p.chunk?.from === rows) p.chunk = undefined;
      if (p.gatherFrom !== rows) continue;
      p.gatherFrom = undefined;
      p.compiledTrainGather = undefined;
    }
  }

  /**
   * Waits (blocking) for a step running off the thread to finish its arithmetic: before any read
   * of the buffers. Steps in flight end after the one in progress (the fit runs the rest after),
   * so a reader waits for one step, not a chunk of them.
   */
  settle(): void {
    if (!this.inFlight) return;
    this.inFlight.stop?.();
    this.inFlight.wait!();
  }

  /** Correct predictions among m rows of outputs a and targets y (the rule of correct()); with weights w, their sum. */
  correctRows(a: Float32Array, y: Float32Array, m: number, w: Float32Array | null = null): number {
    if (w) {
      return this.loss === LOSS.categoricalCrossEntropy ? argmaxMatchesWeighted(a, y, w, m, this.outputs) : thresholdMatchesWeighted(a, y, w, m, this.outputs);
    }
    return this.loss === LOSS.categoricalCrossEntropy ? argmaxMatches(a, y, m, this.outputs) : thresholdMatches(a, y, m, this.outputs);
  }

  /** The plan's training program, with or without the staged weights (as it was staged), built once each. */
  private trainOps(p: Plan): Program {
    return p.weighted ? (p.trainWeighted ??= trainProgram(this.describe(p))) : (p.train ??= trainProgram(this.describe(p)));
  }

  /** The plan's buffers and the network's shape, as program.ts builds programs from them. */
  describe(p: Plan): StepDesc {
    const o = this.spec.optimizer;
    const wOffsets: number[] = [], bOffsets: number[] = [];
    let w = 0, b = this.decayCount;
    for (const L of this.layers) {
      wOffsets.push(w);
      bOffsets.push(b);
      w += L.inp * L.out;
      b += L.out;
    }
    return {
      m: p.m, dims: [this.inputs, ...this.layers.map((L) => L.out)],
      acts: this.layers.map((L) => L.act), alphas: this.layers.map((L) => L.alpha), loss: this.loss, delta: this.delta,
      x: p.x, y: p.y, weights: p.weighted ? p.w : null, outs: p.acts, deltas: p.deltas,
      // the backup exists once optimizerState() has run (before any training step)
      params: this.params, grads: this.grads, backup: this.backup!, n: this.paramCount, wOffsets, bOffsets,
      optimizer: OPT[o.type], state1: this.state1, state2: this.state2, decayCount: this.decayCount,
    };
  }

  targets(y: TargetInput, rows: number): Matrix {
    return toTargets(y, rows, this.outputs, this.loss === LOSS.categoricalCrossEntropy, this.loss === LOSS.binaryCrossEntropy);
  }

  /**
   * Copies the batch's rows of X (normalized) and Y into the plan's staging buffers, and their
   * weights W (one per row of X), if given, for the loss.
   */
  stage(p: Plan, X: Matrix, Y: Matrix | null, start: number, order?: Uint32Array, W?: Float32Array | null): void {
    // a step running off the thread reads the staging buffers (Model settles before its readers too)
    this.settle();
    this.stageRows(p.x, X, this.inputs, start, p.m, order, this.spec.normalization);
    if (Y) this.stageRows(p.y, Y, this.outputs, start, p.m, order);
    p.weighted = !!W;
    if (W) {
      const d = p.w.data;
      for (let i = 0; i < p.m; i++) d[i] = W[order ? order[start + i] : start + i];
    }
  }

  /** stageRows (staging.ts) on this network's backend. */
  stageRows(dst: Buf, src: Matrix, cols: number, start: number, m: number, order?: Uint32Array, norm?: Normalization): void {
    stageRows(this.backend, dst, src, cols, start, m, order, norm);
  }

  /**
   * Number of correct predictions in the plan's output against its targets; with staged weights,
   * the sum of the correct rows' weights.
   */
  correct(p: Plan): number {
    const outs = this.outputs, a = p.acts[this.depth - 1].data, y = p.y.data;
    // one loop per rule: V8 compiled the two rules in one loop, the unused one included, into
    // code that boxed a number on every call (16 B per step on wasm)
    if (p.weighted) {
      const w = p.w.data;
      return this.loss === LOSS.categoricalCrossEntropy ? argmaxMatchesWeighted(a, y, w, p.m, outs) : thresholdMatchesWeighted(a, y, w, p.m, outs);
    }
    return this.loss === LOSS.categoricalCrossEntropy ? argmaxMatches(a, y, p.m, outs) : thresholdMatches(a, y, p.m, outs);
  }

  hasAccuracy(): boolean {
    return this.classifier;
  }

  /**
   * Outputs of the rows of X into `into` (rows, outputs); X's values are checked for NaN and
   * ±Infinity here, batch by batch, once staged. Batches of more than a few rows read weights
   * packed once (packed-forward.ts) where the backend packs them, packed again after any change of
   * params; with fusedSteps off, or once params was handed out (shareParams), the forward program.
   */
  predictInto(X: Matrix, into: Float32Array, batchSize: number, what: string): void {
    const rows = X.shape[0], outs = this.outputs;
    const packed = this.fusedSteps && !this.paramsShared ? this.packedForward : null;
    // rows in order and not normalized, on a backend without a gather kernel: one typed-array copy
    // (a memcpy), where stage's element loop keeps training steps free of allocations
    const copy = !this.spec.normalization && !this.backend.gatherRows, inp = this.inputs;
    for (let start = 0; start < rows; start += batchSize) {
      const p = this.plan(Math.min(batchSize, rows - start));
      if (copy) {
        this.settle(); // a step running off the thread reads the staging buffers
        p.x.data.set(X.data.subarray(start * inp, (start + p.m) * inp));
        p.weighted = false;
      } else {
        this.stage(p, X, null, start);
      }
      checkStagedFinite(this.backend.sumSquares(p.x, p.m * this.inputs), X, start, p.m, what);
      if (packed !== null && p.m > GEMV_ROWS) packed.run(p, this.paramsVersion);
      else this.forward(p);
      into.set(p.acts[this.depth - 1].data.subarray(0, p.m * outs), start * outs);
    }
  }
}
