// Browser bundles of an app that uses the package, as users make them: esbuild (esm and iife) and
// Vite (vite build). Each bundle is served over HTTP and run in headless Chromium (from npm, see
// test/runtimes/chromium.ts), where it must train on wasm. The esbuild bundles import
// 'deltaprop/inline' (the .wasm inside the bundle); Vite emits the .wasm of plain 'deltaprop' as
// assets by itself. An esbuild bundle of plain 'deltaprop' cannot find its .wasm (esbuild emits
// none, and an IIFE has no import.meta.url): it runs on js and says so once on the console, with
// the reason and the fix. Needs the built package (`npm run compile`: dist/ and wasm/).
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as esbuild, type Format } from 'esbuild';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './runtimes/chromium.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, '.tmp/bundlers');
const app = join(work, 'app');

// The app: trains XOR on the automatic choice of backend and reports it with what it logged.
const appSource = (specifier: string, options = '{}'): string => `import { createModel } from '${specifier}';
const warnings = [];
const warn = console.warn;
console.warn = (...args) => { warnings.push(args.join(' ')); warn(...args); };
async function main() {
  const spec = { inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
    loss: 'binaryCrossEntropy', optimizer: { type: 'adam', learningRate: 0.05 }, seed: 3 };
  const x = [[0, 0], [0, 1], [1, 0], [1, 1]], y = [0, 1, 1, 0];
  const model = await createModel(spec, ${options});
  await model.fit(x, y, { epochs: 300, batchSize: 4, shuffle: false });
  const again = await createModel(spec, ${options}); // a second load must not warn again
  const p = model.predict(x).data;
  const accuracy = y.filter((t, i) => (p[i] > 0.5 ? 1 : 0) === t).length / 4;
  return { backend: model.backend.name, isa: model.backend.isa, second: again.backend.name, accuracy, warnings };
}
main().then((r) => { window.__result = r; }, (e) => { window.__result = { error: String(e && e.stack || e) }; });
`;

interface AppResult {
  error?: string;
  backend: string;
  isa: string;
  second: string;
  accuracy: number;
  warnings: string[];
}

let browser: Browser;
let server: Server;
let base: string;

beforeAll(async () => {
  for (const f of ['dist/web.js', 'dist/inline.js', 'wasm/deltaprop-simd.wasm', 'wasm/deltaprop-relaxed.wasm']) {
    if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run \`npm run compile\` first`);
  }
  rmSync(work, { recursive: true, force: true });
  // the package as installed: its package.json, dist/ and wasm/ in the app's node_modules
  const pkg = join(app, 'node_modules/deltaprop');
  mkdirSync(pkg, { recursive: true });
  cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
  for (const d of ['dist', 'wasm']) cpSync(join(root, d), join(pkg, d), { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'bundler-app', private: true, type: 'module' }));
  writeFileSync(join(app, 'inline.js'), appSource('deltaprop/inline'));
  writeFileSync(join(app, 'plain.js'), appSource('deltaprop'));
  // the README's option for plain 'deltaprop' with the .wasm files served by the app
  writeFileSync(join(app, 'option.js'), appSource('deltaprop',
    "{ wasm: { simd: new URL('/esbuild-option/deltaprop-simd.wasm', location.href), relaxed: new URL('/esbuild-option/deltaprop-relaxed.wasm', location.href) } }"));

  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.map': 'application/json' };
  server = createServer((req, res) => {
    const path = resolve(work, `.${decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)}`);
    if (!path.startsWith(work) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(readFileSync(path));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  server?.close();
});

/** Opens out/<dir>/index.html (served from .tmp/bundlers) and waits for the app's result. */
async function runPage(dir: string): Promise<AppResult> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(`${base}/${dir}/index.html`);
    await page.waitForFunction(() => (window as unknown as { __result?: unknown }).__result !== undefined, undefined, { timeout: 60_000 });
    const r = (await page.evaluate(() => (window as unknown as { __result: unknown }).__result)) as AppResult;
    expect(errors).toEqual([]);
    expect(r.error).toBeUndefined();
    return r;
  } finally {
    await page.close();
  }
}

/** esbuild for the browser, as a user runs it: one bundle, and a page that loads it. */
async function bundleWithEsbuild(entry: string, format: Format, dir: string): Promise<void> {
  const out = join(work, dir);
  await esbuild({
    entryPoints: [join(app, entry)], bundle: true, format, platform: 'browser', target: 'es2022',
    outfile: join(out, 'app.js'), logLevel: 'silent', absWorkingDir: app,
  });
  const script = format === 'esm' ? '<script type="module" src="app.js"></script>' : '<script src="app.js"></script>';
  writeFileSync(join(out, 'index.html'), `<!doctype html><meta charset="utf-8"><title>${dir}</title>${script}\n`);
}

function expectTrainedOnWasm(r: AppResult, label: string): void {
  console.info(`${label}: ${r.backend} (${r.isa}), accuracy ${r.accuracy}, ${r.warnings.length} warnings`);
  expect(r.backend).toBe('wasm');
  expect(r.second).toBe('wasm');
  expect(r.isa).toMatch(/^wasm-(simd128|relaxed-simd)$/);
  expect(r.accuracy).toBe(1);
  expect(r.warnings).toEqual([]);
}

describe('browser bundles train on wasm in headless Chromium', () => {
  it.each(['esm', 'iife'] as const)("esbuild %s of 'deltaprop/inline'", async (format) => {
    await bundleWithEsbuild('inline.js', format, `esbuild-inline-${format}`);
    // no .wasm next to the bundle: the kernels travel inside it
    expect(existsSync(join(work, `esbuild-inline-${format}`, 'deltaprop-simd.wasm'))).toBe(false);
    expectTrainedOnWasm(await runPage(`esbuild-inline-${format}`), `esbuild ${format}, deltaprop/inline`);
  }, 90_000);

  it("esbuild esm of plain 'deltaprop', with the wasm option naming the served files", async () => {
    await bundleWithEsbuild('option.js', 'esm', 'esbuild-option');
    for (const f of ['deltaprop-simd.wasm', 'deltaprop-relaxed.wasm']) cpSync(join(root, 'wasm', f), join(work, 'esbuild-option', f));
    expectTrainedOnWasm(await runPage('esbuild-option'), 'esbuild esm, deltaprop + wasm option');
  }, 90_000);

  it("vite build of plain 'deltaprop' (the .wasm emitted as assets)", async () => {
    const { build } = await import('vite');
    writeFileSync(join(app, 'index.html'), '<!doctype html><meta charset="utf-8"><title>vite</title><script type="module" src="./plain.js"></script>\n');
    await build({ root: app, base: './', logLevel: 'silent', configFile: false, build: { outDir: join(work, 'vite'), emptyOutDir: true } });
    const assets = readFileSync(join(work, 'vite/index.html'), 'utf8');
    expect(assets).toMatch(/assets\/index-[\w-]+\.js/);
    const emitted = readdirSync(join(work, 'vite/assets')).filter((f) => f.endsWith('.wasm'));
    // the threads builds too, for pages that are cross-origin isolated
    expect(emitted.map((f) => f.replace(/-[\w-]{8}\.wasm$/, '')).sort()).toEqual(['deltaprop-relaxed', 'deltaprop-relaxed-threads', 'deltaprop-simd', 'deltaprop-simd-threads']);
    expectTrainedOnWasm(await runPage('vite'), 'vite, deltaprop');
  }, 90_000);
});

describe('a bundle that cannot find its .wasm says so once, and runs on js', () => {
  it.each([
    ['esm', /fetching .*deltaprop-(simd|relaxed)\.wasm failed: 404/],
    ['iife', /no import\.meta\.url/],
  ] as const)("esbuild %s of plain 'deltaprop'", async (format, reason) => {
    await bundleWithEsbuild('plain.js', format, `esbuild-plain-${format}`);
    const r = await runPage(`esbuild-plain-${format}`);
    console.info(`esbuild ${format}, deltaprop: ${r.backend}; ${r.warnings.join(' | ')}`);
    expect(r.backend).toBe('js');
    expect(r.second).toBe('js');
    expect(r.accuracy).toBe(1);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^deltaprop: the wasm backend did not load, running on the much slower js backend: /);
    expect(r.warnings[0]).toMatch(reason);
    expect(r.warnings[0]).toContain("'deltaprop/inline'");
  }, 90_000);
});
