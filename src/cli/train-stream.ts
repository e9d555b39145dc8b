// `deltaprop train FILE.csv --stream` (and any CSV above STREAM_AUTO_BYTES): training without
// loading the file. One streaming pass checks every row (a bad cell stops with its line before any
// training or file is written), finds the classes, counts the rows and fits the standardization
// (Welford, on the rows the model is fitted on); then every epoch streams the file again through
// fit's shuffle buffer, and the test rows are evaluated by a last pass. Rows go to the test,
// validation or training set by a seeded hash of their index: the same split on every pass, with
// nothing stored per row (not stratified: at the sizes that stream, each class's share of a split
// is within a fraction of a percent of its share of the file).
import { stat } from 'node:fs/promises';
import type { Batch, BatchSource, Matrix } from '../data.js';
import { InputError } from '../data.js';
import { canonicalLabel, cellNumber } from '../io/csv-cells.js';
import { csvRecordChunks, csvSource, readCsvHead, rowFraction, targetColumn, type CsvHead } from '../io/csv-stream.js';

export { rowFraction };
import { Model } from '../model/model.js';
import type { ClassificationMetrics } from '../metrics.js';
import { clipped, describeLayer, type DenseSpec } from '../spec.js';
import { checkWritable, chooseBackend, count, describeBackend, out } from './common.js';
import { CliError, type Encoded } from './data.js';
import {
  AUTO_VALIDATION_MIN_ROWS, AUTO_VALIDATION_SPLIT, buildSpec, epochLine, finishTraining, outOfMemory, outOfMemoryIsUserError, progressCallbacks,
  type TrainFlags,
} from './train.js';

/**
 * CSV files at least this large train streamed unless --no-stream (gzip files: a quarter of it);
 * DELTAPROP_STREAM_BYTES sets another size.
 */
export const STREAM_AUTO_BYTES = 256 * 1024 * 1024;
/** Validation rows are kept in memory up to this many bytes of features; beyond, they stream too. */
const VALIDATION_MEMORY_BYTES = 64 * 1024 * 1024;
/** More distinct target values than this cannot be classes (the output layer would be that wide). */
const MAX_CLASSES = 65_536;

/** Whether DATA trains streamed: --stream / --no-stream, else a CSV file above the size threshold. */
export async function shouldStream(data: string, flags: TrainFlags): Promise<boolean> {
  const csv = !data.startsWith('builtin:') && !/idx\d/i.test(data) && !/\.idx(\.gz)?$/i.test(data);
  if (flags.stream === true) {
    if (!csv) throw new CliError(`--stream reads CSV files; ${data} is ${data.startsWith('builtin:') ? 'a built-in data set' : 'an IDX file'}, which trains in memory`);
    return true;
  }
  if (flags.stream === false || !csv) return false;
  const env = process.env.DELTAPROP_STREAM_BYTES;
  const threshold = env !== undefined && /^\d+$/.test(env.trim()) ? Number(env) : STREAM_AUTO_BYTES;
  try {
    const s = await stat(data);
    return s.isFile() && s.size >= (/\.gz$/i.test(data) ? threshold / 4 : threshold);
  } catch {
    return false; // the reader names the problem
  }
}

export const TEST = 0, VALIDATION = 1, FIT = 2;

/** Running mean and sum of squared deviations per column (Welford), mergeable (Chan et al.). */
class Moments {
  n = 0;
  readonly mean: Float64Array;
  readonly m2: Float64Array;
  constructor(cols: number) {
    this.mean = new Float64Array(cols);
    this.m2 = new Float64Array(cols);
  }

  add(x: Float32Array, o: number): void {
    const n = ++this.n, mean = this.mean, m2 = this.m2;
    for (let j = 0; j < mean.length; j++) {
      const d = x[o + j] - mean[j];
      mean[j] += d / n;
      m2[j] += d * (x[o + j] - mean[j]);
    }
  }

  merge(b: Moments): void {
    const n = this.n + b.n;
    if (b.n === 0) return;
    for (let j = 0; j < this.mean.length; j++) {
      const d = b.mean[j] - this.mean[j];
      this.m2[j] += b.m2[j] + (d * d * this.n * b.n) / n;
      this.mean[j] += (d * b.n) / n;
    }
    this.n = n;
  }

  /** (x − mean) / std with the population std, 1 for a constant column (as fitNormalization). */
  normalization(): { mean: number[]; std: number[] } {
    return { mean: Array.from(this.mean), std: Array.from(this.m2, (m) => Math.sqrt(m / this.n) || 1) };
  }
}

interface Scan {
  head: CsvHead;
  tcol: number;
  featureNames: string[];
  rows: number;
  counts: [number, number, number];
  moments: [Moments, Moments];
  enc: Encoded;
  /** The validation rows when they fit in memory (features, and the target as label index or value). */
  val: { x: Float32Array; label: Int32Array; value: Float32Array; n: number } | null;
}

/**
 * The first pass: every cell checked (with its line), the split of each row, the moments of the
 * fitted rows, the target's labels (classes) or values, and the validation rows if they fit.
 */
async function scan(path: string, flags: TrainFlags, testSplit: number, valSplit: number, seed: number): Promise<Scan> {
  let head: CsvHead, tcol: number;
  try {
    head = await readCsvHead(path, { header: flags.header, delimiter: flags.delimiter });
    tcol = targetColumn(flags.target, head);
  } catch (e) {
    throw e instanceof InputError ? new CliError(e.message) : e;
  }
  if (head.width < 2) throw new CliError(`${path}: only ${head.width} column; need at least one feature column and the target`);
  const featureCols = head.names.map((_, j) => j).filter((j) => j !== tcol), cols = featureCols.length;
  const colName = (j: number): string => (head.header ? `'${head.names[j]}'` : String(j));
  const moments: [Moments, Moments] = [new Moments(cols), new Moments(cols)];
  const counts: [number, number, number] = [0, 0, 0];
  const labels = new Map<string, number>(); // canonical label → first-seen index
  let tooManyLabels = false, firstText: { line: number; cell: string } | null = null, fractional = false;
  let firstOverflow: { line: number; cell: string } | null = null;
  const valCap = Math.floor(VALIDATION_MEMORY_BYTES / 4 / Math.max(1, cols));
  let val: Scan['val'] = { x: new Float32Array(1024 * cols), label: new Int32Array(1024), value: new Float32Array(1024), n: 0 };
  const row = new Float32Array(cols);
  const valEnd = testSplit + (1 - testSplit) * valSplit;
  let rows = 0;
  for await (const { records, lines } of csvRecordChunks(head, tcol)) {
    for (let r = 0; r < records.length; r++, rows++) {
      const rec = records[r];
      for (let k = 0; k < cols; k++) {
        const j = featureCols[k], cell = rec[j], v = cellNumber(cell);
        if (v !== v) {
          const c = cell.trim();
          throw new CliError(`${path}: line ${lines[r]}, column ${colName(j)}: ${c === '' ? 'an empty cell' : `'${clipped(c)}'`} is not a number (feature columns must be numeric)`);
        }
        const f = Math.fround(v);
        if (f - f !== 0) throw new CliError(`${path}: line ${lines[r]}, column ${colName(j)}: ${clipped(cell.trim())} is beyond the float32 range (±3.4e38)`);
        row[k] = f;
      }
      const cell = rec[tcol].trim(), v = cellNumber(cell);
      let labelIndex = -1;
      if (v !== v) {
        firstText ??= { line: lines[r], cell };
      } else {
        if (!Number.isInteger(v)) fractional = true;
        if (!Number.isFinite(Math.fround(v))) firstOverflow ??= { line: lines[r], cell };
      }
      if (!tooManyLabels) {
        const key = v !== v ? cell : canonicalLabel(cell);
        let i = labels.get(key);
        if (i === undefined) {
          if (labels.size === MAX_CLASSES) {
            tooManyLabels = true;
            labels.clear();
          } else {
            labels.set(key, i = labels.size);
          }
        }
        labelIndex = i ?? -1;
      }
      const u = rowFraction(seed, rows), part = u < testSplit ? TEST : u < valEnd ? VALIDATION : FIT;
      counts[part]++;
      if (part !== TEST) moments[part === FIT ? 0 : 1].add(row, 0);
      if (part === VALIDATION && val) {
        if (val.n === valCap) {
          val = null; // too many to hold: validation streams
        } else {
          if (val.n === val.label.length) val = grow(val, cols);
          val.x.set(row, val.n * cols);
          val.label[val.n] = labelIndex;
          val.value[val.n] = v === v ? v : 0;
          val.n++;
        }
      }
    }
  }
  if (rows === 0) throw new CliError(`${path}: no data rows${head.header ? ' after the header' : ''}`);
  const name = head.names[tcol];
  // the task, as encodeTarget decides it for a file in memory
  let enc: Encoded;
  const task = flags.task;
  if (task === 'regression' || (task === 'auto' && !firstText && fractional)) {
    if (firstText) throw new CliError(`${path}: line ${firstText.line}, target '${name}': '${clipped(firstText.cell)}' is not a number; regression needs a numeric target`);
    if (firstOverflow) throw new CliError(`${path}: line ${firstOverflow.line}, target '${name}': ${clipped(firstOverflow.cell)} is beyond the float32 range (±3.4e38)`);
    enc = { task: 'regression', values: new Float32Array(0) };
  } else {
    if (tooManyLabels) {
      throw new CliError(`${path}: the target '${name}' has more than ${count(MAX_CLASSES)} distinct values, too many for classes`
        + (firstText ? '' : '; for a numeric target, use --task regression'));
    }
    const distinct = Array.from(labels.keys());
    const classes = firstText ? distinct.sort() : distinct.sort((a, b) => Number(a) - Number(b));
    if (classes.length < 2) throw new CliError(`${path}: the target '${name}' has a single class ('${classes[0]}'); a classifier needs at least 2`);
    enc = { task: 'classification', classes, y: new Int32Array(0) };
    if (val) {
      // first-seen label indices → sorted class indices
      const index = new Map(classes.map((c, i) => [c, i])), remap = new Int32Array(distinct.length);
      labels.forEach((first, key) => (remap[first] = index.get(key)!));
      for (let i = 0; i < val.n; i++) val.label[i] = remap[val.label[i]];
    }
  }
  return { head, tcol, featureNames: featureCols.map((j) => head.names[j]), rows, counts, moments, enc, val };
}

function grow(v: NonNullable<Scan['val']>, cols: number): NonNullable<Scan['val']> {
  const n = v.label.length * 2;
  const x = new Float32Array(n * cols), label = new Int32Array(n), value = new Float32Array(n);
  x.set(v.x);
  label.set(v.label);
  value.set(v.value);
  return { x, label, value, n: v.n };
}

/** One-hot rows for models whose outputs are one sigmoid per class (mse, binary cross-entropy). */
function oneHot(source: BatchSource, k: number): BatchSource {
  return {
    ...(source.rows !== undefined ? { rows: source.rows } : {}),
    async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
      for await (const b of source) {
        const y = b.y as Int32Array, data = new Float32Array(y.length * k);
        for (let i = 0; i < y.length; i++) data[i * k + y[i]] = 1;
        yield { x: b.x, y: { data, shape: [y.length, k] } };
      }
    },
  };
}

export async function trainStreamed(path: string, flags: TrainFlags): Promise<void> {
  const human = !flags.json, chatty = human && !flags.quiet;
  if (flags.save) await checkWritable(flags.save, 'model');
  if (flags.plot) await checkWritable(flags.plot, 'plot');
  if (flags.checkpoint) await checkWritable(flags.checkpoint, 'checkpoint');
  const testSplit = flags.testSplit, seed = flags.seed;
  const s = await scan(path, flags, testSplit, flags.validationSplit ?? AUTO_VALIDATION_SPLIT, seed);
  const trainRows = s.counts[VALIDATION] + s.counts[FIT];
  // the automatic validation split needs enough rows; without it, the validation rows are fitted
  const valSplit = flags.validationSplit ?? (trainRows >= AUTO_VALIDATION_MIN_ROWS ? AUTO_VALIDATION_SPLIT : 0);
  if (valSplit === 0) {
    s.moments[0].merge(s.moments[1]);
    s.counts[FIT] += s.counts[VALIDATION];
    s.counts[VALIDATION] = 0;
    s.val = null;
  }
  const [testRows, valRows, fitRows] = s.counts;
  if (testSplit > 0 && testRows === 0) throw new CliError(`--test-split ${testSplit} of ${s.rows} rows leaves no test rows; use a larger fraction or --test-split 0`);
  if (fitRows === 0 || (valSplit > 0 && valRows === 0)) {
    throw new CliError(`--validation-split ${valSplit} of ${trainRows} training rows leaves an empty training or validation set`);
  }
  const valEnd = testSplit + (1 - testSplit) * valSplit;
  const ranges: Record<number, [number, number]> = { [TEST]: [0, testSplit], [VALIDATION]: [testSplit, valEnd], [FIT]: [valEnd, 1] };

  const { backend, report } = await chooseBackend(flags);
  const enc = s.enc, cols = s.featureNames.length;
  const spec = buildSpec(cols, enc, flags);
  spec.normalization = s.moments[0].normalization();
  const model = outOfMemoryIsUserError(backend.name, () => new Model(spec, backend));
  const classes = enc.task === 'classification' ? enc.classes : undefined;
  const k = classes?.length ?? 1;
  const hot = classes !== undefined && spec.loss !== 'categoricalCrossEntropy';
  const source = async (which: number, rows: number): Promise<BatchSource> => {
    const [from, to] = ranges[which];
    const src = await csvSource(path, { target: s.tcol, header: s.head.header, delimiter: s.head.delimiter, classes, split: { seed, from, to }, rows });
    return hot ? oneHot(src, k) : src;
  };
  const trainSource = await source(FIT, fitRows);
  let validation: [Matrix, Matrix | Int32Array | Float32Array] | BatchSource | undefined;
  if (valRows > 0 && s.val) {
    const v = s.val, x: Matrix = { data: v.x.subarray(0, v.n * cols), shape: [v.n, cols] };
    if (classes === undefined) validation = [x, v.value.subarray(0, v.n)];
    else if (!hot) validation = [x, v.label.subarray(0, v.n)];
    else {
      const data = new Float32Array(v.n * k);
      for (let i = 0; i < v.n; i++) data[i * k + v.label[i]] = 1;
      validation = [x, { data, shape: [v.n, k] }];
    }
  } else if (valRows > 0) {
    validation = await source(VALIDATION, valRows);
  }

  if (chatty) {
    out(`backend: ${describeBackend(report)}`);
    const what = classes ? `${classes.length} classes` : 'regression';
    out(`data: ${path}: ${count(s.rows)} rows × ${cols} features, target '${s.head.names[s.tcol]}' (${what}), streamed`);
    out(`split: ${count(fitRows)} train, ${count(valRows)} validation, ${count(testRows)} test`);
    out(`model: ${[String(spec.inputs), ...spec.layers.map(describeLayer)].join(' → ')} (${flags.activation}, ${(spec.layers[spec.layers.length - 1] as DenseSpec).activation} output), `
      + `${spec.loss}, ${flags.optimizer} lr ${spec.optimizer.learningRate}, ${count(model.paramCount)} parameters`);
    for (const line of model.summary({ print: false }).text.split('\n')) out(line);
    const stopping = flags.patience === 'none' ? 'no early stopping'
      : `early stopping on ${valRows > 0 ? 'val_loss' : 'loss'} after ${flags.patience} epoch${flags.patience === 1 ? '' : 's'} without improvement, best weights kept`;
    out(`training: up to ${flags.epochs} epochs, batch ${flags.batchSize}, ${stopping}`);
  }

  const progress = progressCallbacks(fitRows, flags.epochs, chatty && flags.progress && process.stderr.isTTY === true, classes !== undefined);
  const t0 = performance.now();
  let history;
  try {
    history = await model.fit(trainSource, {
      epochs: flags.epochs,
      batchSize: flags.batchSize,
      seed,
      validationData: validation as [Matrix, Matrix] | BatchSource | undefined,
      earlyStopping: flags.patience !== 'none' ? { patience: flags.patience, restoreBestWeights: true } : undefined,
      checkpoint: flags.checkpoint ? { path: flags.checkpoint, saveBestOnly: true } : undefined,
      onBatchEnd: progress.onBatchEnd,
      onEpochEnd: (e) => {
        if (chatty) out(epochLine(e, flags.epochs));
      },
    });
  } catch (e) {
    throw outOfMemory(backend.name, e) ?? e;
  } finally {
    progress.stop();
  }
  const elapsed = (performance.now() - t0) / 1000;
  let testMetrics = null, testScores: ClassificationMetrics | null = null;
  if (testRows > 0) {
    testMetrics = await model.evaluate(await source(TEST, testRows));
    if (classes && testMetrics.perClass) {
      // accuracy as predict counts it (argmax), whatever the output: the diagonal of the confusion
      const pc = testMetrics.perClass;
      let right = 0;
      for (let c = 0; c < pc.recall.length; c++) right += pc.recall[c] * pc.support[c];
      testMetrics.accuracy = right / testRows;
      testScores = { precision: testMetrics.precision!, recall: testMetrics.recall!, f1: testMetrics.f1!, perClass: pc };
      if (testMetrics.auc !== undefined) testScores.auc = testMetrics.auc;
    }
  }
  await finishTraining(flags, {
    model, spec, history, elapsed, testMetrics, testScores, enc, source: path, report,
    rows: { train: fitRows, validation: valRows, test: testRows },
  });
}
