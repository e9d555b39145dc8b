// What a fit takes and gives: its options (callbacks, early stopping, checkpoints, weights), the
// logs its callbacks receive, the History it returns and the error it throws when training
// diverges; fit.ts runs the loop.
import type { BatchSource, MatrixInput, TargetInput } from '../data.js';
import type { ClassificationMetrics, MetricAccumulator, PerClassMetrics, RegressionMetrics } from '../metrics.js';
import type { Metrics } from './plan.js';
import type { ClassWeight } from './weights.js';

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
   * batch there, so the event loop only writes the batches' row numbers; without `onBatchEnd`, up
   * to 64 batches go per hand-off (one wake-up of the event loop for them), and `stopTraining`
   * ends them after the batch in progress. The default: on for steps of at least 2^26
   * multiply-adds (OFF_THREAD_FROM: about a millisecond on one core, such as 784-512-512-10 at
   * batch 256), where the hand-off costs no measurable throughput and a step on the thread would
   * hold the event loop as long; off for smaller steps, where the hand-off's wake-ups cost 5-15%
   * (bench/off-thread.ts). The weights come out the same, bit for bit. `History.offThread` says
   * which way a fit ran.
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
