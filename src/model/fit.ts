// The fit loop: epochs, shuffling, validation, early stopping, divergence checks and yielding to
// the event loop, over a Network's training steps.
import { InputError, isBatchSource, toMatrix, type BatchSource, type Matrix, type MatrixInput, type TargetInput } from '../data.js';
import { Random } from '../random.js';
import { MetricAccumulator, type ClassificationMetrics, type PerClassMetrics, type RegressionMetrics } from '../metrics.js';
import { scheduledRate } from '../spec.js';
import { evaluateSource } from './fit-source.js';
import type { Network } from './network.js';
import type { Metrics, ResidentRows } from './plan.js';
import { checkNotAllZero, checkSampleWeight, rowWeights, weightSum, type ClassWeight } from './weights.js';

export type { Metrics } from './plan.js';

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
  /**
   * Validation rows: `[x, y]` in memory (optionally `[x, y, sampleWeight]`, one weight per row),
   * or a BatchSource read through once per epoch.
   */
  validationData?: [MatrixInput, TargetInput] | [MatrixInput, TargetInput, ArrayLike<number>] | BatchSource;
  /**
   * One weight per row: its loss, gradient and metrics count that much (Keras's sample_weight:
   * the batch's weighted loss sum over the batch size). With validationSplit, the held-out rows
   * keep their weights for the validation metrics. Rows in memory only (not a BatchSource).
   */
  sampleWeight?: ArrayLike<number>;
  /**
   * A weight per class for the training rows (keys: class indices or the model's class names;
   * classes left out weigh 1), or 'balanced': n_samples / (n_classes · count_c) over the training
   * rows. Multiplies sampleWeight when both are given. Classification losses, rows in memory only.
   */
  classWeight?: ClassWeight;
  /**
   * Fitting a BatchSource: the rows its shuffle buffer holds (default 16,384, fewer where that
   * would take more than 32 MiB: 10,000 rows of 784 pixels). Each epoch streams
   * the source through the buffer, which hands out a seeded random row of it for every row it
   * takes in: the same seed and source give the same order, whatever the sizes of its batches.
   */
  shuffleBuffer?: number;
  /** Fitting a BatchSource: how many of its batches are read ahead while training runs (default 4). */
  prefetch?: number;
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
  /**
   * Train each batch on the backend's own threads, so that the event loop stays free for the rest
   * of the program (native, dense networks; elsewhere the fit runs on the thread as without it).
   * From two epochs on, the fit copies the training rows into the backend's memory once (rows ×
   * (inputs + outputs, + 1 with weights) floats, freed when the fit ends) and each step gathers its
   * batch there, so the event loop only writes the batch's row numbers. Off by default: the
   * hand-off between the event loop and the addon's threads costs throughput (measured on 2 cores:
   * 11-16% on wide-mlp, 22-30% on mnist-mlp, with staging on the loop). The weights come out the
   * same, bit for bit. `History.offThread` says which way a fit ran.
   */
  offThread?: boolean;
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
  /** Whether the batches ran on the backend's threads, off the event loop (FitOptions.offThread). */
  offThread: boolean;
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
export interface BatchRun {
  X: Matrix;
  Y: Matrix;
  /** The rows' order (an epoch's shuffle), or none: X's rows as they are (a block already shuffled). */
  order: Uint32Array | undefined;
  /** The rows' weights, or null. */
  W: Float32Array | null;
  /**
   * X, Y and W in backend memory (Network.residentRows), for off-thread steps that gather their own
   * batches; null: batches are staged on the thread.
   */
  resident: ResidentRows | null;
  /** Batches of the epoch before this run's first (a streamed epoch trains block by block). */
  batchBase: number;
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
  const { batchSize } = checkCounts(options);
  const split = options.validationSplit ?? 0;
  if (!(split >= 0 && split < 1)) throw new InputError(`validationSplit: must be in [0, 1), got ${String(split)}`);
  let X = toMatrix(x, 'inputs', net.inputs);
  let Y = net.targets(y, X.shape[0]);
  let sw = checkSampleWeight(options.sampleWeight, X.shape[0]);
  let val: [Matrix, Matrix] | null = null, valW: Float32Array | null = null;
  // a source of validation rows is read through once per epoch
  const valSource: BatchSource | null = isBatchSource(options.validationData) ? options.validationData : null;
  const valArrays = valSource ? undefined : options.validationData as [MatrixInput, TargetInput, ArrayLike<number>?] | undefined;
  if (valArrays) {
    const vx = toMatrix(valArrays[0], 'validation inputs', net.inputs);
    val = [vx, net.targets(valArrays[1], vx.shape[0])];
    valW = checkSampleWeight(valArrays[2], vx.shape[0], 'validationData[2] (the validation sample weights)');
  } else if (!valSource && split > 0) {
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
  checkNotAllZero(valW, valArrays ? 'validationData[2] (the validation sample weights)' : 'sampleWeight of the validation rows');
  // what accuracy divides by: the rows, or their weights (a weighted mean, as Keras's weighted metrics)
  const weightTotal = weightSum(W, rows);

  const loop = await startLoop(net, control, clock, options, val !== null || valSource !== null, rows, saver);
  const order = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) order[i] = i;
  const shuffle = options.shuffle ?? true;
  const batches = Math.ceil(rows / batchSize);
  // Off the thread, the steps gather their batches from a copy of the rows in backend memory: the
  // event loop writes m row numbers a step instead of copying m rows. The copy (made once per fit,
  // freed after) costs the loop about what one epoch of staging does: worth it from two epochs on.
  const resident = loop.offThread && loop.epochs > 1 ? net.residentRows(X, Y, W) : null;
  try {
    for (let epoch = 0; epoch < loop.epochs && !control.stopTraining; epoch++) {
      const lr = scheduledRate(net.spec.optimizer, epoch, loop.epochs);
      if (shuffle) {
        const rng = loop.rng;
        for (let i = rows - 1; i > 0; i--) {
          const j = rng.int(i + 1), t = order[i];
          order[i] = order[j];
          order[j] = t;
        }
      }
      const t0 = now();
      loop.metrics.reset();
      const run = newRun(loop, X, Y, order, epoch, 0, W);
      run.resident = resident;
      await trainRun(net, control, clock, loop, run, lr, batches, batches);
      checkWeights(net, epoch, batches);
      const logs = epochLogs(net, loop, epoch, rows, run, lr, t0, weightTotal);
      if (val) addValidation(logs, evaluateNetwork(net, val[0], val[1], batchSize, valW));
      else if (valSource) addValidation(logs, await evaluateSource(net, valSource, batchSize, options.prefetch, 'validationData'));
      if (await endEpoch(net, loop, logs)) break;
    }
  } finally {
    if (resident) net.releaseRows(resident);
  }
  return finishLoop(net, loop);
}

/** epochs and batchSize, checked (defaults 10 and 32). */
export function checkCounts(options: FitOptions): { epochs: number; batchSize: number } {
  const epochs = options.epochs ?? 10, batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(epochs) || epochs < 1) throw new InputError(`epochs: must be a positive integer, got ${String(epochs)}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize: must be a positive integer, got ${String(batchSize)}`);
  return { epochs, batchSize };
}

/**
 * What every fit shares, whatever feeds it rows (arrays, or a source of batches): the checked
 * options, the shuffling stream, early stopping and checkpoint state, the history, and when the
 * event loop last had its turn.
 */
export interface FitLoop {
  epochs: number;
  batchSize: number;
  options: FitOptions;
  saver: CheckpointSaver | null;
  control: FitControl;
  rng: Random;
  metrics: MetricAccumulator;
  history: History;
  yieldEvery: number;
  lastYield: number;
  monitor: Monitor;
  higherIsBetter: boolean;
  best: number;
  bestEpoch: number;
  wait: number;
  bestWeights: Float32Array | null;
  /** Batch normalization's running statistics with the best weights: they belong to the weights they were averaged for. */
  bestStats: Float32Array | null;
  ckMonitor: Monitor;
  ckBest: number;
  /** Batches run off the event loop's thread (Network.trainStepAsync). */
  offThread: boolean;
}

/**
 * Checks the options that do not depend on the data (early stopping, checkpoint; `hasVal` says
 * whether validation metrics will exist), checks the checkpoint's path, and readies the
 * optimizer. `scoreRows`: the training rows per epoch where known (room for ROC AUC scores).
 */
export async function startLoop(net: Network, control: FitControl, clock: FitClock, options: FitOptions, hasVal: boolean,
scoreRows: number, saver: CheckpointSaver | null): Promise<FitLoop> {
  const { epochs, batchSize } = checkCounts(options);
  const es = options.earlyStopping;
  const monitor = checkMonitor('earlyStopping', es?.monitor, hasVal, net.hasAccuracy());
  const higherIsBetter = monitor === 'accuracy' || monitor === 'valAccuracy';
  const ck = options.checkpoint;
  let ckMonitor: Monitor = 'loss';
  if (ck !== undefined) {
    if (ck === null || typeof ck !== 'object') throw new InputError('checkpoint: must be an object { path, monitor?, saveBestOnly? }');
    if (typeof ck.path !== 'string' || ck.path === '') throw new InputError(`checkpoint.path: must be a non-empty file path, got ${JSON.stringify(ck.path)}`);
    if (ck.saveBestOnly !== undefined && typeof ck.saveBestOnly !== 'boolean') {
      throw new InputError(`checkpoint.saveBestOnly: must be true or false, got ${JSON.stringify(ck.saveBestOnly)}`);
    }
    ckMonitor = checkMonitor('checkpoint', ck.monitor, hasVal, net.hasAccuracy());
    if (!saver) {
      throw new InputError('checkpoint: this runtime has no file system deltaprop can write to (only the Node entry saves files); '
        + 'save the model from onEpochEnd with modelToBytes(model) instead');
    }
    await saver.check(ck.path);
  }
  if (options.offThread !== undefined && typeof options.offThread !== 'boolean') {
    throw new InputError(`offThread: must be true or false, got ${JSON.stringify(options.offThread)}`);
  }
  const offThread = options.offThread === true && net.canTrainOffThread();
  net.optimizerState();
  const kept = clock.metrics;
  const metrics = kept && kept.fits(net.hasAccuracy() ? 'classification' : 'regression', net.outputs, scoreRows) ? kept : accumulatorFor(net, scoreRows);
  clock.metrics = metrics;
  control.stopTraining = false;
  return {
    epochs, batchSize, options, saver, control, rng: new Random(options.seed ?? net.spec.seed ?? 0), metrics,
    history: { epochs: [], stoppedEarly: false, offThread }, offThread, yieldEvery: options.yieldEveryMs ?? 10, lastYield: now(),
    monitor, higherIsBetter, best: higherIsBetter ? -Infinity : Infinity, bestEpoch: -1, wait: 0,
    bestWeights: es?.restoreBestWeights ? new Float32Array(net.paramCount) : null,
    bestStats: es?.restoreBestWeights && net.stats ? new Float32Array(net.statCount) : null, ckMonitor, ckBest: NaN,
  };
}

/** The state of one run of batches over the rows of X (an epoch, or a block of a streamed epoch). */
export function newRun(loop: FitLoop, X: Matrix, Y: Matrix, order: Uint32Array | undefined, epoch: number, batchBase = 0,
  W: Float32Array | null = null): BatchRun {
  return {
    X, Y, order, W, resident: null, batchSize: loop.batchSize, epoch, batchBase, deadline: loop.lastYield + loop.yieldEvery, slice: loop.yieldEvery,
    lossSum: 0, correct: 0, lastLoss: 0, lastCorrect: 0,
  };
}

/**
 * Trains the `count` batches of run.X (in run.order), calling onBatchEnd after each and yielding
 * to the event loop when the time slice is used up. `total`: the epoch's batches, for the logs
 * (0 when not known yet).
 */
export async function trainRun(net: Network, control: FitControl, clock: FitClock, loop: FitLoop, run: BatchRun, lr: number,
count: number, total: number): Promise<void> {
  if (loop.offThread) return trainRunOffThread(net, control, loop, run, lr, count, total);
  const onBatchEnd = loop.options.onBatchEnd, rows = run.X.shape[0], batchSize = run.batchSize;
  for (let bi = 0; bi < count;) {
    // With a batch callback, one batch per call (the callback may be async); else as many as
    // fit in the time slice.
    const next = trainBatches(net, control, clock, run, loop.metrics, lr, bi, onBatchEnd ? bi + 1 : count);
    if (onBatchEnd) {
      const m = Math.min(batchSize, rows - bi * batchSize);
      const logs: BatchLogs = { epoch: run.epoch + 1, batch: run.batchBase + bi + 1, batches: total, size: m, loss: run.lastLoss / m };
      if (net.hasAccuracy()) logs.accuracy = batchAccuracy(net, run, m);
      await onBatchEnd(logs);
    }
    bi = next;
    if (control.stopTraining) break;
    if (now() >= run.deadline) {
      await yieldToEventLoop();
      loop.lastYield = now();
      run.deadline = loop.lastYield + loop.yieldEvery;
    }
  }
}

/**
 * trainRun with each batch on the backend's threads (Network.trainStepAsync): every await of a
 * step gives the event loop its turn, so no time slices. The same checks, metrics and callbacks,
 * in the same order, as trainBatches; the metrics read the outputs the step copied aside.
 */
async function trainRunOffThread(net: Network, control: FitControl, loop: FitLoop, run: BatchRun, lr: number, count: number,
  total: number): Promise<void> {
  const onBatchEnd = loop.options.onBatchEnd, rows = run.X.shape[0], batchSize = run.batchSize;
  for (let bi = 0; bi < count; bi++) {
    const start = bi * batchSize, m = Math.min(batchSize, rows - start);
    const p = net.plan(m);
    if (run.resident) net.stageIndices(p, run.resident, start, run.order);
    else net.stage(p, run.X, run.Y, start, run.order, run.W);
    await net.trainStepAsync(p, lr, run.resident);
    const loss = net.stepLoss[0];
    if (!Number.isFinite(loss)) {
      net.params.data.set(net.backup!.data);
      throw new TrainingError(`training diverged: the loss became ${loss} at epoch ${run.epoch + 1}, batch ${run.batchBase + bi + 1}; `
        + 'the weights from before the last update were restored (try a lower learning rate or clipNorm)');
    }
    const out = p.outCopy!.data, y = p.yCopy!.data, w = p.weighted ? p.wCopy!.data : null;
    loop.metrics.add(out, y, m, w);
    const c = net.hasAccuracy() ? net.correctRows(out, y, m, w) : 0;
    run.lossSum += loss;
    run.correct += c;
    run.lastLoss = loss;
    run.lastCorrect = c;
    if (onBatchEnd) {
      const logs: BatchLogs = { epoch: run.epoch + 1, batch: run.batchBase + bi + 1, batches: total, size: m, loss: loss / m };
      if (net.hasAccuracy()) logs.accuracy = batchAccuracy(net, run, m);
      await onBatchEnd(logs);
    }
    if (control.stopTraining) break;
  }
  loop.lastYield = now();
}

/** The divergence check at the end of an epoch: non-finite weights are replaced by the backup. */
export function checkWeights(net: Network, epoch: number, batches: number): void {
  if (!Number.isFinite(net.backend.sumSquares(net.params, net.paramCount))) {
    net.params.data.set(net.backup!.data);
    throw new TrainingError(`training diverged: the weights became non-finite at epoch ${epoch + 1}, batch ${batches}; the weights from before the last update were restored`);
  }
}

/** An epoch's logs from its summed loss and correct count over `rows` training rows. */
export function epochLogs(net: Network, loop: FitLoop, epoch: number, rows: number, sums: { lossSum: number; correct: number },
lr: number, t0: number, weightTotal = rows): EpochLogs {
  const seconds = (now() - t0) / 1000;
  const logs: EpochLogs = {
    epoch: epoch + 1, loss: sums.lossSum / rows, learningRate: lr,
    samplesPerSecond: rows / Math.max(seconds, 1e-9), seconds,
  };
  if (net.hasAccuracy()) logs.accuracy = sums.correct / weightTotal;
  Object.assign(logs, metricsOf(loop.metrics));
  return logs;
}

/** The validation metrics into an epoch's logs (valLoss, valAccuracy, valF1, …). */
export function addValidation(logs: EpochLogs, vm: Evaluation): void {
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

/** History, onEpochEnd, checkpoint and early stopping after an epoch; true when the fit stops here. */
export async function endEpoch(net: Network, loop: FitLoop, logs: EpochLogs): Promise<boolean> {
  const options = loop.options, epoch = logs.epoch - 1;
  loop.history.epochs.push(logs);
  if (options.onEpochEnd) await options.onEpochEnd(logs);
  const ck = options.checkpoint, saver = loop.saver;
  if (ck && saver) {
    const value = logs[loop.ckMonitor]!;
    const better = loop.ckMonitor === 'accuracy' || loop.ckMonitor === 'valAccuracy' ? !(value <= loop.ckBest) : !(value >= loop.ckBest);
    if (!ck.saveBestOnly || better) {
      try {
        await saver.save(ck.path);
      } catch (e) {
        throw new TrainingError(`checkpoint: cannot save the model after epoch ${epoch + 1} to ${ck.path}: ${(e as Error).message}; `
          + `training stopped, the model keeps the weights of epoch ${epoch + 1}`, { cause: e });
      }
    }
    if (better) loop.ckBest = value;
  }

  const es = options.earlyStopping;
  if (es) {
    const value = logs[loop.monitor]!, minDelta = es.minDelta ?? 0;
    const improved = loop.higherIsBetter ? value > loop.best + minDelta : value < loop.best - minDelta;
    if (improved) {
      loop.best = value;
      loop.bestEpoch = epoch + 1;
      loop.wait = 0;
      loop.bestWeights?.set(net.params.data);
      if (loop.bestStats) loop.bestStats.set(net.stats!.data);
    } else if (++loop.wait > (es.patience ?? 0)) {
      loop.history.stoppedEarly = true;
      return true;
    }
  }
  if (now() - loop.lastYield >= loop.yieldEvery) {
    await yieldToEventLoop();
    loop.lastYield = now();
  }
  return false;
}

/** Restores the best weights (restoreBestWeights) and returns the history. */
export function finishLoop(net: Network, loop: FitLoop): History {
  if (loop.bestWeights && loop.bestEpoch > 0) {
    net.params.data.set(loop.bestWeights);
    if (loop.bestStats) net.stats!.data.set(loop.bestStats);
    loop.history.bestEpoch = loop.bestEpoch;
  } else if (loop.bestEpoch > 0) {
    loop.history.bestEpoch = loop.bestEpoch;
  }
  return loop.history;
}

/**
 * Trains batches [from, to) of an epoch, synchronously, stopping early once the time slice is
 * used up; returns the next batch. Kept out of the async `fit` so that the per-step numbers live
 * in registers, not in a generator's heap-allocated context: a step allocates nothing. The rate
 * comes as an argument, not from a field of `run`: a double read from a field is boxed anew for
 * each call that V8 does not inline.
 */
export function trainBatches(net: Network, control: FitControl, clock: FitClock, run: BatchRun, metrics: MetricAccumulator, lr: number, from: number, to: number): number {
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
      throw new TrainingError(`training diverged: the loss became ${loss} at epoch ${run.epoch + 1}, batch ${run.batchBase + bi + 1}; `
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

export function metricsOf(acc: MetricAccumulator): Partial<Evaluation> {
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

/**
 * The accuracy of a run's last batch of m rows: its correct rows over m, or with weights their
 * weight over the batch's (0 when its rows all weigh 0, as Keras's divide_no_nan).
 */
function batchAccuracy(net: Network, run: BatchRun, m: number): number {
  const total = run.W ? weightSum(net.plan(m).w.data, m) : m;
  return total > 0 ? run.lastCorrect / total : 0;
}

function slice(m: Matrix, from: number, to: number): Matrix {
  const c = m.shape[1];
  return { data: m.data.subarray(from * c, to * c), shape: [to - from, c] };
}

export const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/**
 * Lets timers, I/O and rendering run: setImmediate where it exists (Node, Bun, Deno), else a
 * message to ourselves (browsers, workerd), else a zero timeout. Browsers clamp a zero timeout
 * nested in timer tasks to 4 ms, which would idle an on-page fit for 4 ms of every 10 ms slice;
 * a message task is not clamped.
 */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (cb: () => void) => void };
  if (g.setImmediate) return new Promise((resolve) => g.setImmediate!(resolve));
  if (typeof MessageChannel === 'function') return new Promise(postToSelf);
  return new Promise((resolve) => setTimeout(resolve, 0));
}

let selfChannel: InstanceType<typeof MessageChannel> | null = null;
const selfWaiting: (() => void)[] = [];

/** Calls `resolve` from a message task of its own (one channel, messages answered in order). */
function postToSelf(resolve: () => void): void {
  if (!selfChannel) {
    selfChannel = new MessageChannel();
    // the web's onmessage (it also starts the port), which Node's typings of MessagePort leave out
    (selfChannel.port1 as unknown as { onmessage: (() => void) | null }).onmessage = () => selfWaiting.shift()?.();
  }
  selfWaiting.push(resolve);
  selfChannel.port2.postMessage(null);
}
