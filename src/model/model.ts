// The public Model: a network (network.ts) with its spec, weights, training (fit.ts), evaluation
// and prediction. One kernel call per layer per direction, one for the loss, one for the update,
// or one call for the whole step where the backend compiles steps.
import type { Backend, Buf } from '../backends/backend.js';
import { classesOf, InputError, isBatchSource, toMatrix, type BatchSource, type Matrix, type MatrixInput, type TargetInput } from '../data.js';
import type { ModelSpec, OptimizerSpec } from '../spec.js';
import { evaluateNetwork, fit, TrainingError, type CheckpointSaver, type Evaluation, type FitClock, type FitControl, type FitOptions, type History } from './fit.js';
import { evaluateSource, fitSource } from './fit-source.js';
import { Network } from './network.js';
import { checkNotAllZero, checkSampleWeight, rowWeights, type ClassWeight } from './weights.js';

/** Options of `evaluate`. */
export interface EvaluateOptions {
  batchSize?: number;
  /** One weight per row: the loss is the weighted sum over the rows, the metrics weighted means. */
  sampleWeight?: ArrayLike<number>;
}
import { printSummary, type ModelSummary } from './summary.js';

/** How this runtime writes model files: set by the Node entry (src/index.ts); none in browsers. */
export interface ModelFileSaver {
  /** Fails, naming the path, when it cannot be written. */
  check(path: string): Promise<void>;
  save(model: Model, path: string): Promise<void>;
}

let fileSaver: ModelFileSaver | null = null;

/** Lets fit's checkpoints write files (called by the entries of runtimes with a file system). */
export function registerModelFileSaver(saver: ModelFileSaver): void {
  fileSaver = saver;
}

export class Model implements FitControl {
  readonly spec: ModelSpec;
  readonly backend: Backend;
  readonly paramCount: number;
  /** Set to true (from a callback, or a timer) to end `fit` after the current batch. */
  get stopTraining(): boolean {
    return this.stopping;
  }

  set stopTraining(value: boolean) {
    this.stopping = value;
    // batches off the thread run several per hand-off: the one in progress is the last
    if (value) this.net.stopSoon();
  }

  private stopping = false;
  private readonly net: Network;
  private readonly clock: FitClock = { every: 1 };

  /** True while a `fit` runs: a second fit, or a change of weights or optimizer state, is refused. */
  private training = false;

  constructor(spec: ModelSpec, backend: Backend) {
    this.net = new Network(spec, backend);
    this.spec = this.net.spec;
    this.backend = backend;
    this.paramCount = this.net.paramCount;
  }

  /**
   * All weights, then all biases, in one arena: the live buffer, which may be written. While a fit
   * trains a batch off the thread, reading this waits for that batch to finish; hold on to the
   * array only until the next await. predict cannot see writes through it, so a model that has
   * handed it out no longer predicts from weights packed once (it packs them on every call, as a
   * training step does); getParams and setParams keep that path.
   */
  get params(): Buf {
    this.net.settle();
    return this.net.shareParams();
  }

  /** Every parameter, laid out as `params` (all weights, then all biases, then normalization γ and β), a copy. */
  getParams(): Float32Array {
    this.net.settle();
    return this.net.params.data.slice();
  }

  /** Sets every parameter (paramCount finite values, laid out as getParams returns them). */
  setParams(values: ArrayLike<number>): void {
    this.refuseWhileTraining('setParams');
    this.net.setParams(values);
  }

  /** The gradients of the last step, laid out as `params` (the same wait applies). */
  get grads(): Buf {
    this.net.settle();
    return this.net.grads;
  }

  /**
   * Run each training step and each forward pass (predict, evaluate) as one backend call where
   * the backend can (native, wasm): the same program of kernels in the same order, so the same
   * bits; false runs the program kernel by kernel (src/backends/interpreter.ts).
   */
  get fusedSteps(): boolean {
    return this.net.fusedSteps;
  }

  set fusedSteps(on: boolean) {
    this.net.fusedSteps = on;
  }

  get inputs(): number {
    return this.net.inputs;
  }

  get outputs(): number {
    return this.net.outputs;
  }

  /**
   * Seeded initialization, computed in float64 on the host and stored as float32, so every backend
   * starts from the same bits: He normal (std √(2/in)) or Glorot uniform (±√(6/(in+out))); biases 0.
   */
  initialize(seed: number): void {
    this.refuseWhileTraining('initialize');
    this.net.initialize(seed);
  }

  /** Layer l's weights (in, out) and bias (out), copies. */
  getWeights(): { w: Float32Array; b: Float32Array }[] {
    this.net.settle();
    return this.net.getWeights();
  }

  /** Sets every layer's weights (in, out) and bias (out); checks shapes and finiteness. */
  setWeights(weights: { w: ArrayLike<number>; b: ArrayLike<number> }[]): void {
    this.refuseWhileTraining('setWeights');
    this.net.setWeights(weights);
  }

  /** Restarts the optimizer (step count and moment estimates). */
  resetOptimizer(): void {
    this.refuseWhileTraining('resetOptimizer');
    this.net.resetOptimizer();
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

  /**
   * Batch normalization's running means and variances (each such layer's mean, then its variance,
   * in layer order), a copy; empty without batch normalization. Saved in model files.
   */
  getRunningStats(): Float32Array {
    return this.net.getStats();
  }

  /** Sets what getRunningStats returns (variances ≥ 0, all finite). */
  setRunningStats(values: ArrayLike<number>): void {
    this.refuseWhileTraining('setRunningStats');
    this.net.setStats(values);
  }

  /**
   * Gradients of the mean loss over (x, y) at the current weights, without updating (for tests);
   * with weights as fit takes them, of the weighted loss sum over the rows. Batch normalization
   * uses the batch's statistics and dropout the mask of the next training step, as a training step
   * would; nothing (running statistics, the dropout step) moves.
   */
  gradients(x: MatrixInput, y: TargetInput, weights: { sampleWeight?: ArrayLike<number>; classWeight?: ClassWeight } = {}): { loss: number; grads: Float32Array } {
    this.refuseWhileTraining('gradients');
    const net = this.net;
    const X = toMatrix(x, 'inputs', net.inputs);
    const Y = net.targets(y, X.shape[0]);
    const W = rowWeights(this.spec, net.outputs, Y, checkSampleWeight(weights.sampleWeight, X.shape[0]), weights.classWeight);
    const p = net.plan(X.shape[0]);
    net.stage(p, X, Y, 0, undefined, W);
    const loss = net.gradients(p) / p.m;
    return { loss, grads: this.grads.data.slice() };
  }

  /**
   * Trains on (x, y) in mini-batches, or on the rows of a BatchSource (an async iterable of
   * `{ x, y }`, read once per epoch through a seeded shuffle buffer, its next batches read ahead).
   * Yields to the event loop between batches so that a long `fit` never blocks it for more than
   * `yieldEveryMs`.
   */
  async fit(x: MatrixInput, y: TargetInput, options?: FitOptions): Promise<History>;
  async fit(source: BatchSource, options?: FitOptions): Promise<History>;
  async fit(x: MatrixInput | BatchSource, y?: TargetInput | FitOptions, options: FitOptions = {}): Promise<History> {
    this.refuseWhileTraining('fit');
    this.training = true;
    try {
      const files = fileSaver;
      const saver: CheckpointSaver | null = files ? { check: (path) => files.check(path), save: (path) => files.save(this, path) } : null;
      if (isBatchSource(x)) {
        const o = (y ?? {}) as FitOptions;
        if (o.sampleWeight !== undefined || o.classWeight !== undefined) {
          throw new InputError(`${o.sampleWeight !== undefined ? 'sampleWeight' : 'classWeight'}: fitting a BatchSource takes no row weights (they need the rows in memory); fit(x, y, { sampleWeight, classWeight }) takes them`);
        }
        return await fitSource(this.net, this, this.clock, x, o, saver);
      }
      return await fit(this.net, this, this.clock, x, y as TargetInput, options, saver);
    } finally {
      this.training = false;
    }
  }

  /** evaluate(x, y) over the rows of a BatchSource, in one pass (ROC AUC needs the source's `rows`). */
  evaluate(source: BatchSource, batchSize?: number): Promise<Evaluation>;
  /**
   * Mean loss over (x, y), and for classifiers the accuracy, precision, recall and F1 (macro and
   * per class) and for a binary task the ROC AUC; for regression losses, MAE, RMSE and R²
   * (src/metrics.ts). The third argument is the batch size (default 256) or { batchSize,
   * sampleWeight }: with weights, the loss is Σ wᵢ·Lᵢ / rows and the metrics are weighted (Keras).
   */
  evaluate(x: MatrixInput, y: TargetInput, options?: number | EvaluateOptions): Evaluation;
  evaluate(x: MatrixInput | BatchSource, y?: TargetInput | number, options: number | EvaluateOptions = 256): Evaluation | Promise<Evaluation> {
    if (isBatchSource(x)) {
      const size = y ?? 256;
      if (!Number.isInteger(size) || (size as number) < 1) return Promise.reject(new InputError(`batchSize: must be a positive integer, got ${String(size)}`));
      return evaluateSource(this.net, x, size as number, undefined);
    }
    const o: EvaluateOptions = typeof options === 'number' ? { batchSize: options } : (options ?? {});
    const batchSize = o.batchSize ?? 256;
    const X = toMatrix(x, 'inputs', this.inputs);
    if (X.shape[0] === 0) throw new InputError('inputs: no rows to evaluate');
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize: must be a positive integer, got ${String(batchSize)}`);
    const W = checkNotAllZero(checkSampleWeight(o.sampleWeight, X.shape[0]), 'sampleWeight');
    this.net.settle(); // a batch training off the thread shares the buffers
    return evaluateNetwork(this.net, X, this.net.targets(y as TargetInput, X.shape[0]), batchSize, W);
  }

  /** Outputs (rows, outputs) for the rows of x: probabilities for classifiers, values otherwise. */
  predict(x: MatrixInput, batchSize = 256): Matrix {
    const X = toMatrix(x, 'inputs', this.inputs, 'staged');
    const rows = X.shape[0], outs = this.outputs;
    const result = new Float32Array(rows * outs);
    this.net.settle(); // a batch training off the thread shares the buffers
    this.net.predictInto(X, result, batchSize, 'inputs');
    return { data: result, shape: [rows, outs] };
  }

  /** Predicted class per row (argmax; for one sigmoid output, 1 when p ≥ 0.5). */
  predictClasses(x: MatrixInput, batchSize = 256): Int32Array {
    return classesOf(this.predict(x, batchSize));
  }

  /**
   * The layers as a table (name and activation, output shape, parameters; then the total), and the
   * same numbers as data. Prints the table with console.log unless `print` is false, or through
   * `print` when it is a function (one call with the whole table).
   */
  summary(options: { print?: boolean | ((text: string) => void) } = {}): ModelSummary {
    return printSummary(this.spec, options.print);
  }

  /** The optimizer as configured (with defaults filled in). */
  get optimizer(): OptimizerSpec {
    return this.spec.optimizer;
  }
}
