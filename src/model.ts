// The facade: owns the parameters and runs the layer-by-layer forward, backward and update loop
// on a backend. One kernel call per layer per direction, one for the loss, one for the update.
import { ACT, LOSS, OPT, type ActCode, type Backend, type Buf, type CompiledStep, type LossCode, type StepHyper } from './backends/backend.js';
import { InputError, toMatrix, toTargets, type Matrix, type MatrixInput, type TargetInput } from './data.js';
import { Random } from './random.js';
import { checkBatchSize, checkSpec, MAX_BUFFER_FLOATS, scheduledRate, type ModelSpec, type Normalization, type OptimizerSpec } from './spec.js';

export interface Metrics {
  loss: number;
  /** Classification accuracy (argmax for softmax, 0.5 threshold for sigmoid); absent for mse. */
  accuracy?: number;
}

export interface EpochLogs extends Metrics {
  epoch: number;
  valLoss?: number;
  valAccuracy?: number;
  learningRate: number;
  samplesPerSecond: number;
  seconds: number;
}

export interface BatchLogs {
  epoch: number;
  batch: number;
  batches: number;
  size: number;
  loss: number;
  /** Fraction of the batch classified correctly (absent for mse), for progress displays. */
  accuracy?: number;
}

export type Monitor = 'loss' | 'accuracy' | 'valLoss' | 'valAccuracy';

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  /** Shuffle the rows before every epoch (default true), seeded by `seed`. */
  shuffle?: boolean;
  /** Shuffling seed; defaults to the model's seed. */
  seed?: number;
  /** Hold out the last fraction of the rows (before shuffling) for validation. */
  validationSplit?: number;
  validationData?: [MatrixInput, TargetInput];
  earlyStopping?: { monitor?: Monitor; patience?: number; minDelta?: number; restoreBestWeights?: boolean };
  onBatchEnd?: (logs: BatchLogs) => void | Promise<void>;
  onEpochEnd?: (logs: EpochLogs) => void | Promise<void>;
  /** Longest time (ms) the event loop is kept busy before `fit` yields to it (default 10). */
  yieldEveryMs?: number;
}

export interface History {
  epochs: EpochLogs[];
  stoppedEarly: boolean;
  bestEpoch?: number;
}

export class TrainingError extends Error {
  override name = 'TrainingError';
}

/** Buffers and views for one batch size: created once, reused by every step of that size. */
interface Plan {
  m: number;
  acts: Buf[];
  deltas: Buf[];
  x: Buf;
  y: Buf;
  /** This plan's whole step in one backend call, where the backend compiles steps. */
  compiled?: CompiledStep;
}

/** Staging copies of at least this many floats go through the backend's gatherRows, if it has one. */
const GATHER_MIN = 1024;

/** The state of one epoch's batches, shared between `fit` and `trainBatches`. */
interface BatchRun {
  X: Matrix;
  Y: Matrix;
  order: Uint32Array;
  batchSize: number;
  lr: number;
  epoch: number;
  /** When to give the event loop its turn (performance.now() ms), and the slice length. */
  deadline: number;
  slice: number;
  lossSum: number;
  correct: number;
  lastLoss: number;
  lastCorrect: number;
}

interface LayerInfo {
  inp: number;
  out: number;
  act: ActCode;
  alpha: number;
  w: Buf;
  b: Buf;
  dw: Buf;
  db: Buf;
}

export class Model {
  readonly spec: ModelSpec;
  readonly backend: Backend;
  /** All weights, then all biases, in one arena. */
  readonly params: Buf;
  readonly grads: Buf;
  readonly paramCount: number;
  /** Set to true from a callback to end `fit` after the current batch. */
  stopTraining = false;
  /**
   * Run each training step as one backend call where the backend can (native, wasm): the same
   * kernels in the same order, so the same bits; false calls them one by one from here.
   */
  fusedSteps = true;

  /** True while a `fit` runs: a second fit, or a change of weights or optimizer state, is refused. */
  private training = false;
  private readonly layers: LayerInfo[];
  private readonly decayCount: number;
  private readonly loss: LossCode;
  private state1: Buf | null = null;
  private state2: Buf | null = null;
  private backup: Buf | null = null;
  private step = 0;
  private clockEvery = 1;
  private readonly hyper: StepHyper;
  /**
   * The last step's summed loss. An array, not a return value: a returned number is a new heap
   * number each step wherever V8 does not inline the call.
   */
  private readonly stepLoss = new Float64Array(1);
  private capacity = 0;
  private plans = new Map<number, Plan>();
  private actStore: Buf[] = [];
  private deltaStore: Buf[] = [];
  private xStore: Buf | null = null;
  private yStore: Buf | null = null;

  constructor(spec: ModelSpec, backend: Backend) {
    this.spec = checkSpec(spec);
    this.backend = backend;
    this.loss = LOSS[this.spec.loss];
    const dims = [this.spec.inputs, ...this.spec.layers.map((l) => l.units)];
    let weights = 0, biases = 0;
    for (let l = 0; l < this.spec.layers.length; l++) {
      weights += dims[l] * dims[l + 1];
      biases += dims[l + 1];
    }
    this.decayCount = weights;
    this.paramCount = weights + biases;
    this.params = backend.alloc(this.paramCount);
    this.grads = backend.alloc(this.paramCount);
    this.layers = [];
    let wOff = 0, bOff = weights;
    for (let l = 0; l < this.spec.layers.length; l++) {
      const inp = dims[l], out = dims[l + 1], s = this.spec.layers[l];
      this.layers.push({
        inp, out, act: ACT[s.activation], alpha: s.alpha ?? 0,
        w: this.params.view(wOff, inp * out), b: this.params.view(bOff, out),
        dw: this.grads.view(wOff, inp * out), db: this.grads.view(bOff, out),
      });
      wOff += inp * out;
      bOff += out;
    }
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
    this.refuseWhileTraining('initialize');
    const rng = new Random(seed);
    const p = this.params.data;
    p.fill(0);
    let off = 0;
    for (let l = 0; l < this.layers.length; l++) {
      const { inp, out } = this.layers[l];
      const he = this.spec.layers[l].init === 'he';
      const scale = he ? Math.sqrt(2 / inp) : Math.sqrt(6 / (inp + out));
      for (let i = 0; i < inp * out; i++) p[off + i] = he ? scale * rng.normal() : scale * (2 * rng.uniform() - 1);
      off += inp * out;
    }
    this.resetOptimizer();
  }

  /** Layer l's weights (in, out) and bias (out), copies. */
  getWeights(): { w: Float32Array; b: Float32Array }[] {
    return this.layers.map((l) => ({ w: l.w.data.slice(), b: l.b.data.slice() }));
  }

  /** Sets every layer's weights (in, out) and bias (out); checks shapes and finiteness. */
  setWeights(weights: { w: ArrayLike<number>; b: ArrayLike<number> }[]): void {
    this.refuseWhileTraining('setWeights');
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
  }

  /** Restarts the optimizer (step count and moment estimates). */
  resetOptimizer(): void {
    this.refuseWhileTraining('resetOptimizer');
    this.step = 0;
    this.state1?.data.fill(0);
    this.state2?.data.fill(0);
  }

  /**
   * A fit updates the weights and the optimizer state between its awaits: another fit, or a call
   * that replaces either, would interleave with it silently. Reading (predict, evaluate, saving)
   * between its batches is fine.
   */
  private refuseWhileTraining(what: string): void {
    if (this.training) {
      throw new TrainingError(`${what}: this model is training (a fit has not finished); await that fit first, `
        + 'or set model.stopTraining = true to end it after the current batch');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Buffers

  /** The plan for batches of m rows; buffers grow (and plans are rebuilt) only for a larger m. */
  private plan(m: number): Plan {
    const cached = this.plans.get(m);
    if (cached) return cached;
    if (m > this.capacity) {
      checkBatchSize(this.spec, m);
      // doubling (for fewer regrowths) only as far as a buffer may go
      let widest = this.inputs;
      for (const l of this.layers) widest = Math.max(widest, l.out);
      this.capacity = Math.max(m, Math.min(this.capacity * 2, Math.floor(MAX_BUFFER_FLOATS / widest)));
      this.plans.clear();
      this.actStore = this.layers.map((l) => this.backend.alloc(this.capacity * l.out));
      this.deltaStore = this.layers.map((l) => this.backend.alloc(this.capacity * l.out));
      this.xStore = this.backend.alloc(this.capacity * this.inputs);
      this.yStore = this.backend.alloc(this.capacity * this.outputs);
    }
    const p: Plan = {
      m,
      acts: this.layers.map((l, i) => this.actStore[i].view(0, m * l.out)),
      deltas: this.layers.map((l, i) => this.deltaStore[i].view(0, m * l.out)),
      x: this.xStore!.view(0, m * this.inputs),
      y: this.yStore!.view(0, m * this.outputs),
    };
    this.plans.set(m, p);
    return p;
  }

  private optimizerState(): void {
    const o = this.spec.optimizer;
    if (o.type !== 'sgd' && !this.state1) this.state1 = this.backend.alloc(this.paramCount);
    if ((o.type === 'adam' || o.type === 'adamw') && !this.state2) this.state2 = this.backend.alloc(this.paramCount);
    if (!this.backup) this.backup = this.backend.alloc(this.paramCount);
  }

  // ---------------------------------------------------------------------------------------------
  // The loop

  /** Forward pass of the rows in plan.x; the output is plan.acts[last]. */
  private forward(p: Plan): void {
    let input = p.x;
    for (let l = 0; l < this.layers.length; l++) {
      const L = this.layers[l];
      this.backend.denseForward(p.acts[l], input, L.w, L.b, p.m, L.inp, L.out, L.act, L.alpha);
      input = p.acts[l];
    }
  }

  /** Loss summed over the batch; fills the output delta. */
  private lossDelta(p: Plan): number {
    const last = this.layers[this.layers.length - 1];
    return this.backend.lossDelta(p.deltas[this.layers.length - 1], p.acts[this.layers.length - 1], p.y,
      p.m, last.out, this.loss, last.act, last.alpha);
  }

  /** Gradients of the mean loss into the grads arena. */
  private backward(p: Plan): void {
    const scale = 1 / p.m;
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const L = this.layers[l];
      const x = l === 0 ? p.x : p.acts[l - 1];
      const dx = l === 0 ? null : p.deltas[l - 1];
      // the first layer has no previous activation (dx is null): pass linear, which every backend
      // accepts, rather than this layer's own (softmax is not a valid previous activation)
      const prevAct = l === 0 ? ACT.linear : this.layers[l - 1].act, prevAlpha = l === 0 ? 0 : this.layers[l - 1].alpha;
      this.backend.denseBackward(L.dw, L.db, dx, p.deltas[l], x, L.w, p.m, L.inp, L.out, scale, prevAct, prevAlpha);
    }
  }

  /** One optimizer update from the grads arena. */
  private update(lr: number): void {
    const o = this.spec.optimizer, b = this.backend, n = this.paramCount, wd = o.weightDecay ?? 0;
    let gradScale = 1;
    if (o.clipNorm !== undefined) {
      const norm = Math.sqrt(b.sumSquares(this.grads, n));
      if (norm > o.clipNorm) gradScale = o.clipNorm / norm;
    }
    this.step++;
    switch (o.type) {
      case 'sgd':
        b.sgdStep(this.params, this.grads, n, lr, gradScale, wd, this.decayCount);
        break;
      case 'momentum':
        b.momentumStep(this.params, this.grads, this.state1!, n, lr, gradScale, o.momentum ?? 0.9, o.nesterov ?? false, wd, this.decayCount);
        break;
      default: {
        const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999;
        b.adamStep(this.params, this.grads, this.state1!, this.state2!, n, lr, gradScale, b1, b2, o.epsilon ?? 1e-8,
          1 - Math.pow(b1, this.step), 1 - Math.pow(b2, this.step), wd, o.type === 'adamw', this.decayCount);
      }
    }
  }

  /**
   * One training step on a batch already staged in plan.x / plan.y: forward, loss, backward,
   * update. Leaves the summed loss (before the update) in stepLoss[0]. A backend that compiles
   * steps runs the same sequence in one call.
   */
  private trainStep(p: Plan, lr: number): void {
    if (this.fusedSteps && this.backend.compileStep) {
      const compiled = p.compiled ?? (p.compiled = this.compileStep(p));
      const h = this.hyper, o = this.spec.optimizer;
      h.lr = lr;
      if (o.type === 'adam' || o.type === 'adamw') {
        h.bc1 = 1 - Math.pow(h.beta1, this.step + 1);
        h.bc2 = 1 - Math.pow(h.beta2, this.step + 1);
      }
      compiled.run(h);
      const loss = this.stepLoss[0] = compiled.loss[0];
      if (Number.isFinite(loss)) this.step++;
      return;
    }
    this.forward(p);
    const loss = this.stepLoss[0] = this.lossDelta(p);
    if (!Number.isFinite(loss)) return;
    this.backward(p);
    this.backup!.data.set(this.params.data);
    this.update(lr);
  }

  private compileStep(p: Plan): CompiledStep {
    const o = this.spec.optimizer;
    const wOffsets: number[] = [], bOffsets: number[] = [];
    let w = 0, b = this.decayCount;
    for (const L of this.layers) {
      wOffsets.push(w);
      bOffsets.push(b);
      w += L.inp * L.out;
      b += L.out;
    }
    return this.backend.compileStep!({
      m: p.m, dims: [this.inputs, ...this.layers.map((L) => L.out)],
      acts: this.layers.map((L) => L.act), alphas: this.layers.map((L) => L.alpha), loss: this.loss,
      x: p.x, y: p.y, outs: p.acts, deltas: p.deltas,
      params: this.params, grads: this.grads, backup: this.backup!, n: this.paramCount, wOffsets, bOffsets,
      optimizer: OPT[o.type], state1: this.state1, state2: this.state2, decayCount: this.decayCount,
    });
  }

  /** Gradients of the mean loss over (x, y) at the current weights, without updating (for tests). */
  gradients(x: MatrixInput, y: TargetInput): { loss: number; grads: Float32Array } {
    const X = toMatrix(x, 'inputs', this.inputs);
    const Y = this.targets(y, X.shape[0]);
    const p = this.plan(X.shape[0]);
    this.stage(p, X, Y, 0);
    this.forward(p);
    const loss = this.lossDelta(p) / p.m;
    this.backward(p);
    return { loss, grads: this.grads.data.slice() };
  }

  private targets(y: TargetInput, rows: number): Matrix {
    return toTargets(y, rows, this.outputs, this.loss === LOSS.categoricalCrossEntropy, this.loss === LOSS.binaryCrossEntropy);
  }

  /** Copies the batch's rows of X (normalized) and Y into the plan's staging buffers. */
  private stage(p: Plan, X: Matrix, Y: Matrix | null, start: number, order?: Uint32Array): void {
    this.stageRows(p.x, X, this.inputs, start, p.m, order, this.spec.normalization);
    if (Y) this.stageRows(p.y, Y, this.outputs, start, p.m, order);
  }

  /** Rows order[start + i] (start + i without an order), i < m, of src into dst; normalized if asked. */
  private stageRows(dst: Buf, src: Matrix, cols: number, start: number, m: number, order?: Uint32Array,
    norm?: Normalization): void {
    // A backend's gather is a call of a few hundred nanoseconds: worth it for real batches, not
    // for tiny-xor's 4 × 2 (a whole compiled step there is about 150 ns).
    const gather = this.backend.gatherRows;
    if (gather && !norm && m * cols >= GATHER_MIN) {
      gather.call(this.backend, dst, src.data, order ?? null, start, m, cols);
      return;
    }
    const d = dst.data, s = src.data;
    for (let i = 0; i < m; i++) {
      const from = (order ? order[start + i] : start + i) * cols, to = i * cols;
      if (norm) {
        for (let j = 0; j < cols; j++) d[to + j] = (s[from + j] - norm.mean[j]) / norm.std[j];
      } else {
        for (let j = 0; j < cols; j++) d[to + j] = s[from + j];
      }
    }
  }

  /** Number of correct predictions in the plan's output against its targets. */
  private correct(p: Plan): number {
    const outs = this.outputs, a = p.acts[this.layers.length - 1].data, y = p.y.data;
    // one loop per rule: V8 compiled the two rules in one loop, the unused one included, into
    // code that boxed a number on every call (16 B per step on wasm)
    return this.loss === LOSS.categoricalCrossEntropy ? argmaxMatches(a, y, p.m, outs) : thresholdMatches(a, y, p.m, outs);
  }

  private hasAccuracy(): boolean {
    return this.loss !== LOSS.mse;
  }

  /**
   * Trains on (x, y) in mini-batches. Yields to the event loop between batches so that a long
   * `fit` never blocks it for more than `yieldEveryMs`.
   */
  async fit(x: MatrixInput, y: TargetInput, options: FitOptions = {}): Promise<History> {
    this.refuseWhileTraining('fit');
    this.training = true;
    try {
      return await this.train(x, y, options);
    } finally {
      this.training = false;
    }
  }

  private async train(x: MatrixInput, y: TargetInput, options: FitOptions): Promise<History> {
    const epochs = options.epochs ?? 10, batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(epochs) || epochs < 1) throw new InputError(`epochs: must be a positive integer, got ${String(epochs)}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize: must be a positive integer, got ${String(batchSize)}`);
    const split = options.validationSplit ?? 0;
    if (!(split >= 0 && split < 1)) throw new InputError(`validationSplit: must be in [0, 1), got ${String(split)}`);
    let X = toMatrix(x, 'inputs', this.inputs);
    let Y = this.targets(y, X.shape[0]);
    let val: [Matrix, Matrix] | null = null;
    if (options.validationData) {
      const vx = toMatrix(options.validationData[0], 'validation inputs', this.inputs);
      val = [vx, this.targets(options.validationData[1], vx.shape[0])];
    } else if (split > 0) {
      const rows = X.shape[0], held = Math.floor(rows * split), keep = rows - held;
      if (held < 1 || keep < 1) throw new InputError(`validationSplit: ${split} of ${rows} rows leaves an empty training or validation set`);
      val = [slice(X, keep, rows), slice(Y, keep, rows)];
      X = slice(X, 0, keep);
      Y = slice(Y, 0, keep);
    }
    const rows = X.shape[0];
    if (rows === 0) throw new InputError('inputs: no rows to train on');

    const es = options.earlyStopping;
    const monitor: Monitor = es?.monitor ?? (val ? 'valLoss' : 'loss');
    if ((monitor === 'valLoss' || monitor === 'valAccuracy') && !val) {
      throw new InputError(`earlyStopping: monitor '${monitor}' needs validationData or validationSplit`);
    }
    if ((monitor === 'accuracy' || monitor === 'valAccuracy') && !this.hasAccuracy()) {
      throw new InputError(`earlyStopping: monitor '${monitor}' needs a classification loss`);
    }
    const higherIsBetter = monitor === 'accuracy' || monitor === 'valAccuracy';
    const patience = es?.patience ?? 0, minDelta = es?.minDelta ?? 0;
    let best = higherIsBetter ? -Infinity : Infinity, bestEpoch = -1, wait = 0;
    const bestWeights = es?.restoreBestWeights ? new Float32Array(this.paramCount) : null;

    this.optimizerState();
    const order = new Uint32Array(rows);
    for (let i = 0; i < rows; i++) order[i] = i;
    const rng = new Random(options.seed ?? this.spec.seed ?? 0);
    const shuffle = options.shuffle ?? true;
    const yieldEvery = options.yieldEveryMs ?? 10;
    const history: History = { epochs: [], stoppedEarly: false };
    const batches = Math.ceil(rows / batchSize);
    this.stopTraining = false;
    let lastYield = now();

    for (let epoch = 0; epoch < epochs && !this.stopTraining; epoch++) {
      const lr = scheduledRate(this.spec.optimizer, epoch, epochs);
      if (shuffle) {
        for (let i = rows - 1; i > 0; i--) {
          const j = rng.int(i + 1), t = order[i];
          order[i] = order[j];
          order[j] = t;
        }
      }
      const t0 = now();
      const run: BatchRun = { X, Y, order, batchSize, lr, epoch, deadline: lastYield + yieldEvery, slice: yieldEvery, lossSum: 0, correct: 0, lastLoss: 0, lastCorrect: 0 };
      for (let bi = 0; bi < batches;) {
        // With a batch callback, one batch per call (the callback may be async); else as many as
        // fit in the time slice.
        const next = this.trainBatches(run, bi, options.onBatchEnd ? bi + 1 : batches);
        if (options.onBatchEnd) {
          const m = Math.min(batchSize, rows - bi * batchSize);
          const logs: BatchLogs = { epoch: epoch + 1, batch: bi + 1, batches, size: m, loss: run.lastLoss / m };
          if (this.hasAccuracy()) logs.accuracy = run.lastCorrect / m;
          await options.onBatchEnd(logs);
        }
        bi = next;
        if (this.stopTraining) break;
        if (now() >= run.deadline) {
          await yieldToEventLoop();
          lastYield = now();
          run.deadline = lastYield + yieldEvery;
        }
      }
      const lossSum = run.lossSum, correct = run.correct;
      if (!Number.isFinite(this.backend.sumSquares(this.params, this.paramCount))) {
        this.params.data.set(this.backup!.data);
        throw new TrainingError(`training diverged: the weights became non-finite at epoch ${epoch + 1}, batch ${batches}; the weights from before the last update were restored`);
      }
      const seconds = (now() - t0) / 1000;
      const logs: EpochLogs = {
        epoch: epoch + 1, loss: lossSum / rows, learningRate: lr,
        samplesPerSecond: rows / Math.max(seconds, 1e-9), seconds,
      };
      if (this.hasAccuracy()) logs.accuracy = correct / rows;
      if (val) {
        const vm = this.measure(val[0], val[1], batchSize);
        logs.valLoss = vm.loss;
        if (vm.accuracy !== undefined) logs.valAccuracy = vm.accuracy;
      }
      history.epochs.push(logs);
      if (options.onEpochEnd) await options.onEpochEnd(logs);

      if (es) {
        const value = logs[monitor]!;
        const improved = higherIsBetter ? value > best + minDelta : value < best - minDelta;
        if (improved) {
          best = value;
          bestEpoch = epoch + 1;
          wait = 0;
          bestWeights?.set(this.params.data);
        } else if (++wait > patience) {
          history.stoppedEarly = true;
          break;
        }
      }
      if (now() - lastYield >= yieldEvery) {
        await yieldToEventLoop();
        lastYield = now();
      }
    }
    if (bestWeights && bestEpoch > 0) {
      this.params.data.set(bestWeights);
      history.bestEpoch = bestEpoch;
    } else if (bestEpoch > 0) {
      history.bestEpoch = bestEpoch;
    }
    return history;
  }

  /**
   * Trains batches [from, to) of an epoch, synchronously, stopping early once the time slice is
   * used up; returns the next batch. Kept out of the async `fit` so that the per-step numbers live
   * in registers, not in a generator's heap-allocated context: a step allocates nothing.
   */
  private trainBatches(run: BatchRun, from: number, to: number): number {
    const rows = run.X.shape[0];
    let lossSum = 0, correct = 0, bi = from, sinceClock = 0, lastClock = now();
    while (bi < to) {
      const start = bi * run.batchSize, m = Math.min(run.batchSize, rows - start);
      const p = this.plan(m);
      this.stage(p, run.X, run.Y, start, run.order);
      this.trainStep(p, run.lr);
      const loss = this.stepLoss[0];
      if (!Number.isFinite(loss)) {
        this.params.data.set(this.backup!.data);
        throw new TrainingError(`training diverged: the loss became ${loss} at epoch ${run.epoch + 1}, batch ${bi + 1}; `
          + 'the weights from before the last update were restored (try a lower learning rate or clipNorm)');
      }
      const c = this.hasAccuracy() ? this.correct(p) : 0;
      lossSum += loss;
      correct += c;
      run.lastLoss = loss;
      run.lastCorrect = c;
      bi++;
      if (++sinceClock >= this.clockEvery) {
        const t = now();
        // read the clock about four times per slice: often enough not to overshoot it, rarely
        // enough that tiny steps do not pay for it
        const perBatch = (t - lastClock) / sinceClock;
        this.clockEvery = Math.min(1024, Math.max(1, Math.floor(run.slice / 4 / Math.max(perBatch, 1e-6))));
        if (t >= run.deadline) break;
        lastClock = t;
        sinceClock = 0;
      }
    }
    run.lossSum += lossSum;
    run.correct += correct;
    return bi;
  }

  /** Mean loss and accuracy over (x, y). */
  evaluate(x: MatrixInput, y: TargetInput, batchSize = 256): Metrics {
    const X = toMatrix(x, 'inputs', this.inputs);
    if (X.shape[0] === 0) throw new InputError('inputs: no rows to evaluate');
    return this.measure(X, this.targets(y, X.shape[0]), batchSize);
  }

  private measure(X: Matrix, Y: Matrix, batchSize: number): Metrics {
    const rows = X.shape[0];
    let loss = 0, correct = 0;
    for (let start = 0; start < rows; start += batchSize) {
      const p = this.plan(Math.min(batchSize, rows - start));
      this.stage(p, X, Y, start);
      this.forward(p);
      loss += this.lossDelta(p);
      if (this.hasAccuracy()) correct += this.correct(p);
    }
    const m: Metrics = { loss: loss / rows };
    if (this.hasAccuracy()) m.accuracy = correct / rows;
    return m;
  }

  /** Outputs (rows, outputs) for the rows of x: probabilities for classifiers, values otherwise. */
  predict(x: MatrixInput, batchSize = 256): Matrix {
    const X = toMatrix(x, 'inputs', this.inputs);
    const rows = X.shape[0], outs = this.outputs;
    const result = new Float32Array(rows * outs);
    for (let start = 0; start < rows; start += batchSize) {
      const p = this.plan(Math.min(batchSize, rows - start));
      this.stage(p, X, null, start);
      this.forward(p);
      result.set(p.acts[this.layers.length - 1].data.subarray(0, p.m * outs), start * outs);
    }
    return { data: result, shape: [rows, outs] };
  }

  /** Predicted class per row (argmax; for one sigmoid output, 1 when p ≥ 0.5). */
  predictClasses(x: MatrixInput, batchSize = 256): Int32Array {
    const { data, shape: [rows, outs] } = this.predict(x, batchSize);
    const classes = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      if (outs === 1) {
        classes[i] = data[i] >= 0.5 ? 1 : 0;
        continue;
      }
      let best = 0;
      for (let j = 1; j < outs; j++) if (data[i * outs + j] > data[i * outs + best]) best = j;
      classes[i] = best;
    }
    return classes;
  }

  /** The optimizer as configured (with defaults filled in). */
  get optimizer(): OptimizerSpec {
    return this.spec.optimizer;
  }
}

/** Rows (of m) where the largest output and the largest target are in the same column. */
function argmaxMatches(a: Float32Array, y: Float32Array, m: number, outs: number): number {
  let c = 0;
  for (let i = 0; i < m; i++) {
    let best = 0, target = 0;
    for (let j = 1; j < outs; j++) {
      if (a[i * outs + j] > a[i * outs + best]) best = j;
      if (y[i * outs + j] > y[i * outs + target]) target = j;
    }
    if (best === target) c++;
  }
  return c;
}

/** Rows (of m) where every output is on the same side of 0.5 as its target. */
function thresholdMatches(a: Float32Array, y: Float32Array, m: number, outs: number): number {
  let c = 0;
  for (let i = 0; i < m; i++) {
    let all = true;
    for (let j = 0; j < outs; j++) if ((a[i * outs + j] >= 0.5) !== (y[i * outs + j] >= 0.5)) all = false;
    if (all) c++;
  }
  return c;
}

function slice(m: Matrix, from: number, to: number): Matrix {
  const c = m.shape[1];
  return { data: m.data.subarray(from * c, to * c), shape: [to - from, c] };
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Lets timers and I/O run: setImmediate where it exists (Node, Bun, Deno), else a macrotask. */
function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (cb: () => void) => void };
  return new Promise((resolve) => (g.setImmediate ? g.setImmediate(resolve) : setTimeout(resolve, 0)));
}
