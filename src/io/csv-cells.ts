// The cells of a CSV file as numbers: the strict rule for what is a number in a data file, a fast
// exact conversion of the common decimal cell, and records checked cell by cell into batches of
// float32 rows (the per-cell cost of every pass).
import { InputError, type Batch } from '../data.js';
import { clipped } from '../spec.js';
import type { RecordChunk } from './csv-stream.js';

// spaces around a number are allowed here rather than by the parser, which would trim text too
const NUMBER = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** Strict: '', ' ', '0x10', 'Infinity' and 'NaN' are not numbers in a data file. */
export const isNumber = (cell: string): boolean => NUMBER.test(cell);

/**
 * The cell as a number, or NaN when it is not one by isNumber's rule. Number() alone also takes
 * '' and blanks (0), hex, binary and octal integers: those all come out as non-negative integers,
 * so only integers need the pattern, and the common fractional cell costs one conversion.
 */
export function cellNumber(cell: string): number {
  const d = plainDecimal(cell);
  if (d === d) return d;
  const v = +cell;
  if (v - v !== 0) return NaN; // NaN, ±Infinity
  if (Number.isInteger(v) && !NUMBER.test(cell)) return NaN;
  return v;
}

/** 10^k, exact in a double for k ≤ 22. */
const POW10 = Float64Array.from({ length: 23 }, (_, k) => 10 ** k);

/**
 * The common cell, [+-]digits[.digits] with at most 15 digits, converted from its characters; NaN
 * for any other (cellNumber then asks Number()). Exact as Number() is: the digits as an integer
 * are below 2^53 and 10^k ≤ 10^15 is a double, so the one correctly rounded division is the
 * correctly rounded value. Number() on a short string is a runtime call several times slower.
 */
function plainDecimal(s: string): number {
  const n = s.length;
  if (n === 0 || n > 17) return NaN;
  let i = 0, c = s.charCodeAt(0), neg = false;
  if (c === 45 || c === 43) {
    neg = c === 45;
    i = 1;
  }
  let m = 0, digits = 0, frac = -1;
  for (; i < n; i++) {
    c = s.charCodeAt(i) - 48;
    if (c >= 0 && c <= 9) {
      m = m * 10 + c;
      digits++;
    } else if (c === -2 && frac < 0) { // '.'
      frac = digits;
    } else {
      return NaN;
    }
  }
  if (digits === 0 || digits > 15) return NaN;
  const v = frac < 0 || frac === digits ? m : m / POW10[digits - frac];
  return neg ? -v : v;
}

/** Canonical spelling of a numeric class label, so that '1', '1.0' and '01' are one class. */
export const canonicalLabel = (v: string): string => (isNumber(v) ? String(Number(v)) : v);

/** A cell that is not a number, as a message. */
export function notANumber(path: string, line: number, column: string, cell: string, why: string): InputError {
  const c = cell.trim();
  const what = c === '' ? 'an empty cell' : `'${clipped(c)}'`;
  return new InputError(`${path}: line ${line}, column ${column}: ${what} is not a number (${why})`);
}

const shownClasses = (cs: string[]): string => (cs.length > 12 ? `${cs.slice(0, 12).join(', ')}, …` : cs.join(', '));

/**
 * Records into batches of float32 rows and targets, checking every cell. Synchronous, so that the
 * per-cell work runs as plain loops, not in an async generator's heap context.
 */
export class BatchFiller {
  x: Float32Array;
  y: Float32Array | Int32Array;
  n = 0;
  /** Data rows seen (filtered or not): what `filter` is asked about. */
  row = 0;
  private readonly cols: number;

  constructor(private readonly path: string, private readonly featureCols: Int32Array, private readonly tcol: number,
    private readonly colName: (j: number) => string, private readonly classIndex: Map<string, number> | null,
    private readonly classes: string[] | null, private readonly batchRows: number, private readonly filter: ((row: number) => boolean) | undefined) {
    this.cols = featureCols.length;
    this.x = new Float32Array(batchRows * this.cols);
    this.y = classIndex ? new Int32Array(batchRows) : new Float32Array(batchRows);
  }

  full(): boolean {
    return this.n === this.batchRows;
  }

  /** The rows so far as a batch; the next rows go to new arrays (the batch may be kept). */
  batch(): Batch {
    const n = this.n, cols = this.cols;
    const b: Batch = n === this.batchRows ? { x: { data: this.x, shape: [n, cols] }, y: this.y }
      : { x: { data: this.x.subarray(0, n * cols), shape: [n, cols] }, y: this.y.subarray(0, n) };
    this.x = new Float32Array(this.batchRows * cols);
    this.y = this.classIndex ? new Int32Array(this.batchRows) : new Float32Array(this.batchRows);
    this.n = 0;
    return b;
  }

  /** Takes records from `from` until the batch is full; returns the next record. */
  take(chunk: RecordChunk, from: number): number {
    this.row = chunk.firstRow + from;
    const { records, lines } = chunk, cols = this.cols, fc = this.featureCols, x = this.x, y = this.y, tcol = this.tcol;
    let r = from;
    for (; r < records.length && this.n < this.batchRows; r++, this.row++) {
      if (this.filter && !this.filter(this.row)) continue;
      const rec = records[r], o = this.n * cols;
      for (let k = 0; k < cols; k++) {
        const j = fc[k], v = cellNumber(rec[j]);
        if (v !== v) throw notANumber(this.path, lines[r], this.colName(j), rec[j], 'feature columns must be numeric');
        const f = Math.fround(v);
        if (f - f !== 0) throw new InputError(`${this.path}: line ${lines[r]}, column ${this.colName(j)}: ${clipped(rec[j].trim())} is beyond the float32 range (±3.4e38)`);
        x[o + k] = f;
      }
      const cell = rec[tcol];
      if (this.classIndex) {
        const label = cell.trim();
        const c = this.classIndex.get(label) ?? this.classIndex.get(canonicalLabel(label));
        if (c === undefined) throw new InputError(`${this.path}: line ${lines[r]}: label '${clipped(label)}' is not one of the classes (${shownClasses(this.classes!)})`);
        y[this.n] = c;
      } else {
        const v = cellNumber(cell);
        if (v !== v) throw notANumber(this.path, lines[r], this.colName(tcol), cell, 'without classes, the target must be numeric');
        const f = Math.fround(v);
        if (f - f !== 0) throw new InputError(`${this.path}: line ${lines[r]}, column ${this.colName(tcol)}: ${clipped(cell.trim())} is beyond the float32 range (±3.4e38)`);
        y[this.n] = f;
      }
      this.n++;
    }
    return r;
  }
}
