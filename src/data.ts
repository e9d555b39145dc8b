// Inputs and targets as users give them, checked once and turned into dense float32 rows.

/** A row-major matrix: `data.length === shape[0] * shape[1]`. */
export interface Matrix {
  data: Float32Array;
  shape: [rows: number, cols: number];
}

/** Rows as arrays, or a flat Float32Array / number[] with its shape. */
export type MatrixInput =
  | Matrix
  | { data: ArrayLike<number>; shape: [number, number] }
  | ArrayLike<number>[];

/**
 * Targets: class indices (one per row) for a classifier, or a matrix (one-hot rows, or values for
 * regression). A flat array of numbers is read as class indices for a softmax output and as one
 * value per row for a one-output model.
 */
export type TargetInput = MatrixInput | ArrayLike<number>;

export class InputError extends Error {
  override name = 'InputError';
}

function isShaped(x: unknown): x is { data: ArrayLike<number>; shape: [number, number] } {
  return typeof x === 'object' && x !== null && 'data' in x && 'shape' in x;
}

/**
 * Checks `x` and returns it as a Matrix (copying only when it is not already float32).
 * `finite: 'staged'` leaves out the scan for NaN and ±Infinity: the caller checks each batch once
 * it is in backend memory (checkStagedFinite), where a SIMD reduction takes microseconds and this
 * scan would cost as much as the forward pass of a small model.
 */
export function toMatrix(x: MatrixInput, what: string, cols?: number, finite: 'now' | 'staged' = 'now'): Matrix {
  let m: Matrix;
  if (isShaped(x)) {
    const [r, c] = x.shape ?? [];
    if (!Array.isArray(x.shape) || x.shape.length !== 2 || !isCount(r) || !isCount(c)) {
      throw new InputError(`${what}: shape must be [rows, cols] of non-negative integers, got ${JSON.stringify(x.shape)}`);
    }
    if (x.data == null || typeof x.data.length !== 'number') {
      throw new InputError(`${what}: data must be a Float32Array or an array of numbers`);
    }
    if (x.data.length !== r * c) {
      throw new InputError(`${what}: data has ${x.data.length} values but shape [${r}, ${c}] needs ${r * c}`);
    }
    if (!(x.data instanceof Float32Array)) checkFloat32Range(x.data, c, what);
    m = { data: x.data instanceof Float32Array ? x.data : Float32Array.from(x.data), shape: [r, c] };
  } else if (Array.isArray(x)) {
    const rows = x.length;
    if (rows > 0 && (x[0] == null || typeof (x[0] as ArrayLike<number>).length !== 'number')) {
      throw new InputError(`${what}: expected an array of rows (arrays of numbers), got ${typeof x[0]} at row 0`);
    }
    const c = rows === 0 ? (cols ?? 0) : (x[0] as ArrayLike<number>).length;
    const data = new Float32Array(rows * c);
    for (let i = 0; i < rows; i++) {
      const row = x[i] as ArrayLike<number>;
      if (row == null || typeof row.length !== 'number') {
        throw new InputError(`${what}: row ${i} is not an array of numbers`);
      }
      if (row.length !== c) {
        throw new InputError(`${what}: row ${i} has ${row.length} values, row 0 has ${c}`);
      }
      for (let j = 0; j < c; j++) {
        const v = row[j];
        if (typeof v !== 'number') {
          throw new InputError(`${what}: row ${i}, column ${j} is ${typeof v}, not a number`);
        }
        if (Number.isFinite(v) && !Number.isFinite(Math.fround(v))) throw beyondFloat32(what, v, i, j);
        data[i * c + j] = v;
      }
    }
    m = { data, shape: [rows, c] };
  } else {
    throw new InputError(`${what}: expected an array of rows or { data, shape }, got ${describe(x)}`);
  }
  if (cols !== undefined && m.shape[1] !== cols) {
    throw new InputError(`${what}: rows have ${m.shape[1]} values, the model expects ${cols}`);
  }
  if (finite === 'now') checkFinite(m.data, m.shape[1], what);
  return m;
}

/**
 * For rows [start, start + rows) of X, staged in backend memory whose sum of squares (the
 * backend's reduction over the staged copy) is `sumOfSquares`: a NaN or ±Infinity there makes
 * the sum non-finite, and only then are the rows scanned, to throw checkFinite's error naming the
 * value. (Large finite values can overflow the sum too; the scan then finds nothing to refuse.)
 */
export function checkStagedFinite(sumOfSquares: number, X: Matrix, start: number, rows: number, what: string): void {
  if (Number.isFinite(sumOfSquares)) return;
  const cols = X.shape[1];
  checkFinite(X.data.subarray(start * cols, (start + rows) * cols), cols, what, start);
}

/** Throws naming the first NaN or ±Infinity (row and column). */
/** Throws naming the first NaN or ±Infinity of data (rows of `cols`; row numbers from `firstRow`). */
export function checkFinite(data: Float32Array, cols: number, what: string, firstRow = 0): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      const row = cols > 0 ? Math.floor(i / cols) : 0;
      throw new InputError(`${what}: ${data[i]} at row ${firstRow + row}, column ${i - row * cols}; values must be finite`);
    }
  }
}

/** A finite number that float32 cannot hold (|v| > 3.4e38): it would become ±Infinity. */
function beyondFloat32(what: string, v: number, row: number, col: number): InputError {
  return new InputError(`${what}: ${v} at row ${row}, column ${col} is beyond the float32 range (±3.4e38)`);
}

/** Throws naming the first finite value that float32 cannot hold (NaN and ±Infinity are checkFinite's). */
function checkFloat32Range(data: ArrayLike<number>, cols: number, what: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Number.isFinite(v) && !Number.isFinite(Math.fround(v))) {
      const row = cols > 0 ? Math.floor(i / cols) : 0;
      throw beyondFloat32(what, v, row, i - row * cols);
    }
  }
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0;
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name} without a shape`;
  return typeof x;
}

/**
 * Targets as dense rows of width `outputs`. Class indices become one-hot rows when `classes` is
 * true (softmax output); otherwise a flat array is one value per row and needs `outputs === 1`.
 */
export function toTargets(y: TargetInput, rows: number, outputs: number, classes: boolean,
  binary: boolean): Matrix {
  const flat = !isShaped(y) && !(Array.isArray(y) && y.length > 0 && typeof y[0] !== 'number');
  if (flat) {
    const v = y as ArrayLike<number>;
    if (v == null || typeof v.length !== 'number') {
      throw new InputError(`targets: expected class indices, values or a matrix, got ${describe(y)}`);
    }
    if (v.length !== rows) {
      throw new InputError(`targets: ${v.length} labels for ${rows} input rows; they must match`);
    }
    const data = new Float32Array(rows * outputs);
    if (classes) {
      for (let i = 0; i < rows; i++) {
        const c = v[i];
        if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c >= outputs) {
          throw new InputError(`targets: label ${String(c)} at row ${i} is out of range; classes are integers 0..${outputs - 1}`);
        }
        data[i * outputs + c] = 1;
      }
      return { data, shape: [rows, outputs] };
    }
    if (outputs !== 1) {
      throw new InputError(`targets: one value per row, but the model has ${outputs} outputs; give a [rows, ${outputs}] matrix`);
    }
    for (let i = 0; i < rows; i++) {
      const t = v[i];
      if (typeof t !== 'number') throw new InputError(`targets: row ${i} is ${typeof t}, not a number`);
      if (Number.isFinite(t) && !Number.isFinite(Math.fround(t))) throw beyondFloat32('targets', t, i, 0);
      data[i] = t;
    }
    checkFinite(data, 1, 'targets');
    if (binary) checkProbabilities(data, 1);
    return { data, shape: [rows, 1] };
  }
  const m = toMatrix(y as MatrixInput, 'targets');
  if (m.shape[0] !== rows) {
    throw new InputError(`targets: ${m.shape[0]} rows for ${rows} input rows; they must match`);
  }
  if (m.shape[1] !== outputs) {
    throw new InputError(`targets: rows have ${m.shape[1]} values, the model has ${outputs} outputs`);
  }
  if (binary || classes) checkProbabilities(m.data, outputs);
  return m;
}

function checkProbabilities(data: Float32Array, cols: number): void {
  for (let i = 0; i < data.length; i++) {
    if (data[i] < 0 || data[i] > 1) {
      const row = Math.floor(i / cols);
      throw new InputError(`targets: ${data[i]} at row ${row}, column ${i - row * cols} is not in [0, 1]; cross-entropy targets are probabilities`);
    }
  }
}

/** Per-feature mean and standard deviation of x (std 1 for a constant feature), for standardization. */
export function fitNormalization(x: Matrix): { mean: number[]; std: number[] } {
  const [rows, cols] = x.shape;
  if (rows === 0) throw new InputError('normalization: no rows to fit on');
  checkFinite(x.data, cols, 'normalization');
  const mean = new Array<number>(cols).fill(0), std = new Array<number>(cols).fill(0);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j] += x.data[i * cols + j];
  for (let j = 0; j < cols; j++) mean[j] /= rows;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) std[j] += (x.data[i * cols + j] - mean[j]) ** 2;
  for (let j = 0; j < cols; j++) std[j] = Math.sqrt(std[j] / rows) || 1;
  return { mean, std };
}

/** One batch of a source: rows of inputs and their targets, in the forms `fit(x, y)` takes. */
export interface Batch {
  x: MatrixInput;
  y: TargetInput;
}

/**
 * A source of batches for `fit`, `evaluate` and `validationData`: an async iterable of `{ x, y }`
 * of any number of rows each, iterated once per epoch (every `[Symbol.asyncIterator]()` call
 * starts a new pass; a one-shot async generator serves one epoch). `rows`, where the source knows
 * it, is the rows of one pass: it gives BatchLogs their batch count and the ROC AUC its room.
 */
export interface BatchSource extends AsyncIterable<Batch> {
  readonly rows?: number;
}

/** True for a BatchSource (anything async-iterable); arrays and matrices are not. */
export function isBatchSource(v: unknown): v is BatchSource {
  return typeof v === 'object' && v !== null && typeof (v as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

/** The predicted class of each row of outputs: the argmax, or for one sigmoid output 1 when p ≥ 0.5. */
export function classesOf({ data, shape: [rows, outs] }: Matrix): Int32Array {
  const classes = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    if (outs === 1) {
      classes[i] = data[i] >= 0.5 ? 1 : 0;
      continue;
    }
    let best = 0;
    for (let j = 1; j < outs; j++) if (data[i * outs + j] > data[i * outs + best]) best = j;
    classes[i] = best;
  }
  return classes;
}
