// The inference-only entry, deltaprop/infer: bundled as a serving app bundles it (esbuild, browser
// and workerd conditions, minified), it carries no training code and no ONNX schema, and stays
// under its size bound; deltaprop/infer/onnx adds the ONNX reader. A predictor loaded from a
// model file or an ONNX export predicts what the full Model predicts, on every backend. And the
// weights a prediction reads are never stale: predict, train a step, predict again equals a fresh
// model with the trained weights. Needs the built package (`npm run compile`).
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, modelToBytes, type ModelSpec } from '../src/index.js';
import { toOnnx } from '../src/onnx/index.js';
import { loadPredictor, Predictor, predictorFromBytes } from '../src/infer/node.js';
import { parseOnnx } from '../src/infer/onnx.js';
import { BACKENDS } from './backends.js';
import { rng } from './rng.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(tmpdir(), `deltaprop-infer-${process.pid}`);

/**
 * Bound on the minified inference bundle (browser and workerd conditions). Measured: 61.3 kB: the
 * predictor, the model-file reader, the spec check (every layer type), the backend selection and
 * the wasm and js backends' kernel wrappers (dropout and normalization kernels among them). The
 * ONNX schema alone is about 105 kB, and Model with fit, metrics and the summary about as much:
 * either one getting in breaks 80 kB (the strings test above says which), while the entry's own
 * code may grow by a quarter.
 */
const INFER_BOUND = 80_000;

/** Strings that only training code or the ONNX schema contain (messages survive minification). */
const TRAINING_MARKS = [
  'training diverged', 'earlyStopping', 'restoreBestWeights', 'checkpoint: cannot save', 'validationSplit',
  'this model is training', 'TrainingError', 'classificationMetrics', 'onEpochEnd',
];
const ONNX_MARKS = ['ModelProto', 'GraphProto', 'ONNX import'];

async function bundle(source: string, conditions: string[]): Promise<{ text: string; inputs: string[] }> {
  const app = join(work, 'app');
  const file = join(app, `entry-${conditions[0]}-${source.length}.js`);
  writeFileSync(file, source);
  const r = await build({
    entryPoints: [file], bundle: true, minify: true, format: 'esm', platform: 'browser', write: false, metafile: true,
    logLevel: 'silent', conditions, absWorkingDir: app,
    plugins: [{ name: 'wasm-external', setup(b) { b.onResolve({ filter: /\.wasm$/ }, (a) => ({ path: a.path, external: true })); } }],
  });
  return { text: r.outputFiles[0].text, inputs: Object.keys(r.metafile.inputs) };
}

beforeAll(() => {
  for (const f of ['dist/infer-web.js', 'dist/infer-workerd.js', 'dist/infer-onnx.js', 'dist/infer.js']) {
    if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run \`npm run compile\` first`);
  }
  // the package as installed: package.json and dist/ in the app's node_modules
  const pkg = join(work, 'app/node_modules/deltaprop');
  mkdirSync(pkg, { recursive: true });
  cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
  cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true, filter: (s) => !s.endsWith('.map') });
  writeFileSync(join(work, 'app/package.json'), JSON.stringify({ name: 'serving-app', private: true, type: 'module' }));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('deltaprop/infer bundles', () => {
  const app = `import { loadPredictor } from 'deltaprop/infer';
export default { async fetch(req) { const p = await loadPredictor(new Uint8Array(await req.arrayBuffer())); return Response.json(Array.from(p.predict([[1, 2]]).data)); } };`;

  for (const [name, conditions, entry] of [['browser', ['browser'], 'dist/infer-web.js'], ['workerd', ['workerd', 'worker', 'browser'], 'dist/infer-workerd.js']] as const) {
    it(`${name}: resolves to ${entry}, no training code, no ONNX schema, under ${INFER_BOUND / 1000} kB minified`, async () => {
      const { text, inputs } = await bundle(app, [...conditions]);
      const ours = inputs.filter((f) => f.includes('node_modules/deltaprop/'));
      expect(ours).toEqual([`node_modules/deltaprop/${entry}`]);
      for (const mark of [...TRAINING_MARKS, ...ONNX_MARKS]) expect(text.includes(mark), `bundle contains '${mark}'`).toBe(false);
      expect(text.length).toBeLessThan(INFER_BOUND);
      // and it is the predictor that is there
      expect(text).toContain('needs w of');
      console.log(`deltaprop/infer (${name}): ${text.length} bytes minified`);
    });
  }

  it('the full entry, bundled the same way, does carry training code (the marks are real)', async () => {
    const { text } = await bundle("import { createModel } from 'deltaprop'; export default createModel;", ['browser']);
    for (const mark of ['training diverged', 'earlyStopping', 'ModelProto']) expect(text).toContain(mark);
    expect(text.length).toBeGreaterThan(2 * INFER_BOUND);
  });

  it('deltaprop/infer/onnx adds the ONNX reader, and still no training code', async () => {
    const { text, inputs } = await bundle(`import { loadPredictor } from 'deltaprop/infer';
import { parseOnnx } from 'deltaprop/infer/onnx';
export default (b) => loadPredictor(parseOnnx(b));`, ['browser']);
    expect(inputs.filter((f) => f.includes('node_modules/deltaprop/')).sort()).toEqual(['node_modules/deltaprop/dist/infer-onnx.js', 'node_modules/deltaprop/dist/infer-web.js']);
    expect(text).toContain('ModelProto');
    for (const mark of TRAINING_MARKS) expect(text.includes(mark), `bundle contains '${mark}'`).toBe(false);
    console.log(`deltaprop/infer + deltaprop/infer/onnx: ${text.length} bytes minified`);
  });
});

describe('deltaprop/infer exports', () => {
  async function resolveEntry(specifier: string, conditions: string[], platform: 'browser' | 'node' | 'neutral', kind: 'import' | 'require'): Promise<string> {
    const r = await build({
      stdin: { contents: kind === 'import' ? `import '${specifier}';` : `require('${specifier}');`, resolveDir: root, loader: 'js' },
      bundle: true, write: false, metafile: true, logLevel: 'silent', platform, conditions, format: kind === 'import' ? 'esm' : 'cjs',
      external: ['node-gyp-build', '*.wasm', 'node:*'],
    });
    return Object.keys(r.metafile.inputs).filter((f) => /^dist\/[^/]+\.c?js$/.test(f))[0];
  }
  it.each([
    ['workerd', ['workerd', 'worker', 'browser'], 'browser', 'import', 'dist/infer-workerd.js'],
    ['browser', [], 'browser', 'import', 'dist/infer-web.js'],
    ['deno', ['deno'], 'neutral', 'import', 'dist/infer-web.js'],
    ['bun', ['bun'], 'node', 'import', 'dist/infer.js'],
    ['node import', [], 'node', 'import', 'dist/infer.js'],
    ['node require (ESM only: Node 22+ requires it)', [], 'node', 'require', 'dist/infer.js'],
    ['any other runtime', [], 'neutral', 'import', 'dist/infer-web.js'],
  ] as const)('%s → %s', async (_label, conditions, platform, kind, want) => {
    expect(await resolveEntry('deltaprop/infer', [...conditions], platform, kind)).toBe(want);
  });

  it.each(['dist/infer-web.js', 'dist/infer-workerd.js', 'dist/infer-onnx.js'])('%s imports no Node module; the workerd one imports the .wasm beside dist/', (file) => {
    const src = readFileSync(join(root, file), 'utf8');
    const specifiers = [...src.matchAll(/(?:^|\n)\s*import\s[^;]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|require\(\s*["']([^"']+)["']\s*\)/g)]
      .map((m) => m[1] ?? m[2] ?? m[3]);
    expect(specifiers).toEqual(file === 'dist/infer-workerd.js' ? ['../wasm/deltaprop-relaxed.wasm', '../wasm/deltaprop-simd.wasm'] : []);
  });
});

const spec: ModelSpec = {
  inputs: 13,
  layers: [{ units: 37, activation: 'relu' }, { units: 19, activation: 'leakyRelu', alpha: 0.1 }, { units: 5, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy',
  optimizer: { type: 'adam', learningRate: 0.01 },
  seed: 4,
  classes: ['a', 'b', 'c', 'd', 'e'],
};

function data(rows: number, seed: number): { x: { data: Float32Array; shape: [number, number] }; y: Int32Array } {
  const r = rng(seed);
  const x = new Float32Array(rows * spec.inputs).map(() => 4 * r() - 1);
  return { x: { data: x, shape: [rows, spec.inputs] }, y: new Int32Array(rows).map(() => Math.floor(r() * 5)) };
}

describe.each(BACKENDS)('Predictor on $name', (backend) => {
  it('predicts the bits of the full Model, from a model file, at batch 1, 3, 4, 5, 256 and 300 rows', async () => {
    const trainingSet = data(200, 1);
    const model = new Model({ ...spec, normalization: { mean: new Array(13).fill(0).map((_, i) => i / 10), std: new Array(13).fill(0).map((_, i) => 1 + i / 7) } }, backend);
    await model.fit(trainingSet.x, trainingSet.y, { epochs: 2, batchSize: 32 });
    const p = await loadPredictor(modelToBytes(model), { backend: backend.name });
    expect(p).toBeInstanceOf(Predictor);
    expect(p.backend.name).toBe(backend.name);
    expect(p.classes).toEqual(spec.classes);
    for (const rows of [1, 3, 4, 5, 256, 300]) {
      const { x } = data(rows, 10 + rows);
      const want = model.predict(x), got = p.predict(x);
      expect(got.shape).toEqual(want.shape);
      expect(Array.from(got.data)).toEqual(Array.from(want.data));
      expect(Array.from(p.predictClasses(x))).toEqual(Array.from(model.predictClasses(x)));
    }
    // rows as arrays, and a batch size that splits them
    const { x } = data(9, 3);
    const rowsOf = Array.from({ length: 9 }, (_, i) => Array.from(x.data.subarray(i * 13, (i + 1) * 13)));
    expect(Array.from(p.predict(rowsOf, 4).data)).toEqual(Array.from(model.predict(x).data));
  });

  it('from an ONNX export (deltaprop/infer/onnx): the Model\'s predictions within 1e-5', async () => {
    const model = new Model({ ...spec, normalization: { mean: new Array(13).fill(0.25), std: new Array(13).fill(1.5) } }, backend);
    const p = await loadPredictor(parseOnnx(toOnnx(model)), { backend: backend.name });
    const { x } = data(7, 5);
    const want = model.predict(x).data, got = p.predict(x).data;
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-5);
  });

  it('never predicts from stale weights: predict, one fit step, predict equals a fresh model with those weights', async () => {
    const { x, y } = data(64, 6);
    for (const rows of [1, 4, 64]) {
      const q = { data: x.data.subarray(0, rows * 13), shape: [rows, 13] as [number, number] };
      const model = new Model(spec, backend);
      const before = model.predict(q).data;
      await model.fit(x, y, { epochs: 1, batchSize: 64, shuffle: false }); // one step
      const after = model.predict(q).data;
      const fresh = new Model(spec, backend);
      fresh.setWeights(model.getWeights());
      expect(Array.from(after)).toEqual(Array.from(fresh.predict(q).data));
      expect(Array.from(after)).not.toEqual(Array.from(before));
      // and the predictor of those weights
      expect(Array.from(predictorFromBytes(modelToBytes(model), backend).predict(q).data)).toEqual(Array.from(after));
    }
  });
});

describe('Predictor input and errors', () => {
  const backend = BACKENDS[BACKENDS.length - 1];
  const model = new Model(spec, backend);
  const bytes = modelToBytes(model);

  it('names a wrong input width, a bad batch size, bad bytes and bad weights', async () => {
    const p = predictorFromBytes(bytes, backend);
    expect(() => p.predict([[1, 2, 3]])).toThrow(/inputs.*13/);
    expect(() => p.predict(data(2, 1).x, 0)).toThrow(/batchSize: must be a positive integer/);
    expect(() => predictorFromBytes(bytes.subarray(0, 30), backend)).toThrow(/model file/);
    await expect(loadPredictor({ spec } as never, { backend: backend.name })).rejects.toThrow(/expected the bytes of a model file .* or \{ spec, weights \}/);
    const weights = model.getWeights();
    weights[1].w[3] = NaN;
    expect(() => new Predictor(spec, weights, backend)).toThrow(/layer 2 w\[3\] is not finite/);
    expect(() => new Predictor(spec, weights.slice(1), backend)).toThrow(/expected 3 layers, got 2/);
    expect(p.predict({ data: new Float32Array(0), shape: [0, 13] }).shape).toEqual([0, 5]);
  });

  it('loads a model file by path in Node, and names a missing one', async () => {
    mkdirSync(work, { recursive: true });
    const path = join(work, 'm.dpm');
    writeFileSync(path, bytes);
    const p = await loadPredictor(path, { backend: backend.name });
    const { x } = data(3, 2);
    expect(Array.from(p.predict(x).data)).toEqual(Array.from(model.predict(x).data));
    await expect(loadPredictor(join(work, 'missing.dpm'))).rejects.toThrow(/missing\.dpm: cannot read \(ENOENT\)/);
    writeFileSync(path, bytes.subarray(0, 40));
    await expect(loadPredictor(path, { backend: backend.name })).rejects.toThrow(/m\.dpm: model file/);
  });
});
