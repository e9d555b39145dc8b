// ONNX against the reference implementations (`npm run test:interop`, needs Debian's python3-torch
// and python3-onnx): PyTorch's torch.onnx.export files import with PyTorch's own predictions on
// every backend, the graphs PyTorch writes that are not MLPs are named errors, and everything
// deltaprop exports (also after importing and fine-tuning a PyTorch model) passes onnx's checker.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromOnnx, JsBackend, Model, modelFromBytes, modelFromOnnx, modelToBytes, OnnxError, toOnnx, type DenseSpec, type ModelSpec } from '../src/index.js';
import { Random } from '../src/random.js';
import { BACKENDS } from './backends.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// Debian's python3 (with python3-torch, python3-onnx), not whatever python3 is first on PATH
const PYTHON = process.env.DELTAPROP_PYTHON ?? '/usr/bin/python3';
const dir = mkdtempSync(join(tmpdir(), 'deltaprop-onnx-interop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface TorchCase {
  file: string;
  opset: number;
  refusal: string | null;
  input: { shape: number[]; data: number[] };
  expected: { shape: number[]; data: number[] };
  torch: string;
}

function python(script: string, args: string[]): string {
  const r = spawnSync(PYTHON, [join(ROOT, 'test', 'onnx', script), ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw new Error(`cannot run ${PYTHON} (${r.error.message}): these tests need Debian's python3 with python3-torch and python3-onnx (apt-get install python3-torch python3-onnx)`);
  if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status}): ${r.stderr.trim()}\n(these tests need apt-get install python3-torch python3-onnx)`);
  return r.stdout;
}

/** onnx.checker.check_model(full_check=True) on each file. */
function check(files: string[]): { file: string; ok: boolean; error: string | null; metadata?: Record<string, string> }[] {
  return python('check_onnx.py', files).trim().split('\n').map((l) => JSON.parse(l));
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst, `${what}: largest difference from the reference`).toBeLessThanOrEqual(1e-5);
}

let cases: Record<string, TorchCase>;
beforeAll(() => {
  python('make_torch_models.py', [join(dir, 'torch')]);
  cases = JSON.parse(readFileSync(join(dir, 'torch', 'manifest.json'), 'utf8'));
});

const SUPPORTED = ['relu_softmax', 'deep_leaky_tanh_sigmoid', 'matmul_add', 'linear_output', 'flatten_first', 'unfolded_transpose'];

describe("PyTorch's exports", () => {
  it('the suite made every case, with PyTorch 1.13', () => {
    expect(Object.keys(cases).sort()).toEqual([...SUPPORTED, 'conv', 'elu'].sort());
    expect(cases.relu_softmax.torch).toMatch(/^1\.13/);
  });

  describe.each(BACKENDS.map((b) => [b.name] as const))('on the %s backend', (backend) => {
    it.each(SUPPORTED.map((c) => [c] as const))("%s predicts PyTorch's outputs within 1e-5", async (name) => {
      const c = cases[name];
      const model = await fromOnnx(readFileSync(c.file), { backend });
      expect(model.backend.name).toBe(backend);
      const [rows, cols] = c.input.shape;
      const out = model.predict({ data: Float32Array.from(c.input.data), shape: [rows, cols] });
      expect(out.shape).toEqual(c.expected.shape);
      expectClose(out.data, c.expected.data, `${name} (opset ${c.opset}) on ${backend}`);
    });
  });

  it('reads the layers and the loss each graph implies', () => {
    const spec = (name: string): ModelSpec => modelFromOnnx(readFileSync(cases[name].file), new JsBackend()).spec;
    expect(spec('relu_softmax')).toMatchObject({ inputs: 5, loss: 'categoricalCrossEntropy', layers: [{ units: 8, activation: 'relu' }, { units: 3, activation: 'softmax' }] });
    expect(spec('deep_leaky_tanh_sigmoid')).toMatchObject({
      inputs: 4, loss: 'binaryCrossEntropy',
      layers: [{ units: 16, activation: 'leakyRelu', alpha: Math.fround(0.1) }, { units: 16, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
    });
    expect(spec('matmul_add').layers.map((l) => [(l as DenseSpec).units, (l as DenseSpec).activation])).toEqual([[7, 'sigmoid'], [5, 'tanh'], [4, 'softmax']]);
    expect(spec('linear_output')).toMatchObject({ loss: 'mse', layers: [{ units: 10, activation: 'relu' }, { units: 2, activation: 'linear' }] });
  });

  it('graphs that are not MLPs are errors naming the op or the shape', () => {
    for (const name of ['elu', 'conv']) {
      const c = cases[name];
      let message = '';
      try {
        modelFromOnnx(readFileSync(c.file), new JsBackend());
      } catch (e) {
        expect(e).toBeInstanceOf(OnnxError);
        message = (e as Error).message;
      }
      expect(message, name).toContain(c.refusal!);
    }
  });

  it('an imported PyTorch model fine-tunes with fit, saves, and exports a file that passes the checker and runs in onnxruntime', async () => {
    const model = modelFromOnnx(readFileSync(cases.relu_softmax.file), new JsBackend(), { optimizer: { type: 'adam', learningRate: 0.01 } });
    const rng = new Random(4), rows = 120;
    const x = Float32Array.from({ length: rows * 5 }, () => rng.normal());
    const y = Int32Array.from({ length: rows }, (_, i) => (x[5 * i] > 0.5 ? 2 : x[5 * i + 1] > 0 ? 1 : 0));
    const data = { data: x, shape: [rows, 5] as [number, number] };
    const before = model.evaluate(data, y);
    await model.fit(data, y, { epochs: 30, batchSize: 16 });
    const after = model.evaluate(data, y);
    expect(after.loss).toBeLessThan(before.loss);
    expect(after.accuracy!).toBeGreaterThan(before.accuracy!);
    const saved = modelFromBytes(modelToBytes(model), new JsBackend());
    const file = join(dir, 'fine-tuned.onnx');
    writeFileSync(file, toOnnx(saved));
    const [result] = check([file]);
    expect(result.error).toBeNull();
    expect(result.ok).toBe(true);
    const session = await ort.InferenceSession.create(readFileSync(file));
    const out = await session.run({ input: new ort.Tensor('float32', x, [rows, 5]) });
    expectClose(out.output.data as Float32Array, saved.predict(data).data, 'fine-tuned export in onnxruntime-node');
    await session.release();
  });
});

describe("deltaprop's exports pass onnx's checker", () => {
  it('every activation, with and without normalization and class names', () => {
    const specs: ModelSpec[] = [
      { inputs: 4, layers: [{ units: 6, activation: 'relu' }, { units: 3, activation: 'softmax' }], loss: 'categoricalCrossEntropy',
        optimizer: { type: 'adam', learningRate: 0.01 }, normalization: { mean: [0, 1, 2, 3], std: [1, 2, 3, 4] }, classes: ['a', 'b', 'c'] },
      { inputs: 3, layers: [{ units: 5, activation: 'leakyRelu', alpha: 0.3 }, { units: 5, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
        loss: 'binaryCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.1 } },
      { inputs: 2, layers: [{ units: 3, activation: 'linear' }, { units: 2, activation: 'linear' }], loss: 'mse', optimizer: { type: 'momentum', learningRate: 0.1 } },
    ];
    const files = specs.map((spec, i) => {
      const file = join(dir, `export-${i}.onnx`);
      writeFileSync(file, toOnnx(new Model(spec, new JsBackend())));
      return file;
    });
    const results = check(files);
    for (const r of results) expect(r.error, r.file).toBeNull();
    expect(JSON.parse(results[0].metadata!.classes)).toEqual(['a', 'b', 'c']);
    expect(results[1].metadata!.classes).toBeUndefined();
  });

  it('and the checker itself refuses a broken graph (the check can fail)', () => {
    const file = join(dir, 'broken.onnx');
    const bytes = toOnnx(new Model({ inputs: 2, layers: [{ units: 2, activation: 'relu' }], loss: 'mse', optimizer: { type: 'sgd', learningRate: 0.1 } }, new JsBackend()));
    // "Relu" → "Rely": an op no opset has
    const at = Buffer.from(bytes).indexOf('Relu');
    bytes[at + 3] = 'y'.charCodeAt(0);
    writeFileSync(file, bytes);
    const [r] = check([file]);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/Rely/);
  });
});
