// Layers beyond dense in models: the spec and its errors, the summary, the gradients of whole
// models (dense, batch normalization, dropout with its mask for the step, layer normalization)
// against finite differences of an independent float64 forward pass on every backend, parity
// between backends, learning, inference (dropout off, running statistics), model files (the new
// format round-trips; a file of the previous format still loads) and ONNX export in onnxruntime.
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../src/backends/js.js';
import { fitNormalization, fromOnnx, loadBuiltin, Model, modelFromBytes, modelToBytes, SpecError, toOnnx, trainTestSplit, type LayerSpec, type ModelSpec } from '../src/index.js';
import { parseModelFile } from '../src/io/modelFile.js';
import { Random } from '../src/random.js';
import { checkSpec, isDense } from '../src/spec.js';
import { BACKENDS } from './backends.js';

const base = { inputs: 4, loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 3 } as const;
const spec = (layers: LayerSpec[], more: Partial<ModelSpec> = {}): ModelSpec => ({ ...base, layers, ...more }) as ModelSpec;
const out3: LayerSpec = { units: 3, activation: 'softmax' };

describe('spec: layer types', () => {
  it('a layer without a type is dense, and so is type dense; defaults are Keras\'s', () => {
    const s = checkSpec(spec([{ type: 'dense', units: 5, activation: 'relu' }, { type: 'batchNormalization' }, { type: 'dropout', rate: 0.25 },
      { type: 'layerNormalization', activation: 'tanh' }, out3]));
    expect(s.layers).toEqual([
      { units: 5, activation: 'relu', alpha: 0, init: 'he' },
      { type: 'batchNormalization', momentum: 0.99, epsilon: 1e-3, activation: 'linear', alpha: 0 },
      { type: 'dropout', rate: 0.25 },
      { type: 'layerNormalization', epsilon: 1e-3, activation: 'tanh', alpha: 0 },
      { units: 3, activation: 'softmax', alpha: 0, init: 'glorot' },
    ]);
  });

  it.each([
    ['a dropout rate of 1', [{ type: 'dropout', rate: 1 }, out3], 'layer 1: dropout rate must be a number in [0, 1), got 1'],
    ['a negative dropout rate', [{ type: 'dropout', rate: -0.1 }, out3], 'layer 1: dropout rate must be a number in [0, 1), got -0.1'],
    ['a NaN dropout rate', [{ type: 'dropout', rate: NaN }, out3], 'layer 1: dropout rate must be a number in [0, 1), got NaN'],
    ['a dropout rate as a string', [{ type: 'dropout', rate: '0.5' }, out3], "dropout rate must be a number in [0, 1), got the string '0.5'"],
    ['a rate that is 1 in float32', [{ type: 'dropout', rate: 0.99999999 }, out3], 'dropout rate must be a number in [0, 1), got 0.99999999'],
    ['no rate', [{ type: 'dropout' }, out3], 'layer 1: dropout rate must be a number in [0, 1), got undefined'],
    ['units on a dropout layer', [{ type: 'dropout', rate: 0.1, units: 4 }, out3], "layer 1: dropout takes no units (dropout keeps its input's width); its options are rate"],
    ['an unknown type', [{ type: 'conv2d', units: 3 }, out3], "layer 1: unknown layer type 'conv2d' (known: dense, dropout, batchNormalization, layerNormalization)"],
    ['a normalization as the output layer', [{ units: 3, activation: 'relu' }, { type: 'batchNormalization' }], 'layer 2: the output layer must be dense, got batchNormalization'],
    ['dropout as the output layer', [{ units: 3, activation: 'relu' }, { type: 'dropout', rate: 0.5 }], 'layer 2: the output layer must be dense, got dropout'],
    ['epsilon 0', [{ type: 'batchNormalization', epsilon: 0 }, out3], 'layer 1: batchNormalization epsilon must be a number > 0, got 0'],
    ['a negative epsilon', [{ type: 'layerNormalization', epsilon: -1 }, out3], 'layer 1: layerNormalization epsilon must be a number > 0, got -1'],
    ['momentum above 1', [{ type: 'batchNormalization', momentum: 1.5 }, out3], 'layer 1: batchNormalization momentum must be a number in [0, 1], got 1.5'],
    ['momentum on layer normalization', [{ type: 'layerNormalization', momentum: 0.9 }, out3], 'layer 1: layerNormalization takes no momentum; its options are epsilon, activation, alpha'],
    ['softmax on a normalization', [{ type: 'batchNormalization', activation: 'softmax' }, out3], 'layer 1: softmax is only allowed on the output layer, which is dense'],
    ['an unknown activation on a normalization', [{ type: 'layerNormalization', activation: 'gelu' }, out3], "layer 1: unknown activation 'gelu' (known: linear, sigmoid, tanh, relu, leakyRelu)"],
  ])('%s is a SpecError that says so', (_what, layers, message) => {
    expect(() => checkSpec(spec(layers as LayerSpec[]))).toThrow(SpecError);
    expect(() => checkSpec(spec(layers as LayerSpec[]))).toThrow(message);
  });

  it('batch normalization and dropout before the first dense layer are supported (they act on the inputs)', async () => {
    for (const be of BACKENDS) {
      const m = new Model(spec([{ type: 'batchNormalization' }, { type: 'dropout', rate: 0.1 }, { units: 5, activation: 'relu' }, out3]), be);
      const x = [[1, 2, 3, 4], [0, -1, 2, 5], [3, 3, 1, 0]];
      const h = await m.fit(x, [0, 1, 2], { epochs: 3, batchSize: 3 });
      expect(Number.isFinite(h.epochs[2].loss), be.name).toBe(true);
      expect(m.getRunningStats().slice(0, 4).some((v) => v !== 0), be.name).toBe(true);
    }
  });
});

describe('summary', () => {
  it('lists every layer with its shape and parameters; the running statistics are not trainable', () => {
    const m = new Model(spec([{ units: 6, activation: 'linear' }, { type: 'batchNormalization', activation: 'relu' }, { type: 'dropout', rate: 0.2 },
      { type: 'layerNormalization' }, out3]), new JsBackend());
    const s = m.summary({ print: false });
    expect(s.layers.map((l) => [l.name, l.type, l.activation, l.outputShape[1], l.params])).toEqual([
      ['dense_1', 'dense', 'linear', 6, 30], ['batch_normalization_1', 'batchNormalization', 'relu', 6, 24],
      ['dropout_1', 'dropout', 'linear', 6, 0], ['layer_normalization_1', 'layerNormalization', 'linear', 6, 12],
      ['dense_2', 'dense', 'softmax', 3, 21],
    ]);
    expect(s.layers[2].rate).toBe(0.2);
    expect([s.totalParams, s.trainableParams]).toEqual([87, 75]);
    expect(m.paramCount).toBe(75);
    expect(s.text).toContain('dropout_1 (rate 0.2)');
    expect(s.text).toContain('batch_normalization_1 (relu)');
    expect(s.text.split('\n').slice(-3)).toEqual(['Total params: 87', 'Trainable params: 75', 'Non-trainable params: 12']);
  });
});

// ---- gradients of whole models against a float64 forward pass ---------------------------------

/** The dropout factor per element of stack layer k's output at pass `step` (the reference kernel on ones). */
function dropoutFactors(n: number, rate: number, seed: number, step: number, layer: number): Float64Array {
  const js = new JsBackend(), y = js.alloc(n), ones = js.alloc(n);
  ones.data.fill(1);
  js.dropoutForward(y, ones, n, rate, seed, step, layer);
  return Float64Array.from(y.data);
}

const act64 = (z: number, a: string, alpha: number): number =>
  a === 'relu' ? Math.max(0, z) : a === 'tanh' ? Math.tanh(z) : a === 'sigmoid' ? 1 / (1 + Math.exp(-z)) : a === 'leakyRelu' ? (z > 0 ? z : alpha * z) : z;

/** Mean loss (categorical cross-entropy or mse) of a checked spec at params p, in float64, training mode at pass `step`. */
function referenceLoss(s: ModelSpec, p: Float64Array, x: number[][], y: number[][], step: number): number {
  const m = x.length;
  const dense = s.layers.filter(isDense);
  let w = s.inputs, wOff = 0;
  const offs: number[] = [];
  for (const l of dense) { offs.push(wOff); wOff += w * l.units; w = l.units; }
  let bOff = wOff, nOff = wOff + dense.reduce((t, l) => t + l.units, 0), d = 0;
  let a = x.map((r) => Float64Array.from(r));
  w = s.inputs;
  s.layers.forEach((l, k) => {
    if (isDense(l)) {
      const W = offs[d++], out = l.units;
      a = a.map((row) => {
        const z = new Float64Array(out);
        for (let j = 0; j < out; j++) {
          let v = p[bOff + j];
          for (let q = 0; q < w; q++) v += row[q] * p[W + q * out + j];
          z[j] = v;
        }
        if (l.activation === 'softmax') {
          const mx = Math.max(...z), e = z.map((v) => Math.exp(v - mx)), sum = e.reduce((t, v) => t + v, 0);
          return e.map((v) => v / sum);
        }
        return z.map((v) => act64(v, l.activation, l.alpha ?? 0));
      });
      bOff += out;
      w = out;
    } else if (l.type === 'dropout') {
      const f = dropoutFactors(m * w, l.rate, s.seed ?? 0, step, k);
      a = a.map((row, i) => row.map((v, j) => v * f[i * w + j]));
    } else {
      const g = p.subarray(nOff, nOff + w), b = p.subarray(nOff + w, nOff + 2 * w), eps = Math.fround(l.epsilon ?? 1e-3);
      nOff += 2 * w;
      const norm = (vals: number[], count: number) => {
        const mu = vals.reduce((t, v) => t + v, 0) / count;
        return { mu, r: 1 / Math.sqrt(vals.reduce((t, v) => t + (v - mu) ** 2, 0) / count + eps) };
      };
      if (l.type === 'batchNormalization') {
        const st = Array.from({ length: w }, (_, j) => norm(a.map((row) => row[j]), m));
        a = a.map((row) => row.map((v, j) => act64(g[j] * (v - st[j].mu) * st[j].r + b[j], l.activation ?? 'linear', l.alpha ?? 0)));
      } else {
        a = a.map((row) => {
          const st = norm(Array.from(row), w);
          return row.map((v, j) => act64(g[j] * (v - st.mu) * st.r + b[j], l.activation ?? 'linear', l.alpha ?? 0));
        });
      }
    }
  });
  let total = 0;
  a.forEach((row, i) => {
    if (s.loss === 'categoricalCrossEntropy') total -= row.reduce((t, v, j) => t + y[i][j] * Math.log(v), 0);
    else total += row.reduce((t, v, j) => t + (v - y[i][j]) ** 2, 0) / row.length;
  });
  return total / m;
}

const GRAD_SPECS: [string, ModelSpec][] = [
  ['dense → batch normalization (relu) → dropout → dense (softmax)', spec([{ units: 6, activation: 'linear' },
    { type: 'batchNormalization', activation: 'relu' }, { type: 'dropout', rate: 0.3 }, out3])],
  ['dense (tanh) → layer normalization → dropout → dense (tanh) → batch normalization → dense (softmax)', spec([
    { units: 5, activation: 'tanh' }, { type: 'layerNormalization' }, { type: 'dropout', rate: 0.2 }, { units: 4, activation: 'tanh' },
    { type: 'batchNormalization', momentum: 0.9 }, out3])],
  ['batch normalization on the inputs → dense (leakyRelu) → layer normalization (sigmoid) → dense (linear), mse', {
    ...spec([{ type: 'batchNormalization' }, { units: 5, activation: 'leakyRelu', alpha: 0.1 }, { type: 'layerNormalization', activation: 'sigmoid' },
      { units: 2, activation: 'linear' }]), loss: 'mse' } as ModelSpec],
];

describe.each(BACKENDS.map((b) => [b.name, b] as const))('%s: model gradients against finite differences', (_name, be) => {
  it.each(GRAD_SPECS)('%s', async (_what, s) => {
    const r = new Random(9), rows = 8;
    const x = Array.from({ length: rows }, () => Array.from({ length: 4 }, () => 3 * r.uniform() - 1.5));
    const outs = (s.layers[s.layers.length - 1] as { units: number }).units;
    const labels = Array.from({ length: rows }, (_, i) => i % outs);
    const y = s.loss === 'mse' ? x.map((row) => Array.from({ length: outs }, (_, j) => Math.sin(row[j] + j)))
      : labels.map((c) => Array.from({ length: outs }, (_, j) => (j === c ? 1 : 0)));
    const model = new Model(s, be);
    // train a little so that γ, β and the weights are not at their initial values, then check at pass 3
    await model.fit(x, s.loss === 'mse' ? y : labels, { epochs: 3, batchSize: rows, shuffle: false });
    const { grads, loss } = model.gradients(x, s.loss === 'mse' ? y : labels);
    const p = Float64Array.from(model.params.data), checked = checkSpec(s);
    expect(loss).toBeCloseTo(referenceLoss(checked, p, x, y, 3), 4);
    for (let i = 0; i < p.length; i++) {
      const v = p[i], h = 1e-5;
      p[i] = v + h; const up = referenceLoss(checked, p, x, y, 3);
      p[i] = v - h; const down = referenceLoss(checked, p, x, y, 3);
      p[i] = v;
      const want = (up - down) / (2 * h);
      expect(Math.abs(grads[i] - want), `param ${i}: ${grads[i]} vs ${want}`).toBeLessThan(2e-3 * Math.max(1, Math.abs(want)));
    }
    // gradients() moved nothing: the same call gives the same bits
    expect(model.gradients(x, s.loss === 'mse' ? y : labels).grads).toEqual(grads);
  });
});

describe('training with the new layers', () => {
  const s = spec([{ units: 16, activation: 'linear' }, { type: 'batchNormalization', activation: 'relu' }, { type: 'dropout', rate: 0.25 },
    { units: 8, activation: 'relu' }, { type: 'layerNormalization' }, out3]);
  const r = new Random(4), rows = 64;
  const x = Array.from({ length: rows }, () => Array.from({ length: 4 }, () => 2 * r.normal()));
  const y = x.map((row) => (row[0] + row[1] > 0.5 ? 0 : row[2] > 0 ? 1 : 2));

  it('every backend follows the js reference over the first steps (dropout masks included)', async () => {
    // SGD: Adam would turn the float noise in gradients that are nearly 0 (a dense bias before
    // batch normalization has none at all) into full steps of either sign
    const sgd = { ...s, optimizer: { type: 'sgd', learningRate: 0.1 } } as ModelSpec;
    const runs = await Promise.all(BACKENDS.map(async (be) => {
      const m = new Model(sgd, be);
      const h = await m.fit(x, y, { epochs: 2, batchSize: 16, seed: 1 });
      return { name: be.name, m, losses: h.epochs.map((e) => e.loss) };
    }));
    const ref = new Model(sgd, new JsBackend());
    const want = (await ref.fit(x, y, { epochs: 2, batchSize: 16, seed: 1 })).epochs.map((e) => e.loss);
    for (const run of runs) {
      run.losses.forEach((l, i) => expect(Math.abs(l - want[i]), `${run.name} epoch ${i + 1} loss ${l} vs ${want[i]}`).toBeLessThan(1e-4 * Math.max(1, want[i])));
      const got = run.m.params.data, refP = ref.params.data;
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - refP[i]), `${run.name} param ${i}`).toBeLessThan(1e-3);
      const stats = run.m.getRunningStats(), refS = ref.getRunningStats();
      for (let i = 0; i < stats.length; i++) expect(Math.abs(stats[i] - refS[i]), `${run.name} running stat ${i}`).toBeLessThan(1e-3);
    }
  });

  it('native and wasm run the step as one compiled program with the bits of the same program op by op', async () => {
    const compiling = BACKENDS.filter((b) => b.compileProgram);
    expect(compiling.map((b) => b.name).sort()).toEqual(BACKENDS.filter((b) => b.name !== 'js').map((b) => b.name).sort());
    for (const be of compiling) {
      const fused = new Model(s, be), plain = new Model(s, be);
      plain.fusedSteps = false;
      await fused.fit(x, y, { epochs: 3, batchSize: 16, seed: 2 });
      await plain.fit(x, y, { epochs: 3, batchSize: 16, seed: 2 });
      expect(fused.params.data, be.name).toEqual(plain.params.data);
      expect(fused.getRunningStats(), be.name).toEqual(plain.getRunningStats());
      expect(fused.predict(x).data, be.name).toEqual(plain.predict(x).data);
    }
  });

  it('a bad op of the new kinds is refused when compiling, with the kernel contract\'s words', () => {
    for (const be of BACKENDS.filter((b) => b.compileProgram)) {
      const y2 = be.alloc(8), x2 = be.alloc(8);
      expect(() => be.compileProgram!([{ op: 'dropoutForward', y: y2, x: x2, n: 8, rate: 1, seed: 0, layer: 0 }]), be.name)
        .toThrow(new RangeError('compileProgram: op 0: dropoutForward: rate must be in [0, 1) as a float32, got 1'));
      expect(() => be.compileProgram!([{ op: 'dropoutForward', y: y2, x: y2, n: 8, rate: 0.5, seed: 0, layer: 0 }]), be.name)
        .toThrow('compileProgram: op 0: dropoutForward: y and x overlap');
    }
  });

  it('predict and evaluate run in inference: dropout off, running statistics; the same rows give the same outputs', async () => {
    for (const be of BACKENDS) {
      const m = new Model(s, be);
      await m.fit(x, y, { epochs: 5, batchSize: 16 });
      const a = m.predict(x), b = m.predict(x);
      expect(a.data, be.name).toEqual(b.data);
      // one row alone: batch statistics would make a single row's outputs the same for any row
      const one = m.predict([x[0]]), other = m.predict([x[1]]);
      expect(one.data, be.name).toEqual(a.data.subarray(0, 3));
      expect(one.data, be.name).not.toEqual(other.data);
      expect(m.evaluate(x, y).loss, be.name).toBeCloseTo(m.evaluate(x, y).loss, 12);
    }
  });

  it('batch normalization and dropout after each hidden layer: digits to ≥ 0.96 test accuracy on every backend', async () => {
    const { train, test } = trainTestSplit(loadBuiltin('digits'), 0.2, 1);
    for (const be of BACKENDS.filter((b) => b.name !== 'js')) {
      const m = new Model({
        inputs: 64, layers: [{ units: 64, activation: 'relu' }, { type: 'batchNormalization' }, { type: 'dropout', rate: 0.2 },
          { units: 32, activation: 'relu' }, { type: 'batchNormalization' }, { type: 'dropout', rate: 0.2 }, { units: 10, activation: 'softmax' }],
        loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 3e-3 }, normalization: fitNormalization(train.x), seed: 1,
      }, be);
      await m.fit(train.x, train.y, { epochs: 15, batchSize: 32 });
      expect(m.evaluate(test.x, test.y).accuracy, be.name).toBeGreaterThanOrEqual(0.96);
    }
  });

  it('a model that diverges keeps the running statistics of its last good step', async () => {
    const m = new Model({ ...s, optimizer: { type: 'sgd', learningRate: 1e30 } } as ModelSpec, new JsBackend());
    await expect(m.fit(x, y, { epochs: 20, batchSize: 16 })).rejects.toThrow(/epoch \d+/);
    expect(m.getRunningStats().every(Number.isFinite)).toBe(true);
  });
});

describe('model files', () => {
  const s = spec([{ units: 6, activation: 'linear' }, { type: 'batchNormalization', activation: 'relu' }, { type: 'dropout', rate: 0.2 },
    { units: 5, activation: 'tanh' }, { type: 'layerNormalization', epsilon: 1e-4 }, out3], { classes: ['a', 'b', 'c'] });
  const r = new Random(2);
  const x = Array.from({ length: 40 }, () => Array.from({ length: 4 }, () => r.normal()));
  const y = x.map((row) => (row[0] > 0 ? 0 : row[1] > 0 ? 1 : 2));

  it.each(BACKENDS.map((b) => [b.name, b] as const))('%s: the new layers\' parameters and running statistics round-trip (format 2)', async (_n, be) => {
    const m = new Model(s, be);
    await m.fit(x, y, { epochs: 3, batchSize: 8 });
    const bytes = modelToBytes(m);
    expect(new DataView(bytes.buffer).getUint32(8, true)).toBe(2);
    const parsed = parseModelFile(bytes);
    expect(parsed.stats).toEqual(m.getRunningStats());
    expect(parsed.stats.length).toBe(12);
    for (const other of BACKENDS) {
      const again = modelFromBytes(bytes, other);
      expect(again.spec).toEqual(m.spec);
      expect(again.params.data).toEqual(m.params.data);
      expect(again.getRunningStats()).toEqual(m.getRunningStats());
      if (other === be) expect(again.predict(x).data).toEqual(m.predict(x).data);
    }
  });

  it('bad running statistics and counts are ModelFileErrors that say what is wrong', () => {
    const m = new Model(s, new JsBackend());
    const bytes = modelToBytes(m);
    const view = new DataView(bytes.buffer);
    const headerLength = view.getUint32(12, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + headerLength)));
    expect(header.statCount).toBe(12);
    // a negative running variance, resealed with a fresh checksum
    const bad = bytes.slice(), bv = new DataView(bad.buffer);
    const statsAt = ((16 + headerLength + 3) & ~3) + 4 * m.paramCount;
    bv.setFloat32(statsAt + 4 * 7, -1, true);
    bv.setUint32(bad.length - 4, crc(bad.subarray(0, bad.length - 4)), true);
    expect(() => parseModelFile(bad)).toThrow('model file: layer 2 (batchNormalization) running variance 1 is -1');
  });

  it('a file of format 1 (written by the previous version) still loads, with its predictions', () => {
    const bytes = new Uint8Array(readFileSync(new URL('./fixtures/v1-model.dpm', import.meta.url)));
    expect(new DataView(bytes.buffer).getUint32(8, true)).toBe(1);
    for (const be of BACKENDS) {
      const m = modelFromBytes(bytes, be);
      expect(m.spec.classes).toEqual(['no', 'yes']);
      expect(m.getRunningStats().length).toBe(0);
      const p = m.predict([[1, 2, 3], [-1, 0, 0.5]]).data;
      // the outputs the format-1 writer's model gave (test/fixtures/make-v1-model.ts)
      const want = [0.28739017248153687, 0.7126098275184631, 0.915282666683197, 0.08471734821796417];
      want.forEach((v, i) => expect(Math.abs(p[i] - v), be.name).toBeLessThan(1e-6));
      // and it saves as format 2, which loads the same
      expect(modelFromBytes(modelToBytes(m), be).params.data).toEqual(m.params.data);
    }
  });
});

/** CRC-32 as the model file computes it. */
function crc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe('ONNX export of the new layers', () => {
  it.each(BACKENDS.map((b) => [b.name, b] as const))('%s: batch normalization (BatchNormalization), layer normalization (decomposed) and dropout (left out) run in onnxruntime with predict\'s outputs', async (_n, be) => {
    const s = spec([{ units: 6, activation: 'linear' }, { type: 'batchNormalization', activation: 'relu' }, { type: 'dropout', rate: 0.3 },
      { units: 5, activation: 'tanh' }, { type: 'layerNormalization', activation: 'leakyRelu', alpha: 0.2 }, out3],
      { normalization: { mean: [0, 1, 0, -1], std: [1, 2, 1, 0.5] } });
    const r = new Random(8);
    const x = Array.from({ length: 30 }, () => Array.from({ length: 4 }, () => 2 * r.normal()));
    const m = new Model(s, be);
    await m.fit(x, x.map((row) => (row[0] > 0 ? 0 : row[3] > 0 ? 1 : 2)), { epochs: 4, batchSize: 10 });
    const bytes = toOnnx(m);
    const session = await ort.InferenceSession.create(bytes);
    try {
      const flat = Float32Array.from(x.flat());
      const got = (await session.run({ input: new ort.Tensor('float32', flat, [30, 4]) })).output.data as Float32Array;
      const want = m.predict(x).data;
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `output ${i}`).toBeLessThanOrEqual(1e-5);
    } finally {
      await session.release();
    }
    // importing it back is refused, naming the first node the importer does not support
    await expect(fromOnnx(bytes, { backend: 'js' })).rejects.toThrow("ONNX import: node 3 (BatchNormalization 'layer1_batchnorm') is not supported");
  });
});
