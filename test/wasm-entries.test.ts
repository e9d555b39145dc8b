// The package's runtime entries: which file each export condition resolves to (through esbuild's
// resolver, as bundlers and wrangler see the package), that the web and workerd bundles import no
// Node module, and that the web entry selects wasm then js. Needs the built package (dist/).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';
import { build, type Platform } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

beforeAll(() => {
  for (const f of ['dist/web.js', 'dist/workerd.js', 'dist/inline.js', 'dist/index.js', 'dist/index.cjs']) {
    if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run \`npm run compile\` first`);
  }
});

/** The file of this package that `import 'deltaprop'` (or require) resolves to under the conditions. */
async function resolveEntry(conditions: string[], platform: Platform, kind: 'import' | 'require', specifier = 'deltaprop'): Promise<string> {
  const result = await build({
    stdin: { contents: kind === 'import' ? `import '${specifier}';` : `require('${specifier}');`, resolveDir: root, loader: 'js' },
    bundle: true, write: false, metafile: true, logLevel: 'silent', platform, conditions,
    format: kind === 'import' ? 'esm' : 'cjs',
    external: ['node-gyp-build', '*.wasm', 'node:*'],
  });
  const entries = Object.keys(result.metafile.inputs).filter((f) => /^dist\/[^/]+\.c?js$/.test(f));
  expect(entries.length).toBeGreaterThanOrEqual(1);
  return entries[0];
}

describe('package exports', () => {
  it.each([
    ['workerd (as wrangler resolves)', ['workerd', 'worker', 'browser'], 'browser', 'import', 'dist/workerd.js'],
    ['browser', [], 'browser', 'import', 'dist/web.js'],
    ['deno', ['deno'], 'neutral', 'import', 'dist/web.js'],
    ['bun', ['bun'], 'node', 'import', 'dist/index.js'],
    ['node import', [], 'node', 'import', 'dist/index.js'],
    ['node require', [], 'node', 'require', 'dist/index.cjs'],
    ['any other runtime', [], 'neutral', 'import', 'dist/web.js'],
  ] as const)('%s → %s', async (_label, conditions, platform, kind, want) => {
    expect(await resolveEntry([...conditions], platform, kind)).toBe(want);
  });

  it.each([
    ['browser', [], 'browser'],
    ['node', [], 'node'],
    ['workerd', ['workerd', 'worker', 'browser'], 'browser'],
  ] as const)("'deltaprop/inline' under %s → dist/inline.js", async (_label, conditions, platform) => {
    expect(await resolveEntry([...conditions], platform, 'import', 'deltaprop/inline')).toBe('dist/inline.js');
  });

  it('ships wasm/ and exposes the .wasm files by subpath', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.files).toContain('wasm');
    expect(pkg.exports['./wasm/*.wasm']).toBe('./wasm/*.wasm');
    expect(pkg.scripts.compile).toMatch(/build:wasm.*&&.*build:ts/);
    expect(pkg.scripts.prepare).toBe('npm run compile');
  });

  it.each(['dist/web.js', 'dist/workerd.js', 'dist/inline.js'])('%s imports no Node module', (file) => {
    const src = readFileSync(join(root, file), 'utf8');
    const specifiers = [...src.matchAll(/(?:^|\n)\s*import\s[^;]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|require\(\s*["']([^"']+)["']\s*\)/g)]
      .map((m) => m[1] ?? m[2] ?? m[3]);
    const nodeish = specifiers.filter((s) => s.startsWith('node:') || ['fs', 'path', 'url', 'os', 'module', 'child_process', 'worker_threads'].includes(s));
    expect(nodeish).toEqual([]);
    if (file === 'dist/workerd.js') {
      expect(specifiers).toContain('../wasm/deltaprop-simd.wasm');
      expect(specifiers).toContain('../wasm/deltaprop-relaxed.wasm');
    } else {
      expect(specifiers).toEqual([]);
    }
  });
});

describe('falling from wasm to js', () => {
  it('warns once per program with the reason, and not for an explicit js', () => {
    const script = `const w = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/web.js')).href)});
      const warnings = [];
      console.warn = (...a) => warnings.push(a.join(' '));
      const explicit = await w.loadBackend({ backend: 'js' });
      const seen = warnings.length;
      const bad = new Uint8Array([0, 0x61, 0x73, 0x6d, 9, 9, 9, 9]);
      const a = await w.loadBackend({ wasm: bad });
      const b = await w.createModel({ inputs: 1, layers: [{ units: 1, activation: 'linear' }], loss: 'mse',
        optimizer: { type: 'sgd', learningRate: 0.1 } }, { wasm: bad });
      console.log(JSON.stringify({ explicit: explicit.name, seen, a: a.name, b: b.backend.name, warnings }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
    expect(out.explicit).toBe('js');
    expect(out.seen).toBe(0);
    expect([out.a, out.b]).toEqual(['js', 'js']);
    expect(out.warnings).toHaveLength(1);
    expect(out.warnings[0]).toMatch(/^deltaprop: the wasm backend did not load, running on the much slower js backend: .*WebAssembly/);
  });
});

describe('the inline entry', () => {
  it('carries both builds: loads relaxed and plain SIMD with no file or fetch, and trains', async () => {
    const script = `const w = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/inline.js')).href)});
      globalThis.fetch = () => { throw new Error('fetch called'); };
      const plain = await w.loadBackend({ backend: 'wasm', wasmOptions: { relaxed: false } });
      const auto = await w.loadBackend();
      const m = await w.createModel({ inputs: 2, layers: [{ units: 1, activation: 'sigmoid' }], loss: 'mse',
        optimizer: { type: 'sgd', learningRate: 0.5 }, seed: 1 });
      const h = await m.fit([[0, 0], [1, 1]], [0, 1], { epochs: 20, batchSize: 2 });
      console.log(JSON.stringify({ plain: plain.isa, auto: auto.isa, relaxed: w.relaxedSimdSupported(), model: m.backend.name,
        falls: h.epochs[19].loss < h.epochs[0].loss }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', script], { encoding: 'utf8' }));
    expect(out).toEqual({ plain: 'wasm-simd128', auto: 'wasm-relaxed-simd', relaxed: true, model: 'wasm', falls: true });
  });
});

describe('feature detection in a fresh process', () => {
  it('loads the relaxed build exactly where the engine validates relaxed SIMD, else the plain one', () => {
    // no V8 flags here (the kernel tests turn relaxed SIMD on in their own process)
    const script = `const w = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/web.js')).href)});
      const b = await w.loadWasmBackend();
      console.log(JSON.stringify({ relaxed: w.relaxedSimdSupported(), isa: b.isa }));`;
    for (const flags of [[], ['--experimental-wasm-relaxed-simd']]) {
      const out = JSON.parse(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8' }));
      expect(out.isa).toBe(out.relaxed ? 'wasm-relaxed-simd' : 'wasm-simd128');
      if (flags.length) expect(out.relaxed).toBe(true);
    }
  });
});

describe('Node bundles', () => {
  it.each(['dist/index.js', 'dist/index.cjs'])('%s finds the packaged .wasm and loads the wasm backend', async (file) => {
    // each bundle resolves wasm/ from its own location (the CommonJS one through tsup's import.meta.url shim)
    const script = file.endsWith('.cjs')
      ? `require(${JSON.stringify(join(root, file))}).loadBackend({ backend: 'wasm' }).then((b) => console.log(b.isa))`
      : `import(${JSON.stringify(pathToFileURL(join(root, file)).href)}).then((m) => m.loadBackend({ backend: 'wasm' })).then((b) => console.log(b.isa))`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: '/' }).trim();
    expect(out).toMatch(/^wasm-(simd128|relaxed-simd)$/);
  });
});

describe('web entry', () => {
  it('selects wasm (native is not in this entry), then js, and says why', async () => {
    // the built bundle, as a user gets it (a computed path: type-checking must not need dist/)
    const webPath = join(root, 'dist/web.js');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const web: any = await import(/* @vite-ignore */ webPath);
    const info = await web.backendInfo();
    expect(info.backend).toBe('wasm');
    expect(info.isa).toMatch(/^wasm-/);
    expect(info.backends.native.ok).toBe(false);
    expect(info.backends.native.reason).toMatch(/needs Node/);
    expect(info.backends.js.ok).toBe(true);
    // a wasm source that cannot load: the automatic choice falls back to js and keeps the reason
    const fallback = await web.backendInfo({ wasm: new Uint8Array([1, 2, 3]) });
    expect(fallback.backend).toBe('js');
    expect(fallback.backends.wasm.ok).toBe(false);
    expect(fallback.backends.wasm.reason).toBeTruthy();
    const model = await web.createModel({
      inputs: 2, layers: [{ units: 3, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
      loss: 'binaryCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.5 },
    }, { backend: 'wasm', wasmOptions: { relaxed: false } });
    expect(model.backend.isa).toBe('wasm-simd128');
    const bytes = web.modelToBytes(model);
    const again = await web.loadModel(bytes, { backend: 'js' });
    const p1 = (again.predict([[0, 1]]).data as Float32Array)[0], p0 = (model.predict([[0, 1]]).data as Float32Array)[0];
    expect(p1).toBeCloseTo(p0, 6);
  });
});
