// The weights of examples, as Keras defines them: `sampleWeight` (one weight per row) and
// `classWeight` (a weight per class, or 'balanced': n_samples / (n_classes · count_c), as
// scikit-learn's compute_class_weight and Keras compute it), multiplied together when both are
// given. Each row's loss (and so its gradient) is multiplied by its weight and the batch's sum is
// divided by the batch size (Keras's SUM_OVER_BATCH_SIZE), not by the sum of the weights; the
// metrics are weighted means (Keras's weighted metrics, scikit-learn's sample_weight).
import { InputError, type Matrix } from '../data.js';
import { FLOAT32_MAX, shown, type ModelSpec } from '../spec.js';

/** A weight per class: keys are class indices (0, 1, …) or the model's class names. */
export type ClassWeightMap = Readonly<Record<string, number>> | ReadonlyMap<string | number, number>;
export type ClassWeight = 'balanced' | ClassWeightMap;

const weightOk = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= FLOAT32_MAX;

/** The classes of a model's targets: its outputs, or 2 (0 and 1) for one sigmoid output. */
export function classCount(outputs: number): number {
  return outputs === 1 ? 2 : outputs;
}

/** The class of target row i: the argmax of the row, or for one output, target ≥ 0.5. */
export function classOf(Y: Matrix, i: number): number {
  const n = Y.shape[1], y = Y.data;
  if (n === 1) return y[i] >= 0.5 ? 1 : 0;
  let best = 0;
  for (let j = 1; j < n; j++) if (y[i * n + j] > y[i * n + best]) best = j;
  return best;
}

/**
 * The per-row weights of `sampleWeight` for `rows` rows, as float32 (what the loss reads), or null
 * when not given. Throws an InputError naming the count or the row that is wrong.
 */
export function checkSampleWeight(sampleWeight: ArrayLike<number> | null | undefined, rows: number, what = 'sampleWeight'): Float32Array | null {
  if (sampleWeight === undefined || sampleWeight === null) return null;
  if (typeof sampleWeight !== 'object' || typeof (sampleWeight as ArrayLike<number>).length !== 'number') {
    throw new InputError(`${what}: must be an array of one weight per row, got ${shown(sampleWeight)}`);
  }
  if (sampleWeight.length !== rows) {
    throw new InputError(`${what}: ${sampleWeight.length} weights for ${rows} rows (one weight per row)`);
  }
  const w = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    const v = sampleWeight[i];
    if (!weightOk(v)) throw new InputError(`${what}[${i}]: must be a finite number ≥ 0 (within float32), got ${shown(v)}`);
    w[i] = v;
  }
  return w;
}

/**
 * One weight per class (classCount(outputs) of them) from a classWeight option; 'balanced' counts
 * the classes of the targets Y. Classes a map leaves out weigh 1 (as in Keras).
 */
export function classWeights(spec: ModelSpec, outputs: number, Y: Matrix, classWeight: ClassWeight): Float64Array {
  if (spec.loss !== 'binaryCrossEntropy' && spec.loss !== 'categoricalCrossEntropy') {
    throw new InputError(`classWeight: needs a classification loss (binaryCrossEntropy or categoricalCrossEntropy), and the loss is ${spec.loss}; use sampleWeight to weight the rows of a regression`);
  }
  const k = classCount(outputs), rows = Y.shape[0];
  const weights = new Float64Array(k).fill(1);
  if (classWeight === 'balanced') {
    const counts = new Float64Array(k);
    for (let i = 0; i < rows; i++) counts[classOf(Y, i)]++;
    let present = 0;
    for (let c = 0; c < k; c++) if (counts[c] > 0) present++;
    // n_samples / (n_classes · count_c) over the classes that occur (a class with no rows weighs nothing)
    for (let c = 0; c < k; c++) weights[c] = counts[c] > 0 ? rows / (present * counts[c]) : 0;
    return weights;
  }
  if (typeof classWeight !== 'object' || classWeight === null || Array.isArray(classWeight)) {
    throw new InputError(`classWeight: must be 'balanced' or a map from class to weight ({ 0: 1, 1: 5 }), got ${shown(classWeight)}`);
  }
  const entries: [unknown, unknown][] = classWeight instanceof Map ? [...classWeight.entries()] : Object.entries(classWeight);
  const names = spec.classes;
  for (const [key, v] of entries) {
    const c = classIndex(key, k, names);
    if (c < 0) {
      const known = names ? `0 to ${k - 1} or the class names ${names.map((n) => `'${n}'`).join(', ')}` : `0 to ${k - 1}`;
      throw new InputError(`classWeight: unknown class ${typeof key === 'string' ? `'${key.slice(0, 40)}'` : shown(key)} (the classes are ${known})`);
    }
    if (!weightOk(v)) throw new InputError(`classWeight[${String(key).slice(0, 40)}]: must be a finite number ≥ 0 (within float32), got ${shown(v)}`);
    weights[c] = v;
  }
  return weights;
}

/** The class a classWeight key names: an index in [0, k) (a number or its digits), or a class name; −1 if none. */
function classIndex(key: unknown, k: number, names: readonly string[] | undefined): number {
  if (typeof key === 'number') return Number.isInteger(key) && key >= 0 && key < k ? key : -1;
  if (typeof key !== 'string') return -1;
  if (/^(0|[1-9][0-9]*)$/.test(key) && Number(key) < k) return Number(key);
  return names ? names.indexOf(key) : -1;
}

/**
 * The training rows' weights: sampleWeight times the weight of each row's class, or null when
 * neither is given. Refuses weights that are all 0 (there would be nothing to learn from).
 */
export function rowWeights(spec: ModelSpec, outputs: number, Y: Matrix, sampleWeight: Float32Array | null,
  classWeight: ClassWeight | undefined): Float32Array | null {
  if (classWeight === undefined || classWeight === null) return checkNotAllZero(sampleWeight, 'sampleWeight');
  const perClass = classWeights(spec, outputs, Y, classWeight);
  const rows = Y.shape[0], w = new Float32Array(rows);
  for (let i = 0; i < rows; i++) w[i] = perClass[classOf(Y, i)] * (sampleWeight ? sampleWeight[i] : 1);
  return checkNotAllZero(w, sampleWeight ? 'sampleWeight × classWeight' : 'classWeight');
}

/** Throws when every weight is 0 (nothing to learn from, and weighted means of 0/0). */
export function checkNotAllZero(w: Float32Array | null, what: string): Float32Array | null {
  if (w && w.length > 0 && !w.some((v) => v > 0)) throw new InputError(`${what}: every row's weight is 0, so there is nothing to learn from`);
  return w;
}

/** Σ w, or the row count without weights. */
export function weightSum(w: Float32Array | null, rows: number): number {
  if (!w) return rows;
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i];
  return s;
}
