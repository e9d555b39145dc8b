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

/**
 * Splits rows into train and test sets, stratified: each class contributes the same fraction of its
 * rows to the test set, picked by a seeded permutation.
 */
export function trainTestSplit(d: { x: Matrix; y: Int32Array }, testFraction: number, seed: number):
  { train: { x: Matrix; y: Int32Array }; test: { x: Matrix; y: Int32Array } } {
  const rows = d.x.shape[0], cols = d.x.shape[1];
  const order = permutation(rows, seed);
  const byClass = new Map<number, number[]>();
  for (const r of order) {
    const list = byClass.get(d.y[r]) ?? [];
    list.push(r);
    byClass.set(d.y[r], list);
  }
  const trainRows: number[] = [], testRows: number[] = [];
  for (const list of [...byClass.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1])) {
    const nTest = Math.round(list.length * testFraction);
    testRows.push(...list.slice(0, nTest));
    trainRows.push(...list.slice(nTest));
  }
  const take = (picked: number[]): { x: Matrix; y: Int32Array } => {
    const x = new Float32Array(picked.length * cols), y = new Int32Array(picked.length);
    picked.forEach((r, i) => {
      x.set(d.x.data.subarray(r * cols, r * cols + cols), i * cols);
      y[i] = d.y[r];
    });
    return { x: { data: x, shape: [picked.length, cols] }, y };
  };
  // shuffle the concatenated class lists so that rows of a class are not contiguous
  const mix = (rowsIn: number[]): number[] => Array.from(permutation(rowsIn.length, seed + 1), (i) => rowsIn[i]);
  return { train: take(mix(trainRows)), test: take(mix(testRows)) };
}
