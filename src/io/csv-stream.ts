// CSV files read as streams (gzip or not), parsed by Papa Parse: the head of a file (delimiter,
// line ending, header, column names), its records chunk by chunk with their line numbers, and a
// BatchSource of its rows for `fit`. Nothing here holds more than a chunk of the file.
import Papa from 'papaparse';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { InputError, type Batch, type BatchSource } from '../data.js';
import { BatchFiller, isNumber } from './csv-cells.js';
import { csvWorkerFile, sharedPass, workerPass } from './csv-workers.js';

/**
 * A first row is a header when it is all text, or has text where the next row has numbers. Empty
 * cells are neither: a missing value in the first data row must not turn it into names.
 */
export function looksLikeHeader(first: string[], second: string[] | undefined): boolean {
  const text = first.map((c) => c.trim() !== '' && !isNumber(c));
  if (text.every(Boolean)) return true;
  return second !== undefined && first.some((_, j) => text[j] && j < second.length && isNumber(second[j]));
}

/** What a pass over a CSV file needs to know of it, read once from its first lines. */
export interface CsvHead {
  path: string;
  delimiter: string;
  newline: '\n' | '\r\n';
  header: boolean;
  /** Column names (from the header, else `column J`). */
  names: string[];
  /** Fields per row. */
  width: number;
}

const REASONS: Record<string, string> = {
  ENOENT: 'no such file', EACCES: 'permission denied', EPERM: 'permission denied', EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory', EMFILE: 'too many open files',
};

/** Why a file operation failed, in words. */
export function ioReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && REASONS[code]) ?? (e as Error).message;
}

async function openFile(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new InputError(`${path}: cannot read data file (${ioReason(e)})`);
  }
  if ((await fh.stat()).isDirectory()) {
    await fh.close();
    throw new InputError(`${path}: cannot read data file (is a directory)`);
  }
  return fh;
}

/** Bytes read (or decompressed) at a time: fewer, larger reads keep the reader ahead of the parser. */
const READ_BYTES = 1 << 20;
/**
 * Characters parsed at a time. A piece's records are alive until they are taken, and a young-
 * generation collection copies whatever is alive: 64 Ki pieces keep that small, where 1 Mi pieces
 * had the collector take a third of the parsing time.
 */
const PARSE_CHARS = 1 << 16;

/** The file's text as a stream of strings (UTF-8, decompressed when it starts with gzip's magic). */
async function textStream(path: string): Promise<{ stream: Readable; gzip: boolean; fail: () => unknown }> {
  const fh = await openFile(path);
  const head = Buffer.alloc(2);
  const { bytesRead } = await fh.read(head, 0, 2, 0);
  const gzip = bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  const file = fh.createReadStream({ start: 0, highWaterMark: READ_BYTES });
  let failure: unknown = null;
  file.on('error', (e) => (failure ??= new InputError(`${path}: cannot read data file (${ioReason(e)})`)));
  let stream: Readable = file;
  if (gzip) {
    const unzip = createGunzip({ chunkSize: READ_BYTES });
    unzip.on('error', (e) => (failure ??= new InputError(`${path}: corrupt gzip data (${e.message})`)));
    file.on('error', () => unzip.destroy());
    stream = file.pipe(unzip);
  }
  stream.setEncoding('utf8');
  return { stream, gzip, fail: () => failure };
}

/** Most of a file read for its first rows: a first line longer than this is not a CSV head. */
const HEAD_MAX_CHARS = 64 * 1024 * 1024;

/**
 * The first `chars` of the file's text (decompressed), for sniffing, and more while it has fewer
 * than `lines` line breaks (a wide file's first rows may be longer).
 */
async function firstText(path: string, chars: number, lines: number): Promise<string> {
  const { stream, fail } = await textStream(path);
  let text = '', breaks = 0;
  try {
    for await (const piece of stream) {
      text += piece as string;
      for (let i = (piece as string).indexOf('\n'); i >= 0 && breaks < lines; i = (piece as string).indexOf('\n', i + 1)) breaks++;
      if ((text.length >= chars && breaks >= lines) || text.length >= HEAD_MAX_CHARS) break;
    }
  } catch {
    // reported below, or by the pass that reads on
  } finally {
    stream.destroy();
  }
  const f = fail();
  if (f && text === '') throw f;
  return text;
}

export interface CsvHeadOptions {
  /** true/false forces, undefined detects. */
  header?: boolean;
  /** Default: a tab for .tsv files, else a comma. */
  delimiter?: string;
}

/** Reads the head of a CSV file: line ending, header (detected unless given), column names. */
export async function readCsvHead(path: string, opts: CsvHeadOptions = {}): Promise<CsvHead> {
  const delimiter = opts.delimiter ?? (/\.tsv(\.gz)?$/i.test(path) ? '\t' : ',');
  // the header and a row, whole, and a third line break: a quoted cell may hold one
  let text = await firstText(path, 1 << 16, 3);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const nl = text.indexOf('\n');
  const newline = nl > 0 && text[nl - 1] === '\r' ? '\r\n' : '\n';
  // the first two records: a chunk of the head, without a last line that may be cut off
  const cut = text.lastIndexOf('\n');
  const sample = Papa.parse<string[]>(cut > 0 ? text.slice(0, cut) : text, { delimiter, newline, skipEmptyLines: true, preview: 2 });
  const [r0, r1] = sample.data;
  if (!r0) throw new InputError(`${path}: empty file (no rows)`);
  const header = opts.header ?? looksLikeHeader(r0, r1);
  const names = header ? r0.map((n, j) => n.trim() || `column ${j}`) : r0.map((_, j) => `column ${j}`);
  return { path, delimiter, newline, header, names, width: r0.length };
}

/** A chunk of records, and the line each starts on (1-based, counting the header and blank lines). */
export interface RecordChunk {
  records: string[][];
  lines: Float64Array;
  /** The data row (0-based, of the whole file) of the first record. */
  firstRow: number;
  /** The block of the file the records are in (a read's whole lines): what a share of the file divides. */
  block: number;
}

/**
 * Blocks `index`, `index + of`, `index + 2·of`, … of the file: the part one of `of` parsers
 * takes. The other blocks are read and only counted (lines, rows), so that line numbers and row
 * indices are the whole file's; a block with quotes is parsed to count its rows.
 */
export interface FileShare {
  of: number;
  index: number;
}

/**
 * The records of the file, chunk by chunk (blank lines skipped, the header not included), with
 * their line numbers; each chunk is the whole lines of a piece of the file, parsed when the
 * consumer asks for it (so a slow consumer holds a bounded amount). Ragged rows are refused with their line. `textColumn`: a
 * column whose cells may hold quoted line breaks (the target); line numbers count those, while
 * any other column with one fails as a non-number on that row.
 */
export async function* csvRecordChunks(head: CsvHead, textColumn = -1, ragged: RaggedRow = raggedRow, share?: FileShare): AsyncGenerator<RecordChunk> {
  const { stream, fail } = await textStream(head.path);
  const state: ParseState = { line: 0, firstLine: 0, row: 0, skipHeader: head.header, bom: true, ragged };
  let carry = '', block = 0;
  // with a share, every block of this parser yields at least one chunk (maybe empty): the merge waits for each
  const mine = (b: number): boolean => !share || b % share.of === share.index;
  try {
    // the file is pulled a piece at a time as the consumer asks: nothing piles up ahead of it
    for await (const piece of stream as AsyncIterable<string>) {
      const text = carry + piece, cut = lastRecordEnd(text);
      if (cut < 0) {
        carry = text;
        continue;
      }
      carry = text.slice(cut + 1);
      // quotes may hold line breaks: such a text is parsed whole, else in pieces of whole lines
      const quoted = text.indexOf('"') >= 0;
      const b = block++;
      if (!mine(b) && !quoted) {
        countLines(text, cut, head, state);
        continue;
      }
      let sent = false;
      for (let start = 0; start <= cut;) {
        const next = quoted ? -1 : text.indexOf('\n', start + PARSE_CHARS);
        const end = next < 0 || next > cut ? cut : next;
        const chunk = parseRecords(head, text.slice(start, end + 1 - head.newline.length), textColumn, state, b);
        if (mine(b) && (chunk.records.length > 0 || (share && !sent && end === cut))) {
          sent = true;
          yield chunk;
        }
        start = end + 1;
      }
    }
    const f = fail();
    if (f) throw f;
    const b = block++;
    if (carry.length > 0 || (share && mine(b))) {
      const chunk = parseRecords(head, carry, textColumn, state, b);
      if (mine(b) && (chunk.records.length > 0 || share)) yield chunk;
    }
  } catch (e) {
    throw fail() ?? e;
  } finally {
    stream.destroy();
  }
}

/** The last line break of `text` outside quotes (an even number of '"' before it), or -1. */
function lastRecordEnd(text: string): number {
  const last = text.lastIndexOf('\n');
  if (last < 0 || text.indexOf('"') < 0) return last;
  let quotes = 0, end = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) quotes++;
    else if (c === 10 && (quotes & 1) === 0) end = i;
  }
  return end;
}

/** The error for a row of `fields` fields at `line`; `firstLine` is the line of the first row (the header, if any). */
export type RaggedRow = (head: CsvHead, line: number, fields: number, firstLine: number) => Error;

const raggedRow: RaggedRow = (head, line, fields) =>
  new InputError(`${head.path}: ragged rows: line ${line} has ${fields} field${fields === 1 ? '' : 's'}, the header${head.header ? '' : ' (first row)'} has ${head.width}`);

interface ParseState {
  line: number;
  /** Data rows before the next record. */
  row: number;
  /** The line of the first row, header or not (0 before it). */
  firstLine: number;
  skipHeader: boolean;
  bom: boolean;
  ragged: RaggedRow;
}

/**
 * A block that another parser takes: its lines and rows counted, not parsed (it has no quotes).
 * Lines up to `cut` (a line break); a row is a line that is not empty.
 */
function countLines(text: string, cut: number, head: CsvHead, state: ParseState): void {
  const cr = head.newline === '\r\n' ? 1 : 0;
  for (let start = 0; start <= cut;) {
    const end = text.indexOf('\n', start);
    state.line++;
    const length = end - start - (cr === 1 && text.charCodeAt(end - 1) === 13 ? 1 : 0);
    if (length > 0) {
      if (state.firstLine === 0) state.firstLine = state.line;
      if (state.skipHeader) state.skipHeader = false;
      else state.row++;
    }
    state.bom = false;
    start = end + 1;
  }
}

/** Whole lines of CSV text (no trailing line break) into records, counting lines. */
function parseRecords(head: CsvHead, text: string, textColumn: number, state: ParseState, block = 0): RecordChunk {
  const firstRow = state.row;
  if (text === '') { // one blank line, which the parser would not count
    state.line++;
    return { records: [], lines: new Float64Array(0), firstRow, block };
  }
  // Papa's core parser, not Papa.parse: the same records and errors (delimiter, line ending and
  // blank lines are settled here), at twice the speed (no chunk streamer that concatenates results)
  const res = new Papa.Parser({ delimiter: head.delimiter, newline: head.newline }).parse(text, 0, false) as Papa.ParseResult<string[]>;
  const rows = res.data, records: string[][] = [], lines: number[] = [];
  const firstLine = state.line + 1;
  for (let r = 0; r < rows.length; r++) {
    const rec = rows[r];
    state.line++;
    if (state.bom) {
      state.bom = false;
      if (rec.length > 0 && rec[0].charCodeAt(0) === 0xfeff) rec[0] = rec[0].slice(1);
    }
    if (rec.length === 1 && rec[0] === '') continue; // a blank line
    if (state.firstLine === 0) state.firstLine = state.line;
    if (state.skipHeader) {
      state.skipHeader = false;
      continue;
    }
    const at = state.line;
    if (rec.length !== head.width) throw state.ragged(head, at, rec.length, state.firstLine);
    if (textColumn >= 0) {
      const t = rec[textColumn];
      for (let k = t.indexOf('\n'); k >= 0; k = t.indexOf('\n', k + 1)) state.line++;
    }
    records.push(rec);
    lines.push(at);
    state.row++;
  }
  if (res.errors.length > 0) {
    const e = res.errors[0];
    throw new InputError(`${head.path}: not valid CSV near line ${firstLine + (e.row ?? 0)}: ${e.message}`);
  }
  return { records, lines: Float64Array.from(lines), firstRow, block };
}

export interface CsvSourceOptions extends CsvHeadOptions {
  /** The target column: a header name, or an index (negative counts from the end). Default: the last column. */
  target?: string | number;
  /**
   * Class names: target cells are mapped to their index (one-hot rows for a softmax model); a
   * cell that is not one of them stops with its line. Without classes, target cells are numbers:
   * class indices, 0/1, or values for regression.
   */
  classes?: string[];
  /** Rows per batch handed to fit (default 4096). */
  batchRows?: number;
  /**
   * Only the rows (0-based, counting data rows) for which this says true: a split of the file.
   * A function cannot go to another thread: with `filter`, the file is parsed on this one.
   */
  filter?: (row: number) => boolean;
  /**
   * Only the rows whose seeded hash (rowFraction(seed, row), in [0, 1)) is in [from, to): a
   * split of the file that is the same on every pass and needs nothing stored per row.
   */
  split?: RowSplit;
  /**
   * Parse in a worker thread (default: where the build ships the worker, dist/csv-worker.js),
   * so that parsing overlaps training; false parses on this thread, between batches.
   */
  worker?: boolean;
  /**
   * Worker threads that parse the file, each its share of its 1 MiB blocks (default 1). More help
   * only with idle cores beside the training thread: each reads the whole file (a gzip file is
   * decompressed by each) and holds its own heap, about 50 MiB more RSS a thread.
   */
  workers?: number;
  /** The rows of a pass, where known (after filtering): BatchLogs' batch count and the ROC AUC use it. */
  rows?: number;
}

/** Rows whose rowFraction(seed, row) is in [from, to). */
export interface RowSplit {
  seed: number;
  from: number;
  to: number;
}

/** splitmix32 of (seed, row) as a fraction in [0, 1): the row's place in a split. */
export function rowFraction(seed: number, row: number): number {
  let z = (row + Math.imul(seed | 0, 0x9e3779b9) + 0x7f4a7c15) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
}

/** A CSV file as a BatchSource, with what its head says. */
export interface CsvSource extends BatchSource {
  readonly path: string;
  readonly featureNames: string[];
  readonly targetName: string;
  readonly inputs: number;
}

/** Index of the target column from a name or an index; the error lists the known columns. */
export function targetColumn(spec: string | number | undefined, head: CsvHead): number {
  const names = head.names;
  if (spec === undefined) return names.length - 1;
  const s = String(spec);
  if (head.header && typeof spec === 'string') {
    const all = names.flatMap((n, j) => (n === s ? [j] : []));
    if (all.length > 1) {
      throw new InputError(`${head.path}: the target '${s}' is ambiguous: the header has ${all.length} columns of that name `
        + `(columns ${all.join(', ')}); rename them, or give the target by its 0-based index`);
    }
    if (all.length === 1) return all[0];
  }
  if (/^-?\d+$/.test(s)) {
    const i = Number(s), j = i < 0 ? names.length + i : i;
    if (j >= 0 && j < names.length) return j;
    throw new InputError(`${head.path}: target column ${s} is out of range: the file has ${names.length} columns (0..${names.length - 1}, or -1 for the last)`);
  }
  const known = head.header ? names.map((n) => `'${n}'`).join(', ') : `0..${names.length - 1} (the file has no header row)`;
  throw new InputError(`${head.path}: unknown target column '${s}' (known: ${known})`);
}

/**
 * A CSV file as a source of batches for `fit`: every pass streams the file (gzip or not) through
 * the parser, so memory holds a few batches whatever the file's size. Feature cells must be
 * numbers; a bad cell, a ragged row or a label outside `classes` stops the pass with its line.
 */
export async function csvSource(path: string, opts: CsvSourceOptions = {}): Promise<CsvSource> {
  const head = await readCsvHead(path, opts);
  if (head.width < 2) throw new InputError(`${path}: only ${head.width} column; need at least one feature column and the target`);
  const tcol = targetColumn(opts.target, head);
  const batchRows = opts.batchRows ?? 4096;
  if (!Number.isInteger(batchRows) || batchRows < 1) throw new InputError(`batchRows: must be a positive integer, got ${String(opts.batchRows)}`);
  const featureCols = Int32Array.from(head.names.map((_, j) => j).filter((j) => j !== tcol));
  const cols = featureCols.length;
  const filter = opts.filter;

  const split = opts.split;
  if (split && !(split.from >= 0 && split.to <= 1 && split.from <= split.to && Number.isFinite(split.seed))) {
    throw new InputError(`split: must be { seed, from, to } with 0 ≤ from ≤ to ≤ 1, got ${JSON.stringify(split)}`);
  }
  const keep = filter ?? (split ? (row: number) => {
    const u = rowFraction(split.seed, row);
    return u >= split.from && u < split.to;
  } : undefined);
  const job: CsvJob = { head, tcol, classes: opts.classes ?? null, batchRows, split: split ?? null };
  const workerFile = opts.worker === false || filter ? null : csvWorkerFile();
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 16) throw new InputError(`workers: must be an integer from 1 to 16, got ${String(opts.workers)}`);
  const pass = !workerFile ? () => localPass(job, keep) : workers === 1 ? () => workerPass(workerFile, job) : () => sharedPass(workerFile, job, workers);

  return {
    path, featureNames: Array.from(featureCols, (j) => head.names[j]), targetName: head.names[tcol], inputs: cols,
    ...(opts.rows !== undefined ? { rows: opts.rows } : {}),
    [Symbol.asyncIterator]: () => pass(),
  };
}

/** What a pass needs, as data (it goes to the worker as it is). */
export interface CsvJob {
  head: CsvHead;
  tcol: number;
  classes: string[] | null;
  batchRows: number;
  split: RowSplit | null;
}

/** The batches of one pass over the file, parsed on this thread. */
export async function* localPass(job: CsvJob, keep?: (row: number) => boolean): AsyncGenerator<Batch> {
  const { head, tcol } = job;
  const featureCols = Int32Array.from(head.names.map((_, j) => j).filter((j) => j !== tcol));
  const colName = (j: number): string => (head.header ? `'${head.names[j]}'` : String(j));
  const classIndex = job.classes ? new Map(job.classes.map((c, i) => [c, i])) : null;
  const split = job.split;
  keep ??= split ? (row: number) => {
    const u = rowFraction(split.seed, row);
    return u >= split.from && u < split.to;
  } : undefined;
  const fill = new BatchFiller(head.path, featureCols, tcol, colName, classIndex, job.classes, job.batchRows, keep);
  for await (const chunk of csvRecordChunks(head, tcol)) {
    for (let r = 0; r < chunk.records.length;) {
      r = fill.take(chunk, r);
      if (fill.full()) yield fill.batch();
    }
  }
  if (fill.n > 0) yield fill.batch();
}

/**
 * A worker's share of a pass (FileShare): the rows of each of its blocks, in messages of up to
 * job.batchRows rows, the last of a block marked (a block with no rows still sends one).
 */
export async function* sharePass(job: CsvJob, share: FileShare): AsyncGenerator<{ batch: Batch; last: boolean }> {
  const { head, tcol } = job;
  const featureCols = Int32Array.from(head.names.map((_, j) => j).filter((j) => j !== tcol));
  const colName = (j: number): string => (head.header ? `'${head.names[j]}'` : String(j));
  const classIndex = job.classes ? new Map(job.classes.map((c, i) => [c, i])) : null;
  const split = job.split;
  const keep = split ? (row: number) => {
    const u = rowFraction(split.seed, row);
    return u >= split.from && u < split.to;
  } : undefined;
  const fill = new BatchFiller(head.path, featureCols, tcol, colName, classIndex, job.classes, job.batchRows, keep);
  let block = -1;
  for await (const chunk of csvRecordChunks(head, tcol, raggedRow, share)) {
    if (chunk.block !== block) {
      if (block >= 0) yield { batch: fill.batch(), last: true };
      block = chunk.block;
    }
    for (let r = 0; r < chunk.records.length;) {
      r = fill.take(chunk, r);
      if (fill.full()) yield { batch: fill.batch(), last: false };
    }
  }
  if (block >= 0) yield { batch: fill.batch(), last: true };
}
