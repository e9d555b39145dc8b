// ONNX export and import without Python: models exported by toOnnx run in onnxruntime-node and
// onnxruntime-web (in its own process) with deltaprop's predictions on every backend; toOnnx →
// fromOnnx keeps the model; hostile and unsupported files, built here with the protobuf schema,
// are clear OnnxErrors. (PyTorch's exports and the ONNX checker: test/onnx-torch.interop.ts.)
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { build as tsupBuild } from 'tsup';
import { cliBuild } from '../tsup.config.js';
import { Miniflare } from 'miniflare';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backends/backend.js';
import { JsBackend } from '../src/backends/js.js';
import { exportCommand } from '../src/cli/export.js';
import { importCommand } from '../src/cli/import.js';
import { fitNormalization, fromOnnx, Model, modelFromBytes, modelFromOnnx, modelToBytes, ModelFileError, OnnxError, parseOnnx, readModelFile, saveModel, toOnnx, type DenseSpec, type ModelSpec } from '../src/index.js';
import * as web from '../src/web.js';
import { onnx } from '../src/onnx/schema.js';
import { Random } from '../src/random.js';
import { BACKENDS } from './backends.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'deltaprop-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOL = 1e-5;

/** A decoded message with every field present (the tests build and edit whole messages). */
type Full<T> = T extends Uint8Array ? T : T extends (infer U)[] ? Full<U>[] : T extends object ? { -readonly [K in keyof T]-?: Full<NonNullable<T[K]>> } : T;
type ModelMessage = Full<onnx.ModelProto.$Properties>;
const decode = (bytes: Uint8Array): ModelMessage => onnx.ModelProto.decode(bytes) as unknown as ModelMessage;

function randomRows(rows: number, cols: number, seed: number, scale = 3): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: rows * cols }, () => scale * rng.normal() + 1);
}

/** Seeded weights with biases that are not zero (the initializer leaves them at zero). */
function randomize(model: Model, seed: number): Model {
  const rng = new Random(seed);
  model.setWeights(model.getWeights().map(({ w, b }) => ({
    w: w.map(() => 0.6 * rng.normal()),
    b: b.map(() => 0.3 * rng.normal()),
  })));
  return model;
}

const CASES: { name: string; spec: ModelSpec }[] = [
  {
    name: 'relu-softmax with normalization and classes',
    spec: {
      inputs: 6, layers: [{ units: 9, activation: 'relu' }, { units: 3, activation: 'softmax' }],
      loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 4,
      normalization: { mean: [1, -2, 0.5, 3, 0, 7], std: [2, 0.5, 1, 4, 1.5, 3] }, classes: ['setosa', 'versicolor', 'virginica'],
    },
  },
  {
    name: 'leakyRelu-tanh-sigmoid',
    spec: {
      inputs: 5, layers: [{ units: 12, activation: 'leakyRelu', alpha: 0.2 }, { units: 7, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
      loss: 'binaryCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.1 }, seed: 5,
    },
  },
  {
    name: 'sigmoid-linear regression',
    spec: {
      inputs: 4, layers: [{ units: 8, activation: 'sigmoid' }, { units: 6, activation: 'linear' }, { units: 2, activation: 'linear' }],
      loss: 'mse', optimizer: { type: 'momentum', learningRate: 0.05 }, seed: 6, normalization: { mean: [0, 1, 2, 3], std: [1, 1, 2, 2] },
    },
  },
];

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst, `${what}: largest difference`).toBeLessThanOrEqual(TOL);
}

async function runOrtNode(bytes: Uint8Array, x: Float32Array, rows: number, cols: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const result = await session.run({ input: new ort.Tensor('float32', x, [rows, cols]) });
    return result.output.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** onnxruntime-web in a child process (see test/onnx/ort-web-run.mjs). */
function runOrtWeb(jobs: { file: string; input: { data: number[]; shape: number[] } }[]): { data: number[]; shape: number[] }[] {
  const jobFile = join(dir, `ort-web-${Date.now()}.json`);
  writeFileSync(jobFile, JSON.stringify(jobs));
  const r = spawnSync(process.execPath, [join(ROOT, 'test', 'onnx', 'ort-web-run.mjs'), jobFile], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`onnxruntime-web run failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('toOnnx runs in onnxruntime with deltaprop\'s predictions', () => {
  const ROWS = 33;
  describe.each(BACKENDS.map((b) => [b.name, b] as [string, Backend]))('%s backend', (_name, backend) => {
    const runs = CASES.map(({ name, spec }) => {
      const model = randomize(new Model(spec, backend), spec.seed! + 100);
      const x = randomRows(ROWS, spec.inputs, spec.seed!);
      return { name, spec, model, x, mine: model.predict({ data: x, shape: [ROWS, spec.inputs] }).data, bytes: toOnnx(model) };
    });

    it.each(runs.map((r) => [r.name, r] as const))('%s: onnxruntime-node gives predict\'s outputs within 1e-5', async (name, r) => {
      expectClose(await runOrtNode(r.bytes, r.x, ROWS, r.spec.inputs), r.mine, `${name}, onnxruntime-node`);
    });

    it('every case: onnxruntime-web (wasm, its own process) gives predict\'s outputs within 1e-5', () => {
      const jobs = runs.map((r, i) => {
        const file = join(dir, `${backend.name}-${i}.onnx`);
        writeFileSync(file, r.bytes);
        return { file, input: { data: Array.from(r.x), shape: [ROWS, r.spec.inputs] } };
      });
      const results = runOrtWeb(jobs);
      runs.forEach((r, i) => {
        expect(results[i].shape).toEqual([ROWS, r.model.outputs]);
        expectClose(results[i].data, r.mine, `${r.name}, onnxruntime-web`);
      });
    });
  });

  it('a trained model (fitted normalization, classes) gives the same probabilities in onnxruntime-node', async () => {
    const rows = 240, rng = new Random(9);
    const x = new Float32Array(rows * 3), y = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      y[i] = i % 3;
      x.set([100 + 20 * y[i] + 5 * rng.normal(), -3 * y[i] + rng.normal(), 0.01 * rng.normal()], 3 * i);
    }
    const data = { data: x, shape: [rows, 3] as [number, number] };
    const model = new Model({
      inputs: 3, layers: [{ units: 8, activation: 'tanh' }, { units: 3, activation: 'softmax' }], loss: 'categoricalCrossEntropy',
      optimizer: { type: 'adam', learningRate: 0.02 }, normalization: fitNormalization(data), classes: ['low', 'mid', 'high'], seed: 2,
    }, new JsBackend());
    await model.fit(data, y, { epochs: 20, batchSize: 16 });
    expect(model.evaluate(data, y).accuracy).toBeGreaterThan(0.9);
    const probs = await runOrtNode(toOnnx(model), x, rows, 3);
    expectClose(probs, model.predict(data).data, 'trained model');
  });

  it('writes the documented names, opset 13, and the class names and training settings as metadata', () => {
    const model = new Model(CASES[0].spec, new JsBackend());
    const m = decode(toOnnx(model, { producerVersion: '9.9.9' }));
    expect(m.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 13]]);
    expect(m.producerName).toBe('deltaprop');
    expect(m.producerVersion).toBe('9.9.9');
    expect(m.graph.input.map((i) => i.name)).toEqual(['input']);
    expect(m.graph.output.map((o) => o.name)).toEqual(['output']);
    expect(m.graph.node.map((n) => n.opType)).toEqual(['Sub', 'Div', 'Gemm', 'Relu', 'Gemm', 'Softmax']);
    const meta = Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]));
    expect(JSON.parse(meta.classes)).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(JSON.parse(meta['deltaprop.training'])).toMatchObject({ loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 } });
  });
});

describe('fromOnnx', () => {
  it.each(CASES.map((c) => [c.name, c.spec] as const))('%s: toOnnx → fromOnnx keeps the spec and the exact weights', async (_name, spec) => {
    const model = randomize(new Model(spec, new JsBackend()), 77);
    const parsed = parseOnnx(toOnnx(model));
    expect(parsed.producer).toBe('deltaprop');
    const f32 = (a: number[]) => a.map(Math.fround);
    expect(parsed.spec).toEqual({
      ...model.spec,
      ...(spec.normalization ? { normalization: { mean: f32(spec.normalization.mean), std: f32(spec.normalization.std) } } : {}),
      layers: model.spec.layers.map((l) => ({ ...l, alpha: Math.fround((l as DenseSpec).alpha ?? 0) })),
    });
    parsed.weights.forEach((lw, l) => {
      expect(lw.w).toEqual(model.getWeights()[l].w);
      expect(lw.b).toEqual(model.getWeights()[l].b);
    });
  });

  it.each(BACKENDS.map((b) => [b.name] as const))('onto the %s backend: the same predictions', async (name) => {
    const spec = CASES[0].spec;
    const model = randomize(new Model(spec, new JsBackend()), 3);
    const again = await fromOnnx(toOnnx(model), { backend: name });
    expect(again.backend.name).toBe(name);
    const x = { data: randomRows(20, spec.inputs, 8), shape: [20, spec.inputs] as [number, number] };
    expectClose(again.predict(x).data, model.predict(x).data, `fromOnnx on ${name}`);
  });

  it('the browser entry imports and exports too (from bytes, no Node modules)', async () => {
    const model = randomize(new Model(CASES[1].spec, new JsBackend()), 5);
    const again = await web.fromOnnx(web.toOnnx(model), { backend: 'js' });
    const x = { data: randomRows(5, 5, 2), shape: [5, 5] as [number, number] };
    expectClose(again.predict(x).data, model.predict(x).data, 'web entry');
  });

  it('toOnnx(fromOnnx(bytes)) gives back the same bytes', () => {
    for (const c of CASES) {
      const bytes = toOnnx(randomize(new Model(c.spec, new JsBackend()), 8));
      expect(Buffer.from(toOnnx(modelFromOnnx(bytes, new JsBackend()))).equals(Buffer.from(bytes)), c.name).toBe(true);
    }
  });

  it('in Cloudflare workerd (miniflare): fromOnnx, predict and toOnnx from the workerd entry, where eval is refused', async () => {
    const out = join(dir, 'worker');
    mkdirSync(out, { recursive: true });
    await build({
      entryPoints: [join(ROOT, 'test', 'onnx', 'worker.mjs')],
      bundle: true, format: 'esm', platform: 'browser', outfile: join(out, 'worker.js'), logLevel: 'silent',
      conditions: ['workerd', 'worker', 'browser'],
      plugins: [{
        name: 'wasm-modules',
        setup(b) {
          // as wrangler does: a .wasm import becomes a compiled module next to the script
          b.onResolve({ filter: /\.wasm$/ }, (args) => {
            copyFileSync(resolve(args.resolveDir, args.path), join(out, basename(args.path)));
            return { path: `./${basename(args.path)}`, external: true };
          });
        },
      }],
    });
    const model = randomize(new Model(CASES[0].spec, new JsBackend()), 19);
    const bytes = toOnnx(model);
    const x = { data: randomRows(8, 6, 4), shape: [8, 6] as [number, number] };
    const mf = new Miniflare({
      modules: true, modulesRoot: out, scriptPath: join(out, 'worker.js'), compatibilityDate: '2025-01-01',
      modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    });
    try {
      const query = encodeURIComponent(JSON.stringify({ data: Array.from(x.data), shape: x.shape }));
      const res = await mf.dispatchFetch(`http://localhost/?x=${query}`, { method: 'POST', body: bytes });
      const text = await res.text();
      expect(res.status, text).toBe(200);
      const r = JSON.parse(text) as { backend: string; classes: string[]; predictions: number[]; again: number[]; evalAllowed: boolean };
      expect(r.evalAllowed).toBe(false);
      expect(r.backend).toBe('wasm');
      expect(r.classes).toEqual(CASES[0].spec.classes);
      expectClose(r.predictions, model.predict(x).data, 'workerd');
      expect(Buffer.from(r.again).equals(Buffer.from(bytes))).toBe(true);
    } finally {
      await mf.dispose();
    }
  }, 120_000);

  it('an imported model fine-tunes with fit, saves, loads and exports again', async () => {
    const spec = CASES[0].spec;
    const imported = modelFromOnnx(toOnnx(randomize(new Model(spec, new JsBackend()), 12)), new JsBackend(), { optimizer: { type: 'adam', learningRate: 0.01 } });
    const rows = 90, x = randomRows(rows, 6, 3), y = Int32Array.from({ length: rows }, (_, i) => (x[6 * i] > 1 ? 2 : x[6 * i + 1] > 1 ? 1 : 0));
    const data = { data: x, shape: [rows, 6] as [number, number] };
    const before = imported.evaluate(data, y).loss;
    const history = await imported.fit(data, y, { epochs: 15, batchSize: 15 });
    expect(history.epochs[history.epochs.length - 1].loss).toBeLessThan(before);
    const path = join(dir, 'fine-tuned.dpm');
    await saveModel(imported, path);
    const loaded = await readModelFile(path, new JsBackend());
    expect(loaded.spec.classes).toEqual(spec.classes);
    expectClose(await runOrtNode(toOnnx(loaded), x, rows, 6), imported.predict(data).data, 'fine-tuned, saved and exported');
  });

  it('reads float_data and float64 initializers as well as raw_data', () => {
    const model = randomize(new Model(CASES[1].spec, new JsBackend()), 21);
    const m = decode(toOnnx(model));
    const [first, second] = m.graph.initializer;
    const values = (t: ModelMessage['graph']['initializer'][number]) => { const v = new DataView(t.rawData!.buffer, t.rawData!.byteOffset, t.rawData!.byteLength); return Array.from({ length: t.rawData!.length / 4 }, (_, i) => v.getFloat32(4 * i, true)); };
    const firstValues = values(first), secondValues = values(second);
    first.rawData = new Uint8Array(0);
    first.floatData = firstValues;
    const doubles = new Uint8Array(8 * secondValues.length);
    secondValues.forEach((v, i) => new DataView(doubles.buffer).setFloat64(8 * i, v, true));
    second.rawData = doubles;
    second.dataType = onnx.TensorProto.DataType.DOUBLE;
    const parsed = parseOnnx(onnx.ModelProto.encode(m as onnx.ModelProto.$Properties).finish());
    expect(Array.from(parsed.weights[0].w)).toEqual(firstValues);
    expect(Array.from(parsed.weights[0].b)).toEqual(secondValues);
  });
});

// ------------------------------------------------------------------------------------------------
// Hostile and unsupported files, built with the schema from a good export

function goodMessage(): ModelMessage {
  return decode(toOnnx(randomize(new Model(CASES[0].spec, new JsBackend()), 1)));
}

function refused(m: ModelMessage | Uint8Array): string {
  const bytes = m instanceof Uint8Array ? m : onnx.ModelProto.encode(m as onnx.ModelProto.$Properties).finish();
  try {
    parseOnnx(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(OnnxError);
    expect(e).toBeInstanceOf(ModelFileError);
    return (e as Error).message;
  }
  throw new Error('the file was accepted');
}

const tensor = (m: ModelMessage, name: string) => m.graph.initializer.find((t) => t.name === name)!;

describe('hostile and unsupported ONNX files are clear errors', () => {
  it('truncated files, at every length', () => {
    const bytes = toOnnx(new Model(CASES[0].spec, new JsBackend()));
    const messages = new Set<string>();
    for (let n = 0; n < bytes.length; n += 1 + Math.floor(n / 40)) messages.add(refused(bytes.subarray(0, n)).split(' (')[0]);
    // every cut is refused; most as truncated protobuf, the others as a graph with parts missing
    expect([...messages].some((s) => s.includes('the protobuf is truncated or corrupted'))).toBe(true);
    for (const s of messages) expect(s).toMatch(/^ONNX import: /);
  });

  it('not ONNX at all: empty, random bytes, a deltaprop model file, not bytes', () => {
    expect(refused(new Uint8Array(0))).toBe('ONNX import: the file is empty');
    const rng = new Random(5);
    for (let k = 0; k < 20; k++) refused(Uint8Array.from({ length: 64 + k * 13 }, () => Math.floor(rng.uniform() * 256)));
    refused(modelToBytes(new Model(CASES[0].spec, new JsBackend())));
    expect(() => parseOnnx('model.onnx' as unknown as Uint8Array)).toThrow('expected the bytes of an ONNX file');
  });

  it('messages nested thousands deep (graph in attribute in node in graph …)', () => {
    const varint = (n: number): number[] => { const o: number[] = []; while (n > 127) { o.push((n & 127) | 128); n >>>= 7; } o.push(n); return o; };
    const field = (tag: number, inner: Uint8Array): Uint8Array => {
      const head = [(tag << 3) | 2, ...varint(inner.length)], out = new Uint8Array(head.length + inner.length);
      out.set(head);
      out.set(inner, head.length);
      return out;
    };
    let graph: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 5000; i++) graph = field(1, field(5, field(6, graph))); // GraphProto.node → NodeProto.attribute → AttributeProto.g
    expect(refused(field(7, graph))).toMatch(/^ONNX import: not a valid ONNX model: the protobuf is truncated or corrupted \(max depth exceeded\)$/);
  });

  it('a tensor whose data does not match its dims', () => {
    const m = goodMessage();
    tensor(m, 'layer0.weight').dims = [6, 10];
    expect(refused(m)).toBe("ONNX import: tensor 'layer0.weight' has dims [6, 10] (60 values), but its data holds 216 bytes");
  });

  it('dims of 2^31 (and more) are refused before anything is allocated', () => {
    const m = goodMessage();
    tensor(m, 'layer0.weight').dims = [2 ** 31, 9];
    expect(refused(m)).toBe(`ONNX import: tensor 'layer0.weight' has dims [${2 ** 31}, 9] (${2 ** 31 * 9} values), but its data holds 216 bytes`);
    tensor(m, 'layer0.weight').dims = [2 ** 31, 2 ** 31, 2 ** 31];
    expect(refused(m)).toMatch(/^ONNX import: tensor 'layer0.weight' has dims \[2147483648, 2147483648, 2147483648\]/);
    tensor(m, 'layer0.weight').dims = [-1, 9];
    expect(refused(m)).toMatch(/tensor 'layer0.weight' has an invalid dimension/);
  });

  it('a cycle in the graph', () => {
    const m = goodMessage();
    // the first Gemm reads the output of the second: Gemm → Relu → Gemm → Gemm …
    m.graph.node[2].input[0] = 'layer1.linear';
    expect(refused(m)).toMatch(/^ONNX import: the graph has a cycle: node \d \(\w+ '\w+'\) depends on its own output$/);
  });

  it('a quarter of a million nodes is refused in linear time', () => {
    const m = goodMessage();
    const relu = m.graph.node[3];
    m.graph.node = Array.from({ length: 250_000 }, (_, i) => ({ ...relu, name: `n${i}`, input: ['input'], output: [`v${i}`] }));
    const bytes = onnx.ModelProto.encode(m as onnx.ModelProto.$Properties).finish();
    const started = performance.now();
    expect(refused(bytes)).toBe("ONNX import: node 0 (Relu 'n0'): an activation before the first layer is not supported: deltaprop imports MLPs: "
      + 'Gemm or MatMul+Add layers with Relu, LeakyRelu, Sigmoid, Tanh or Softmax, optionally after a Sub/Div input normalization');
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('names, op types and dims from the file are quoted short (a hostile name cannot flood the message)', () => {
    const m = goodMessage();
    const long = 'x'.repeat(1_000_000);
    m.graph.node[3].opType = long;
    m.graph.node[3].name = long;
    const message = refused(m);
    expect(message.length).toBeLessThan(400);
    expect(message).toBe(`ONNX import: node 3 (${'x'.repeat(40)}… '${'x'.repeat(40)}…') is not supported: deltaprop imports MLPs: Gemm or MatMul+Add `
      + 'layers with Relu, LeakyRelu, Sigmoid, Tanh or Softmax, optionally after a Sub/Div input normalization');
    const n = goodMessage();
    tensor(n, 'layer0.weight').dims = Array.from({ length: 100_000 }, () => 2);
    expect(refused(n)).toBe("ONNX import: tensor 'layer0.weight' has dims [2, 2, 2, 2, 2, 2, … 99994 more] (more than 1e308 values), but its data holds 216 bytes");
  });

  it('a missing initializer', () => {
    const m = goodMessage();
    m.graph.initializer = m.graph.initializer.filter((t) => t.name !== 'layer1.bias');
    expect(refused(m)).toBe("ONNX import: node 4 (Gemm 'layer1_gemm') reads 'layer1.bias', which no initializer, graph input or node provides (a missing initializer?)");
  });

  it('an unsupported op, named with its node', () => {
    const m = goodMessage();
    m.graph.node[3].opType = 'Conv';
    expect(refused(m)).toBe("ONNX import: node 3 (Conv 'layer0_relu') is not supported: deltaprop imports MLPs: Gemm or MatMul+Add layers "
      + 'with Relu, LeakyRelu, Sigmoid, Tanh or Softmax, optionally after a Sub/Div input normalization');
    const n = goodMessage();
    n.graph!.node[3].domain = 'com.microsoft';
    expect(refused(n)).toMatch(/node 3 \(Relu 'layer0_relu'\) is from the operator domain 'com.microsoft'/);
  });

  it('unsupported shapes and attributes', () => {
    let m = goodMessage();
    tensor(m, 'layer0.weight').dims = [6, 3, 3];
    expect(refused(m)).toBe("ONNX import: node 2 (Gemm 'layer0_gemm'): the weight 'layer0.weight' has shape [6, 3, 3]; a dense layer's is 2-D");
    m = goodMessage();
    m.graph.input[0].type.tensorType.shape.dim.push({ dimValue: 4 } as ModelMessage['graph']['input'][number]['type']['tensorType']['shape']['dim'][number]);
    expect(refused(m)).toBe("ONNX import: the graph input 'input' has shape [?, 6, 4]; an MLP's is [batch, features]");
    m = goodMessage();
    m.graph.input[0].type.tensorType.elemType = onnx.TensorProto.DataType.INT64;
    expect(refused(m)).toMatch(/the graph input 'input' has element type INT64; deltaprop runs float32/);
    m = goodMessage();
    m.graph.node[5].attribute[0].i = 0;
    expect(refused(m)).toMatch(/node 5 \(Softmax 'layer1_softmax'\): Softmax over axis 0 is not supported/);
    m = goodMessage();
    m.graph.node[2].attribute = [{ name: 'transA', type: onnx.AttributeProto.AttributeType.INT, i: 1 } as ModelMessage['graph']['node'][number]['attribute'][number]];
    expect(refused(m)).toMatch(/Gemm with transA = 1 is not supported/);
    m = goodMessage();
    tensor(m, 'layer1.weight').dims = [3, 12];
    tensor(m, 'layer1.weight').rawData = new Uint8Array(4 * 36);
    expect(refused(m)).toMatch(/the weight 'layer1.weight' takes 3 inputs, but the layer before gives 9/);
    m = goodMessage();
    tensor(m, 'normalization.std').rawData = new Uint8Array(24);
    expect(refused(m)).toMatch(/the standard deviations in 'normalization.std' must all be > 0/);
    m = goodMessage();
    tensor(m, 'layer0.bias').rawData = new Uint8Array([0, 0, 0xc0, 0x7f, ...new Uint8Array(32)]);
    expect(refused(m)).toBe("ONNX import: tensor 'layer0.bias': value 0 is NaN");
    m = goodMessage();
    tensor(m, 'layer0.weight').dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    expect(refused(m)).toMatch(/keeps its data in an external file/);
    m = goodMessage();
    m.graph.input.push({ ...m.graph.input[0], name: 'second' });
    expect(refused(m)).toMatch(/the graph has 2 inputs \('input', 'second'\); an MLP has one/);
    m = goodMessage();
    m.metadataProps[0].value = '["only one"]';
    expect(refused(m)).toBe("ONNX import: metadata 'classes' must be a JSON array of 3 class names");
    m = goodMessage();
    m.graph.node = [];
    expect(refused(m)).toMatch(/the graph has no dense layer/);
  });
});

describe('deltaprop export / import (the commands, in process)', () => {
  const run = async (command: ReturnType<typeof exportCommand>, args: string[]): Promise<string> => {
    const lines: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((s: string) => { lines.push(s); return true; }) as typeof process.stdout.write;
    try {
      await command.exitOverride().parseAsync(args, { from: 'user' });
    } finally {
      process.stdout.write = write;
    }
    return lines.join('');
  };

  it('export MODEL --onnx OUT, then import OUT --out MODEL2: the same model', async () => {
    const model = randomize(new Model(CASES[0].spec, new JsBackend()), 31);
    const modelPath = join(dir, 'cli.dpm'), onnxPath = join(dir, 'cli.onnx'), backPath = join(dir, 'cli-back.dpm');
    await saveModel(model, modelPath);
    expect(await run(exportCommand('0.1.0'), [modelPath, '--onnx', onnxPath]))
      .toMatch(/^wrote .*cli\.onnx \([\d,]+ bytes, opset 13\): input \[batch, 6\] → 9 relu → 3 softmax → output \[batch, 3\]\n$/);
    const m = decode(readFileSync(onnxPath));
    expect(m.producerVersion).toBe('0.1.0');
    expect(await run(importCommand(), [onnxPath, '--out', backPath]))
      .toMatch(/^wrote .*cli-back\.dpm: 6 inputs → 9 relu → 3 softmax \(normalization; classes setosa, versicolor, virginica\), loss categoricalCrossEntropy\n$/);
    const back = modelFromBytes(readFileSync(backPath), new JsBackend());
    const x = { data: randomRows(10, 6, 1), shape: [10, 6] as [number, number] };
    expectClose(back.predict(x).data, model.predict(x).data, 'export → import');
  });

  it('bad files are errors naming the path; nothing is written', async () => {
    const bad = join(dir, 'bad.onnx'), out = join(dir, 'never.dpm');
    writeFileSync(bad, new Uint8Array([8, 7, 0x3a, 0xff, 1]));
    await expect(run(importCommand(), [bad, '--out', out])).rejects.toThrow(`${bad}: ONNX import: not a valid ONNX model: the protobuf is truncated or corrupted`);
    await expect(run(importCommand(), [join(dir, 'missing.onnx'), '--out', out])).rejects.toThrow(/missing\.onnx: cannot read ONNX file \(/);
    await expect(run(exportCommand('0'), [bad, '--onnx', join(dir, 'never.onnx')])).rejects.toThrow(`${bad}: model file: `);
    expect(() => readFileSync(out)).toThrow();
    expect(() => readFileSync(join(dir, 'never.onnx'))).toThrow();
  });
});

describe('deltaprop export / import (the built command, as users run it)', () => {
  // built with the shipped options into a private folder inside the package (it finds the package
  // root from there), out of the way of a concurrent `npm run compile`, which cleans dist/
  const out = join(ROOT, '.tmp', `onnx-cli-test-${process.pid}`);
  beforeAll(async () => {
    await tsupBuild({ ...cliBuild, config: false, silent: true, outDir: out, entry: { cli: join(ROOT, 'src', 'cli.ts') } });
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(out, 'cli.js'), ...args], { cwd: dir, encoding: 'utf8' });

  it('are listed in --help, round-trip a model, and refuse a bad file with one line and exit code 1', async () => {
    const help = cli('--help');
    expect(help.stdout).toMatch(/export \[options\] <MODEL>/);
    expect(help.stdout).toMatch(/import \[options\] <ONNX>/);
    await saveModel(randomize(new Model(CASES[1].spec, new JsBackend()), 2), join(dir, 'built.dpm'));
    const exported = cli('export', 'built.dpm', '--onnx', 'built.onnx');
    expect(exported.status, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/^wrote built\.onnx \([\d,]+ bytes, opset 13\): input \[batch, 5\] → 12 leakyRelu → 7 tanh → 1 sigmoid → output \[batch, 1\]\n$/);
    const imported = cli('import', 'built.onnx', '--out', 'built-back.dpm', '--lr', '0.02');
    expect(imported.status, imported.stderr).toBe(0);
    expect(modelFromBytes(readFileSync(join(dir, 'built-back.dpm')), new JsBackend()).spec.optimizer).toMatchObject({ type: 'adam', learningRate: 0.02 });
    const bad = cli('import', 'built.dpm', '--out', 'nothing.dpm');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^deltaprop: error: built\.dpm: ONNX import: not a valid ONNX model: the protobuf is truncated or corrupted \([^\n]*\)\n$/);
    const usage = cli('export', 'built.dpm');
    expect(usage.status).toBe(1);
    expect(usage.stderr).toBe("deltaprop: error: required option '--onnx <FILE>' not specified (see 'deltaprop export --help')\n");
  }, 60_000);
});

describe('the generated protobuf code', () => {
  it('is what protobufjs-cli generates from the vendored schema (npm run gen:onnx-proto)', () => {
    const out = join(dir, 'onnx-proto.js');
    const script = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts['gen:onnx-proto'] as string;
    const args = script.replace(/^pbjs /, '').replace('-o src/onnx/onnx-proto.js', `-o ${out}`).split(' ');
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'protobufjs-cli', 'bin', 'pbjs'), ...args], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(ROOT, 'src', 'onnx', 'onnx-proto.js'), 'utf8'));
    expect(readFileSync(out.replace(/\.js$/, '.d.ts'), 'utf8')).toBe(readFileSync(join(ROOT, 'src', 'onnx', 'onnx-proto.d.ts'), 'utf8'));
  });
});
