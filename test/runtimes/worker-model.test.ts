// Slow: WorkerModel (createWorkerModel, dist/model-worker.js) in headless Chromium, from a local
// server rooted at the repository (test/runtimes/worker-page.html and worker-page.mjs). The page
// animates with requestAnimationFrame while a fit of the UCI digits runs in the worker, and, as
// the control, while the same fit runs on the page; the two fits' weights must be the same bits.
// Callbacks, stopTraining, early stopping, the divergence check, bad input and a crashing worker
// go through the worker and must behave as they do on the page. Then: a Vite build of an app that
// uses it, the package served from another origin (a CDN), Deno's Web Workers, and Node, which has
// none.
// Needs the built package (`npm run compile`: dist/ and wasm/).
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './chromium.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

interface Frames { frames: number; fps: number; median: number; p95: number; longest: number }
interface TrainResult {
  frames: Frames;
  seconds: number;
  isa: string;
  moved: { params: number; differing: number };
  history: { epoch: number; loss: number; accuracy: number }[];
}

let server: Server;
let base: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

/** Calls `harness[name](...args)` in the page (test/runtimes/worker-page.mjs). */
function harness<T>(name: string, ...args: unknown[]): Promise<T> {
  return page.evaluate(([n, a]) => (window as unknown as { harness: Record<string, (...x: unknown[]) => unknown> }).harness[n as string](...(a as unknown[])),
    [name, args] as const) as Promise<T>;
}

beforeAll(async () => {
  for (const f of ['dist/web.js', 'dist/model-worker.js', 'wasm/deltaprop-simd.wasm', 'wasm/deltaprop-relaxed.wasm']) {
    if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run \`npm run compile\` before the runtime tests`);
  }
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
  server = createServer((req, res) => {
    const path = resolve(root, `.${decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)}`);
    if (!path.startsWith(root) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    // CORS as a CDN sends it: worker-cdn.html loads the package from this origin into another
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream', 'access-control-allow-origin': '*' }).end(readFileSync(path));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  base = `http://127.0.0.1:${port}`;
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`http://127.0.0.1:${port}/test/runtimes/worker-page.html`);
  await page.waitForFunction(() => {
    const w = window as unknown as { harness?: unknown; harnessError?: string };
    return w.harness !== undefined || w.harnessError !== undefined;
  }, undefined, { timeout: 60_000 });
  const error = await page.evaluate(() => (window as unknown as { harnessError?: string }).harnessError);
  if (error) throw new Error(`the test page did not load: ${error}`);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  server?.close();
});

describe('WorkerModel in headless Chromium (slow)', () => {
  it('keeps a page animating at 60 fps while the digits train; the same fit on the page drops frames; the same bits', async () => {
    const idle = await harness<number[]>('idleFrames', 1000);
    // 64-1024-512-10 in batches of 1024 (two steps an epoch): a step takes ~80 ms on wasm on this
    // 2-core machine under load, five frames; 15 epochs took 2.0 s on the quiet machine and up to
    // 10 s under load, so 30: at least 2 s of frames wherever it runs
    const fit = { epochs: 30, batchSize: 1024 };
    const worker = await harness<TrainResult>('trainDigits', 'worker', fit.epochs, fit);
    const onPage = await harness<TrainResult>('trainDigits', 'page', fit.epochs, fit);
    const f = (r: TrainResult) => `${r.seconds.toFixed(2)} s, ${r.frames.frames} frames (${r.frames.fps.toFixed(1)} fps), median gap ${r.frames.median.toFixed(1)} ms, p95 ${r.frames.p95.toFixed(1)} ms, longest ${r.frames.longest.toFixed(1)} ms`;
    console.info(`idle page: ${idle.length} frames in 1 s\nfit in the worker: ${f(worker)}\nfit on the page:   ${f(onPage)}`);

    // the headless compositor draws at 60 Hz when nothing runs, or nothing below means anything
    expect(idle.length).toBeGreaterThanOrEqual(50);
    expect(worker.seconds, 'the fit lasts long enough to measure').toBeGreaterThanOrEqual(2);
    // In the worker the page's thread only draws. Median gap ≤ 1000/55 ms (≥ 55 fps), ≥ 50 frames
    // a second on average, 95% of the gaps ≤ 50 ms (at most two vsyncs missed in a row). Measured
    // while other builds and test runs shared the 2 cores (load average 8-15): 59.5-59.9 fps,
    // median 16.7 ms, p95 17-24 ms, longest 26-38 ms. The bounds leave room for a machine that
    // busy (the worker and the page's threads share two cores with it), not for a page that
    // waits on training steps.
    expect(worker.frames.median).toBeLessThanOrEqual(1000 / 55);
    expect(worker.frames.fps).toBeGreaterThanOrEqual(50);
    expect(worker.frames.p95).toBeLessThanOrEqual(50);
    // The control, the same fit on the page's thread: a frame waits for each step, so the page
    // ran at 4-14 fps, median gaps 78-261 ms (measured, same load). If this fails, the workload
    // no longer shows what the worker is for.
    expect(onPage.frames.fps).toBeLessThan(30);
    expect(onPage.frames.median).toBeGreaterThanOrEqual(33);

    // the same training: weights bit for bit, the same epochs and losses (a loss is a sum whose
    // grouping follows the time slices, so it may differ in its last bits)
    expect(worker.isa).toBe(onPage.isa);
    expect(worker.moved.differing, 'training changed the weights').toBeGreaterThan(worker.moved.params / 2);
    expect(await harness('compareTrained')).toEqual({ params: worker.moved.params, differing: 0 });
    expect(worker.history.map((e) => e.epoch)).toEqual(onPage.history.map((e) => e.epoch));
    worker.history.forEach((e, i) => {
      expect(Math.abs(e.loss - onPage.history[i].loss)).toBeLessThanOrEqual(1e-12 * onPage.history[i].loss);
      expect(e.accuracy).toBe(onPage.history[i].accuracy);
    });
    expect(worker.history.at(-1)!.accuracy).toBeGreaterThan(0.95);
  }, 120_000);

  it('runs onBatchEnd and onEpochEnd on the page with the same logs; stopTraining from a callback stops at that batch or epoch', async () => {
    for (const stopAt of [{ epoch: 3, batch: 5 }, { epoch: 2 }] as { epoch: number; batch?: number }[]) {
      const worker = await harness<Record<string, unknown>>('callbackRun', 'worker', stopAt);
      const onPage = await harness<Record<string, unknown>>('callbackRun', 'page', stopAt);
      // 1437 training rows in batches of 128: 12 batches an epoch
      const batches = stopAt.batch !== undefined ? 12 * (stopAt.epoch - 1) + stopAt.batch : 12 * stopAt.epoch;
      expect((onPage.batches as unknown[]).length).toBe(batches);
      expect((onPage.epochs as unknown[]).length).toBe(stopAt.epoch);
      expect(worker).toEqual(onPage);
    }
  }, 60_000);

  it('early stopping restores the best weights as on the page', async () => {
    type Run = { history: { stoppedEarly: boolean; bestEpoch: number; epochs: { loss: number }[] } };
    const worker = await harness<Run>('earlyStoppingRun', 'worker');
    const onPage = await harness<Run>('earlyStoppingRun', 'page');
    expect(onPage.history.stoppedEarly).toBe(true);
    expect(onPage.history.epochs.length).toBeLessThan(80);
    // an epoch's loss is a sum grouped by the fit's time slices: its last bits may differ
    const lossless = (r: Run) => ({ ...r, history: { ...r.history, epochs: r.history.epochs.map(({ loss, ...rest }) => rest) } });
    expect(lossless(worker)).toEqual(lossless(onPage));
    worker.history.epochs.forEach((e, i) => expect(Math.abs(e.loss - onPage.history.epochs[i].loss)).toBeLessThanOrEqual(1e-12 * e.loss));
  }, 60_000);

  it('rejects bad input, a diverging fit and a failing callback with the errors of the page', async () => {
    const cases: [string, string?][] = [
      ['wrongWidth'], ['labelOutOfRange'], ['nanInput'], ['badBatchSize'], ['predictWrongWidth'], ['setWeightsWrongShape'],
      ['checkpoint'], ['setWeightsWhileTraining'], ['callbackThrows'], ['asyncCallbackRejects'],
      ['none', 'softmaxHidden'], ['none', 'unknownActivation'], ['diverge', 'diverging'],
    ];
    for (const [action, spec] of cases) {
      const worker = await harness<Record<string, unknown>>('errorOf', 'worker', action, spec);
      const onPage = await harness<Record<string, unknown>>('errorOf', 'page', action, spec);
      expect(onPage.threw, `${action} ${spec ?? ''} throws on the page`).toBe(true);
      expect(worker, `${action} ${spec ?? ''}`).toEqual(onPage);
    }
    const named = async (action: string, spec?: string) => harness<{ name: string; message: string }>('errorOf', 'worker', action, spec);
    expect(await named('wrongWidth')).toMatchObject({ name: 'InputError', inputError: true, message: expect.stringMatching(/inputs/) });
    expect(await named('none', 'softmaxHidden')).toMatchObject({ name: 'SpecError', specError: true });
    expect(await named('diverge', 'diverging')).toMatchObject({ name: 'TrainingError', trainingError: true, message: expect.stringMatching(/diverged/) });
    // the page's own error object, not a copy
    expect(await named('callbackThrows')).toMatchObject({ fromCallback: true, message: 'the page callback failed' });
  }, 60_000);

  it('stopTraining set by the page outside a callback ends the fit within a time slice', async () => {
    const r = await harness<{ epochs: number; lagMs: number; stoppedAt: number; classes: number[] }>('stopFromPage', 1500);
    console.info(`stopped from the page after ${r.epochs} epochs, the fit resolved ${r.lagMs.toFixed(1)} ms after the stop`);
    expect(r.stoppedAt).toBeGreaterThan(0);
    expect(r.epochs).toBeGreaterThanOrEqual(1);
    expect(r.epochs).toBeLessThan(500);
    // the worker reads the flag between batches, at its next yield (10 ms slices), then ends the
    // epoch (its logs); a step is ~3 ms: 250 ms leaves room for a loaded machine
    expect(r.lagMs).toBeLessThan(250);
    expect(r.classes).toHaveLength(5);
  }, 60_000);

  it('predict, evaluate, weights, running statistics, toBytes and loadWorkerModel give what the page model gives', async () => {
    const r = await harness<Record<string, unknown>>('methodsRun');
    expect(r).toEqual({
      predict: true, predictClasses: true, evaluate: true, accuracy: expect.any(Number), runningStats: true, statsLength: 48, gradients: true,
      toBytes: true, loadWorkerModel: true, summary: true, facts: { paramCount: true, inputs: 64, outputs: 10, backend: 'wasm' },
      setWeights: true, initialize: true,
    });
    expect(r.accuracy).toBeGreaterThan(0.7); // two epochs: trained, not finished
  }, 60_000);

  it('copies the data by default and moves it with transfer: true', async () => {
    expect(await harness('transferRun')).toEqual({ copied: { x: 1797 * 64, y: 1797 }, moved: { x: 0, y: 0 }, trainedAfterMove: 1 });
  }, 60_000);

  it('a worker that does not start, crashes or is terminated rejects every call, never hangs', async () => {
    const r = await harness<Record<string, { threw: boolean; name: string; message: string; workerError: boolean; ms: number }>>('failures');
    expect(r.missingScript).toMatchObject({ threw: true, name: 'WorkerError', workerError: true, message: expect.stringMatching(/failed to start/) });
    expect(r.crashDuringFit).toMatchObject({ threw: true, name: 'WorkerError', workerError: true, message: expect.stringMatching(/crashed: .*the model worker fell over/) });
    expect(r.crashDuringFit.ms).toBeLessThan(10_000);
    expect(r.callAfterCrash).toMatchObject({ threw: true, name: 'WorkerError', message: r.crashDuringFit.message });
    expect(r.terminatedAfterCrash).toBe(true);
    expect(r.terminateDuringFit).toMatchObject({ threw: true, name: 'WorkerError', message: 'the model worker was terminated' });
    expect(r.callAfterTerminate).toMatchObject({ threw: true, name: 'WorkerError' });
    expect(r.brokenFileOnPage).toMatchObject({ threw: true, name: 'ModelFileError', modelFileError: true });
    expect(r.brokenFileInWorker).toMatchObject({ ...r.brokenFileOnPage, ms: expect.any(Number) });
    expect(r.unclonable).toMatchObject({ threw: true, name: 'InputError', message: expect.stringMatching(/^predict: its arguments cannot be sent to the model worker/) });
    expect(r.batchSource).toMatchObject({ threw: true, name: 'InputError', message: expect.stringMatching(/BatchSource/) });
    expect(r.usableAfterBadArgs).toEqual([5, 10]);
    expect(pageErrors).toEqual([]);
  }, 60_000);
});

describe('WorkerModel in a Vite build and in Deno (slow)', () => {
  it('starts its worker when the package is served from another origin (a CDN)', async () => {
    const viewer = await browser.newPage();
    try {
      const port = new URL(base).port;
      await viewer.goto(`http://localhost:${port}/test/runtimes/worker-cdn.html?cdn=${encodeURIComponent(base)}`);
      await viewer.waitForFunction(() => (window as unknown as { __result?: unknown }).__result !== undefined, undefined, { timeout: 60_000 });
      const r = await viewer.evaluate(() => (window as unknown as { __result: Record<string, unknown> }).__result);
      expect(r).toEqual({ direct: 'SecurityError', origin: `http://localhost:${port}`, backend: 'wasm', accuracy: 1 });
    } finally {
      await viewer.close();
    }
  }, 60_000);

  it('a Vite build of an app that imports createWorkerModel emits the worker and its .wasm, and trains in it', async () => {
    const work = join(root, '.tmp/worker-vite'), app = join(work, 'app'), out = join(work, 'out');
    rmSync(work, { recursive: true, force: true });
    // the package as installed: its package.json, dist/ and wasm/ in the app's node_modules
    const pkg = join(app, 'node_modules/deltaprop');
    mkdirSync(pkg, { recursive: true });
    cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
    for (const d of ['dist', 'wasm']) cpSync(join(root, d), join(pkg, d), { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'worker-app', private: true, type: 'module' }));
    writeFileSync(join(app, 'index.html'), '<!doctype html><meta charset="utf-8"><title>vite</title><script type="module" src="./main.js"></script>\n');
    writeFileSync(join(app, 'main.js'), `import { createModel, createWorkerModel } from 'deltaprop';
const spec = { inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
  loss: 'binaryCrossEntropy', optimizer: { type: 'adam', learningRate: 0.05 }, seed: 3 };
const x = [[0, 0], [0, 1], [1, 0], [1, 1]], y = [0, 1, 1, 0];
const bits = async (m) => (await m.getWeights()).flatMap((l) => [...new Uint32Array(l.w.buffer), ...new Uint32Array(l.b.buffer)]);
async function main() {
  const worker = await createWorkerModel(spec), here = await createModel(spec);
  for (const m of [worker, here]) await m.fit(x, y, { epochs: 300, batchSize: 4, shuffle: false });
  const a = await bits(worker), b = await bits(here);
  const p = (await worker.predict(x)).data;
  const r = { backend: worker.backend.name, isa: worker.backend.isa, params: a.length, differing: a.filter((v, i) => v !== b[i]).length,
    accuracy: y.filter((t, i) => (p[i] > 0.5 ? 1 : 0) === t).length / 4 };
  worker.terminate();
  return r;
}
main().then((r) => { window.__result = r; }, (e) => { window.__result = { error: String(e && e.stack || e) }; });
`);
    const { build } = await import('vite');
    await build({ root: app, base: './', logLevel: 'silent', configFile: false, build: { outDir: out, emptyOutDir: true } });
    const assets = readdirSync(join(out, 'assets'));
    expect(assets.filter((f) => /^model-worker-[\w-]+\.js$/.test(f)), 'the worker, emitted as its own file').toHaveLength(1);
    expect(assets.filter((f) => f.endsWith('.wasm')).map((f) => f.replace(/-[\w-]{8}\.wasm$/, '')).sort()).toEqual(['deltaprop-relaxed', 'deltaprop-relaxed-threads', 'deltaprop-simd', 'deltaprop-simd-threads']);
    const viewer = await browser.newPage();
    const errors: string[] = [];
    viewer.on('pageerror', (e) => errors.push(String(e)));
    try {
      await viewer.goto(`${base}/.tmp/worker-vite/out/index.html`);
      await viewer.waitForFunction(() => (window as unknown as { __result?: unknown }).__result !== undefined, undefined, { timeout: 60_000 });
      const r = await viewer.evaluate(() => (window as unknown as { __result: Record<string, unknown> }).__result);
      expect(errors).toEqual([]);
      expect(r).toEqual({ backend: 'wasm', isa: expect.stringMatching(/^wasm-(simd128|relaxed-simd)$/), params: 2 * 8 + 8 + 8 + 1, differing: 0, accuracy: 1 });
    } finally {
      await viewer.close();
    }
  }, 120_000);

  it('Deno: the web entry starts dist/model-worker.js as a Deno Worker; the same bits as on the thread', async () => {
    const { stdout } = await run(join(root, 'node_modules/.bin/deno'), ['run', '--no-prompt', `--allow-read=${root}`, join(root, 'test/runtimes/deno-worker.mjs')],
      { cwd: root, timeout: 120_000, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } });
    const r = JSON.parse(stdout) as { runtime: string; backend: string; params: number; differing: number; worker: Record<string, unknown>; thread: Record<string, unknown> };
    console.info(`${r.runtime}: ${r.params} weights, ${r.differing} differ from the thread's fit`);
    expect(r.runtime).toMatch(/^deno /);
    expect(r.backend).toBe('wasm');
    expect(r.params).toBe(4 * 16 + 16 + 16 * 3 + 3);
    expect(r.differing).toBe(0);
    // stopped from onEpochEnd at epoch 30 of 40; 150 rows in batches of 16: 10 an epoch
    expect(r.worker).toEqual(r.thread);
    expect(r.worker).toMatchObject({ epochs: 30, batches: 300, error: { name: 'InputError', message: 'inputs: rows have 3 values, the model expects 4' } });
    expect(r.worker.accuracy).toBeGreaterThan(0.9);
  }, 150_000);

  it('the web entry in Node, which has no Web Workers, says so', async () => {
    const lib = await import(pathToFileURL(join(root, 'dist/web.js')).href) as typeof import('../../src/web.js');
    const spec = { inputs: 2, layers: [{ units: 1, activation: 'sigmoid' as const }], loss: 'binaryCrossEntropy' as const, optimizer: { type: 'sgd' as const, learningRate: 0.1 } };
    const e = await lib.createWorkerModel(spec).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(lib.WorkerError);
    expect((e as Error).message).toMatch(/no Web Workers .*createModel/);
  });

  it('dist/model-worker.js is self-contained and imports no Node module', () => {
    const code = readFileSync(join(root, 'dist/model-worker.js'), 'utf8');
    expect(code).not.toMatch(/\bfrom\s*["'](node:|fs|path|worker_threads)/);
    expect(code).not.toMatch(/\bimport\s*\(\s*["']/);
    expect(code).not.toMatch(/^\s*import\s/m);
  });
});
