// Slow: the wasm backend in the real runtimes, all installed from npm (bun, deno, miniflare's
// workerd, and Chromium from @sparticuz/chromium driven by playwright-core). Each trains the seed
// 001 XOR network and an Iris classifier through the public API of the entry its export condition
// selects (test/runtimes/scenario.mjs), checks the accuracy, and must agree with the same training on the same wasm build in Node.
// Needs the built package (`npm run compile`: dist/ and wasm/).
import v8 from 'node:v8';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { beforeAll, describe, expect, it } from 'vitest';
import * as core from '../../src/core.js';
import { loadWasmBackend } from '../../src/backends/wasm.js';
// @ts-expect-error: plain JavaScript shared with the other runtimes
import { runScenario } from './scenario.mjs';
import { launchChromium } from './chromium.js';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = (name: string): string => join(root, 'node_modules/.bin', name);
const irisCsv = readFileSync(join(root, 'data/iris.csv'), 'utf8');

interface Result {
  runtime: string;
  backend: string;
  isa: string;
  entry?: string;
  compileFromBytes?: string;
  error?: string;
  threads?: number;
  threadsReason?: string;
  xor: { initialLoss: number; initialGrads: number[]; finalLoss: number; predictions: number[]; accuracy: number; params: number[] };
  iris: { finalLoss: number; trainAccuracy: number; testAccuracy: number; testLoss: number; params: number[] };
}

/** test/runtimes/threads.mjs: one run per thread count, the bits as fingerprints. */
interface ThreadsResult {
  runtime: string;
  runs: { threads: number; workersStarted: boolean; threadsReason: string | null; loss: number[]; params: string; predicted: string; first: string }[];
  oneThread: string | null;
}

const nodeResults: Record<string, Result> = {};

beforeAll(async () => {
  for (const f of ['dist/web.js', 'dist/workerd.js', 'dist/index.js', 'wasm/deltaprop-simd.wasm', 'wasm/deltaprop-relaxed.wasm']) {
    if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run \`npm run compile\` before the runtime tests`);
  }
  // the Node reference: the same scenario on both builds, from the sources
  for (const relaxed of [false, true]) {
    const r = (await runScenario(core, await loadWasmBackend(undefined, { relaxed }), irisCsv)) as Result;
    r.runtime = `node ${process.version}`;
    nodeResults[r.isa] = r;
  }
}, 120_000);

function maxDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

/** Accuracy, the seed's golden numbers, and agreement with Node on the same build. */
function checkResult(r: Result, label: string): void {
  expect(r.error, `${label} failed`).toBeUndefined();
  console.info(`${label}: ${r.runtime.slice(0, 60)}: ${r.isa}, xor loss ${r.xor.finalLoss.toExponential(3)}, iris test accuracy ${r.iris.testAccuracy.toFixed(3)}`);
  expect(r.backend).toBe('wasm');
  expect(['wasm-simd128', 'wasm-relaxed-simd']).toContain(r.isa);
  // MATH.md golden #4
  expect(Math.abs(r.xor.initialLoss - 0.7204898372)).toBeLessThan(1e-5 * 0.72);
  expect(maxDiff(r.xor.initialGrads.slice(12, 17), [0.0504378171, -0.065125127, 0.0091428255, 0.0085754515, 0.0566978996])).toBeLessThan(1e-6);
  expect(r.xor.accuracy).toBe(1);
  expect(r.xor.finalLoss).toBeLessThan(0.05);
  expect(r.iris.trainAccuracy).toBeGreaterThanOrEqual(0.95);
  expect(r.iris.testAccuracy).toBeGreaterThanOrEqual(0.9);
  const ref = nodeResults[r.isa];
  // same kernels, same seeds: the runs agree up to the engines' own Math (log, exp in JS) and,
  // on the relaxed build, whether the engine fuses the multiply-add
  expect(Math.abs(r.xor.finalLoss - ref.xor.finalLoss)).toBeLessThan(1e-5 * ref.xor.finalLoss + 1e-7);
  expect(maxDiff(r.xor.params, ref.xor.params)).toBeLessThan(1e-3);
  expect(Math.abs(r.iris.finalLoss - ref.iris.finalLoss)).toBeLessThan(1e-3 * ref.iris.finalLoss + 1e-6);
  expect(maxDiff(r.iris.params, ref.iris.params)).toBeLessThan(1e-2);
  expect(r.iris.testAccuracy).toBe(ref.iris.testAccuracy);
}

describe('runtimes (slow)', () => {
  it('Node itself: accuracy and the golden numbers on both builds', () => {
    expect(Object.keys(nodeResults).sort()).toEqual(['wasm-relaxed-simd', 'wasm-simd128']);
    for (const r of Object.values(nodeResults)) checkResult(r, 'node');
  });

  it('Bun resolves the package by name (bun condition) and trains on wasm', async () => {
    const { stdout } = await run(bin('bun'), [join(root, 'test/runtimes/bun.mjs')], { cwd: root, timeout: 120_000 });
    const r = JSON.parse(stdout) as Result;
    expect(r.runtime).toMatch(/^bun /);
    expect(r.entry).toMatch(/dist\/index\.js$/);
    checkResult(r, 'bun');
  }, 150_000);

  it('Deno runs the web entry with read permission only and trains on wasm', async () => {
    const { stdout } = await run(bin('deno'), ['run', '--no-prompt', `--allow-read=${root}`, join(root, 'test/runtimes/deno.mjs')],
      { cwd: root, timeout: 120_000, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } });
    const r = JSON.parse(stdout) as Result;
    expect(r.runtime).toMatch(/^deno /);
    checkResult(r, 'deno');
  }, 150_000);

  it("Bun and Deno run the wasm backend on 1, 2 and 3 threads (Bun's Worker, Deno's worker_threads) with the same bits, and exit", async () => {
    const runs = {
      bun: run(bin('bun'), [join(root, 'test/runtimes/threads-bun.mjs')], { cwd: root, timeout: 120_000 }),
      deno: run(bin('deno'), ['run', '--no-prompt', `--allow-read=${root}`, join(root, 'test/runtimes/threads-deno.mjs')],
        { cwd: root, timeout: 120_000, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } }),
    };
    for (const [name, p] of Object.entries(runs)) {
      const r = JSON.parse((await p).stdout) as ThreadsResult;
      expect(r.runtime.startsWith(`${name} `), r.runtime).toBe(true);
      expect(r.runs.map((x) => x.threads), name).toEqual([1, 2, 3]);
      expect(r.runs.map((x) => x.threadsReason), name).toEqual(['threads: 1 was asked', null, null]);
      expect(r.runs.map((x) => x.workersStarted), name).toEqual([false, true, true]);
      for (const x of r.runs.slice(1)) {
        expect({ ...x, threads: 0, workersStarted: null, threadsReason: null }, `${name}: ${x.threads} threads vs 1`).toEqual({ ...r.runs[0], threads: 0, workersStarted: null, threadsReason: null });
      }
      expect(r.oneThread).toBe('threads: 1 was asked');
      console.info(`${name} threads: ${r.runtime}: 1, 2 and 3 threads, params ${r.runs[0].params}`);
    }
  }, 150_000);

  it('workerd (miniflare): bundled like wrangler does, .wasm as imported modules, trains on wasm', async () => {
    const out = join(root, '.tmp/runtimes-worker');
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    const bundle = await build({
      entryPoints: [join(root, 'test/runtimes/worker.mjs')],
      bundle: true, format: 'esm', platform: 'browser', outfile: join(out, 'worker.js'), metafile: true, logLevel: 'silent',
      conditions: ['workerd', 'worker', 'browser'],
      loader: { '.csv': 'text' },
      plugins: [{
        name: 'wasm-modules',
        setup(b) {
          // as wrangler: a .wasm import becomes a CompiledWasm module next to the script
          b.onResolve({ filter: /\.wasm$/ }, (args) => {
            copyFileSync(resolve(args.resolveDir, args.path), join(out, basename(args.path)));
            return { path: `./${basename(args.path)}`, external: true };
          });
        },
      }],
    });
    // the package name resolved to the workerd entry, not the Node one
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs).toContain('dist/workerd.js');
    expect(inputs.filter((f) => f.startsWith('dist/') && f !== 'dist/workerd.js')).toEqual([]);
    const mf = new Miniflare({
      modules: true,
      scriptPath: join(out, 'worker.js'),
      modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
      compatibilityDate: '2025-01-01',
    });
    try {
      const res = await mf.dispatchFetch('http://localhost/');
      const text = await res.text();
      expect(res.status, text).toBe(200);
      const r = JSON.parse(text) as Result;
      expect(r.runtime).toBe('workerd');
      expect(r.compileFromBytes).toMatch(/^refused/);
      // no shared memory and no Worker there: one thread, and the backend says why
      expect(r.threads).toBe(1);
      expect(r.threadsReason).toMatch(/SharedArrayBuffer unavailable|shared WebAssembly memory unavailable|no Worker API/);
      checkResult(r, 'workerd');
    } finally {
      await mf.dispose();
    }
  }, 150_000);

  it('Chromium (headless) loads the web entry over HTTP, fetches the .wasm and trains on wasm', async () => {
    const types: Record<string, string> = {
      '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.csv': 'text/csv', '.map': 'application/json',
    };
    const server: Server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const path = resolve(root, `.${decodeURIComponent(url.pathname)}`);
      if (!path.startsWith(root) || !existsSync(path)) {
        res.writeHead(404).end();
        return;
      }
      // ?isolated: the headers that make a page cross-origin isolated (SharedArrayBuffer, threads)
      const isolation = url.searchParams.has('isolated')
        ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {};
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream', ...isolation }).end(readFileSync(path));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const port = (server.address() as { port: number }).port;
    const browser = await launchChromium();
    const resultOf = async (path: string): Promise<unknown> => {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`http://127.0.0.1:${port}${path}`);
      await page.waitForFunction(() => (window as unknown as { __result?: unknown }).__result !== undefined, undefined, { timeout: 120_000 });
      const r = await page.evaluate(() => (window as unknown as { __result: unknown }).__result);
      expect(errors).toEqual([]);
      await page.close();
      return r;
    };
    try {
      const r = (await resultOf('/test/runtimes/browser.html')) as Result;
      expect(r.runtime).toMatch(/Chrome/);
      // a page that is not cross-origin isolated has no SharedArrayBuffer: one thread, and why
      expect(r.threads).toBe(1);
      expect(r.threadsReason).toMatch(/^SharedArrayBuffer unavailable: the page is not cross-origin isolated/);
      checkResult(r, 'chromium');
      // fit's yields in a page are message tasks, not clamped zero timeouts (≥ 1,200 ms here)
      expect((r as Result & { yieldingFitMs: number }).yieldingFitMs, '300 epochs of XOR, each ending in a yield').toBeLessThan(600);
      // an isolated page: the pool of Workers, the same bits on 1, 2 and 3 threads (the main
      // thread of a page may not block: it polls while the workers finish)
      const t = (await resultOf('/test/runtimes/browser-threads.html?isolated')) as ThreadsResult & { crossOriginIsolated: boolean; error?: string };
      expect(t.error).toBeUndefined();
      expect(t.crossOriginIsolated).toBe(true);
      expect(t.runs.map((x) => x.threads)).toEqual([1, 2, 3]);
      expect(t.runs.map((x) => x.workersStarted)).toEqual([false, true, true]);
      for (const x of t.runs.slice(1)) {
        expect({ ...x, threads: 0, workersStarted: null, threadsReason: null }, `chromium: ${x.threads} threads vs 1`).toEqual({ ...t.runs[0], threads: 0, workersStarted: null, threadsReason: null });
      }
    } finally {
      await browser.close();
      server.close();
    }
  }, 180_000);
});
