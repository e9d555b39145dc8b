// The fit loop: epochs, shuffling, validation, early stopping, divergence checks and yielding to
// the event loop, over a Network's training steps. Its options and results are in fit-options.ts.
import { InputError, isBatchSource, toMatrix, type BatchSource, type Matrix, type MatrixInput, type TargetInput } from '../data.js';
import { MetricAccumulator } from '../metrics.js';
import { Random } from '../random.js';
import { scheduledRate } from '../spec.js';
import { accumulatorFor, evaluateNetwork, metricsOf } from './evaluate.js';
import { evaluateSource } from './fit-source.js';
import { TrainingError, type BatchLogs, type CheckpointSaver, type EpochLogs, type Evaluation, type FitClock, type FitControl, type FitOptions, type History, type Monitor } from './fit-options.js';
import type { Network } from './network.js';
import type { ResidentRows } from './plan.js';
import { checkNotAllZero, checkSampleWeight, rowWeights, weightSum } from './weights.js';
import { now, yieldToEventLoop } from './yield.js';

// what the loop's users import from here
export type { Metrics } from './plan.js';
export { TrainingError } from './fit-options.js';
export type { BatchLogs, CheckpointOptions, CheckpointSaver, EpochLogs, Evaluation, FitClock, FitControl, FitOptions, History, Monitor } from './fit-options.js';
export { accumulatorFor, evaluateNetwork, metricsOf } from './evaluate.js';
export { now, yieldToEventLoop } from './yield.js';

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
 * Multiply-adds of a step from which fit runs off the thread by default (a millisecond or more of
 * GEMM on one core): there the hand-off costs nothing measurable (wide-mlp, 4.1e8 a step: 0.998×
 * the on-thread throughput), and a step on the thread would hold the event loop for as long;
 * below it, the hand-off's wake-ups cost throughput (mnist-mlp, 1.3e7 a step: 0.90×; the digits
 * net: 0.87×) for steps too short to block the loop much.
 */
export const OFF_THREAD_FROM = 2 ** 26;

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
  let X = toMatrix(x, 'inputs', net.inputs, 'staged');
  net.checkRowsFinite(X, 'inputs');
  let Y = net.targets(y, X.shape[0]);
  let sw = checkSampleWeight(options.sampleWeight, X.shape[0]);
  let val: [Matrix, Matrix] | null = null, valW: Float32Array | null = null;
  // a source of validation rows is read through once per epoch
  const valSource: BatchSource | null = isBatchSource(options.validationData) ? options.validationData : null;
  const valArrays = valSource ? undefined : options.validationData as [MatrixInput, TargetInput, ArrayLike<number>?] | undefined;
  if (valArrays) {
    const vx = toMatrix(valArrays[0], 'validation inputs', net.inputs, 'staged');
    net.checkRowsFinite(vx, 'validation inputs');
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
  const offThread = (options.offThread ?? net.stepMultiplyAdds(batchSize) >= OFF_THREAD_FROM) && net.canTrainOffThread();
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
 * trainRun with the batches on the backend's threads (Network.trainStepAsync): every await of a
 * step gives the event loop its turn, so no time slices. The same checks, metrics and callbacks,
 * in the same order, as trainBatches; the metrics read the outputs the step copied aside. Without
 * a batch callback, the batches gathered from resident rows run several per hand-off
 * (Network.trainStepsAsync): the event loop wakes once for them; a divergent batch ends them, and
 * stopTraining ends them after the batch in progress.
 */
async function trainRunOffThread(net: Network, control: FitControl, loop: FitLoop, run: BatchRun, lr: number, count: number,
  total: number): Promise<void> {
  const onBatchEnd = loop.options.onBatchEnd, rows = run.X.shape[0], batchSize = run.batchSize;
  // the batches of the full size (all but a short last one), which one chunk program serves
  const full = Math.min(count, Math.floor(rows / batchSize));
  for (let bi = 0; bi < count;) {
    const start = bi * batchSize, m = Math.min(batchSize, rows - start);
    const p = net.plan(m);
    const k = !onBatchEnd && run.resident ? net.chunkSteps(p, full - bi) : 1;
    if (k > 1) {
      const c = net.stageChunk(p, run.resident!, start, k, run.order);
      const ran = await net.trainStepsAsync(p, lr, k);
      const n = m * net.outputs, out = c.out.data, y = c.y.data, w = c.w ? c.w.data : null;
      for (let s = 0; s < ran; s++, bi++) {
        addBatch(net, loop, run, bi, c.losses[s], out.subarray(s * n, s * n + n), y.subarray(s * n, s * n + n), m,
          w && w.subarray(s * m, s * m + m));
      }
    } else {
      if (run.resident) net.stageIndices(p, run.resident, start, run.order);
      else net.stage(p, run.X, run.Y, start, run.order, run.W);
      await net.trainStepAsync(p, lr, run.resident);
      addBatch(net, loop, run, bi, net.stepLoss[0], p.outCopy!.data, p.yCopy!.data, m, p.weighted ? p.wCopy!.data : null);
      if (onBatchEnd) {
        const logs: BatchLogs = { epoch: run.epoch + 1, batch: run.batchBase + bi + 1, batches: total, size: m, loss: run.lastLoss / m };
        if (net.hasAccuracy()) logs.accuracy = batchAccuracy(net, run, m);
        await onBatchEnd(logs);
      }
      bi++;
    }
    if (control.stopTraining) break;
  }
  loop.lastYield = now();
}

/**
 * Batch bi's loss (the divergence check: the weights from before the last update come back) and
 * its outputs, targets and weights into the epoch's sums and metrics.
 */
function addBatch(net: Network, loop: FitLoop, run: BatchRun, bi: number, loss: number, out: Float32Array, y: Float32Array, m: number,
  w: Float32Array | null): void {
  if (!Number.isFinite(loss)) {
    net.restoreParams(net.backup!.data);
    throw new TrainingError(`training diverged: the loss became ${loss} at epoch ${run.epoch + 1}, batch ${run.batchBase + bi + 1}; `
      + 'the weights from before the last update were restored (try a lower learning rate or clipNorm)');
  }
  loop.metrics.add(out, y, m, w);
  const c = net.hasAccuracy() ? net.correctRows(out, y, m, w) : 0;
  run.lossSum += loss;
  run.correct += c;
  run.lastLoss = loss;
  run.lastCorrect = c;
}

/** The divergence check at the end of an epoch: non-finite weights are replaced by the backup. */
export function checkWeights(net: Network, epoch: number, batches: number): void {
  if (!Number.isFinite(net.backend.sumSquares(net.params, net.paramCount))) {
    net.restoreParams(net.backup!.data);
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
    net.restoreParams(loop.bestWeights);
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
      net.restoreParams(net.backup!.data);
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
