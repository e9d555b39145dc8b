// What the commands share: option parsers, backend selection with its report, output files that
// are checked before the work starts, and number formatting.
import { InvalidArgumentError, Option } from 'commander';
import type { Backend, BackendName } from '../backends/backend.js';
import { selectBackend, type BackendReport } from '../backends/select.js';
import { loaders } from '../index.js';
import { checkWritableFile, FileWriteError, writeFileAtomic } from '../io/files.js';
import type { Matrix } from '../data.js';
import { classificationMetrics, rocAuc, type ClassificationMetrics } from '../metrics.js';
import type { Model } from '../model/model.js';
import { CliError } from './data.js';

export interface BackendFlags {
  backend?: BackendName | 'auto';
  threads?: number;
}

/** Loads the backend the flags (or DELTAPROP_BACKEND / DELTAPROP_THREADS) ask for, else the fastest. */
export async function chooseBackend(flags: BackendFlags): Promise<{ backend: Backend; report: BackendReport }> {
  return selectBackend(loaders, { backend: flags.backend, threads: flags.threads });
}

/** `native (avx2-fma, 2 threads): fastest available` */
export function describeBackend(r: BackendReport): string {
  return `${r.backend} (${r.isa}, ${r.threads} thread${r.threads === 1 ? '' : 's'}): ${r.why}`;
}

export const positiveInt = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer.`);
  return n;
};

export const nonNegativeInt = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n >= 2 ** 32) throw new InvalidArgumentError(`${name} must be an integer in [0, 2^32).`);
  return n;
};

export const positiveNumber = (name: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number.`);
  return n;
};

export const nonNegativeNumber = (name: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0.`);
  return n;
};

export const fraction = (name: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n < 1)) throw new InvalidArgumentError(`${name} must be a fraction in [0, 1).`);
  return n;
};

/** `32,16` → [32, 16]; `none` or `''` → no hidden layer. */
export function layerList(v: string): number[] {
  if (v.trim() === '' || v.trim() === 'none') return [];
  const parts = v.split(',').map((p) => p.trim());
  if (!parts.every((p) => /^\d+$/.test(p) && Number(p) > 0)) {
    throw new InvalidArgumentError("--layers takes hidden layer widths separated by commas, e.g. '64' or '32,16' ('none' for no hidden layer).");
  }
  return parts.map(Number);
}

/**
 * Fails before any work when an output file cannot be written: where it resolves (through
 * symlinks) must be a regular file or nothing, in a folder that exists and is writable. (The write
 * itself is atomic, see writeFileAtomic.)
 */
export async function checkWritable(path: string, what: string): Promise<void> {
  try {
    await checkWritableFile(path, what);
  } catch (e) {
    if (e instanceof FileWriteError) throw new CliError(e.message);
    throw e;
  }
}

/** Writes an output file atomically; a failure is a CliError naming the path. */
export async function writeOutput(path: string, bytes: Uint8Array | string, what: string): Promise<void> {
  try {
    await writeFileAtomic(path, bytes, what);
  } catch (e) {
    if (e instanceof FileWriteError) throw new CliError(e.message);
    throw e;
  }
}

/** 0.1234 → '0.1234'; undefined → '—'. */
export const f4 = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(4));

/** 12345.6 → '12,346'. */
export const count = (v: number): string => Math.round(v).toLocaleString('en-US');

export const seconds = (s: number): string => (s < 10 ? `${s.toFixed(2)} s` : s < 120 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

/** Writes a line to stdout (the results), never to stderr (progress and errors). */
export const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

/** Progress and notes: stderr, so that stdout stays the results (CSV, JSON) for pipes. */
export const note = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** `--delimiter`: one character, or `tab` / `\t` (hard to type as itself in a shell). */
export function delimiter(v: string): string {
  if (v === 'tab' || v === '\\t') return '\t';
  if (v.length !== 1) throw new InvalidArgumentError("--delimiter takes one character (or 'tab').");
  return v;
}

/** Help for --target where DATA carries the target (train, evaluate). */
export const TARGET_HELP = 'target column: a header name or a 0-based index, -1 = last (default: the last column)';

/**
 * How DATA is read, the same for train, evaluate and predict: CSV layout and, with `labels`, the
 * IDX labels file. New Option objects on every call: each command owns its own.
 */
export function dataOptions(targetHelp: string, { labels }: { labels: boolean }): Option[] {
  const options = [
    new Option('-t, --target <COLUMN>', targetHelp),
    new Option('--header', 'the first row is a header (default: detected)'),
    new Option('--no-header', 'the first row is data'),
    new Option('--delimiter <CHAR>', 'CSV field delimiter, or tab (default: "," or tab for .tsv)').argParser(delimiter),
  ];
  if (labels) options.push(new Option('--labels <FILE>', 'IDX labels file for an IDX images DATA file'));
  return options;
}

/** --backend and --threads, the same for every command that loads a backend. */
export function backendOptions(): Option[] {
  return [
    new Option('--backend <NAME>', 'backend (default: the fastest that loads; env DELTAPROP_BACKEND)').choices(['auto', 'native', 'wasm', 'js']),
    new Option('--threads <N>', 'threads for the native and wasm backends (env DELTAPROP_THREADS)').argParser(positiveInt('--threads')),
  ];
}

/**
 * Precision, recall, F1 (macro and per class) and, for two classes, ROC AUC of the model's
 * predicted classes (argmax, as predict and the confusion matrix count them) against the classes
 * y, whatever the output layer and loss.
 */
export function classMetrics(model: Model, x: Matrix, y: Int32Array, k: number): ClassificationMetrics {
  const probs = model.predict(x), outs = probs.shape[1], rows = probs.shape[0];
  const predicted = model.predictClasses(x);
  const m = classificationMetrics(y, predicted, k);
  if (k === 2) {
    const scores = new Float32Array(rows);
    for (let i = 0; i < rows; i++) scores[i] = outs === 1 ? probs.data[i] : probs.data[i * outs + 1];
    const auc = rocAuc(scores, y);
    if (auc !== undefined) m.auc = auc;
  }
  return m;
}

/** The metric lines shared by train's summary and evaluate: macro scores, then one line per class. */
export function classMetricLines(m: ClassificationMetrics, classes: string[], prefix = ''): string[] {
  const indent = prefix === '' ? '' : '  ';
  const auc = m.auc !== undefined ? `  roc_auc ${f4(m.auc)}` : '';
  const lines = [`${prefix}macro precision ${f4(m.precision)}  recall ${f4(m.recall)}  f1 ${f4(m.f1)}${auc}`];
  let w = 5;
  for (const c of classes) w = Math.max(w, Math.min(c.length, 24));
  lines.push(`${indent}${'class'.padEnd(w)}  precision  recall      f1  support`);
  classes.forEach((c, i) => {
    const name = c.length > 24 ? `${c.slice(0, 23)}…` : c;
    lines.push(`${indent}${name.padEnd(w)}  ${f4(m.perClass.precision[i]).padStart(9)}  ${f4(m.perClass.recall[i]).padStart(6)}  ${f4(m.perClass.f1[i]).padStart(6)}  ${String(m.perClass.support[i]).padStart(7)}`);
  });
  return lines;
}

/** `mae 0.1234  rmse 0.2345  r2 0.9876` */
export const regressionLine = (m: { mae?: number; rmse?: number; r2?: number }): string => `mae ${f4(m.mae)}  rmse ${f4(m.rmse)}  r2 ${f4(m.r2)}`;

/** Per-class metrics for JSON: one object per class, in the order of the class names. */
export function perClassJson(m: ClassificationMetrics, classes: string[]): { class: string; precision: number; recall: number; f1: number; support: number }[] {
  return classes.map((c, i) => ({ class: c, precision: m.perClass.precision[i], recall: m.perClass.recall[i], f1: m.perClass.f1[i], support: m.perClass.support[i] }));
}
