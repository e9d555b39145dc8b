// `deltaprop train DATA`: read, split (stratified), standardize on the training rows, fit with a
// progress bar, report held-out metrics, save the model and the curves.
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import type { ActivationName, LossName } from '../backends/backend.js';
import type { Matrix } from '../data.js';
import { fitNormalization } from '../data.js';
import { saveModel } from '../io/files.js';
import { permuteRowsInPlace, splitRows } from '../io/datasets.js';
import { Model } from '../model/model.js';
import type { ClassificationMetrics } from '../metrics.js';
import { type EpochLogs, type Evaluation, type FitOptions, type History } from '../model/fit.js';
import type { BackendReport } from '../backends/select.js';
import { describeLayer, isDense, type DenseSpec, type LayerSpec, type ModelSpec, type OptimizerName } from '../spec.js';
import {
  backendOptions, checkWritable, chooseBackend, classMetricLines, classMetrics, count, dataOptions, describeBackend, f4, fraction, layerList, nonNegativeInt,
  nonNegativeNumber, out, perClassJson, positiveInt, positiveNumber, regressionLine, seconds, TARGET_HELP, writeOutput, type BackendFlags,
} from './common.js';
import { CliError, encodeTarget, readTable, type Encoded, type Table } from './data.js';
import { trainingCurvesSvg } from './plot.js';
import { shouldStream, STREAM_AUTO_BYTES, trainStreamed } from './train-stream.js';

const ACTIVATIONS: ActivationName[] = ['relu', 'leakyRelu', 'tanh', 'sigmoid', 'linear'];
const LOSSES: LossName[] = ['categoricalCrossEntropy', 'binaryCrossEntropy', 'mse', 'huber', 'meanAbsoluteError'];
const OPTIMIZERS: OptimizerName[] = ['adam', 'adamw', 'sgd', 'momentum'];

export interface TrainFlags extends BackendFlags {
  target?: string;
  header?: boolean;
  delimiter?: string;
  labels?: string;
  task: 'auto' | 'classification' | 'regression';
  layers: number[];
  activation: ActivationName;
  dropout?: number;
  batchNorm?: boolean;
  loss?: LossName;
  huberDelta?: number;
  classWeight?: 'balanced';
  optimizer: OptimizerName;
  lr?: number;
  weightDecay?: number;
  epochs: number;
  batchSize: number;
  validationSplit?: number;
  testSplit: number;
  patience: number | 'none';
  checkpoint?: string;
  seed: number;
  save?: string;
  plot?: string;
  quiet?: boolean;
  json?: boolean;
  progress: boolean;
  /** true: --stream, false: --no-stream, undefined: by the file's size. */
  stream?: boolean;
}

/**
 * Default learning rate per optimizer. Adam's is 10× Keras's 1e-3: data sets of hundreds or
 * thousands of rows give few steps per epoch, and at 1e-3 iris still underfits after 30 epochs;
 * early stopping (below) keeps the faster rate from overfitting.
 */
const DEFAULT_LR: Record<OptimizerName, number> = { adam: 0.01, adamw: 0.01, sgd: 0.01, momentum: 0.01 };

/** Most epochs by default: a cap, training normally ends when the monitored loss stops improving. */
const DEFAULT_EPOCHS = 200;
const DEFAULT_PATIENCE = 10;
/**
 * Without --validation-split, hold out this share of the training rows for early stopping when
 * there are at least AUTO_VALIDATION_MIN_ROWS of them; fewer rows are too precious to hold out
 * (iris: 120), so training stops on the training loss instead.
 */
export const AUTO_VALIDATION_SPLIT = 0.1;
export const AUTO_VALIDATION_MIN_ROWS = 1000;

const patienceValue = (v: string): number | 'none' => (v.trim() === 'none' ? 'none' : nonNegativeInt('--patience')(v));

export function trainCommand(): Command {
  const command = new Command('train')
    .summary('train a model on a CSV file, an IDX pair or a built-in data set')
    .description('Train a multilayer perceptron on DATA. A share of the rows (--test-split) is held out, stratified by class, '
      + 'and the final summary reports the metrics on it; standardization is fitted on the training rows only and '
      + 'saved in the model file with the class names.\n\n'
      + 'DATA is a CSV file (.csv, .tsv, gzip or not; header detected), an IDX images file (the MNIST family; '
      + 'labels from --labels or the matching *-labels-idx1-ubyte[.gz] next to it), or builtin:iris / builtin:digits. '
      + 'String targets are classes (sorted), integer targets are classes, other numbers are regression values.')
    .argument('<DATA>', 'CSV file, IDX images file, or builtin:iris / builtin:digits');
  for (const o of dataOptions(TARGET_HELP, { labels: true })) command.addOption(o);
  command
    .addOption(new Option('--task <TASK>', 'what to predict; auto: strings and integers are classes, other numbers are values')
      .choices(['auto', 'classification', 'regression']).default('auto'))
    .addOption(new Option('-l, --layers <WIDTHS>', "hidden layer widths, comma-separated ('none' for no hidden layer)").argParser(layerList).default([32], '32'))
    .addOption(new Option('-a, --activation <NAME>', 'activation of the hidden layers').choices(ACTIVATIONS).default('relu'))
    .option('--dropout <RATE>', 'dropout after each hidden layer, at this rate in [0, 1) (off in evaluation and prediction)', fraction('--dropout'))
    .option('--batch-norm', 'batch normalization after each hidden layer, before its activation (dense → batch norm → activation → dropout)')
    .addOption(new Option('--loss <NAME>', 'loss (default: categoricalCrossEntropy for classes, mse for values)').choices(LOSSES))
    .option('--huber-delta <DELTA>', 'the threshold of --loss huber: squared error below it, linear beyond (default: 1)', positiveNumber('--huber-delta'))
    .addOption(new Option('--class-weight <MODE>', "weight the training rows by class; balanced: n_rows / (n_classes · rows of the class), as scikit-learn and Keras").choices(['balanced']))
    .addOption(new Option('-o, --optimizer <NAME>', 'optimizer').choices(OPTIMIZERS).default('adam'))
    .option('--lr <RATE>', 'learning rate (default: 0.01)', positiveNumber('--lr'))
    .option('--weight-decay <L2>', 'L2 weight decay on the weights', nonNegativeNumber('--weight-decay'))
    .option('-e, --epochs <N>', 'most passes over the training rows (early stopping usually ends training sooner, see --patience)', positiveInt('--epochs'), DEFAULT_EPOCHS)
    .option('-b, --batch-size <N>', 'rows per mini-batch', positiveInt('--batch-size'), 32)
    .option('--validation-split <FRACTION>', `fraction of the training rows held out for validation metrics and early stopping (default: ${AUTO_VALIDATION_SPLIT} with at least ${count(AUTO_VALIDATION_MIN_ROWS)} training rows, else 0)`, fraction('--validation-split'))
    .option('--test-split <FRACTION>', 'fraction of all rows held out for the final test metrics (0: none)', fraction('--test-split'), 0.2)
    .option('--patience <EPOCHS>', "stop early after this many epochs without improvement (of val_loss, else loss) and keep the best weights; 'none': train all --epochs", patienceValue, DEFAULT_PATIENCE)
    .option('-s, --seed <N>', 'seed for the initial weights, the splits and the shuffling', nonNegativeInt('--seed'), 0)
    .option('--stream', `train a CSV file without loading it: a first pass checks the rows, finds the classes and fits the standardization, then every epoch streams the file through a seeded shuffle buffer (the default for CSV files of ${STREAM_AUTO_BYTES / 1024 / 1024} MiB and more, gzip: a quarter of that); rows are split by a seeded hash of their index, not stratified`)
    .option('--no-stream', 'load the CSV file into memory whatever its size');
  for (const o of backendOptions()) command.addOption(o);
  return command
    .option('--save <FILE>', 'save the trained model to FILE (written atomically)')
    .option('--checkpoint <FILE>', 'during training, save the model to FILE (atomically) after every epoch that improves val_loss (else loss)')
    .option('--plot <FILE.svg>', 'write the loss and accuracy curves per epoch as an SVG chart')
    .option('-q, --quiet', 'no progress bar and no per-epoch lines; print only the final summary')
    .option('--json', 'print one JSON object with the final metrics (nothing else on stdout)')
    .option('--no-progress', 'no progress bar (it is also off when stderr is not a terminal)')
    .addHelpText('after', `
Examples:
  $ deltaprop train builtin:iris
  $ deltaprop train builtin:digits --layers 64 --epochs 30 --seed 1
  $ deltaprop train wine.csv --target cultivar --layers 32,16 --epochs 60 --seed 1 --save wine.model
  $ deltaprop train houses.csv --target price --task regression --plot curves.svg
  $ deltaprop train houses.csv --target price --task regression --loss huber --huber-delta 2
  $ deltaprop train fraud.csv --target label --class-weight balanced
  $ deltaprop train big.csv --stream --layers 64 --epochs 5 --save big.model
  $ deltaprop train train-images-idx3-ubyte.gz --layers 256,128 --epochs 10 --batch-size 128 --json
  $ deltaprop train train-images-idx3-ubyte.gz --layers 512,512 --batch-norm --dropout 0.2 --batch-size 128`)
    .action(async (data: string, flags: TrainFlags) => {
      await train(data, flags);
    });
}

/**
 * The hidden layers: per width a dense layer with the activation, or with --batch-norm a linear
 * dense layer and a batch normalization that applies it (normalize, then the nonlinearity, as in
 * the batch normalization paper and PyTorch's usual Linear → BatchNorm1d → ReLU); then dropout.
 */
function hiddenLayers(flags: TrainFlags): LayerSpec[] {
  const act = flags.activation;
  return flags.layers.flatMap((units): LayerSpec[] => [
    ...(flags.batchNorm
      ? [{ units, activation: 'linear', init: act === 'relu' || act === 'leakyRelu' ? 'he' : 'glorot' } as DenseSpec,
        { type: 'batchNormalization', activation: act } as LayerSpec]
      : [{ units, activation: act } as DenseSpec]),
    ...(flags.dropout ? [{ type: 'dropout', rate: flags.dropout } as LayerSpec] : []),
  ]);
}

/** Model spec for the task: softmax + cross-entropy for classes, a linear output + mse for values. */
export function buildSpec(inputs: number, enc: Encoded, flags: TrainFlags): ModelSpec {
  const hidden = hiddenLayers(flags);
  const lr = flags.lr ?? DEFAULT_LR[flags.optimizer];
  const optimizer = { type: flags.optimizer, learningRate: lr, ...(flags.weightDecay !== undefined ? { weightDecay: flags.weightDecay } : {}) };
  if (flags.huberDelta !== undefined && flags.loss !== 'huber') throw new CliError(`--huber-delta needs --loss huber${flags.loss ? `, not ${flags.loss}` : ''}`);
  const delta = flags.huberDelta !== undefined ? { huberDelta: flags.huberDelta } : {};
  if (enc.task === 'classification') {
    const loss = flags.loss ?? 'categoricalCrossEntropy';
    // mse and binary cross-entropy on classes: one sigmoid unit per class against one-hot targets,
    // so that the class names still map one-to-one onto the outputs
    const activation: ActivationName = loss === 'categoricalCrossEntropy' ? 'softmax' : 'sigmoid';
    return { inputs, layers: [...hidden, { units: enc.classes.length, activation }], loss, ...delta, optimizer, seed: flags.seed, classes: enc.classes } as ModelSpec;
  }
  const loss = flags.loss ?? 'mse';
  if (loss === 'categoricalCrossEntropy') throw new CliError('--loss categoricalCrossEntropy needs a class target, but this is regression (--task)');
  if (flags.classWeight) throw new CliError('--class-weight needs a class target, but this is regression (--task); the rows of a regression are not in classes');
  return { inputs, layers: [...hidden, { units: 1, activation: loss === 'binaryCrossEntropy' ? 'sigmoid' : 'linear' }], loss, ...delta, optimizer, seed: flags.seed } as ModelSpec;
}

/** One-hot rows for classes (works for softmax and per-class sigmoid outputs alike), else values. */
function targetsOf(enc: Encoded, y: Int32Array | Float32Array): Matrix | Float32Array {
  if (enc.task === 'regression') return y as Float32Array;
  const k = enc.classes.length, data = new Float32Array(y.length * k);
  y.forEach((c, i) => {
    data[i * k + c] = 1;
  });
  return { data, shape: [y.length, k] };
}

interface Split {
  x: Matrix;
  y: Int32Array | Float32Array;
}

/**
 * Train/test split: stratified by class for classifiers (trainTestSplit's choice of rows and
 * order); for values, the same seeded split with a single stratum. The rows are reordered in
 * place, train rows first: the two sets are views of the rows as read, not copies.
 */
function split(x: Matrix, enc: Encoded, testFraction: number, seed: number): { train: Split; test: Split | null } {
  const y = enc.task === 'classification' ? enc.y : enc.values;
  if (testFraction === 0) return { train: { x, y }, test: null };
  const { train } = splitRows(enc.task === 'classification' ? enc.y : null, testFraction, seed, y.length);
  const order = new Uint32Array(train.buffer, 0, x.shape[0]);
  permuteRowsInPlace(x, [y], order);
  const n = train.length, cols = x.shape[1], rows = x.shape[0];
  return {
    train: { x: { data: x.data.subarray(0, n * cols), shape: [n, cols] }, y: y.subarray(0, n) },
    test: { x: { data: x.data.subarray(n * cols, rows * cols), shape: [rows - n, cols] }, y: y.subarray(n) },
  };
}

export function epochLine(e: EpochLogs, epochs: number): string {
  const parts = [`epoch ${String(e.epoch).padStart(String(epochs).length)}/${epochs}`, `loss ${f4(e.loss)}`];
  if (e.accuracy !== undefined) parts.push(`acc ${f4(e.accuracy)}`);
  if (e.valLoss !== undefined) parts.push(`val_loss ${f4(e.valLoss)}`);
  if (e.valAccuracy !== undefined) parts.push(`val_acc ${f4(e.valAccuracy)}`);
  parts.push(`${count(e.samplesPerSecond)} samples/s`);
  return parts.join('  ');
}

/** A cli-progress bar per epoch on stderr: running loss and accuracy, samples/s, ETA. */
export function progressCallbacks(rows: number, epochs: number, enabled: boolean, hasAccuracy: boolean): Pick<FitOptions, 'onBatchEnd'> & { stop(): void } {
  if (!enabled) return { stop() {} };
  const acc = hasAccuracy ? ' | acc {acc}' : '';
  const bar = new SingleBar({
    format: `epoch {epoch}/${epochs} [{bar}] {percentage}% | loss {loss}${acc} | {speed} samples/s | ETA {eta_formatted}`,
    stream: process.stderr, hideCursor: true, clearOnComplete: true, barsize: 24, etaBuffer: 50, fps: 10,
  });
  let epoch = 0, seen = 0, lossSum = 0, correct = 0, t0 = 0;
  // Ctrl-C mid-epoch: give the terminal its cursor back, then end as an interrupted command does
  const interrupted = (): void => {
    bar.stop();
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  return {
    onBatchEnd(b) {
      if (b.epoch !== epoch) {
        if (epoch > 0) bar.stop();
        epoch = b.epoch;
        seen = lossSum = correct = 0;
        t0 = performance.now();
        bar.start(rows, 0, { epoch, loss: '—', acc: '—', speed: '—' });
      }
      seen += b.size;
      lossSum += b.loss * b.size;
      correct += (b.accuracy ?? 0) * b.size;
      const speed = seen / Math.max((performance.now() - t0) / 1000, 1e-9);
      bar.update(seen, { loss: f4(lossSum / seen), acc: f4(correct / seen), speed: count(speed) });
      // the epoch line follows on stdout: clear the bar first so the two never interleave
      if (b.batch === b.batches) {
        bar.stop();
        epoch = 0;
      }
    },
    stop() {
      bar.stop();
      process.removeListener('SIGINT', interrupted);
    },
  };
}

/** A backend that cannot allocate (wasm's 4 GiB, the machine's memory) is a model too big to train here. */
export function outOfMemory(backend: string, e: unknown): CliError | null {
  if (e instanceof RangeError && /cannot allocate/.test(e.message)) {
    return new CliError(`the model does not fit in memory on the ${backend} backend (${e.message}); use fewer or smaller layers, or a smaller --batch-size`);
  }
  return null;
}

export function outOfMemoryIsUserError<T>(backend: string, make: () => T): T {
  try {
    return make();
  } catch (e) {
    throw outOfMemory(backend, e) ?? e;
  }
}

async function train(data: string, flags: TrainFlags): Promise<void> {
  if (await shouldStream(data, flags)) return trainStreamed(data, flags);
  const human = !flags.json;
  const chatty = human && !flags.quiet;
  // fail on unwritable outputs before spending minutes training
  if (flags.save) await checkWritable(flags.save, 'model');
  if (flags.plot) await checkWritable(flags.plot, 'plot');
  if (flags.checkpoint) await checkWritable(flags.checkpoint, 'checkpoint');

  let table: Table | null = await readTable(data, { target: flags.target, header: flags.header, delimiter: flags.delimiter, labels: flags.labels, need: 'required' });
  const enc = encodeTarget(table.target!, flags.task, table.source);
  const { train: trainSet, test } = split(table.x, enc, flags.testSplit, flags.seed);
  const rowsRead = table.x.shape[0], cols = table.x.shape[1], source = table.source, targetName = table.target!.name;
  // the target column as read is garbage once encoded
  table = null;
  if (test && test.x.shape[0] === 0) {
    throw new CliError(`--test-split ${flags.testSplit} of ${rowsRead} rows leaves no test rows; use a larger fraction or --test-split 0`);
  }
  const trainRows = trainSet.x.shape[0];
  const validationSplit = flags.validationSplit ?? (trainRows >= AUTO_VALIDATION_MIN_ROWS ? AUTO_VALIDATION_SPLIT : 0);
  const valRows = Math.floor(trainRows * validationSplit), fitRows = trainRows - valRows;
  if (validationSplit > 0 && (valRows < 1 || fitRows < 1)) {
    throw new CliError(`--validation-split ${validationSplit} of ${trainRows} training rows leaves an empty training or validation set`);
  }

  const { backend, report } = await chooseBackend(flags);
  const spec = buildSpec(cols, enc, flags);
  // standardize with the statistics of the rows the model is fitted on: not the validation rows
  // (fit holds out the last ones) and never the test rows
  spec.normalization = fitNormalization({ data: trainSet.x.data.subarray(0, fitRows * cols), shape: [fitRows, cols] });
  const model = outOfMemoryIsUserError(backend.name, () => new Model(spec, backend));

  if (chatty) {
    out(`backend: ${describeBackend(report)}`);
    const what = enc.task === 'classification' ? `${enc.classes.length} classes` : 'regression';
    out(`data: ${source}: ${count(rowsRead)} rows × ${cols} features, target '${targetName}' (${what})`);
    out(`split: ${count(fitRows)} train, ${count(valRows)} validation, ${count(test?.x.shape[0] ?? 0)} test`);
    out(`model: ${[spec.inputs, ...spec.layers.map((l) => (isDense(l) ? l.units : describeLayer(l)))].join(' → ')} (${flags.activation}, ${(spec.layers[spec.layers.length - 1] as DenseSpec).activation} output), `
      + `${spec.loss}, ${flags.optimizer} lr ${spec.optimizer.learningRate}, ${count(model.paramCount)} parameters`);
    for (const line of model.summary({ print: false }).text.split('\n')) out(line);
    const stopping = flags.patience === 'none' ? 'no early stopping'
      : `early stopping on ${valRows > 0 ? 'val_loss' : 'loss'} after ${flags.patience} epoch${flags.patience === 1 ? '' : 's'} without improvement, best weights kept`;
    out(`training: up to ${flags.epochs} epochs, batch ${flags.batchSize}, ${stopping}`);
  }

  const progress = progressCallbacks(fitRows, flags.epochs, chatty && flags.progress && process.stderr.isTTY === true, enc.task === 'classification');
  const t0 = performance.now();
  let history;
  try {
    history = await model.fit(trainSet.x, targetsOf(enc, trainSet.y), {
      epochs: flags.epochs,
      batchSize: flags.batchSize,
      seed: flags.seed,
      validationSplit,
      ...(flags.classWeight ? { classWeight: flags.classWeight } : {}),
      earlyStopping: flags.patience !== 'none' ? { patience: flags.patience, restoreBestWeights: true } : undefined,
      checkpoint: flags.checkpoint ? { path: flags.checkpoint, saveBestOnly: true } : undefined,
      onBatchEnd: progress.onBatchEnd,
      onEpochEnd: (e) => {
        if (chatty) out(epochLine(e, flags.epochs));
      },
    });
  } catch (e) {
    // the optimizer state and the batch buffers are allocated by the first fit
    throw outOfMemory(backend.name, e) ?? e;
  } finally {
    progress.stop();
  }
  const elapsed = (performance.now() - t0) / 1000;
  const testMetrics = test ? model.evaluate(test.x, targetsOf(enc, test.y)) : null;
  if (testMetrics && enc.task === 'classification') {
    // accuracy as `evaluate` and `predict` count it (argmax), whatever the output and loss: the
    // model's own count is exact-match over sigmoid outputs, and absent for mse
    const predicted = model.predictClasses(test!.x);
    let right = 0;
    for (let i = 0; i < predicted.length; i++) if (predicted[i] === test!.y[i]) right++;
    testMetrics.accuracy = right / predicted.length;
  }
  const testScores = test && enc.task === 'classification' ? classMetrics(model, test.x, test.y as Int32Array, enc.classes.length) : null;
  await finishTraining(flags, {
    model, spec, history, elapsed, testMetrics, testScores, enc, source, report,
    rows: { train: fitRows, validation: valRows, test: test?.x.shape[0] ?? 0 },
  });
}

/** What a training run ends with, in memory or streamed: for the model file, the plot and the summary. */
export interface TrainingOutcome {
  model: Model;
  spec: ModelSpec;
  history: History;
  elapsed: number;
  testMetrics: Evaluation | null;
  testScores: ClassificationMetrics | null;
  enc: { task: 'classification'; classes: string[] } | { task: 'regression' };
  source: string;
  report: BackendReport;
  rows: { train: number; validation: number; test: number };
}

/** Saves the model and the plot, and prints the summary (or the --json object). */
export async function finishTraining(flags: TrainFlags, o: TrainingOutcome): Promise<void> {
  const { model, spec, history, elapsed, testMetrics, testScores, enc, report } = o;
  const last = history.epochs[history.epochs.length - 1];
  const fitRows = o.rows.train, testRows = o.rows.test;
  if (flags.save) await saveModel(model, flags.save);
  if (flags.plot) await writeOutput(flags.plot, trainingCurvesSvg(history.epochs, `deltaprop: ${o.source}`), 'plot');

  if (flags.json) {
    out(JSON.stringify({
      loss: last.loss, accuracy: last.accuracy ?? null,
      val_loss: last.valLoss ?? null, val_accuracy: last.valAccuracy ?? null,
      test_loss: testMetrics?.loss ?? null, test_accuracy: testMetrics?.accuracy ?? null,
      ...metricsJson(last, testMetrics, testScores, enc),
      backend: report.backend, isa: report.isa, threads: report.threads,
      epochs: history.epochs.length, stopped_early: history.stoppedEarly, best_epoch: history.bestEpoch ?? null,
      seconds: Number(elapsed.toFixed(3)),
      rows: o.rows,
      task: enc.task, classes: enc.task === 'classification' ? enc.classes : null,
      model: flags.save ?? null, plot: flags.plot ?? null,
    }));
    return;
  }
  const speed = (fitRows * history.epochs.length) / Math.max(elapsed, 1e-9);
  const stopped = history.stoppedEarly ? ` (stopped early; best epoch ${history.bestEpoch} restored)` : '';
  out(`trained ${history.epochs.length} epoch${history.epochs.length === 1 ? '' : 's'} in ${seconds(elapsed)}${stopped}, ${count(speed)} samples/s on ${report.backend} (${report.isa}, ${report.threads} thread${report.threads === 1 ? '' : 's'})`);
  const trainAcc = last.accuracy !== undefined ? `  accuracy ${f4(last.accuracy)}` : '';
  out(`train: loss ${f4(last.loss)}${trainAcc}${scoresText(last.f1, last.auc, last, enc)}`);
  if (last.valLoss !== undefined) {
    const valAcc = last.valAccuracy !== undefined ? `  accuracy ${f4(last.valAccuracy)}` : '';
    out(`validation: loss ${f4(last.valLoss)}${valAcc}${scoresText(last.valF1, last.valAuc, { mae: last.valMae, rmse: last.valRmse, r2: last.valR2 }, enc)}`);
  }
  if (flags.save) out(`saved model: ${flags.save}`);
  if (flags.plot) out(`saved plot: ${flags.plot}`);
  // the last line is the held-out result, for people and for scripts that grep it
  if (testMetrics) {
    if (testMetrics.accuracy !== undefined) {
      if (testScores && enc.task === 'classification') for (const line of classMetricLines(testScores, enc.classes, 'test: ')) out(line);
      out(`test loss: ${f4(testMetrics.loss)} (${count(testRows)} held-out rows)`);
      out(`test accuracy: ${f4(testMetrics.accuracy)}`);
    } else {
      out(`test: ${regressionLine(testMetrics)}`);
      out(`test loss (${spec.loss}): ${f4(testMetrics.loss)} (${count(testRows)} held-out rows)`);
    }
  }
}

/**
 * The summary's scores after loss and accuracy: macro F1 (and ROC AUC) for classes, MAE, RMSE
 * and R² for values. (The per-epoch logs of a classifier trained with mse hold regression
 * numbers on the one-hot targets: not shown, the test lines count classes as evaluate does.)
 */
function scoresText(f1: number | undefined, auc: number | undefined, reg: { mae?: number; rmse?: number; r2?: number }, enc: { task: string }): string {
  if (enc.task === 'classification') {
    if (f1 === undefined) return '';
    return `  macro f1 ${f4(f1)}${auc !== undefined ? `  roc_auc ${f4(auc)}` : ''}`;
  }
  return reg.mae !== undefined ? `  ${regressionLine(reg)}` : '';
}

/** The metrics of the --json summary beyond loss and accuracy, null where they do not apply. */
function metricsJson(last: EpochLogs, test: Evaluation | null, scores: ClassificationMetrics | null, enc: TrainingOutcome['enc']): Record<string, unknown> {
  const classes = enc.task === 'classification';
  const n = (v: number | undefined): number | null => v ?? null;
  return {
    f1: classes ? n(last.f1) : null, precision: classes ? n(last.precision) : null, recall: classes ? n(last.recall) : null, roc_auc: classes ? n(last.auc) : null,
    val_f1: classes ? n(last.valF1) : null, val_roc_auc: classes ? n(last.valAuc) : null,
    test_precision: n(scores?.precision), test_recall: n(scores?.recall), test_f1: n(scores?.f1), test_roc_auc: n(scores?.auc),
    test_per_class: scores && classes ? perClassJson(scores, enc.classes) : null,
    mae: classes ? null : n(last.mae), rmse: classes ? null : n(last.rmse), r2: classes ? null : n(last.r2),
    val_mae: classes ? null : n(last.valMae), val_rmse: classes ? null : n(last.valRmse), val_r2: classes ? null : n(last.valR2),
    test_mae: classes ? null : n(test?.mae), test_rmse: classes ? null : n(test?.rmse), test_r2: classes ? null : n(test?.r2),
  };
}
