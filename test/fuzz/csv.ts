// CSV fuzzing through the CLI: a valid data file (a header, numeric features, a class column),
// mutated (a bad cell, a ragged row, a duplicated header name, truncation, a BOM, CRLF, blank
// lines, garbage), written to a file and given to `deltaprop train` in this process (the command
// object of src/cli/train.ts, parsed as the CLI parses it). Each must train, or end with one of
// the CLI's user errors (src/cli.ts USER_ERRORS: exit code 1) whose one-line message is clear;
// a bad cell's error names its line and column, a duplicated target name says which name.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendError } from '../../src/backends/select.js';
import { CliError } from '../../src/cli/data.js';
import { trainCommand } from '../../src/cli/train.js';
import { InputError } from '../../src/data.js';
import { ModelFileError } from '../../src/io/modelFile.js';
import { TrainingError } from '../../src/model/fit.js';
import { SpecError } from '../../src/spec.js';
import { rng } from '../rng.js';
import { caseSeed, type CaseOutcome, type Suite } from './protocol.js';

type R = () => number;
const int = (r: R, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: R, a: readonly T[]): T => a[int(r, 0, a.length - 1)];

/** The errors the CLI prints as one line with exit code 1 (src/cli.ts). */
const USER_ERRORS = [CliError, InputError, SpecError, ModelFileError, BackendError, TrainingError];

type Expect = 'trains' | 'refused' | 'either';
interface CsvCase {
  text: string | Uint8Array;
  label: string;
  expect: Expect;
  /** Text an error must contain (a line number, a column name). */
  mustName: string[];
  /** And a pattern it must match (a duplicated name is called so). */
  mustMatch?: RegExp;
  target: string;
}

const FEATURES = 4, ROWS = 30;

function baseCsv(r: R): string[][] {
  const rows = [[...Array.from({ length: FEATURES }, (_, j) => `f${j}`), 'label']];
  for (let i = 0; i < ROWS; i++) {
    const cells = Array.from({ length: FEATURES }, () => {
      const v = r() * 20 - 10;
      return pick(r, [v.toFixed(3), String(Math.round(v)), v.toExponential(2)]);
    });
    rows.push([...cells, pick(r, ['setosa', 'versicolor', 'virginica'])]);
  }
  return rows;
}

const join_ = (rows: string[][], eol = '\n'): string => rows.map((c) => c.join(',')).join(eol) + eol;

function makeCase(r: R): CsvCase {
  const rows = baseCsv(r);
  const op = r();
  const target = 'label';
  if (op < 0.5) {
    // one feature cell; file line = row index + 1 (the header is line 1)
    const row = int(r, 1, ROWS), col = int(r, 0, FEATURES - 1), line = String(row + 1);
    const [label, cell, expect] = pick(r, [
      ['1e39 (beyond float32)', '1e39', 'refused'], ['-1e39', '-1e39', 'refused'], ['1e308', '1e308', 'refused'],
      ['NaN', 'NaN', 'refused'], ['Infinity', 'Infinity', 'refused'], ['empty', '', 'refused'], ['a space', ' ', 'refused'],
      ['a word', 'abc', 'refused'], ['hex 0x10', '0x10', 'refused'], ['1e-50 (underflows to 0)', '1e-50', 'trains'],
      ['padded " 3.5 "', ' 3.5 ', 'trains'], ['"+4"', '+4', 'trains'], ['".5"', '.5', 'trains'], ['a quoted number', '"2.5"', 'trains'],
    ] as [string, string, Expect][]);
    rows[row][col] = cell;
    return { text: join_(rows), label: `line ${line}, column f${col} = ${label}`, expect, mustName: expect === 'refused' ? [`line ${line}`] : [], target };
  }
  if (op < 0.6) {
    const row = int(r, 1, ROWS), line = String(row + 1);
    if (r() < 0.5) rows[row].push('7');
    else rows[row].pop();
    return { text: join_(rows), label: `line ${line} has a field ${rows[row].length > FEATURES + 1 ? 'too many' : 'too few'}`, expect: 'refused', mustName: [`line ${line}`], target };
  }
  if (op < 0.68) {
    // the target's name twice: which column is meant?
    const col = int(r, 0, FEATURES - 1);
    rows[0][col] = 'label';
    return { text: join_(rows), label: `header names column ${col} "label" too (the target's name)`, expect: 'refused', mustName: ['label'],
      mustMatch: /duplicate|twice|ambiguous|more than one|both/i, target };
  }
  const text = join_(rows);
  const edits: [string, () => string | Uint8Array, Expect, string[]?][] = [
    ['truncated at a random byte', () => text.slice(0, int(r, 0, text.length - 1)), 'either'],
    ['a byte-order mark first', () => `\ufeff${text}`, 'trains'],
    ['CRLF line ends', () => join_(rows, '\r\n'), 'trains'],
    ['blank lines between rows', () => text.replace(/\n/g, (m) => (r() < 0.2 ? '\n\n' : m)), 'trains'],
    ['binary garbage appended', () => { const b = new TextEncoder().encode(text); const g = new Uint8Array(b.length + 64); g.set(b); for (let i = b.length; i < g.length; i++) g[i] = int(r, 0, 255); return g; }, 'either'],
    ['only the header', () => join_(rows.slice(0, 1)), 'refused'],
    ['empty file', () => '', 'refused'],
    ['an unterminated quote', () => text.replace(/\n(.)/, '\n"$1'), 'refused'],
    // the first cell of line 2: a number by syntax, beyond float32 (and float64) by value
    ['line 2, column f0 = a 65,536-digit number', () => text.replace(/\n([^,\n]*),/, `\n${'9'.repeat(1 << 16)},`), 'refused', ['line 2']],
    ['NUL bytes in a cell', () => text.replace(/\n([^,\n]*),/, '\n1\u00002,'), 'refused'],
  ];
  const [label, make, expect, mustName = []] = pick(r, edits);
  return { text: make(), label, expect, mustName, target };
}

/** One line, at most 400 characters, naming the file, no JavaScript internals. */
function messageProblem(msg: string, path: string): string | null {
  if (msg.includes('\n')) return `message has several lines: ${JSON.stringify(msg.slice(0, 200))}`;
  if (msg.length > 400) return `message of ${msg.length} characters: ${JSON.stringify(msg.slice(0, 200))}…`;
  if (/Cannot read propert|is not a function|is not iterable|Maximum call stack|\[object Object\]|undefined is not|allocBuf:/i.test(msg)) {
    return `message is a JavaScript or native internal: ${JSON.stringify(msg)}`;
  }
  if (!msg.includes(path)) return `message does not name the file: ${JSON.stringify(msg.slice(0, 200))}`;
  return null;
}

interface Ctx { dir: string }

async function runCase(ctx: Ctx, seed: number, index: number): Promise<CaseOutcome> {
  const c = makeCase(rng(caseSeed(seed, index)));
  const what = describe(c);
  const sig = (category: string) => `csv: ${c.label.replace(/\d+/g, '#')} → ${category}`;
  const fail = (category: string, detail: string): CaseOutcome => ({ failure: { category, signature: sig(category), what, detail }, bucket: `${c.expect}: ${category}` });
  const path = join(ctx.dir, `case-${index}.csv`);
  writeFileSync(path, c.text);
  // the command prints its results on stdout; the fuzz protocol writes to fd 1 directly
  const write = process.stdout.write, ewrite = process.stderr.write;
  let printed = '';
  process.stdout.write = ((s: string) => { printed += s; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => { printed += s; return true; }) as typeof process.stderr.write;
  let error: unknown = null;
  try {
    await trainCommand().exitOverride().parseAsync([path, '--target', c.target, '--epochs', '1', '--layers', '4', '--backend', 'js', '--quiet', '--seed', '1'], { from: 'user' });
  } catch (e) {
    error = e;
  } finally {
    process.stdout.write = write;
    process.stderr.write = ewrite;
    rmSync(path, { force: true });
  }
  if (error === null) {
    if (c.expect === 'refused') return fail('accepted', `trained without an error; expected one naming ${c.mustName.join(', ') || 'the problem'}. Output: ${printed.slice(-200)}`);
    return { failure: null, bucket: `${c.expect}: trained` };
  }
  if (!USER_ERRORS.some((E) => error instanceof E)) {
    return fail('unclear', `threw ${(error as Error)?.name}: ${String((error as Error)?.message ?? error).slice(0, 300)} (not a user error: the CLI exits with code 2)`);
  }
  const msg = (error as Error).message;
  if (c.expect === 'trains') return fail('refused', `a valid file was refused: ${msg.slice(0, 300)}`);
  const problem = messageProblem(msg, path);
  if (problem) return fail('unclear', problem);
  const missing = c.mustName.filter((n) => !msg.includes(n));
  if (missing.length) return fail('unclear', `message ${JSON.stringify(msg.replace(path, 'FILE'))} does not name ${missing.join(', ')}`);
  if (c.mustMatch && !c.mustMatch.test(msg)) return fail('unclear', `message ${JSON.stringify(msg.replace(path, 'FILE'))} does not say what is wrong (${c.mustMatch})`);
  return { failure: null, bucket: `${c.expect}: refused: ${msg.replace(path, 'FILE').replace(/\d+/g, '#').slice(0, 50)}` };
}

function describe(c: CsvCase): string {
  return `CSV of ${ROWS} rows × ${FEATURES} features + label, mutation: ${c.label} (${c.expect}), train --target ${c.target}`;
}

export const csvSuite: Suite = {
  async setup() {
    const dir = mkdtempSync(join(tmpdir(), 'deltaprop-fuzz-csv-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    return { dir } satisfies Ctx;
  },
  run: (ctx, seed, index) => runCase(ctx as Ctx, seed, index),
  describe: (_ctx, seed, index) => describe(makeCase(rng(caseSeed(seed, index)))),
};
