// What the commands share: option parsers, backend selection with its report, output files that
// are checked before the work starts, and number formatting.
import { InvalidArgumentError, Option } from 'commander';
import type { Backend, BackendName } from '../backends/backend.js';
import { selectBackend, type BackendReport } from '../backends/select.js';
import { loaders } from '../index.js';
import { checkWritableFile, FileWriteError, writeFileAtomic } from '../io/files.js';
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
    new Option('--threads <N>', 'threads for the native backend (env DELTAPROP_THREADS)').argParser(positiveInt('--threads')),
  ];
}
