// The data sets shipped with the package (Node): Iris and the UCI 8×8 digits, from the UCI ML
// repository (CC BY 4.0) as distributed by scikit-learn. See data/README.md.
import { parse } from 'csv-parse/sync';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InputError, type Matrix } from '../data.js';
import { permutation } from '../random.js';
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
 * the classes `y` (one class for a split without strata). The two are views of one array, train
 * first: together, the order of permuteRowsInPlace that puts the test rows last.
 */
export function splitRows(y: Int32Array, testFraction: number, seed: number): { train: Uint32Array; test: Uint32Array } {
  const rows = y.length;
  const d = { y };
  const order = permutation(rows, seed);
  // rows per class, then each class's share of the test set
  const perClass = new Map<number, number>();
  for (let i = 0; i < rows; i++) perClass.set(d.y[i], (perClass.get(d.y[i]) ?? 0) + 1);
  const classes = Array.from(perClass.keys()).sort((a, b) => a - b);
  // Each class's rows form one run of each list, classes in ascending order and rows in the
  // permutation's order within a class: a cursor per class into each list.
  const testAt = new Map<number, number>(), trainAt = new Map<number, number>(), testLeft = new Map<number, number>();
  let nTestAll = 0, nTrainAll = 0;
  for (const c of classes) {
    const n = perClass.get(c)!, nTest = Math.round(n * testFraction);
    testAt.set(c, nTestAll);
    trainAt.set(c, nTrainAll);
    testLeft.set(c, nTest);
    nTestAll += nTest;
    nTrainAll += n - nTest;
  }
  const testRows = new Uint32Array(nTestAll), trainRows = new Uint32Array(nTrainAll);
  for (let i = 0; i < rows; i++) {
    const r = order[i], c = d.y[r];
    const left = testLeft.get(c)!;
    if (left > 0) {
      testLeft.set(c, left - 1);
      const at = testAt.get(c)!;
      testRows[at] = r;
      testAt.set(c, at + 1);
    } else {
      const at = trainAt.get(c)!;
      trainRows[at] = r;
      trainAt.set(c, at + 1);
    }
  }
  // shuffle the concatenated class runs so that rows of a class are not contiguous
  const out = new Uint32Array(rows);
  const mixed = (picked: Uint32Array, at: number): void => {
    const mix = permutation(picked.length, seed + 1);
    for (let i = 0; i < picked.length; i++) out[at + i] = picked[mix[i]];
  };
  mixed(trainRows, 0);
  mixed(testRows, nTrainAll);
  return { train: out.subarray(0, nTrainAll), test: out.subarray(nTrainAll) };
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
