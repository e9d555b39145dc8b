// The `deltaprop` command end to end, as a user runs it: the built dist/cli.js in a child process,
// on real files written to a temporary folder (a wine-like CSV with a header and a string target,
// a headerless CSV, a gzip CSV, a regression CSV, an IDX pair), checking stdout, stderr, exit codes
// and the files it writes. Every bad input gets one line on stderr, a non-zero exit and no file.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchBuild, cliBuild } from '../tsup.config.js';
import { JsBackend } from '../src/backends/js.js';
import { readModelFile } from '../src/io/files.js';
import { trainTestSplit } from '../src/io/datasets.js';
import { Random } from '../src/random.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// Built with the shipped options (tsup.config.ts's cliBuild) into a private folder inside the package
// (so that it finds the package root, data/ and the backends like dist/cli.js does) and out of the
// way of a concurrent `npm run compile`, which cleans dist/.
const OUT = join(ROOT, '.tmp', `cli-test-${process.pid}`);
const CLI = join(OUT, 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'deltaprop-cli-'));
const at = (name: string): string => join(dir, name);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: string[];
}

/** Runs `node dist/cli.js ...args` in the temp folder; stdout/stderr are pipes (not a TTY). */
function cli(...args: string[]): Promise<Run> {
  return new Promise((done, fail) => {
    const env = { ...process.env };
    delete env.DELTAPROP_BACKEND; // the default selection is part of what is tested
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr, lines: stdout.split('\n').filter((l) => l !== '') }));
  });
}

const lastJson = (r: Run): Record<string, unknown> => JSON.parse(r.lines[r.lines.length - 1]);

// ---------------------------------------------------------------------------------------------
// Data files, generated from a seeded PRNG so the runs are the same everywhere

const WINE_FEATURES = ['alcohol', 'malic_acid', 'ash', 'magnesium', 'color_intensity'];
const CULTIVARS = ['grignolino', 'barolo', 'barbera']; // deliberately not sorted
const WINE_ROWS = 180;

function wineRows(): { x: number[][]; label: string[] } {
  const rng = new Random(7), x: number[][] = [], label: string[] = [];
  for (let i = 0; i < WINE_ROWS; i++) {
    const c = i % 3;
    x.push([12 + 1.2 * c + 0.3 * rng.normal(), 1.5 + c + 0.4 * rng.normal(), 2.4 + 0.2 * rng.normal(),
      90 + 12 * c + 4 * rng.normal(), 3 + 2.5 * c + 0.6 * rng.normal()].map((v) => Number(v.toFixed(3))));
    label.push(CULTIVARS[c]);
  }
  return { x, label };
}

function writeIdx(path: string, type: number, dims: number[], values: ArrayLike<number>, gzip: boolean): void {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = type;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  const bytes = Buffer.concat([header, Buffer.from(Uint8Array.from(values))]);
  writeFileSync(path, gzip ? gzipSync(bytes) : bytes);
}

beforeAll(async () => {
  await build({ ...cliBuild, config: false, silent: true, outDir: OUT, entry: { cli: join(ROOT, 'src', 'cli.ts') } });
  // `deltaprop bench` loads the benchmark's own bundle from beside cli.js, as in dist/
  await build({ ...benchBuild, config: false, silent: true, outDir: OUT, entry: { bench: join(ROOT, 'bench', 'run.ts') } });
  expect(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);

  const wine = wineRows();
  const csv = [`${WINE_FEATURES.join(',')},cultivar`, ...wine.x.map((r, i) => `${r.join(',')},${wine.label[i]}`)].join('\n') + '\n';
  writeFileSync(at('wine.csv'), csv);
  writeFileSync(at('wine.csv.gz'), gzipSync(csv));
  writeFileSync(at('wine.tsv'), csv.replaceAll(',', '\t'));
  writeFileSync(at('wine.txt'), csv.replaceAll(',', ';'));
  // the target in the middle, for --target by name
  writeFileSync(at('wine-mid.csv'), [`cultivar,${WINE_FEATURES.join(',')}`, ...wine.x.map((r, i) => `${wine.label[i]},${r.join(',')}`)].join('\n'));
  // features only (no target), for predict
  writeFileSync(at('wine-features.csv'), [WINE_FEATURES.join(','), ...wine.x.slice(0, 10).map((r) => r.join(','))].join('\n'));

  // headerless, integer classes 1 and 6 (not 0..k-1)
  const rng = new Random(3), rows: string[] = [];
  for (let i = 0; i < 120; i++) {
    const c = i % 2;
    rows.push([2 * c + 0.5 * rng.normal(), -c + 0.5 * rng.normal(), rng.normal()].map((v) => v.toFixed(3)).join(',') + `,${c ? 6 : 1}`);
  }
  writeFileSync(at('plain.csv'), rows.join('\n'));

  // regression: y = 2a − b + 0.5
  const reg = ['a,b,y'];
  for (let i = 0; i < 300; i++) {
    const a = 2 * rng.uniform() - 1, b = 2 * rng.uniform() - 1;
    reg.push(`${a.toFixed(4)},${b.toFixed(4)},${(2 * a - b + 0.5 + 0.02 * rng.normal()).toFixed(4)}`);
  }
  writeFileSync(at('reg.csv'), reg.join('\n'));

  // IDX pair: 6×6 images, 3 classes, the class's row band bright; images gzip, labels plain
  const n = 240, px = new Uint8Array(n * 36), labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels[i] = c;
    for (let p = 0; p < 36; p++) {
      const band = Math.floor(Math.floor(p / 6) / 2) === c;
      px[i * 36 + p] = Math.min(255, Math.round((band ? 170 : 40) + 60 * rng.uniform()));
    }
  }
  writeIdx(at('tiny-images-idx3-ubyte.gz'), 0x08, [n, 6, 6], px, true);
  writeIdx(at('tiny-labels-idx1-ubyte'), 0x08, [n], labels, false);
  mkdirSync(at('other'));
  writeIdx(at('other/pics.idx'), 0x08, [n, 6, 6], px, false);
  writeIdx(at('other/answers.idx'), 0x08, [n], labels, false);
  writeIdx(at('other/short-labels.idx'), 0x08, [n - 1], labels.subarray(0, n - 1), false);

  // bad inputs
  writeFileSync(at('empty.csv'), '');
  writeFileSync(at('header-only.csv'), 'a,b,c\n');
  writeFileSync(at('ragged.csv'), 'a,b,c\n1,2,x\n3,4\n5,6,y\n');
  writeFileSync(at('text-cell.csv'), 'a,b,c\n1,2,x\n3,oops,y\n5,6,y\n');
  writeFileSync(at('one-class.csv'), 'a,b,c\n1,2,x\n3,4,x\n5,6,x\n');
  writeFileSync(at('not-a-model.model'), 'this is not a model file, just some text\n'.repeat(4));
  writeFileSync(at('corrupt.csv.gz'), Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.from('definitely not deflate data')]));
  writeFileSync(at('unknown-label.csv'), `${WINE_FEATURES.join(',')},cultivar\n1,2,3,4,5,nebbiolo\n`);
  mkdirSync(at('a-folder'));
  writeFileSync(at('missing-first.csv'), '1,,3,a\n4,5,6,b\n7,8,9,a\n');
  writeFileSync(at('spaces.csv'), 'x , y ,label\n 1 , 2 , a \n3,4,b\n 5,6 ,a\n7, 8,b \n');
  writeFileSync(at('big-cell.csv'), 'a,b,c\n1,2,x\n3,1e39,y\n5,6,x\n7,8,y\n');
  writeFileSync(at('big-cell-plain.csv'), '1,2,x\n3,-4e38,y\n5,6,x\n7,8,y\n');
  writeFileSync(at('big-target.csv'), 'a,b,y\n1,2,0.5\n3,4,1e39\n5,6,1.5\n7,8,2.5\n');
  writeFileSync(at('dup-header.csv'), 'a,b,a\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n');
}, 120_000);

afterAll(() => {
  rmSync(OUT, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

// the trained model the evaluate and predict tests use
let wineModel = '';
async function trainWine(): Promise<string> {
  if (wineModel) return wineModel;
  const r = await cli('train', 'wine.csv', '--target', 'cultivar', '--layers', '16', '--epochs', '40', '--lr', '0.01', '--seed', '1', '--save', 'wine.model', '--quiet');
  expect(r.code, r.stderr).toBe(0);
  return (wineModel = at('wine.model'));
}

describe('deltaprop train', () => {
  it('trains on a CSV with a header and a string target: epoch lines, summary, model file, plot', async () => {
    const r = await cli('train', 'wine.csv', '--target', 'cultivar', '--layers', '16,8', '--epochs', '40', '--seed', '1',
      '--lr', '0.01', '--validation-split', '0.2', '--save', 'wine-full.model', '--plot', 'wine.svg');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(''); // no progress bar when stderr is not a terminal
    expect(r.lines[0]).toMatch(/^backend: (native|wasm|js) \(\S+, \d+ threads?\): /);
    const epochs = r.lines.filter((l) => l.startsWith('epoch '));
    expect(epochs).toHaveLength(40);
    for (const l of epochs) expect(l).toMatch(/^epoch +\d+\/40 {2}loss \d\.\d{4} {2}acc \d\.\d{4} {2}val_loss \d\.\d{4} {2}val_acc \d\.\d{4} {2}[\d,]+ samples\/s$/);
    expect(r.stdout).toMatch(/target 'cultivar' \(3 classes\)/);
    const last = r.lines[r.lines.length - 1];
    expect(last).toMatch(/^test accuracy: [01]\.\d{4}$/);
    expect(Number(last.split(': ')[1])).toBeGreaterThanOrEqual(0.9);

    const svg = readFileSync(at('wine.svg'), 'utf8');
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg).toContain('<svg');
    expect(svg.match(/<polyline/g)).toHaveLength(4); // loss and accuracy, training and validation
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  }, 60_000);

  it('stores class names (sorted) and the standardization of the training split in the model file', async () => {
    const path = await trainWine();
    const model = await readModelFile(path, new JsBackend());
    expect(model.spec.classes).toEqual(['barbera', 'barolo', 'grignolino']);
    expect(model.inputs).toBe(5);
    // the same stratified split the CLI made (seed 1, 0.2): the stored means are the training rows'
    const wine = wineRows();
    const classes = ['barbera', 'barolo', 'grignolino'];
    const x = { data: Float32Array.from(wine.x.flat()), shape: [WINE_ROWS, 5] as [number, number] };
    const { train, test } = trainTestSplit({ x, y: Int32Array.from(wine.label, (l) => classes.indexOf(l)) }, 0.2, 1);
    expect(test.x.shape[0]).toBe(36);
    const mean = (rows: Float32Array, j: number): number => {
      let s = 0;
      for (let i = j; i < rows.length; i += 5) s += rows[i];
      return s / (rows.length / 5);
    };
    for (let j = 0; j < 5; j++) expect(model.spec.normalization!.mean[j]).toBeCloseTo(mean(train.x.data, j), 3);
    // and not the statistics of all rows (the test rows shift them)
    const allMeans = WINE_FEATURES.map((_, j) => mean(x.data, j));
    expect(model.spec.normalization!.mean.some((m, j) => Math.abs(m - allMeans[j]) > 1e-3)).toBe(true);
  }, 60_000);

  it('--json prints one JSON object with the final metrics, and the same seed gives the same numbers', async () => {
    const args = ['train', 'wine.csv', '--layers', '16', '--epochs', '30', '--lr', '0.01', '--seed', '5', '--json'];
    const [a, b] = [await cli(...args), await cli(...args)];
    expect(a.code, a.stderr).toBe(0);
    expect(a.lines).toHaveLength(1);
    const j = lastJson(a);
    for (const key of ['loss', 'accuracy', 'test_loss', 'test_accuracy', 'seconds']) expect(typeof j[key]).toBe('number');
    expect(j.backend).toMatch(/^(native|wasm|js)$/);
    expect(j.epochs).toBe(30);
    expect(j.classes).toEqual(['barbera', 'barolo', 'grignolino']);
    expect(j.rows).toEqual({ train: 144, validation: 0, test: 36 });
    expect(j.test_accuracy as number).toBeGreaterThanOrEqual(0.85);
    const jb = lastJson(b);
    expect({ ...jb, seconds: 0 }).toEqual({ ...j, seconds: 0 });
  }, 60_000);

  it('reads gzip CSV exactly like the plain file, and finds the target by name anywhere', async () => {
    const plain = lastJson(await cli('train', 'wine.csv', '--epochs', '5', '--json'));
    const gz = lastJson(await cli('train', 'wine.csv.gz', '--epochs', '5', '--json'));
    const mid = lastJson(await cli('train', 'wine-mid.csv', '--target', 'cultivar', '--epochs', '5', '--json'));
    expect({ ...gz, seconds: 0 }).toEqual({ ...plain, seconds: 0 });
    expect(mid.classes).toEqual(['barbera', 'barolo', 'grignolino']);
    expect(mid.rows).toEqual(plain.rows);
    const tsv = lastJson(await cli('train', 'wine.tsv', '--epochs', '5', '--json'));
    const semicolons = lastJson(await cli('train', 'wine.txt', '--delimiter', ';', '--epochs', '5', '--json'));
    expect({ ...tsv, seconds: 0 }).toEqual({ ...plain, seconds: 0 });
    expect({ ...semicolons, seconds: 0 }).toEqual({ ...plain, seconds: 0 });
    const tab = lastJson(await cli('train', 'wine.tsv', '--delimiter', 'tab', '--epochs', '5', '--json'));
    expect({ ...tab, seconds: 0 }).toEqual({ ...plain, seconds: 0 });
  }, 60_000);

  it('detects a headerless CSV with integer classes; --header forces the first row to be names', async () => {
    const r = await cli('train', 'plain.csv', '--epochs', '20', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson(r);
    expect(j.classes).toEqual(['1', '6']);
    expect((j.rows as { train: number; test: number }).train + (j.rows as { test: number }).test).toBe(120);
    const forced = lastJson(await cli('train', 'plain.csv', '--header', '--epochs', '2', '--json'));
    const rows = forced.rows as { train: number; test: number };
    expect(rows.train + rows.test).toBe(119);
    const byIndex = lastJson(await cli('train', 'plain.csv', '--target', '3', '--epochs', '20', '--json'));
    expect({ ...byIndex, seconds: 0 }).toEqual({ ...j, seconds: 0 });
  }, 60_000);

  it('allows spaces around cells (numbers, names and labels)', async () => {
    const r = await cli('train', 'spaces.csv', '--target', 'label', '--test-split', '0', '--epochs', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r).classes).toEqual(['a', 'b']);
    expect(lastJson(r).rows).toEqual({ train: 4, validation: 0, test: 0 });
  }, 30_000);

  it('regression on a numeric target: mse, no accuracy, a small test loss; the last line says so', async () => {
    const r = await cli('train', 'reg.csv', '--epochs', '60', '--seed', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson(r);
    expect(j.task).toBe('regression');
    expect(j.accuracy).toBeNull();
    expect(j.test_accuracy).toBeNull();
    expect(j.test_loss as number).toBeLessThan(0.05); // the target's variance is ≈ 1.7
    const human = await cli('train', 'reg.csv', '--epochs', '3', '--quiet');
    expect(human.lines[human.lines.length - 1]).toMatch(/^test loss \(mse\): \d+\.\d{4} \(60 held-out rows\)$/);
  }, 60_000);

  it('regression with --loss huber --huber-delta and --loss meanAbsoluteError: the delta is saved with the model', async () => {
    const r = await cli('train', 'reg.csv', '--loss', 'huber', '--huber-delta', '0.5', '--epochs', '60', '--seed', '2', '--save', 'huber.model', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson(r);
    expect(j.test_r2 as number).toBeGreaterThan(0.9);
    const { spec } = await readModelFile(at('huber.model'), new JsBackend());
    expect(spec.loss).toBe('huber');
    expect(spec.huberDelta).toBe(0.5);
    const mae = await cli('train', 'reg.csv', '--loss', 'meanAbsoluteError', '--epochs', '3', '--quiet');
    expect(mae.code, mae.stderr).toBe(0);
    expect(mae.lines[mae.lines.length - 1]).toMatch(/^test loss \(meanAbsoluteError\): \d+\.\d{4} \(60 held-out rows\)$/);
  }, 60_000);

  it('--class-weight balanced trains a classifier with the rows weighted by class', async () => {
    // 10% of the rows in class 'rare', overlapping the common class
    const r0 = new Random(8), lines = ['x1,x2,label'];
    for (let i = 0; i < 1000; i++) {
      const rare = i % 10 === 0;
      lines.push(`${(r0.normal() + (rare ? 1 : 0)).toFixed(4)},${(r0.normal() + (rare ? 1 : 0)).toFixed(4)},${rare ? 'rare' : 'common'}`);
    }
    writeFileSync(at('imbalanced.csv'), lines.join('\n') + '\n');
    const args = ['train', 'imbalanced.csv', '--target', 'label', '--epochs', '30', '--patience', 'none', '--seed', '1', '--json'];
    const plain = lastJson(await cli(...args));
    const r = await cli(...args, '--class-weight', 'balanced');
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson(r);
    // classes sorted: common, rare; the rare class's held-out recall rises with the weights
    const recall = (run: Record<string, unknown>) => (run.test_per_class as { class: string; recall: number }[]).find((c) => c.class === 'rare')!.recall;
    expect(recall(j), `${recall(plain)} → ${recall(j)}`).toBeGreaterThan(recall(plain) + 0.25);
  }, 60_000);

  it('regression reports MAE, RMSE and R² for the training, validation and test rows', async () => {
    const j = lastJson(await cli('train', 'reg.csv', '--epochs', '40', '--seed', '2', '--validation-split', '0.2', '--json'));
    for (const key of ['mae', 'rmse', 'r2', 'val_mae', 'val_rmse', 'val_r2', 'test_mae', 'test_rmse', 'test_r2']) expect(typeof j[key], key).toBe('number');
    // RMSE² is the mse loss on the same rows
    expect((j.test_rmse as number) ** 2).toBeCloseTo(j.test_loss as number, 5);
    expect(j.test_r2 as number).toBeGreaterThan(0.9);
    expect(j.test_mae as number).toBeLessThanOrEqual(j.test_rmse as number);
    for (const key of ['test_f1', 'test_precision', 'test_roc_auc', 'f1']) expect(j[key], key).toBeNull();
  }, 60_000);

  // The defaults: Adam at 0.01, up to 200 epochs, early stopping (patience 10, best weights kept)
  // on the validation loss of a tenth of the training rows from 1,000 of them (digits), on the
  // training loss below (iris: its 120 rows are all used for fitting). The CLI's default seed.
  it('with no options, builtin:iris reaches test accuracy ≥ 0.93 in well under a second of training', async () => {
    const r = await cli('train', 'builtin:iris');
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines).toContain('split: 120 train, 0 validation, 30 test');
    expect(r.lines).toContain('training: up to 200 epochs, batch 32, early stopping on loss after 10 epochs without improvement, best weights kept');
    const last = r.lines[r.lines.length - 1];
    expect(last).toMatch(/^test accuracy: [01]\.\d{4}$/);
    expect(Number(last.split(': ')[1])).toBeGreaterThanOrEqual(0.93);
    // the summary before the first epoch line
    const table = r.lines.indexOf('dense_1 (relu)      (None, 32)       160');
    expect(table).toBeGreaterThan(0);
    expect(table).toBeLessThan(r.lines.findIndex((l) => l.startsWith('epoch ')));
    expect(r.lines).toContain('Total params: 259');
  }, 60_000);

  it('with no options, builtin:digits reaches test accuracy ≥ 0.96, stopping early on the validation loss', async () => {
    const j = lastJson(await cli('train', 'builtin:digits', '--json'));
    expect(j.test_accuracy as number).toBeGreaterThanOrEqual(0.96);
    expect(j.rows).toEqual({ train: 1295, validation: 143, test: 359 });
    expect(j.stopped_early).toBe(true);
    expect(j.epochs as number).toBeLessThan(200);
    expect(j.seconds as number).toBeLessThan(20);
  }, 60_000);

  it('--batch-norm and --dropout add the layers after each hidden layer (dense → batch norm → activation → dropout)', async () => {
    const r = await cli('train', 'builtin:digits', '--layers', '64,32', '--batch-norm', '--dropout', '0.2', '--save', 'digits-bn.model');
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines).toContain('model: 64 → 64 → batchNormalization relu → dropout 0.2 → 32 → batchNormalization relu → dropout 0.2 → 10 (relu, softmax output), '
      + 'categoricalCrossEntropy, adam lr 0.01, 6,762 parameters');
    expect(r.lines.some((l) => l.startsWith('batch_normalization_2 (relu)'))).toBe(true);
    expect(r.lines).toContain('Non-trainable params: 192');
    expect(Number(r.lines[r.lines.length - 1].split(': ')[1])).toBeGreaterThanOrEqual(0.96);
    const model = await readModelFile(at('digits-bn.model'), new JsBackend());
    expect(model.spec.layers.map((l) => l.type ?? 'dense')).toEqual(['dense', 'batchNormalization', 'dropout', 'dense', 'batchNormalization', 'dropout', 'dense']);
    expect(model.getRunningStats().length).toBe(192);
    const e = await cli('evaluate', 'digits-bn.model', 'builtin:digits', '--json');
    expect(e.code, e.stderr).toBe(0);
    expect(lastJson(e).accuracy as number).toBeGreaterThan(0.95);
    for (const bad of ['1', '-0.1', 'x']) {
      const b = await cli('train', 'builtin:iris', '--dropout', bad);
      expect(b.code).not.toBe(0);
      expect(b.stderr).toContain('--dropout must be a fraction in [0, 1).');
    }
  }, 60_000);

  it('--patience none trains every epoch; --validation-split 0 turns the automatic hold-out off', async () => {
    const j = lastJson(await cli('train', 'builtin:iris', '--epochs', '25', '--patience', 'none', '--json'));
    expect(j.epochs).toBe(25);
    expect(j.stopped_early).toBe(false);
    const d = lastJson(await cli('train', 'builtin:digits', '--epochs', '2', '--validation-split', '0', '--json'));
    expect(d.rows).toEqual({ train: 1438, validation: 0, test: 359 });
  }, 60_000);

  it('the summary reports precision, recall, F1 and per-class scores; --json has them as numbers', async () => {
    const r = await cli('train', 'wine.csv', '--target', 'cultivar', '--layers', '16', '--epochs', '40', '--seed', '1', '--quiet');
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines.some((l) => /^test: macro precision \d\.\d{4}  recall \d\.\d{4}  f1 \d\.\d{4}$/.test(l))).toBe(true);
    const head = r.lines.findIndex((l) => l.trim().startsWith('class'));
    expect(r.lines.slice(head + 1, head + 4).map((l) => l.trim().split(/\s+/)[0])).toEqual(['barbera', 'barolo', 'grignolino']);
    // --quiet: no epoch lines and no layer table
    expect(r.lines.some((l) => l.startsWith('epoch ') || l.startsWith('Total params'))).toBe(false);

    const j = lastJson(await cli('train', 'wine.csv', '--target', 'cultivar', '--layers', '16', '--epochs', '40', '--seed', '1', '--validation-split', '0.2', '--json'));
    for (const key of ['f1', 'precision', 'recall', 'val_f1', 'test_precision', 'test_recall', 'test_f1']) expect(typeof j[key], key).toBe('number');
    expect(j.test_roc_auc).toBeNull(); // three classes
    const per = j.test_per_class as { class: string; precision: number; recall: number; f1: number; support: number }[];
    expect(per.map((c) => c.class)).toEqual(['barbera', 'barolo', 'grignolino']);
    expect(per.reduce((s, c) => s + c.support, 0)).toBe(36);
    expect(j.test_f1).toBeCloseTo(per.reduce((s, c) => s + c.f1, 0) / 3, 12);
    expect(j.mae).toBeNull();
  }, 60_000);

  it('--checkpoint FILE saves the best model during training, as a model file evaluate reads', async () => {
    const r = await cli('train', 'builtin:iris', '--epochs', '30', '--checkpoint', 'iris-best.model', '--json');
    expect(r.code, r.stderr).toBe(0);
    const model = await readModelFile(at('iris-best.model'), new JsBackend());
    expect(model.spec.classes).toEqual(['setosa', 'versicolor', 'virginica']);
    const e = await cli('evaluate', 'iris-best.model', 'builtin:iris', '--json');
    expect(e.code, e.stderr).toBe(0);
    expect(lastJson(e).accuracy as number).toBeGreaterThan(0.9);
    const bad = await cli('train', 'builtin:iris', '--checkpoint', join('no-such-folder', 'm.model'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/no-such-folder/);
    expect(bad.stdout).toBe('');
  }, 60_000);

  it('trains on an IDX pair (gzip images, labels paired by name) and with --labels', async () => {
    const r = await cli('train', 'tiny-images-idx3-ubyte.gz', '--epochs', '20', '--seed', '1', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson(r);
    expect(j.classes).toEqual(['0', '1', '2']);
    expect(j.test_accuracy as number).toBeGreaterThanOrEqual(0.9);
    const named = await cli('train', 'other/pics.idx', '--labels', 'other/answers.idx', '--epochs', '20', '--seed', '1', '--json');
    expect(named.code, named.stderr).toBe(0);
    expect({ ...lastJson(named), seconds: 0 }).toEqual({ ...j, seconds: 0 });
  }, 60_000);

  it('npm start: digits reach test accuracy ≥ 0.95, printed as the last line', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ deltaprop: 'dist/cli.js' });
    expect(pkg.scripts.start).toMatch(/^node dist\/cli\.js train builtin:digits /);
    const args = pkg.scripts.start.split(' ').slice(2);
    const r = await cli(...args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines[0]).toMatch(/^backend: /);
    const last = r.lines[r.lines.length - 1];
    expect(last).toMatch(/^test accuracy: [01]\.\d{4}$/);
    expect(Number(last.split(': ')[1])).toBeGreaterThanOrEqual(0.95);
  }, 120_000);

  it('on a terminal: a progress bar per epoch on stderr (loss, accuracy, samples/s, ETA), cleared before each epoch line', async () => {
    // script(1) (util-linux, in every Debian) runs the command on a pseudo-terminal
    const child = spawn('script', ['-qec', `"${process.execPath}" "${CLI}" train builtin:iris --epochs 3 --lr 0.01 --batch-size 8`, '/dev/null'], { cwd: dir });
    let tty = '';
    child.stdout.on('data', (d) => (tty += d));
    const code = await new Promise((done) => child.on('close', done));
    expect(code).toBe(0);
    const frames = tty.split(/\r|\n|\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/).filter((f) => f.trim() !== '');
    const bars = frames.filter((f) => f.startsWith('epoch 1/3 ['));
    expect(bars.length).toBeGreaterThanOrEqual(1);
    expect(bars[bars.length - 1]).toMatch(/^epoch 1\/3 \[=+\] 100% \| loss \d\.\d{4} \| acc \d\.\d{4} \| [\d,]+ samples\/s \| ETA \d+s$/);
    expect(frames.filter((f) => /^epoch \d\/3 {2}loss/.test(f))).toHaveLength(3);
    expect(tty).toContain('\x1b[?25h'); // the cursor is shown again
    expect(frames[frames.length - 1]).toMatch(/^test accuracy: /);
  }, 30_000);

  it('600,000 rows: train (stratified split, no stack overflow) and evaluate', async () => {
    // two features: reading the CSV is most of the time, and it is the rows that matter here
    const rng = new Random(21), lines = ['f0,f1,label'];
    for (let i = 0; i < 600_000; i++) {
      const a = 2 * rng.uniform() - 1, b = 2 * rng.uniform() - 1;
      lines.push(`${a.toFixed(3)},${b.toFixed(3)},${a - 2 * b > 0 ? 'pos' : 'neg'}`);
    }
    writeFileSync(at('large.csv'), `${lines.join('\n')}\n`);
    const r = await cli('train', 'large.csv', '--layers', '8', '--epochs', '1', '--batch-size', '1024', '--lr', '0.01', '--seed', '1', '--save', 'large.model', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson(r);
    // with no --validation-split, a tenth of the 480,000 training rows is held out for early stopping
    expect(j.rows).toEqual({ train: 432_000, validation: 48_000, test: 120_000 });
    expect(j.test_accuracy).toBeGreaterThan(0.95);
    const e = await cli('evaluate', 'large.model', 'large.csv', '--json');
    expect(e.code, e.stderr).toBe(0);
    expect(lastJson(e).rows).toBe(600_000);
    expect(lastJson(e).accuracy).toBeGreaterThan(0.95);
    for (const f of ['large.csv', 'large.model']) rmSync(at(f));
  }, 120_000);

  it('--layers none: a single softmax layer (multinomial logistic regression)', async () => {
    const r = await cli('train', 'builtin:iris', '--layers', 'none', '--lr', '0.05', '--epochs', '60', '--seed', '1', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r).test_accuracy as number).toBeGreaterThanOrEqual(0.85);
  }, 30_000);

  it('--patience stops early and keeps the best weights', async () => {
    const j = lastJson(await cli('train', 'builtin:iris', '--epochs', '400', '--patience', '0', '--validation-split', '0.25', '--lr', '0.01', '--json'));
    expect(j.stopped_early).toBe(true);
    expect(j.epochs as number).toBeLessThan(400);
    expect(j.best_epoch).toBe((j.epochs as number) - 1);
  }, 60_000);
});

describe('deltaprop evaluate and predict', () => {
  it('evaluate prints loss, accuracy and a confusion matrix with the class names', async () => {
    await trainWine();
    const r = await cli('evaluate', 'wine.model', 'wine.csv', '--target', 'cultivar');
    expect(r.code, r.stderr).toBe(0);
    const header = r.lines.findIndex((l) => l.startsWith('confusion matrix'));
    expect(r.lines[header + 1].trim().split(/\s+/)).toEqual(['barbera', 'barolo', 'grignolino']);
    expect(r.lines[header + 2].trim().split(/\s+/)[0]).toBe('barbera');
    expect(r.lines[r.lines.length - 1]).toMatch(/^accuracy: [01]\.\d{4}$/);

    const j = lastJson(await cli('evaluate', 'wine.model', 'wine.csv', '--json'));
    const confusion = j.confusion as number[][];
    expect(j.classes).toEqual(['barbera', 'barolo', 'grignolino']);
    expect(confusion.flat().reduce((a, b) => a + b, 0)).toBe(WINE_ROWS);
    confusion.forEach((row) => expect(row.reduce((a, b) => a + b, 0)).toBe(WINE_ROWS / 3));
    expect(j.accuracy).toBeCloseTo((confusion[0][0] + confusion[1][1] + confusion[2][2]) / WINE_ROWS, 10);
    expect(j.accuracy as number).toBeGreaterThanOrEqual(0.9);
  }, 60_000);

  it('evaluate: precision, recall and F1 per class and macro, as sklearn computes them from the confusion matrix', async () => {
    await trainWine();
    const r = await cli('evaluate', 'wine.model', 'wine.csv', '--target', 'cultivar');
    expect(r.lines.some((l) => /^macro precision \d\.\d{4}  recall \d\.\d{4}  f1 \d\.\d{4}$/.test(l))).toBe(true);
    const j = lastJson(await cli('evaluate', 'wine.model', 'wine.csv', '--json'));
    const cm = j.confusion as number[][], k = cm.length;
    const per = j.per_class as { class: string; precision: number; recall: number; f1: number; support: number }[];
    let p = 0, rc = 0, f = 0;
    for (let c = 0; c < k; c++) {
      const tp = cm[c][c], actual = cm[c].reduce((a, b) => a + b, 0), predicted = cm.reduce((a, row) => a + row[c], 0);
      const pc = predicted ? tp / predicted : 0, rcc = actual ? tp / actual : 0, fc = pc + rcc ? (2 * pc * rcc) / (pc + rcc) : 0;
      expect(per[c]).toEqual({ class: (j.classes as string[])[c], precision: expect.closeTo(pc, 12), recall: expect.closeTo(rcc, 12), f1: expect.closeTo(fc, 12), support: actual });
      p += pc;
      rc += rcc;
      f += fc;
    }
    expect(j.precision).toBeCloseTo(p / k, 12);
    expect(j.recall).toBeCloseTo(rc / k, 12);
    expect(j.f1).toBeCloseTo(f / k, 12);
    expect(j.roc_auc).toBeNull();
  }, 60_000);

  it('evaluate on two classes reports ROC AUC', async () => {
    const r = await cli('train', 'plain.csv', '--epochs', '20', '--seed', '1', '--save', 'two.model', '--quiet');
    expect(r.code, r.stderr).toBe(0);
    const j = lastJson(await cli('evaluate', 'two.model', 'plain.csv', '--json'));
    expect((j.classes as string[]).length).toBe(2);
    expect(j.roc_auc as number).toBeGreaterThan(0.5);
    expect(j.roc_auc as number).toBeLessThanOrEqual(1);
  }, 60_000);

  it('predict writes one CSV row per input row, class names and (on request) probabilities', async () => {
    await trainWine();
    const r = await cli('predict', 'wine.model', 'wine.csv');
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines[0]).toBe('class');
    expect(r.lines).toHaveLength(WINE_ROWS + 1);
    const truth = wineRows().label;
    const right = r.lines.slice(1).filter((c, i) => c === truth[i]).length;
    expect(right / WINE_ROWS).toBeGreaterThanOrEqual(0.9);

    const p = await cli('predict', 'wine.model', 'wine-features.csv', '--probabilities');
    expect(p.code, p.stderr).toBe(0);
    expect(p.lines[0]).toBe('class,p_barbera,p_barolo,p_grignolino');
    expect(p.lines).toHaveLength(11);
    for (const line of p.lines.slice(1)) {
      const [cls, ...probs] = line.split(',');
      const ps = probs.map(Number);
      expect(ps.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(cls).toBe(['barbera', 'barolo', 'grignolino'][ps.indexOf(Math.max(...ps))]);
    }

    const o = await cli('predict', 'wine.model', 'wine-features.csv', '--out', 'predictions.csv');
    expect(o.code, o.stderr).toBe(0);
    expect(o.stdout).toBe('');
    expect(readFileSync(at('predictions.csv'), 'utf8').trim().split('\n')).toEqual(p.lines.map((l) => l.split(',')[0]));
  }, 60_000);

  it('predict on a regression model writes values', async () => {
    expect((await cli('train', 'reg.csv', '--epochs', '40', '--save', 'reg.model', '--quiet')).code).toBe(0);
    const r = await cli('predict', 'reg.model', 'reg.csv');
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines[0]).toBe('value');
    const first = readFileSync(at('reg.csv'), 'utf8').split('\n')[1].split(',').map(Number);
    expect(Number(r.lines[1])).toBeCloseTo(first[2], 0);
    const p = await cli('predict', 'reg.model', 'reg.csv', '--probabilities');
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/^deltaprop: error: reg\.model: --probabilities needs a classifier; this model predicts values\n$/);
    const e = lastJson(await cli('evaluate', 'reg.model', 'reg.csv', '--json'));
    expect(e.accuracy).toBeNull();
    expect(e.rows).toBe(300);
    expect(e.loss as number).toBeLessThan(0.1);
    expect(e.mae as number).toBeGreaterThan(0);
    expect(e.mae as number).toBeLessThanOrEqual(Math.sqrt(e.loss as number) + 1e-9); // mean |e| ≤ √(mean e²)
    expect(e.rmse as number).toBeCloseTo(Math.sqrt(e.loss as number), 5);
    expect(e.r2 as number).toBeGreaterThan(0.9);
    expect(e.r2 as number).toBeLessThanOrEqual(1);
  }, 60_000);

  it('classes with --loss mse or binaryCrossEntropy: one sigmoid per class, accuracy counted by argmax as evaluate does', async () => {
    for (const loss of ['mse', 'binaryCrossEntropy']) {
      const r = await cli('train', 'builtin:iris', '--loss', loss, '--lr', '0.01', '--epochs', '60', '--seed', '1', '--save', `iris-${loss}.model`, '--quiet');
      expect(r.code, r.stderr).toBe(0);
      const last = r.lines[r.lines.length - 1];
      expect(last).toMatch(/^test accuracy: [01]\.\d{4}$/);
      expect(Number(last.split(': ')[1])).toBeGreaterThanOrEqual(0.85);
      const model = await readModelFile(at(`iris-${loss}.model`), new JsBackend());
      expect(model.spec.layers[model.spec.layers.length - 1]).toMatchObject({ units: 3, activation: 'sigmoid' });
      const e = lastJson(await cli('evaluate', `iris-${loss}.model`, 'builtin:iris', '--json'));
      expect(e.classes).toEqual(['setosa', 'versicolor', 'virginica']);
      expect(e.accuracy as number).toBeGreaterThanOrEqual(0.85);
    }
  }, 60_000);

  it('a reader that closes the pipe early (predict | head) ends the command quietly', async () => {
    expect((await cli('train', 'builtin:digits', '--epochs', '1', '--save', 'digits.model', '--quiet')).code).toBe(0);
    // a real pipe into head (its buffer, 64 KiB, is smaller than the output), as a user types it
    const child = spawn('bash', ['-c', 'set -o pipefail; "$0" "$1" predict digits.model builtin:digits --probabilities | head -n 2', process.execPath, CLI], { cwd: dir });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((done) => child.on('close', done));
    expect(stdout.split('\n')[0]).toMatch(/^class,p_0,p_1,/);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  }, 30_000);
});

describe('deltaprop info, help, version', () => {
  it('info --json prints exactly one JSON object with the backend and every backend\'s status', async () => {
    const r = await cli('info', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines).toHaveLength(1);
    const j = lastJson(r);
    expect(j.backend).toMatch(/^(native|wasm|js)$/);
    expect(typeof j.isa).toBe('string');
    expect(Number.isInteger(j.threads)).toBe(true);
    const backends = j.backends as Record<string, { ok: boolean; isa?: string; reason?: string }>;
    expect(Object.keys(backends).sort()).toEqual(['js', 'native', 'wasm']);
    expect(backends.js).toMatchObject({ ok: true, isa: 'js' });
    for (const b of Object.values(backends)) expect(b.ok ? typeof b.isa : typeof b.reason).toBe('string');
    expect(backends[j.backend as string].ok).toBe(true);
    const human = await cli('info');
    expect(human.stdout).toContain(`backend: ${j.backend as string}`);
  }, 30_000);

  it('--help for each command shows its options and examples; --version the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect((await cli('--version')).stdout.trim()).toBe(pkg.version);
    const top = await cli('--help');
    expect(top.code).toBe(0);
    for (const c of ['train', 'evaluate', 'predict', 'info', 'bench']) expect(top.stdout).toContain(c);
    const options: Record<string, string[]> = {
      train: ['--target', '--layers', '--activation', '--loss', '--optimizer', '--lr', '--epochs', '--batch-size', '--validation-split',
        '--test-split', '--seed', '--backend', '--threads', '--save', '--plot', '--quiet', '--json', '--header', '--labels'],
      evaluate: ['--target', '--json', '--backend'],
      predict: ['--probabilities', '--out', '--target'],
      info: ['--json'],
      bench: ['--workload', '--backend', '--peers', '--quick', '--json'],
    };
    for (const [c, opts] of Object.entries(options)) {
      const h = await cli(c, '--help');
      expect(h.code).toBe(0);
      expect(h.stdout).toContain('Examples:');
      expect(h.stdout).toContain(`$ deltaprop ${c}`);
      for (const o of opts) expect(h.stdout, `${c} --help`).toContain(o);
    }
  }, 30_000);
});

describe('deltaprop bench', () => {
  it('runs the benchmark suite (quick, deltaprop only): results checked before timing, one JSON line each', async () => {
    const r = await cli('bench', '--quick', '--peers', 'none', '--workload', 'tiny-xor', '--no-out', '--json');
    expect(r.code, r.stderr).toBe(0);
    const rows = r.lines.map((l) => JSON.parse(l) as { workload: string; system: string; check?: { ok: boolean } });
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows.some((row) => row.system === 'deltaprop-js')).toBe(true);
    for (const row of rows) {
      expect(row.workload).toBe('tiny-xor');
      expect(row.check?.ok, row.system).toBe(true);
    }
  }, 120_000);
});

describe('bad input: one line on stderr, a non-zero exit, no output file', () => {
  const cases: [string, string[], RegExp][] = [
    ['a missing file', ['train', 'missing.csv'], /missing\.csv: cannot read data file \(no such file\)/],
    ['a folder instead of a file', ['train', 'a-folder'], /a-folder: cannot read data file \(is a directory\)/],
    ['an empty file', ['train', 'empty.csv'], /empty\.csv: empty file/],
    ['a header without rows', ['train', 'header-only.csv'], /header-only\.csv: no data rows after the header/],
    ['ragged rows', ['train', 'ragged.csv'], /ragged\.csv: ragged rows: line 3 has 2 fields, line 1 has 3/],
    ['a non-numeric feature cell', ['train', 'text-cell.csv'], /text-cell\.csv: line 3, column 'b': 'oops' is not a number/],
    ['an unknown target column', ['train', 'wine.csv', '--target', 'colour'],
      /unknown target column 'colour' \(known: 'alcohol', 'malic_acid', 'ash', 'magnesium', 'color_intensity', 'cultivar'\)/],
    ['a target index out of range', ['train', 'plain.csv', '--target', '9'], /target column 9 is out of range: the file has 4 columns/],
    ['an empty cell in the first row (not mistaken for a header)', ['train', 'missing-first.csv'], /missing-first\.csv: line 1, column 1: an empty cell is not a number/],
    ['a single class', ['train', 'one-class.csv'], /the target 'c' has a single class \('x'\); a classifier needs at least 2/],
    ['corrupt gzip', ['train', 'corrupt.csv.gz'], /corrupt\.csv\.gz: corrupt gzip data/],
    ['IDX labels that do not match the images', ['train', 'other/pics.idx', '--labels', 'other/short-labels.idx'], /239 labels for 240 images/],
    ['IDX images without labels', ['train', 'other/pics.idx'], /no labels file found next to it; give one with --labels FILE/],
    ['an unknown built-in', ['train', 'builtin:mnist'], /unknown built-in data set 'builtin:mnist' \(known: builtin:iris, builtin:digits\)/],
    ['a regression target with text', ['train', 'wine.csv', '--task', 'regression'], /line 2, target 'cultivar': 'grignolino' is not a number/],
    ['a bad option value', ['train', 'wine.csv', '--lr', '-1'], /--lr must be a positive number/],
    ['--huber-delta without the huber loss', ['train', 'reg.csv', '--huber-delta', '2'], /--huber-delta needs --loss huber$/m],
    ['a non-positive --huber-delta', ['train', 'reg.csv', '--loss', 'huber', '--huber-delta', '0'], /--huber-delta must be a positive number/],
    ['--class-weight on a regression', ['train', 'reg.csv', '--class-weight', 'balanced'], /--class-weight needs a class target, but this is regression/],
    ['an unknown --class-weight', ['train', 'wine.csv', '--class-weight', 'auto'], /option '--class-weight <MODE>' argument 'auto' is invalid/],
    ['bad layer widths', ['train', 'wine.csv', '--layers', '16,x'], /--layers takes hidden layer widths/],
    ['an unknown option', ['train', 'wine.csv', '--learning-rate', '0.1'], /unknown option '--learning-rate'/],
    ['an unknown command', ['fit', 'wine.csv'], /unknown command 'fit'/],
    ['a model file that is not one', ['evaluate', 'not-a-model.model', 'wine.csv'], /not-a-model\.model: model file: /],
    ['a data file given as the model', ['predict', 'wine.csv', 'wine.csv'], /wine\.csv: model file: /],
    ['a missing model file', ['predict', 'nope.model', 'wine.csv'], /nope\.model: cannot read model file \(no such file\)/],
    ['a cell beyond float32', ['train', 'big-cell.csv'], /^deltaprop: error: big-cell\.csv: line 3, column 'b': 1e39 is beyond the float32 range \(±3\.4e38\)$/m],
    ['a cell beyond float32, no header', ['train', 'big-cell-plain.csv'], /big-cell-plain\.csv: line 2, column 1: -4e38 is beyond the float32 range/],
    ['a regression target beyond float32', ['train', 'big-target.csv', '--task', 'regression'], /big-target\.csv: line 3, target 'y': 1e39 is beyond the float32 range/],
    ['a target name that two columns have', ['train', 'dup-header.csv', '--target', 'a'],
      /dup-header\.csv: the target 'a' is ambiguous: the header has 2 columns of that name \(columns 0, 2\); rename them, or give the target by its 0-based index/],
    ['a model too large for any buffer', ['train', 'wine.csv', '--layers', '1000000000'],
      /^deltaprop: error: model size: 9,000,000,003 parameters is more than a model can hold \(1,069,547,520, 4 GiB of float32\); layer 1 alone \(5 inputs × 1,000,000,000 units\) has 6,000,000,000$/m],
    ['a model within the limits but beyond the backend\'s memory', ['train', 'wine.csv', '--backend', 'wasm', '--layers', '100000000'],
      /^deltaprop: error: the model does not fit in memory on the wasm backend \(wasm backend: cannot allocate 900000003 floats .*\); use fewer or smaller layers, or a smaller --batch-size$/m],
  ];
  it.each(cases)('%s', async (_what, args, message) => {
    const before = readdirSync(dir).sort();
    // every output the command can write, which must not appear
    const outputs = args[0] === 'train' ? ['--save', 'out.model', '--plot', 'out.svg'] : args[0] === 'predict' ? ['--out', 'out.csv'] : [];
    const r = await cli(...args, ...outputs);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.endsWith('\n')).toBe(true);
    expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(/^deltaprop: error: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(dir).sort()).toEqual(before); // no model, plot or temporary file left behind
  }, 30_000);

  it('data whose width does not match the model (evaluate and predict), and labels the model does not know', async () => {
    await trainWine();
    const before = readdirSync(dir).sort();
    const cases: [string[], RegExp][] = [
      [['evaluate', 'wine.model', 'plain.csv'], /plain\.csv: rows have 3 feature columns besides the target 'column 3', but the model expects 5/],
      [['predict', 'wine.model', 'plain.csv', '--out', 'p.csv'], /plain\.csv: rows have 4 feature columns, but the model expects 5/],
      [['predict', 'wine.model', 'tiny-images-idx3-ubyte.gz', '--out', 'p.csv'], /items have 36 values \(6×6\), but the model expects 5/],
      [['evaluate', 'wine.model', 'unknown-label.csv'], /unknown-label\.csv: line 2: label 'nebbiolo' is not one of the model's classes \(barbera, barolo, grignolino\)/],
      [['predict', 'wine.model', 'ragged.csv', '--out', 'p.csv'], /ragged\.csv: /],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(existsSync(at('p.csv'))).toBe(false);
  }, 60_000);

  it('an output that is not a regular file (a device node, a folder) fails before training, and stays what it was', async () => {
    await trainWine();
    const cases: [string[], RegExp][] = [
      [['train', 'wine.csv', '--epochs', '1000', '--save', '/dev/null'], /^deltaprop: error: \/dev\/null: cannot write model \(a device is there, not a regular file\)\n$/],
      [['train', 'wine.csv', '--epochs', '1000', '--save', '/dev/full'], /^deltaprop: error: \/dev\/full: cannot write model \(a device is there, not a regular file\)\n$/],
      [['train', 'wine.csv', '--epochs', '1000', '--plot', 'a-folder'], /^deltaprop: error: a-folder: cannot write plot \(a directory is there, not a regular file\)\n$/],
      [['predict', 'wine.model', 'wine.csv', '--out', '/dev/full'], /^deltaprop: error: \/dev\/full: cannot write predictions \(a device is there, not a regular file\)\n$/],
    ];
    const before = readdirSync(dir).sort();
    for (const [args, message] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message);
    }
    expect(statSync('/dev/null').isCharacterDevice() && statSync('/dev/full').isCharacterDevice()).toBe(true);
    expect(readdirSync(at('a-folder'))).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(before);
  }, 60_000);

  it('an output path in a missing folder fails before training', async () => {
    const r = await cli('train', 'wine.csv', '--epochs', '1000', '--save', 'no/such/folder/wine.model');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(''); // nothing trained, nothing printed
    expect(r.stderr).toMatch(/^deltaprop: error: no\/such\/folder\/wine\.model: cannot write model \(its folder does not exist\)\n$/);
  }, 30_000);
});
