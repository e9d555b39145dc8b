// The data sets shipped with the package (Node): Iris and the UCI 8×8 digits, from the UCI ML
// repository (CC BY 4.0) as distributed by scikit-learn. See data/README.md.
import { parse } from 'csv-parse/sync';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Matrix } from '../data.js';
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

/** Splits rows into train and test sets by a seeded permutation. */
export function trainTestSplit(d: Dataset, testFraction: number, seed: number):
  { train: { x: Matrix; y: Int32Array }; test: { x: Matrix; y: Int32Array } } {
  const rows = d.x.shape[0], cols = d.x.shape[1];
  const order = permutation(rows, seed);
  const nTest = Math.round(rows * testFraction), nTrain = rows - nTest;
  const take = (from: number, to: number): { x: Matrix; y: Int32Array } => {
    const x = new Float32Array((to - from) * cols), y = new Int32Array(to - from);
    for (let i = from; i < to; i++) {
      x.set(d.x.data.subarray(order[i] * cols, order[i] * cols + cols), (i - from) * cols);
      y[i - from] = d.y[order[i]];
    }
    return { x: { data: x, shape: [to - from, cols] }, y };
  };
  return { train: take(0, nTrain), test: take(nTrain, rows) };
}
