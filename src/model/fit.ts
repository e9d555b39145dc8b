// The fit loop: epochs, shuffling, validation, early stopping, divergence checks and yielding to
// the event loop, over a Network's training steps.
import { InputError, toMatrix, type Matrix, type MatrixInput, type TargetInput } from '../data.js';
import { Random } from '../random.js';
import { MetricAccumulator, type ClassificationMetrics, type PerClassMetrics, type RegressionMetrics } from '../metrics.js';
import { scheduledRate } from '../spec.js';
import type { Metrics, Network } from './network.js';
import { checkNotAllZero, checkSampleWeight, rowWeights, weightSum, type ClassWeight } from './weights.js';

export type { Metrics } from './network.js';

/**
 * What `evaluate` returns: the loss, and for classifiers the accuracy, precision, recall, F1
 * (macro and per class) and, for a binary task, the ROC AUC; for mse, MAE, RMSE and R². See
 * src/metrics.ts for the exact definitions (scikit-learn's).
 */
export interface Evaluation extends Metrics, Partial<Omit<ClassificationMetrics, 'perClass'>>, Partial<RegressionMetrics> {
  perClass?: PerClassMetrics;
}

export interface EpochLogs extends Evaluation {
  epoch: number;
  valLoss?: number;
  valAccuracy?: number;
  valPrecision?: number;
  valRecall?: number;
  valF1?: number;
  valPerClass?: PerClassMetrics;
  valAuc?: number;
  valMae?: number;
  valRmse?: number;
  valR2?: number;
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
  /** Validation rows and targets, and optionally their weights (one per row). */
  validationData?: [MatrixInput, TargetInput] | [MatrixInput, TargetInput, ArrayLike<number>];
  /**
   * One weight per row: its loss, gradient and metrics count that much (Keras's sample_weight:
   * the batch's weighted loss sum over the batch size). With validationSplit, the held-out rows
   * keep their weights for the validation metrics.
   */
  sampleWeight?: ArrayLike<number>;
  /**
   * A weight per class for the training rows (keys: class indices or the model's class names;
   * classes left out weigh 1), or 'balanced': n_samples / (n_classes · count_c) over the training
   * rows. Multiplies sampleWeight when both are given. Classification losses only.
   */
  classWeight?: ClassWeight;
  earlyStopping?: { monitor?: Monitor; patience?: number; minDelta?: number; restoreBestWeights?: boolean };
  onBatchEnd?: (logs: BatchLogs) => void | Promise<void>;
  onEpochEnd?: (logs: EpochLogs) => void | Promise<void>;
  /**
   * Save the model (model-file format, written atomically) after every epoch, or with
   * `saveBestOnly` only when `monitor` improves. Needs a runtime that can write files (the Node
   * entry); elsewhere fit throws, and onEpochEnd with modelToBytes does the job.
   */
  checkpoint?: CheckpointOptions;
  /** Longest time (ms) the event loop is kept busy before `fit` yields to it (default 10). */
  yieldEveryMs?: number;
}

export interface CheckpointOptions {
  /** The model file to write (replaced atomically at every save). */
  path: string;
  /** What `saveBestOnly` watches (default valLoss with validation data, else loss); lower loss, higher accuracy is better. */
  monitor?: Monitor;
  /** Save only in the epochs where `monitor` improves on its best so far (default false: every epoch). */
  saveBestOnly?: boolean;
}

/** How a fit saves its model to a file: given by the runtime's entry (Node), absent in browsers. */
export interface CheckpointSaver {
  /** Fails (naming the path) when the file cannot be written, before any training. */
  check(path: string): Promise<void>;
  save(path: string): Promise<void>;
}

export interface History {
  epochs: EpochLogs[];
  stoppedEarly: boolean;
  bestEpoch?: number;
}

export class TrainingError extends Error {
  override name = 'TrainingError';
}

/** What a fit reads on its Model between batches. */
export interface FitControl {
  /** Set to true (from a callback) to end the fit after the current batch. */
  stopTraining: boolean;
}

/** Steps between reads of the clock, adapted to the step time; kept from one fit to the next. */
export interface FitClock {
  every: number;
  /**
   * The training metrics' accumulator, also kept from one fit to the next: optimized code holds
   * the objects it has seen weakly, and a new accumulator per fit would send the batch loop back
   * to slower code (that boxes numbers) whenever the last one is collected.
   */
  metrics?: MetricAccumulator;
}

/** The state of one epoch's batches, shared between `fit` and `trainBatches`. */
interface BatchRun {
  X: Matrix;
  Y: Matrix;
  /** The rows' weights, or null. */
  W: Float32Array | null;
  order: Uint32Array;
  batchSize: number;
  epoch: number;
  /** When to give the event loop its turn (performance.now() ms), and the slice length. */
  deadline: number;
  slice: number;
  lossSum: number;
  correct: number;
  lastLoss: number;
  lastCorrect: number;
}

/**
 * Trains `net` on (x, y) in mini-batches. Yields to the event loop between batches so that a long
 * fit never blocks it for more than `yieldEveryMs`; ends after the current batch once
 * `control.stopTraining` is set (by a callback).
 */
export async function fit(net: Network, control: FitControl, clock: FitClock, x: MatrixInput, y: TargetInput,
options: FitOptions, saver: CheckpointSaver | null = null): Promise<History> {
  const epochs = options.epochs ?? 10, batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(epochs) || epochs < 1) throw new InputError(`epochs: must be a positive integer, got ${String(epochs)}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize: must be a positive integer, got ${String(batchSize)}`);
  const split = options.validationSplit ?? 0;
  if (!(split >= 0 && split < 1)) throw new InputError(`validationSplit: must be in [0, 1), got ${String(split)}`);
  let X = toMatrix(x, 'inputs', net.inputs);
  let Y = net.targets(y, X.shape[0]);
  let sw = checkSampleWeight(options.sampleWeight, X.shape[0]);
  let val: [Matrix, Matrix] | null = null, valW: Float32Array | null = null;
  if (options.validationData) {
    const vx = toMatrix(options.validationData[0], 'validation inputs', net.inputs);
    val = [vx, net.targets(options.validationData[1], vx.shape[0])];
    valW = checkSampleWeight(options.validationData[2], vx.shape[0], 'validationData[2] (the validation sample weights)');
  } else if (split > 0) {
    const rows = X.shape[0], held = Math.floor(rows * split), keep = rows - held;
    if (held < 1 || keep < 1) throw new InputError(`validationSplit: ${split} of ${rows} rows leaves an empty training or validation set`);
    val = [slice(X, keep, rows), slice(Y, keep, rows)];
    valW = sw && sw.subarray(keep);
    X = slice(X, 0, keep);
    Y = slice(Y, 0, keep);
    sw = sw && sw.subarray(0, keep);
  }
  const rows = X.shape[0];
  if (rows === 0) throw new InputError('inputs: no rows to train on');
  const W = rowWeights(net.spec, net.outputs, Y, sw, options.classWeight);
  checkNotAllZero(valW, options.validationData ? 'validationData[2] (the validation sample weights)' : 'sampleWeight of the validation rows');
  // what accuracy divides by: the rows, or their weights (a weighted mean, as Keras's weighted metrics)
  const weightTotal = weightSum(W, rows);

  const es = options.earlyStopping;
  const monitor = checkMonitor('earlyStopping', es?.monitor, val !== null, net.hasAccuracy());
  const higherIsBetter = monitor === 'accuracy' || monitor === 'valAccuracy';
  const ck = options.checkpoint;
  let ckMonitor: Monitor = 'loss', ckBest = NaN;
  if (ck !== undefined) {
    if (ck === null || typeof ck !== 'object') throw new InputError('checkpoint: must be an object { path, monitor?, saveBestOnly? }');
    if (typeof ck.path !== 'string' || ck.path === '') throw new InputError(`checkpoint.path: must be a non-empty file path, got ${JSON.stringify(ck.path)}`);
    if (ck.saveBestOnly !== undefined && typeof ck.saveBestOnly !== 'boolean') {
      throw new InputError(`checkpoint.saveBestOnly: must be true or false, got ${JSON.stringify(ck.saveBestOnly)}`);
    }
    ckMonitor = checkMonitor('checkpoint', ck.monitor, val !== null, net.hasAccuracy());
    if (!saver) {
      throw new InputError('checkpoint: this runtime has no file system deltaprop can write to (only the Node entry saves files); '
        + 'save the model from onEpochEnd with modelToBytes(model) instead');
    }
    await saver.check(ck.path);
  }
  const patience = es?.patience ?? 0, minDelta = es?.minDelta ?? 0;
  let best = higherIsBetter ? -Infinity : Infinity, bestEpoch = -1, wait = 0;
  const bestWeights = es?.restoreBestWeights ? new Float32Array(net.paramCount) : null;

  net.optimizerState();
  const order = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) order[i] = i;
  const rng = new Random(options.seed ?? net.spec.seed ?? 0);
  const shuffle = options.shuffle ?? true;
  const yieldEvery = options.yieldEveryMs ?? 10;
  const history: History = { epochs: [], stoppedEarly: false };
  const batches = Math.ceil(rows / batchSize);
  const kept = clock.metrics;
  const trainMetrics = kept && kept.fits(net.hasAccuracy() ? 'classification' : 'regression', net.outputs, rows) ? kept : accumulatorFor(net, rows);
  clock.metrics = trainMetrics;
  control.stopTraining = false;
  let lastYield = now();

  for (let epoch = 0; epoch < epochs && !control.stopTraining; epoch++) {
    const lr = scheduledRate(net.spec.optimizer, epoch, epochs);
    if (shuffle) {
      for (let i = rows - 1; i > 0; i--) {
        const j = rng.int(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }
    const t0 = now();
    trainMetrics.reset();
    const run: BatchRun = {
      X, Y, W, order, batchSize, epoch, deadline: lastYield + yieldEvery, slice: yieldEvery,
      lossSum: 0, correct: 0, lastLoss: 0, lastCorrect: 0,
    };
    for (let bi = 0; bi < batches;) {
      // With a batch callback, one batch per call (the callback may be async); else as many as
      // fit in the time slice.
      const next = trainBatches(net, control, clock, run, trainMetrics, lr, bi, options.onBatchEnd ? bi + 1 : batches);
      if (options.onBatchEnd) {
        const m = Math.min(batchSize, rows - bi * batchSize);
        const logs: BatchLogs = { epoch: epoch + 1, batch: bi + 1, batches, size: m, loss: run.lastLoss / m };
        if (net.hasAccuracy()) {
          // a batch whose rows all weigh 0 has no accuracy to speak of: 0, as Keras's divide_no_nan
          const total = W ? weightSum(net.plan(m).w.data, m) : m;
          logs.accuracy = total > 0 ? run.lastCorrect / total : 0;
        }
        await options.onBatchEnd(logs);
      }
      bi = next;
      if (control.stopTraining) break;
      if (now() >= run.deadline) {
        await yieldToEventLoop();
        lastYield = now();
        run.deadline = lastYield + yieldEvery;
      }
    }
    const lossSum = run.lossSum, correct = run.correct;
    if (!Number.isFinite(net.backend.sumSquares(net.params, net.paramCount))) {
      net.params.data.set(net.backup!.data);
      throw new TrainingError(`training diverged: the weights became non-finite at epoch ${epoch + 1}, batch ${batches}; the weights from before the last update were restored`);
    }
    const seconds = (now() - t0) / 1000;
    const logs: EpochLogs = {
      epoch: epoch + 1, loss: lossSum / rows, learningRate: lr,
      samplesPerSecond: rows / Math.max(seconds, 1e-9), seconds,
    };
    if (net.hasAccuracy()) logs.accuracy = correct / weightTotal;
    Object.assign(logs, metricsOf(trainMetrics));
    if (val) {
      const vm = evaluateNetwork(net, val[0], val[1], batchSize, valW);
      logs.valLoss = vm.loss;
      if (vm.accuracy !== undefined) logs.valAccuracy = vm.accuracy;
      if (vm.precision !== undefined) {
        logs.valPrecision = vm.precision;
        logs.valRecall = vm.recall;
        logs.valF1 = vm.f1;
        logs.valPerClass = vm.perClass;
      }
      if (vm.auc !== undefined) logs.valAuc = vm.auc;
      if (vm.mae !== undefined) {
        logs.valMae = vm.mae;
        logs.valRmse = vm.rmse;
        logs.valR2 = vm.r2;
      }
    }
    history.epochs.push(logs);
    if (options.onEpochEnd) await options.onEpochEnd(logs);
    if (ck && saver) {
      const value = logs[ckMonitor]!;
      const better = ckMonitor === 'accuracy' || ckMonitor === 'valAccuracy' ? !(value <= ckBest) : !(value >= ckBest);
      if (!ck.saveBestOnly || better) {
        try {
          await saver.save(ck.path);
        } catch (e) {
          throw new TrainingError(`checkpoint: cannot save the model after epoch ${epoch + 1} to ${ck.path}: ${(e as Error).message}; `
            + `training stopped, the model keeps the weights of epoch ${epoch + 1}`, { cause: e });
        }
      }
      if (better) ckBest = value;
    }

    if (es) {
      const value = logs[monitor]!;
      const improved = higherIsBetter ? value > best + minDelta : value < best - minDelta;
      if (improved) {
        best = value;
        bestEpoch = epoch + 1;
        wait = 0;
        bestWeights?.set(net.params.data);
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
    net.params.data.set(bestWeights);
    history.bestEpoch = bestEpoch;
  } else if (bestEpoch > 0) {
    history.bestEpoch = bestEpoch;
  }
  return history;
}

/**
 * Trains batches [from, to) of an epoch, synchronously, stopping early once the time slice is
 * used up; returns the next batch. Kept out of the async `fit` so that the per-step numbers live
 * in registers, not in a generator's heap-allocated context: a step allocates nothing. The rate
 * comes as an argument, not from a field of `run`: a double read from a field is boxed anew for
 * each call that V8 does not inline.
 */
function trainBatches(net: Network, control: FitControl, clock: FitClock, run: BatchRun, metrics: MetricAccumulator, lr: number, from: number, to: number): number {
  const rows = run.X.shape[0];
  let lossSum = 0, correct = 0, bi = from, sinceClock = 0, lastClock = now();
  while (bi < to) {
    const start = bi * run.batchSize, m = Math.min(run.batchSize, rows - start);
    const p = net.plan(m);
    net.stage(p, run.X, run.Y, start, run.order, run.W);
    net.trainStep(p, lr);
    // the epoch's training metrics, from this step's outputs (before its update, like the loss)
    metrics.add(p.acts[p.acts.length - 1].data, p.y.data, m, p.weighted ? p.w.data : null);
    const loss = net.stepLoss[0];
    if (!Number.isFinite(loss)) {
      net.params.data.set(net.backup!.data);
      throw new TrainingError(`training diverged: the loss became ${loss} at epoch ${run.epoch + 1}, batch ${bi + 1}; `
        + 'the weights from before the last update were restored (try a lower learning rate or clipNorm)');
    }
    const c = net.hasAccuracy() ? net.correct(p) : 0;
    lossSum += loss;
    correct += c;
    run.lastLoss = loss;
    run.lastCorrect = c;
    bi++;
    if (++sinceClock >= clock.every) {
      const t = now();
      // read the clock about four times per slice: often enough not to overshoot it, rarely
      // enough that tiny steps do not pay for it
      const perBatch = (t - lastClock) / sinceClock;
      clock.every = Math.min(1024, Math.max(1, Math.floor(run.slice / 4 / Math.max(perBatch, 1e-6))));
      if (t >= run.deadline) break;
      lastClock = t;
      sinceClock = 0;
    }
  }
  run.lossSum += lossSum;
  run.correct += correct;
  return bi;
}

/** The monitor asked for (default valLoss with validation data, else loss), if the fit reports it. */
function checkMonitor(what: string, asked: Monitor | undefined, hasVal: boolean, hasAccuracy: boolean): Monitor {
  const monitor = asked ?? (hasVal ? 'valLoss' : 'loss');
  if (!MONITORS.includes(monitor)) throw new InputError(`${what}: monitor must be one of ${MONITORS.join(', ')}, got ${JSON.stringify(monitor)}`);
  if ((monitor === 'valLoss' || monitor === 'valAccuracy') && !hasVal) {
    throw new InputError(`${what}: monitor '${monitor}' needs validationData or validationSplit`);
  }
  if ((monitor === 'accuracy' || monitor === 'valAccuracy') && !hasAccuracy) {
    throw new InputError(`${what}: monitor '${monitor}' needs a classification loss`);
  }
  return monitor;
}

const MONITORS: readonly Monitor[] = ['loss', 'accuracy', 'valLoss', 'valAccuracy'];

/** An accumulator for the network's task, with room for `rows` scores (ROC AUC of a binary task). */
export function accumulatorFor(net: Network, rows: number): MetricAccumulator {
  return new MetricAccumulator(net.hasAccuracy() ? 'classification' : 'regression', net.outputs, rows);
}

function metricsOf(acc: MetricAccumulator): Partial<Evaluation> {
  return acc.kind === 'classification' ? acc.classification() : acc.regression();
}

/**
 * Loss, accuracy and every metric of the task over (X, Y), in one forward pass per batch; with
 * row weights W, the weighted loss sum over the rows and weighted metrics (as Keras evaluates
 * with sample_weight).
 */
export function evaluateNetwork(net: Network, X: Matrix, Y: Matrix, batchSize: number, W: Float32Array | null = null): Evaluation {
  const rows = X.shape[0], acc = accumulatorFor(net, rows);
  let loss = 0, correct = 0;
  for (let start = 0; start < rows; start += batchSize) {
    const p = net.plan(Math.min(batchSize, rows - start));
    net.stage(p, X, Y, start, undefined, W);
    net.forward(p);
    loss += net.lossDelta(p);
    if (net.hasAccuracy()) correct += net.correct(p);
    acc.add(p.acts[p.acts.length - 1].data, p.y.data, p.m, p.weighted ? p.w.data : null);
  }
  const result: Evaluation = { loss: loss / rows };
  if (net.hasAccuracy()) result.accuracy = correct / weightSum(W, rows);
  return Object.assign(result, metricsOf(acc));
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
