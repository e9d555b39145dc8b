// Training on a CSV file larger than memory should be: a generated ~1 GB file (10 M rows × 10
// columns: 9 features and a class) trained with `deltaprop train --stream`, against the same rows'
// first slice trained in memory. Reports the child's peak RSS, the training samples/s of each (the
// epoch lines: fit's own timing, without validation), the parser's own rate (a pass of the file
// through csvSource on one thread, nothing trained: the bound of a streamed fit with one parsing
// thread), and checks that a malformed row deep in the file stops with its line and leaves no
// model file. Not part of `npm test` (minutes, and a GB of
// disk): `npx vite-node bench/stream-csv.ts [--rows N] [--slice N] [--epochs N] [--layers W,…] [--keep]`.
// The file goes to the OS temp folder and is deleted at the end unless --keep.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { cliBuild, csvWorkerBuild } from '../tsup.config.js';
import { csvSource, Random } from '../src/index.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const ROWS = Number(opt('rows', '10000000')), SLICE = Number(opt('slice', '2000000')), EPOCHS = opt('epochs', '2');
const LAYERS = opt('layers', '32'), BATCH = opt('batch-size', '256'), FEATURES = 9;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, '.tmp', `stream-bench-${process.pid}`);
const DIR = join(tmpdir(), `deltaprop-stream-bench-${process.pid}`);
const BIG = join(DIR, 'big.csv'), SLICED = join(DIR, 'slice.csv');

/** Writes rows of FEATURES features (3 decimals) and a class from a fixed linear rule, in blocks. */
function writeCsv(path: string, rows: number, seed: number): void {
  const rng = new Random(seed), fd = openSync(path, 'w');
  writeSync(fd, `${Array.from({ length: FEATURES }, (_, j) => `f${j}`).join(',')},label\n`);
  let block: string[] = [];
  for (let i = 0; i < rows; i++) {
    const cells: string[] = [];
    let s = 0;
    for (let j = 0; j < FEATURES; j++) {
      const v = Math.round((2 * rng.uniform() - 1) * 1e6) / 1e6;
      s += (j % 3 === 0 ? 1 : -0.5) * v * (j + 1);
      cells.push(v.toFixed(6));
    }
    block.push(`${cells.join(',')},${s > 0 ? 'yes' : 'no'}`);
    if (block.length === 100_000) {
      writeSync(fd, `${block.join('\n')}\n`);
      block = [];
    }
  }
  if (block.length > 0) writeSync(fd, `${block.join('\n')}\n`);
  closeSync(fd);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  maxRssMiB: number;
  seconds: number;
}

function cli(cliArgs: string[]): Promise<Run> {
  const rssFile = join(DIR, `rss-${Date.now()}`), hook = join(DIR, 'rss-hook.cjs');
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['-r', hook, join(OUT, 'cli.js'), ...cliArgs], { env: { ...process.env, DELTAPROP_RSS_FILE: rssFile } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      process.stdout.write(`  | ${String(d).trimEnd().replace(/\n/g, '\n  | ')}\n`);
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({
      code, stdout, stderr, seconds: (performance.now() - t0) / 1000,
      maxRssMiB: existsSync(rssFile) ? Number(readFileSync(rssFile, 'utf8')) / 1024 : NaN,
    }));
  });
}

/** The samples/s of each epoch line. */
const epochSpeeds = (r: Run): number[] => Array.from(r.stdout.matchAll(/^epoch .* ([\d,]+) samples\/s$/gm), (m) => Number(m[1].replace(/,/g, '')));
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/** Replaces a cell of the line that starts after byte `at` with letters of the same length; returns its line number. */
function corruptLineAfter(path: string, at: number): { line: number; undo: () => void } {
  const fd = openSync(path, 'r+'), buf = Buffer.alloc(1 << 20);
  let lines = 1, pos = 0;
  // count the line breaks before `at`
  while (pos < at) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, at - pos), pos);
    for (let i = buf.indexOf(10); i >= 0 && i < n; i = buf.indexOf(10, i + 1)) lines++;
    pos += n;
  }
  const n = readSync(fd, buf, 0, 256, at);
  const start = buf.subarray(0, n).indexOf(10) + 1, comma = buf.indexOf(44, start);
  const original = Buffer.from(buf.subarray(comma + 1, comma + 4));
  writeSync(fd, Buffer.from('bad'), 0, 3, at + comma + 1);
  closeSync(fd);
  return {
    line: lines + 1,
    undo: () => {
      const f = openSync(path, 'r+');
      writeSync(f, original, 0, 3, at + comma + 1);
      closeSync(f);
    },
  };
}

async function main(): Promise<void> {
  rmSync(DIR, { recursive: true, force: true });
  await import('node:fs').then((fs) => fs.mkdirSync(DIR, { recursive: true }));
  writeFileSync(join(DIR, 'rss-hook.cjs'), "process.on('exit', () => require('node:fs').writeFileSync(process.env.DELTAPROP_RSS_FILE, String(process.resourceUsage().maxRSS)));\n");
  await build({ ...cliBuild, config: false, silent: true, outDir: OUT, entry: { cli: join(ROOT, 'src', 'cli.ts') } });
  await build({ ...csvWorkerBuild, config: false, silent: true, outDir: OUT, entry: { 'csv-worker': join(ROOT, 'src', 'io', 'csv-worker.ts') } });
  try {
    let t = performance.now();
    writeCsv(BIG, ROWS, 1);
    const bytes = statSync(BIG).size;
    console.log(`generated ${BIG}: ${ROWS.toLocaleString('en-US')} rows, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    writeCsv(SLICED, SLICE, 1); // the same generator: the big file's first SLICE rows
    const common = ['--layers', LAYERS, '--epochs', EPOCHS, '--batch-size', BATCH, '--patience', 'none', '--seed', '1', '--no-progress'];

    console.log(`\nstreamed: deltaprop train big.csv --stream ${common.join(' ')}`);
    const streamed = await cli(['train', BIG, '--stream', ...common, '--save', join(DIR, 'big.model')]);
    if (streamed.code !== 0) throw new Error(`streamed run failed: ${streamed.stderr}`);
    console.log(`\nin memory: deltaprop train slice.csv --no-stream ${common.join(' ')} (the first ${SLICE.toLocaleString('en-US')} rows)`);
    const memory = await cli(['train', SLICED, '--no-stream', ...common]);
    if (memory.code !== 0) throw new Error(`in-memory run failed: ${memory.stderr}`);
    const sSpeed = median(epochSpeeds(streamed)), mSpeed = median(epochSpeeds(memory));

    // the parser alone: the same reader and checks as a worker's, on this thread, nothing trained
    t = performance.now();
    let parsed = 0;
    for await (const b of await csvSource(BIG, { classes: ['no', 'yes'], worker: false })) parsed += (b.y as Int32Array).length;
    const parseSeconds = (performance.now() - t) / 1000;

    console.log(`\nmalformed row near the end of the file (--stream --save):`);
    const bad = corruptLineAfter(BIG, Math.floor(bytes * 0.97));
    t = performance.now();
    const failed = await cli(['train', BIG, '--stream', ...common, '--save', join(DIR, 'bad.model')]);
    const failSeconds = (performance.now() - t) / 1000;
    bad.undo();
    const stopped = failed.code === 1 && failed.stderr.includes(`line ${bad.line},`) && !existsSync(join(DIR, 'bad.model'));

    console.log(`\nresults (${ROWS.toLocaleString('en-US')} rows, ${(bytes / 2 ** 30).toFixed(2)} GiB; layers ${LAYERS}, batch ${BATCH}, ${EPOCHS} epochs; a shared machine: indicative)`);
    console.log(`  streamed: peak RSS ${streamed.maxRssMiB.toFixed(0)} MiB (target ≤ 400), ${sSpeed.toLocaleString('en-US')} samples/s per epoch (median), ${streamed.seconds.toFixed(1)} s in all`);
    console.log(`  in memory (${SLICE.toLocaleString('en-US')} rows): peak RSS ${memory.maxRssMiB.toFixed(0)} MiB, ${mSpeed.toLocaleString('en-US')} samples/s per epoch (median), ${memory.seconds.toFixed(1)} s in all`);
    console.log(`  throughput streamed ÷ in memory: ${(sSpeed / mSpeed).toFixed(2)} (target ≥ 0.80)`);
    console.log(`  the parser alone (one thread, nothing trained): ${(bytes / 2 ** 20 / parseSeconds).toFixed(0)} MiB/s, `
      + `${Math.round(parsed / parseSeconds).toLocaleString('en-US')} rows/s: a streamed fit's bound with one parsing thread`);
    console.log(`  malformed line ${bad.line.toLocaleString('en-US')}: ${stopped ? 'stopped with its line, no model file' : 'NOT as expected'} after ${failSeconds.toFixed(1)} s: ${failed.stderr.trim()}`);
  } finally {
    if (!args.includes('--keep')) rmSync(DIR, { recursive: true, force: true });
    rmSync(OUT, { recursive: true, force: true });
  }
}

await main();
