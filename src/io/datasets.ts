// The data sets shipped with the package (Node): Iris and the UCI 8×8 digits, from the UCI ML
// repository (CC BY 4.0) as distributed by scikit-learn. See data/README.md.
import { parse } from 'csv-parse/sync';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InputError, type Matrix } from '../data.js';
import { permutationInto } from '../random.js';
import { packageRoot } from './packageRoot.js';

export interface Dataset {
  name: string;
  x: Matrix;
  /** Class index per row. */
  y: Int32Array;
  classes: string[];
  featureNames: string[];
}

export type BuiltinName = 'iris' | 'digits';
export const BUILTIN_DATASETS: BuiltinName[] = ['iris', 'digits'];

/** Loads a built-in data set by name. */
export function loadBuiltin(name: BuiltinName): Dataset {
  if (name === 'iris') return loadIris();
  if (name === 'digits') return loadDigits();
  throw new Error(`unknown built-in data set '${String(name)}' (known: ${BUILTIN_DATASETS.join(', ')})`);
}

function numericRows(text: string): number[][] {
  return (parse(text, { cast: true, skipEmptyLines: true, trim: true }) as unknown[][]).map((r) => r.map(Number));
}

function toDataset(name: string, rows: number[][], features: number, classes: string[], featureNames: string[]): Dataset {
  const x = new Float32Array(rows.length * features);
  const y = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    for (let j = 0; j < features; j++) x[i * features + j] = r[j];
    y[i] = r[features];
  });
  return { name, x: { data: x, shape: [rows.length, features] }, y, classes, featureNames };
}

function loadIris(): Dataset {
  const text = readFileSync(join(packageRoot(), 'data', 'iris.csv'), 'utf8');
  const newline = text.indexOf('\n');
  // first line: rows, features, class names
  const head = text.slice(0, newline).trim().split(',');
  const classes = head.slice(2);
  return toDataset('iris', numericRows(text.slice(newline + 1)), Number(head[1]), classes,
    ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)']);
}

function loadDigits(): Dataset {
  const text = gunzipSync(readFileSync(join(packageRoot(), 'data', 'digits.csv.gz'))).toString('utf8');
  return toDataset('digits', numericRows(text), 64, Array.from({ length: 10 }, (_, i) => String(i)),
    Array.from({ length: 64 }, (_, i) => `pixel_${Math.floor(i / 8)}_${i % 8}`));
}

/**
 * Splits rows into train and test sets, stratified: each class contributes the same fraction of its
 * rows to the test set, picked by a seeded permutation. Works in typed arrays and loops only, so
 * that no step's cost in stack or memory grows beyond the rows themselves.
 */
export function trainTestSplit(d: { x: Matrix; y: Int32Array }, testFraction: number, seed: number):
  { train: { x: Matrix; y: Int32Array }; test: { x: Matrix; y: Int32Array } } {
  const rows = d.x.shape[0];
  if (d.y.length !== rows) throw new InputError(`trainTestSplit: ${d.y.length} labels for ${rows} rows; they must match`);
  if (!(testFraction >= 0 && testFraction < 1)) throw new InputError(`trainTestSplit: testFraction must be in [0, 1), got ${String(testFraction)}`);
  const { train, test } = splitRows(d.y, testFraction, seed);
  const take = (picked: Uint32Array): { x: Matrix; y: Int32Array } => ({ x: gatherRows(d.x, picked), y: Int32Array.from(picked, (r) => d.y[r]) });
  return { train: take(train), test: take(test) };
}

/**
 * trainTestSplit's choice as row indices, in the order of its train and test sets: stratified by
 * the classes `y` (one class for a split without strata: null, with `rows`). The two are views
 * of one array, train first: together, the order of permuteRowsInPlace that puts the test rows
 * last. Each class's rows go, in the order of a seeded permutation, first to the test set (its
 * share, rounded) and then to the train set; each set is then mixed by a second permutation, so
 * that rows of a class are not contiguous. Typed arrays only (12 bytes a row), no maps.
 */
export function splitRows(y: Int32Array | null, testFraction: number, seed: number, rows = y?.length ?? 0): { train: Uint32Array; test: Uint32Array } {
  const { id, count } = denseClasses(y, rows);
  const order = new Uint32Array(rows);
  permutationInto(order, rows, seed);
  // each class's rows form one run of each set, classes in ascending order: a cursor per class into each
  const classes = count.length, testAt = new Float64Array(classes), trainAt = new Float64Array(classes), testLeft = new Float64Array(classes);
  let nTest = 0, nTrain = 0;
  for (let c = 0; c < classes; c++) {
    const t = Math.round(count[c] * testFraction);
    testAt[c] = nTest;
    trainAt[c] = nTrain;
    testLeft[c] = t;
    nTest += t;
    nTrain += count[c] - t;
  }
  const runs = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) {
    const r = order[i], c = id(r);
    if (testLeft[c] > 0) {
      testLeft[c]--;
      runs[nTrain + testAt[c]++] = r;
    } else {
      runs[trainAt[c]++] = r;
    }
  }
  // the permutation's array serves again for each set's mix (12 bytes a row in all)
  const out = new Uint32Array(rows);
  permutationInto(order, nTrain, seed + 1);
  for (let i = 0; i < nTrain; i++) out[i] = runs[order[i]];
  permutationInto(order, nTest, seed + 1);
  for (let i = 0; i < nTest; i++) out[nTrain + i] = runs[nTrain + order[i]];
  return { train: out.subarray(0, nTrain), test: out.subarray(nTrain) };
}

/**
 * Each row's class as a dense index 0..k-1 in ascending order of the labels, and the rows per
 * class: labels in a small range are their own index (offset); others are ranked once.
 */
function denseClasses(y: Int32Array | null, rows: number): { id: (r: number) => number; count: Float64Array } {
  if (y === null || rows === 0) return { id: () => 0, count: Float64Array.of(rows) };
  let min = y[0], max = y[0];
  for (let i = 1; i < rows; i++) {
    const v = y[i];
    if (v < min) min = v;
    else if (v > max) max = v;
  }
  if (max - min < Math.max(1 << 16, rows)) {
    const span = max - min + 1, raw = new Float64Array(span);
    for (let i = 0; i < rows; i++) raw[y[i] - min]++;
    // classes with no rows take no index: a dense rank per label value
    const rank = new Int32Array(span);
    let k = 0;
    for (let v = 0; v < span; v++) if (raw[v] > 0) rank[v] = k++;
    const count = new Float64Array(k);
    for (let v = 0; v < span; v++) if (raw[v] > 0) count[rank[v]] = raw[v];
    return { id: (r) => rank[y[r] - min], count };
  }
  // labels spread wider than the rows: rank the distinct ones
  const sorted = Int32Array.from(y).sort();
  let k = 0;
  for (let i = 0; i < rows; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[k++] = sorted[i];
  const distinct = sorted.subarray(0, k), ids = new Int32Array(rows), count = new Float64Array(k);
  for (let i = 0; i < rows; i++) {
    let lo = 0, hi = k - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (distinct[mid] < y[i]) lo = mid + 1;
      else hi = mid;
    }
    ids[i] = lo;
    count[lo]++;
  }
  return { id: (r) => ids[r], count };
}

/**
 * Reorders the rows of x (and the entries of each of `ys`) in place so that row i becomes the
 * row `order[i]` was: no second copy of the data, only a bit per row to follow the cycles.
 */
export function permuteRowsInPlace(x: Matrix, ys: (Int32Array | Float32Array)[], order: Uint32Array): void {
  const rows = x.shape[0], cols = x.shape[1], d = x.data;
  if (order.length !== rows) throw new InputError(`permuteRowsInPlace: ${order.length} indices for ${rows} rows`);
  const done = new Uint8Array((rows + 7) >> 3), tmp = new Float32Array(cols), tmpY = new Float64Array(ys.length);
  for (let start = 0; start < rows; start++) {
    if (done[start >> 3] & (1 << (start & 7)) || order[start] === start) continue;
    for (let j = 0; j < cols; j++) tmp[j] = d[start * cols + j];
    for (let k = 0; k < ys.length; k++) tmpY[k] = ys[k][start];
    let p = start;
    for (;;) {
      done[p >> 3] |= 1 << (p & 7);
      const q = order[p];
      if (q === start) {
        for (let j = 0; j < cols; j++) d[p * cols + j] = tmp[j];
        for (let k = 0; k < ys.length; k++) ys[k][p] = tmpY[k];
        break;
      }
      for (let j = 0; j < cols; j++) d[p * cols + j] = d[q * cols + j];
      for (let k = 0; k < ys.length; k++) ys[k][p] = ys[k][q];
      p = q;
    }
  }
}

/** The rows of x at `rows`, in that order, as a new matrix. */
export function gatherRows(x: Matrix, rows: Uint32Array): Matrix {
  const cols = x.shape[1], out = new Float32Array(rows.length * cols), src = x.data;
  for (let i = 0; i < rows.length; i++) {
    const from = rows[i] * cols, to = i * cols;
    for (let j = 0; j < cols; j++) out[to + j] = src[from + j];
  }
  return { data: out, shape: [rows.length, cols] };
}
