// Data files as the CLI reads them: CSV (streamed through Papa Parse, gzip or not), IDX pairs (the
// MNIST family's format, gzip or not) and the built-in sets; and the mapping of a target column to
// classes or values. Every problem a user can cause is a CliError naming the file, line and column.
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { createGunzip, gunzip } from 'node:zlib';
import type { Matrix } from '../data.js';
import { InputError } from '../data.js';
import { canonicalLabel as canonical, cellNumber, isNumber } from '../io/csv-cells.js';
import { csvRecordChunks, readCsvHead, type CsvHead, type RaggedRow } from '../io/csv-stream.js';
import { BUILTIN_DATASETS, loadBuiltin, type BuiltinName } from '../io/datasets.js';
import { clipped } from '../spec.js';

/** A mistake in the command line or the files it names: printed as one line, no stack. */
export class CliError extends Error {
  override name = 'CliError';
}

/** The target column as read: raw cells (CSV), or classes already decoded (IDX, built-ins). */
export type Target =
  | { kind: 'text'; name: string; column: TargetColumn }
  | { kind: 'classes'; name: string; classes: string[]; y: Int32Array };

export interface Table {
  /** The data argument as the user wrote it, for messages. */
  source: string;
  x: Matrix;
  featureNames: string[];
  target: Target | null;
}

export interface ReadOptions {
  /** Target column: a header name, or an index (0-based, negative counts from the end). */
  target?: string;
  /** true/false forces, undefined detects. */
  header?: boolean;
  delimiter?: string;
  /** IDX labels file (else paired by name with the images file). */
  labels?: string;
  /**
   * 'required': a target must be found (train, evaluate). 'optional' (predict): a target column is
   * dropped when named with --target or when the rows are one wider than `features`.
   */
  need: 'required' | 'optional';
  /** The model's input width, when there is a model (evaluate, predict). */
  features?: number;
}

/** Reads DATA: `builtin:NAME`, an IDX images file (with its labels), or a CSV file. */
export async function readTable(source: string, opts: ReadOptions): Promise<Table> {
  if (source.startsWith('builtin:')) return readBuiltin(source);
  if (isIdxName(source)) return readIdx(source, opts);
  return readCsv(source, opts);
}

function readBuiltin(source: string): Table {
  const name = source.slice('builtin:'.length) as BuiltinName;
  if (!BUILTIN_DATASETS.includes(name)) {
    throw new CliError(`unknown built-in data set '${source}' (known: ${BUILTIN_DATASETS.map((n) => `builtin:${n}`).join(', ')})`);
  }
  const d = loadBuiltin(name);
  return { source, x: d.x, featureNames: d.featureNames, target: { kind: 'classes', name: 'class', classes: d.classes, y: d.y } };
}

// ---------------------------------------------------------------------------------------------
// Files

const REASONS: Record<string, string> = {
  ENOENT: 'no such file', EACCES: 'permission denied', EPERM: 'permission denied', EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory', EMFILE: 'too many open files',
};

function ioReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && REASONS[code]) ?? (e as Error).message;
}

/** Opens a file for reading, or throws a CliError saying why it cannot be read. */
export async function openForReading(path: string, what = 'file'): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new CliError(`${path}: cannot read ${what} (${ioReason(e)})`);
  }
  // open() succeeds on a directory; the read fails later with a less helpful message
  const st = await fh.stat();
  if (st.isDirectory()) {
    await fh.close();
    throw new CliError(`${path}: cannot read ${what} (is a directory)`);
  }
  return fh;
}

async function startsWithGzipMagic(fh: FileHandle): Promise<boolean> {
  const head = Buffer.alloc(2);
  const { bytesRead } = await fh.read(head, 0, 2, 0);
  return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
}

async function readAllBytes(path: string, what: string): Promise<Uint8Array> {
  const fh = await openForReading(path, what);
  try {
    const bytes = await fh.readFile();
    if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
      try {
        return await promisify(gunzip)(bytes);
      } catch (e) {
        throw new CliError(`${path}: corrupt gzip data (${(e as Error).message})`);
      }
    }
    return bytes;
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------------
// CSV

/**
 * Line breaks in the file (decompressed): one more than the rows can be, so the rows are stored
 * in one allocation of their final size, with no growth by copying.
 */
async function countLines(path: string): Promise<number> {
  const fh = await openForReading(path, 'data file');
  const gz = await startsWithGzipMagic(fh);
  const file = fh.createReadStream({ start: 0, highWaterMark: 1 << 20 });
  let lines = 0;
  try {
    const stream = gz ? file.pipe(createGunzip({ chunkSize: 1 << 20 })) : file;
    for await (const piece of stream as AsyncIterable<Buffer>) {
      for (let i = piece.indexOf(10); i >= 0; i = piece.indexOf(10, i + 1)) lines++;
    }
  } catch {
    // the parsing pass reports read and gzip errors with its own messages
  } finally {
    file.destroy();
  }
  return lines;
}

/**
 * The target column as read, encoded as it comes, so that no per-row string is kept: numbers
 * as float64 while every cell is one; from the first text cell on, an index per row into the
 * distinct labels (numbers among them by their canonical spelling). Lines are kept only where
 * they are not the previous row's plus one (a header, blank lines, line breaks inside quotes).
 */
export class TargetColumn {
  rows = 0;
  /** Numeric mode: the values (null once a text cell was seen). */
  values: Float64Array | null = null;
  /** Text mode: each row's index into `labels`. */
  index: Int32Array | null = null;
  readonly labels: string[] = [];
  readonly labelLine: number[] = [];
  private readonly lookup = new Map<string, number>();
  private readonly jumpRow: number[] = [];
  private readonly jumpLine: number[] = [];
  private lastLine = -1;
  /** First fractional number, first number beyond float32: rows, or -1. */
  fractionalRow = -1;
  overflowRow = -1;
  /** The overflowing cell as written (its number would print differently). */
  overflowCell = '';
  firstTextRow = -1;

  /** The column's storage is chosen by its first cell: a text target never holds 8 bytes a row of numbers. */
  constructor(private readonly capacity: number) {}

  push(raw: string, line: number): void {
    if (line !== this.lastLine + 1) {
      this.jumpRow.push(this.rows);
      this.jumpLine.push(line);
    }
    this.lastLine = line;
    const cell = raw.trim(), n = this.rows++;
    const v = cellNumber(cell);
    if (n === 0) {
      if (v === v) this.values = new Float64Array(this.capacity);
      else this.index = new Int32Array(this.capacity);
    }
    if (v === v) {
      if (this.fractionalRow < 0 && !Number.isInteger(v)) this.fractionalRow = n;
      if (this.overflowRow < 0 && !Number.isFinite(Math.fround(v))) {
        this.overflowRow = n;
        this.overflowCell = cell;
      }
    } else if (this.firstTextRow < 0) {
      this.firstTextRow = n;
      if (this.values) this.toText(n);
    }
    if (this.values) this.values[n] = v;
    else this.index![n] = this.label(v === v ? canonical(cell) : cell, line);
  }

  private label(key: string, line: number): number {
    let i = this.lookup.get(key);
    if (i === undefined) {
      if (this.labels.length >= MAX_LABELS) {
        throw new CliError(`the target has more than ${MAX_LABELS.toLocaleString('en-US')} distinct labels (line ${line}), too many for classes`);
      }
      this.lookup.set(key, i = this.labels.length);
      this.labels.push(key);
      this.labelLine.push(line);
    }
    return i;
  }

  /** From numbers to labels, at the first text cell (row n). */
  private toText(n: number): void {
    const index = new Int32Array(this.capacity), values = this.values!;
    for (let i = 0; i < n; i++) index[i] = this.label(String(values[i]), this.line(i));
    this.index = index;
    this.values = null;
  }

  /** The file line of row i. */
  line(i: number): number {
    let lo = 0, hi = this.jumpRow.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.jumpRow[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.jumpLine[lo] + (i - this.jumpRow[lo]);
  }

  /** Row i's label as text. */
  text(i: number): string {
    return this.values ? String(this.values[i]) : this.labels[this.index![i]];
  }
}

/** More distinct text labels than this cannot be classes (the output layer would be that wide). */
const MAX_LABELS = 65_536;

/** Index of the target column from a name or an index; a CliError lists the known columns. */
function targetIndex(spec: string, names: string[], header: boolean, source: string): number {
  if (header) {
    const byName = names.indexOf(spec);
    if (byName >= 0) {
      const all = names.flatMap((n, j) => (n === spec ? [j] : []));
      if (all.length > 1) {
        throw new CliError(`${source}: the target '${spec}' is ambiguous: the header has ${all.length} columns of that name `
          + `(columns ${all.join(', ')}); rename them, or give the target by its 0-based index`);
      }
      return byName;
    }
  }
  if (/^-?\d+$/.test(spec)) {
    const i = Number(spec), j = i < 0 ? names.length + i : i;
    if (j >= 0 && j < names.length) return j;
    throw new CliError(`${source}: target column ${spec} is out of range: the file has ${names.length} columns (0..${names.length - 1}, or -1 for the last)`);
  }
  const known = header ? names.map((n) => `'${n}'`).join(', ') : `0..${names.length - 1} (the file has no header row)`;
  throw new CliError(`${source}: unknown target column '${spec}' (known: ${known})`);
}

const raggedAgainstFirst: RaggedRow = (head, line, fields, firstLine) =>
  new CliError(`${head.path}: ragged rows: line ${line} has ${fields} field${fields === 1 ? '' : 's'}, line ${firstLine} has ${head.width}`);

/**
 * The CSV file into one Float32Array of its feature rows (sized from a count of its lines, so
 * never grown by copying) and its target column encoded as it comes, through the same reader
 * as a streamed pass: Papa Parse over the file in pieces, every cell checked with its line.
 */
async function readCsv(path: string, opts: ReadOptions): Promise<Table> {
  let head: CsvHead;
  try {
    head = await readCsvHead(path, { header: opts.header, delimiter: opts.delimiter });
  } catch (e) {
    throw e instanceof InputError ? new CliError(e.message) : e;
  }
  const { width, names, header } = head;
  let tcol = -1;
  if (opts.target !== undefined) {
    tcol = targetIndex(opts.target, names, header, path);
  } else if (opts.need === 'required') {
    tcol = width - 1;
  } else if (opts.features !== undefined && width === opts.features + 1) {
    tcol = width - 1; // the file still has its target column: predict ignores it
  }
  if (opts.need === 'required' && width < 2) {
    throw new CliError(`${path}: only ${width} column; need at least one feature column and the target`);
  }
  const featureCols = Int32Array.from(names.map((_, j) => j).filter((j) => j !== tcol));
  if (opts.features !== undefined && featureCols.length !== opts.features) {
    const after = tcol >= 0 ? ` besides the target '${names[tcol]}'` : '';
    throw new CliError(`${path}: rows have ${featureCols.length} feature columns${after}, but the model expects ${opts.features}`);
  }

  const maxRows = (await countLines(path)) + 1;
  const cols = featureCols.length;
  const x = new Float32Array(maxRows * cols);
  const target = tcol >= 0 ? new TargetColumn(maxRows) : null;
  const colName = (j: number): string => (header ? `'${names[j]}'` : String(j));
  let rows = 0;
  try {
    for await (const { records, lines } of csvRecordChunks(head, tcol, raggedAgainstFirst)) {
      if (rows + records.length > maxRows) throw new CliError(`${path}: the file changed while it was read (more rows than lines)`);
      for (let r = 0; r < records.length; r++, rows++) {
        const record = records[r], o = rows * cols;
        for (let k = 0; k < cols; k++) {
          const j = featureCols[k], cell = record[j], v = cellNumber(cell);
          if (v !== v) {
            const c = cell.trim();
            throw new CliError(`${path}: line ${lines[r]}, column ${colName(j)}: ${c === '' ? 'an empty cell' : `'${clipped(c)}'`} is not a number (feature columns must be numeric)`);
          }
          // a float32 holds at most ±3.4e38: 1e39 would become Infinity, and every statistic after it
          const f = Math.fround(v);
          if (f - f !== 0) throw new CliError(`${path}: line ${lines[r]}, column ${colName(j)}: ${clipped(cell.trim())} is beyond the float32 range (±3.4e38)`);
          x[o + k] = f;
        }
        target?.push(record[tcol], lines[r]);
      }
    }
  } catch (e) {
    throw e instanceof InputError ? new CliError(e.message) : e;
  }
  if (rows === 0) throw new CliError(`${path}: no data rows${header ? ' after the header' : ''}`);
  return {
    source: path,
    // a view: the rows were stored where they end up (the few spare rows are header and blank lines)
    x: { data: x.subarray(0, rows * cols), shape: [rows, cols] },
    featureNames: Array.from(featureCols, (j) => names[j]),
    target: target ? { kind: 'text', name: names[tcol], column: target } : null,
  };
}

// ---------------------------------------------------------------------------------------------
// IDX (http://yann.lecun.com/exdb/mnist/): big-endian header 0, 0, type, ndim; ndim uint32 sizes;
// then the values row-major.

const IDX_TYPES: Record<number, { size: number; read: (v: DataView, o: number) => number }> = {
  0x08: { size: 1, read: (v, o) => v.getUint8(o) },
  0x09: { size: 1, read: (v, o) => v.getInt8(o) },
  0x0b: { size: 2, read: (v, o) => v.getInt16(o) },
  0x0c: { size: 4, read: (v, o) => v.getInt32(o) },
  0x0d: { size: 4, read: (v, o) => v.getFloat32(o) },
  0x0e: { size: 8, read: (v, o) => v.getFloat64(o) },
};

const isIdxName = (path: string): boolean => /idx\d/i.test(basename(path)) || /\.idx(\.gz)?$/i.test(path);

interface Idx {
  type: number;
  dims: number[];
  values: Float32Array;
}

export function parseIdx(bytes: Uint8Array, path: string): Idx {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0 || !IDX_TYPES[bytes[2]] || bytes[3] === 0) {
    throw new CliError(`${path}: not an IDX file (bad magic number)`);
  }
  const type = bytes[2], ndim = bytes[3], t = IDX_TYPES[type];
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) throw new CliError(`${path}: truncated IDX header`);
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count * t.size;
  if (bytes.length !== expected) {
    throw new CliError(`${path}: IDX size mismatch: the header (${dims.join('×')}) needs ${expected} bytes, the file has ${bytes.length}`
      + (bytes.length < expected ? ' (truncated?)' : ''));
  }
  const values = new Float32Array(count);
  if (type === 0x08) {
    // pixels: scaled to [0, 1], the convention of every MNIST-family reference
    for (let i = 0; i < count; i++) values[i] = bytes[headerBytes + i] / 255;
  } else {
    for (let i = 0; i < count; i++) {
      const v = values[i] = t.read(view, headerBytes + i * t.size);
      // float64 items beyond ±3.4e38 (and NaN, Infinity) would train on Infinity or NaN
      if (!Number.isFinite(values[i])) throw new CliError(`${path}: value ${i} (item ${Math.floor(i / (count / dims[0]))}) is ${v}, not a finite float32`);
    }
  }
  return { type, dims, values };
}

/** The labels file that goes with an images file, by the MNIST naming convention. */
async function pairedLabels(images: string): Promise<string | null> {
  const name = basename(images);
  if (!/images-idx\d-ubyte/i.test(name)) return null;
  const stem = name.replace(/images-idx\d-ubyte/i, 'labels-idx1-ubyte').replace(/\.gz$/i, '');
  for (const candidate of [stem, `${stem}.gz`]) {
    const p = join(dirname(images), candidate);
    try {
      await (await open(p, 'r')).close();
      return p;
    } catch {
      // try the next spelling
    }
  }
  return null;
}

async function readIdx(path: string, opts: ReadOptions): Promise<Table> {
  const images = parseIdx(await readAllBytes(path, 'IDX images file'), path);
  if (images.dims.length < 2) {
    throw new CliError(`${path}: a 1-dimensional IDX file (labels?); give the images file as DATA and the labels with --labels`);
  }
  const rows = images.dims[0], cols = images.dims.slice(1).reduce((a, b) => a * b, 1);
  if (rows === 0) throw new CliError(`${path}: no data rows (the IDX file holds 0 items)`);
  if (opts.features !== undefined && cols !== opts.features) {
    throw new CliError(`${path}: items have ${cols} values (${images.dims.slice(1).join('×')}), but the model expects ${opts.features}`);
  }
  const table: Table = {
    source: path,
    x: { data: images.values, shape: [rows, cols] },
    featureNames: Array.from({ length: cols }, (_, i) => `pixel_${i}`),
    target: null,
  };
  // predict needs no labels: do not read (or fail on) a file it will not use
  if (opts.need === 'optional' && !opts.labels) return table;
  const labelsPath = opts.labels ?? await pairedLabels(path);
  if (!labelsPath) {
    if (opts.need === 'required') throw new CliError(`${path}: no labels file found next to it; give one with --labels FILE`);
    return table;
  }
  const labels = parseIdx(await readAllBytes(labelsPath, 'IDX labels file'), labelsPath);
  if (labels.dims.length !== 1) throw new CliError(`${labelsPath}: labels must be a 1-dimensional IDX file, got ${labels.dims.join('×')}`);
  if (labels.type !== 0x08 && labels.type !== 0x09 && labels.type !== 0x0b && labels.type !== 0x0c) {
    throw new CliError(`${labelsPath}: labels must be integers`);
  }
  if (labels.dims[0] !== rows) throw new CliError(`${labelsPath}: ${labels.dims[0]} labels for ${rows} images in ${path}; they must match`);
  // ubyte labels were scaled like pixels by parseIdx; undo that exactly
  const raw = labels.values, scale = labels.type === 0x08 ? 255 : 1;
  const distinct = new Set<number>();
  for (let i = 0; i < raw.length; i++) distinct.add(Math.round(raw[i] * scale));
  const classes = Array.from(distinct).sort((a, b) => a - b);
  const index = new Map(classes.map((c, i) => [c, i]));
  const y = new Int32Array(raw.length);
  for (let i = 0; i < raw.length; i++) y[i] = index.get(Math.round(raw[i] * scale))!;
  table.target = { kind: 'classes', name: 'label', classes: classes.map(String), y };
  return table;
}

// ---------------------------------------------------------------------------------------------
// Targets

export type Encoded =
  | { task: 'classification'; classes: string[]; y: Int32Array }
  | { task: 'regression'; values: Float32Array };

/**
 * Targets for training: strings are classes (sorted, for determinism), integers are classes,
 * other numbers are values (regression); `task` overrides the guess.
 */
export function encodeTarget(t: Target, task: 'auto' | 'classification' | 'regression', source: string): Encoded {
  if (t.kind === 'classes') {
    if (task !== 'regression') return { task: 'classification', classes: t.classes, y: t.y };
    if (!t.classes.every(isNumber)) throw new CliError(`${source}: --task regression needs a numeric target; '${t.name}' has class names`);
    const values = new Float32Array(t.y.length);
    for (let i = 0; i < values.length; i++) values[i] = Number(t.classes[t.y[i]]);
    return { task: 'regression', values };
  }
  const c = t.column, rows = c.rows;
  if (task === 'regression' || (task === 'auto' && c.firstTextRow < 0 && c.fractionalRow >= 0)) {
    if (c.firstTextRow >= 0) {
      throw new CliError(`${source}: line ${c.line(c.firstTextRow)}, target '${t.name}': '${clipped(c.text(c.firstTextRow))}' is not a number; regression needs a numeric target`);
    }
    if (c.overflowRow >= 0) {
      throw new CliError(`${source}: line ${c.line(c.overflowRow)}, target '${t.name}': ${clipped(c.overflowCell)} is beyond the float32 range (±3.4e38)`);
    }
    const values = new Float32Array(rows), v = c.values!;
    for (let i = 0; i < rows; i++) values[i] = v[i];
    return { task: 'regression', values };
  }
  let classes: string[], y: Int32Array;
  if (c.values) {
    // integers: classes in numeric order
    const v = c.values, distinct = new Set<number>();
    for (let i = 0; i < rows; i++) {
      distinct.add(v[i]);
      if (distinct.size > MAX_LABELS) {
        throw new CliError(`${source}: the target '${t.name}' has more than ${MAX_LABELS.toLocaleString('en-US')} distinct values, too many for classes; for values, use --task regression`);
      }
    }
    const sorted = Array.from(distinct).sort((a, b) => a - b);
    const index = new Map(sorted.map((n, i) => [n, i]));
    y = new Int32Array(rows);
    for (let i = 0; i < rows; i++) y[i] = index.get(v[i])!;
    classes = sorted.map(String);
  } else {
    const order = c.labels.map((_, i) => i).sort((a, b) => (c.labels[a] < c.labels[b] ? -1 : c.labels[a] > c.labels[b] ? 1 : 0));
    const remap = new Int32Array(order.length);
    order.forEach((label, k) => (remap[label] = k));
    classes = order.map((i) => c.labels[i]);
    y = new Int32Array(rows);
    const index = c.index!;
    for (let i = 0; i < rows; i++) y[i] = remap[index[i]];
  }
  if (classes.length < 2) {
    throw new CliError(`${source}: the target '${t.name}' has a single class ('${classes[0]}'); a classifier needs at least 2`);
  }
  return { task: 'classification', classes, y };
}

/** Class indices of the target against a trained model's class names. */
export function classIndices(t: Target, classes: string[], source: string): Int32Array {
  const index = new Map(classes.map((c, i) => [c, i]));
  const shown = classes.length > 12 ? `${classes.slice(0, 12).join(', ')}, …` : classes.join(', ');
  const find = (v: string, where: string): number => {
    const k = index.get(v) ?? index.get(canonical(v));
    if (k === undefined) throw new CliError(`${source}: ${where}: label '${v}' is not one of the model's classes (${shown})`);
    return k;
  };
  if (t.kind === 'classes') {
    const map = t.classes.map((c, i) => find(c, `row ${t.y.indexOf(i)}`));
    return Int32Array.from(t.y, (c) => map[c]);
  }
  const c = t.column, y = new Int32Array(c.rows);
  if (c.values) {
    const seen = new Map<number, number>();
    for (let i = 0; i < c.rows; i++) {
      const v = c.values[i];
      let k = seen.get(v);
      if (k === undefined) seen.set(v, k = find(String(v), `line ${c.line(i)}`));
      y[i] = k;
    }
    return y;
  }
  const map = c.labels.map((l, i) => find(l, `line ${c.labelLine[i]}`));
  for (let i = 0; i < c.rows; i++) y[i] = map[c.index![i]];
  return y;
}

/** Target values for a regression model. */
export function targetValues(t: Target, source: string): Float32Array {
  return (encodeTarget(t, 'regression', source) as { values: Float32Array }).values;
}
