// Model files: save → load is bit-identical; truncated, corrupted, hostile or foreign files are
// clear errors; saving is atomic.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../src/backends/js.js';
import { readModelFile, saveModel } from '../src/io/files.js';
import { crc32, FORMAT_VERSION, HEADER_LIMITS, ModelFileError, modelFromBytes, modelToBytes } from '../src/io/modelFile.js';
import { Model } from '../src/model/model.js';
import { Random } from '../src/random.js';
import type { ModelSpec } from '../src/spec.js';
import { BACKENDS } from './backends.js';

const spec: ModelSpec = {
  inputs: 3, layers: [{ units: 5, activation: 'leakyRelu', alpha: 0.05 }, { units: 4, activation: 'tanh' }, { units: 2, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adamw', learningRate: 0.002, weightDecay: 0.02, clipNorm: 5 }, seed: 4,
  normalization: { mean: [1, 2, 3], std: [0.5, 1, 2] }, classes: ['no', 'yes'],
};
const X = [[0.1, -1, 2], [3, 0.5, -0.25], [1, 1, 1], [-2, 0, 4]];
const tmp = (): string => mkdtempSync(join(tmpdir(), 'deltaprop-files-'));

/** Re-seals bytes with a valid checksum, to reach the checks behind it. */
function reseal(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

describe.each(BACKENDS.map((b) => [b.name, b] as const))('model files on %s', (_name, backend) => {
  it('save → load gives bit-identical predictions and the same spec', async () => {
    const model = new Model(spec, backend);
    await model.fit(X, [0, 1, 1, 0], { epochs: 3, batchSize: 2 });
    const path = join(tmp(), 'm.dpm');
    await saveModel(model, path);
    const loaded = await readModelFile(path, backend);
    expect(loaded.spec).toEqual(model.spec);
    expect(Buffer.from(loaded.predict(X).data.buffer).equals(Buffer.from(model.predict(X).data.buffer))).toBe(true);
  });
});

describe('model file validation', () => {
  const backend = new JsBackend();
  const good = modelToBytes(new Model(spec, backend));

  it('reads back what it wrote', () => {
    expect(modelFromBytes(good, backend).params.data).toEqual(new Model(spec, backend).params.data);
  });

  it.each([0, 7, 19, 64, good.length - 5, good.length - 1])('a file truncated to %i bytes', (n) => {
    expect(() => modelFromBytes(good.subarray(0, n), backend)).toThrow(ModelFileError);
    expect(() => modelFromBytes(good.subarray(0, n), backend)).toThrow(/truncated|too short|checksum/);
  });

  it('a flipped bit anywhere is a checksum error', () => {
    for (const at of [20, 100, good.length - 12]) {
      const bad = good.slice();
      bad[at] ^= 0x10;
      expect(() => modelFromBytes(bad, backend)).toThrow(/checksum mismatch/);
    }
  });

  it('something that is not a model', () => {
    expect(() => modelFromBytes(new TextEncoder().encode('sepal,petal\n1,2\n3,4\n5,6\n7,8\n'), backend)).toThrow(/not a deltaprop model/);
  });

  it('a file from an unknown version', () => {
    const bad = good.slice();
    new DataView(bad.buffer).setUint32(8, FORMAT_VERSION + 1, true);
    expect(() => modelFromBytes(reseal(bad), backend)).toThrow(`format version ${FORMAT_VERSION + 1} is not supported`);
  });

  it('a hostile header length', () => {
    const bad = good.slice();
    new DataView(bad.buffer).setUint32(12, 0xffffffff, true);
    expect(() => modelFromBytes(reseal(bad), backend)).toThrow(/header of 4294967295 bytes/);
  });

  it('a header that lies about the architecture', () => {
    const json = JSON.stringify({ spec: { ...spec, layers: [{ units: 100000, activation: 'relu' }, { units: 2, activation: 'softmax' }] }, paramCount: 27 });
    const bytes = reseal(withHeader(good, json));
    expect(() => modelFromBytes(bytes, backend)).toThrow(/header says 27 parameters, the architecture has/);
  });

  it('a header with an invalid spec', () => {
    const json = JSON.stringify({ spec: { ...spec, loss: 'hinge' }, paramCount: 0 });
    expect(() => modelFromBytes(reseal(withHeader(good, json)), backend)).toThrow(/invalid model spec: loss: unknown loss 'hinge'/);
  });

  it('NaN among the weights', () => {
    const bad = good.slice();
    new DataView(bad.buffer).setFloat32(bad.length - 8, NaN, true);
    expect(() => modelFromBytes(reseal(bad), backend)).toThrow(/parameter \d+ is NaN/);
  });

  it('a missing file names the path', async () => {
    await expect(readModelFile('/nonexistent/m.dpm', backend)).rejects.toThrow('/nonexistent/m.dpm: cannot read (ENOENT)');
  });

  it('saving is atomic: a failed save leaves the old file and no temporary behind', async () => {
    const dir = tmp(), path = join(dir, 'm.dpm');
    const model = new Model(spec, backend);
    await saveModel(model, path);
    const before = readFileSync(path);
    // a folder stands at the target, or the folder is missing: refused, nothing written
    mkdirSync(join(dir, 'taken'));
    await expect(saveModel(model, join(dir, 'taken'))).rejects.toThrow(`${join(dir, 'taken')}: cannot write model (a directory is there, not a regular file)`);
    await expect(saveModel(model, join(dir, 'missing-dir', 'm.dpm'))).rejects.toThrow(`${join(dir, 'missing-dir', 'm.dpm')}: cannot write model (its folder does not exist)`);
    expect(readdirSync(dir).sort()).toEqual(['m.dpm', 'taken']);
    expect(readFileSync(path).equals(before)).toBe(true);
  });
});

describe('model file headers: types, bounds, and files that load also save', () => {
  const backend = new JsBackend();
  const good = modelToBytes(new Model(spec, backend));
  const header = JSON.parse(new TextDecoder().decode(good.subarray(16, 16 + new DataView(good.buffer).getUint32(12, true))));
  const load = (h: unknown): Model => modelFromBytes(reseal(withHeader(good, typeof h === 'string' ? h : JSON.stringify(h))), backend);

  it('numbers given as strings: the message says the value has the wrong type', () => {
    const n = header.paramCount as number;
    expect(() => load({ ...header, paramCount: String(n) })).toThrow(`model file: paramCount must be a number, got the string '${n}'`);
    expect(() => load({ ...header, spec: { ...header.spec, inputs: '3' } })).toThrow("invalid model spec: inputs: must be a positive integer, got the string '3'");
    expect(() => load({ ...header, spec: { ...header.spec, layers: [{ units: '5', activation: 'relu' }, ...header.spec.layers.slice(1)] } }))
      .toThrow("layer 1: units must be a positive integer, got the string '5'");
    expect(() => load({ ...header, spec: { ...header.spec, optimizer: { ...header.spec.optimizer, learningRate: '0.002' } } }))
      .toThrow("learningRate must be a positive number, got the string '0.002'");
    // strings that JavaScript would compare as numbers must not pass either
    expect(() => load({ ...header, spec: { ...header.spec, optimizer: { ...header.spec.optimizer, beta1: '0.9' } } }))
      .toThrow("beta1 must be a number in [0, 1), got the string '0.9'");
    expect(() => load({ ...header, spec: { ...header.spec, normalization: { mean: [1, '2', 3], std: [1, 1, 1] } } }))
      .toThrow("normalization: mean[1] must be a finite float32 number, got the string '2'");
    expect(() => load({ ...header, spec: { ...header.spec, seed: '4' } })).toThrow("seed: must be an integer in [0, 2^32), got the string '4'");
  });

  it('a header that is not an object, or has no spec, or another layout', () => {
    expect(() => load('[]')).toThrow('model file: the header must be a JSON object, got an array');
    expect(() => load('7')).toThrow('model file: the header must be a JSON object, got 7');
    expect(() => load({ ...header, spec: 'x' })).toThrow("model file: header has no model spec (spec is the string 'x')");
    expect(() => load({ ...header, layout: 'biases-first/float64be' })).toThrow("model file: unknown parameter layout 'biases-first/float64be'");
  });

  it('deep nesting is refused before parsing: no stack overflow', () => {
    const deep = `{"spec":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    expect(() => load(deep)).toThrow(`model file: the header nests deeper than ${HEADER_LIMITS.depth} levels; refused before parsing`);
    const deepObjects = `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`;
    expect(() => load(deepObjects)).toThrow(/nests deeper than/);
  });

  it('a large header is refused before parsing, by size or by its count of objects and arrays', () => {
    const tenMB = `{"spec":[${'{},'.repeat(3_500_000)}{}]}`;
    const before = process.memoryUsage().rss;
    expect(() => load(tenMB)).toThrow(`model file: the header is ${tenMB.length} bytes, more than the ${HEADER_LIMITS.bytes} a model header may have; refused before parsing`);
    const manyObjects = `{"spec":[${'{},'.repeat(HEADER_LIMITS.containers)}{}]}`;
    expect(() => load(manyObjects)).toThrow(`model file: the header has more than ${HEADER_LIMITS.containers} objects and arrays; refused before parsing`);
    // the 10 MB of objects would take about 300 MB to parse; refused, they take nothing like it
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024);
  });

  it('brackets, quotes and backslashes inside strings are text, not structure', () => {
    const name = `[[[{{{"\\"${'['.repeat(100)}\\`; // escaped in the JSON as \" and \\
    const m = load({ ...header, spec: { ...header.spec, classes: [name, 'yes'] } });
    expect(m.spec.classes).toEqual([name, 'yes']);
  });

  it.each([
    ['extra header and spec fields', { ...header, note: 'kept out', spec: { ...header.spec, comment: { deep: [[1]] } } }],
    ['a spec without defaults (no seed, no alpha, no init)', {
      ...header, spec: { inputs: 3, layers: [{ units: 5, activation: 'leakyRelu' }, { units: 4, activation: 'tanh' }, { units: 2, activation: 'softmax' }], loss: 'categoricalCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.1 } },
    }],
    ['numbers spelled otherwise (1e0, 0.50)', `{"paramCount":${header.paramCount},"spec":{"inputs":3e0,"layers":[{"units":5,"activation":"relu","alpha":0.50},{"units":4,"activation":"tanh"},{"units":2,"activation":"softmax"}],"loss":"categoricalCrossEntropy","optimizer":{"type":"momentum","learningRate":1e-2,"nesterov":true},"seed":4}}`],
    ['class names with quotes, brackets and non-ASCII', { ...header, spec: { ...header.spec, classes: ['ja "ou" [x]', 'non — ✓ \u2028'] } }],
    ['a deep but allowed nesting in an extra field', { ...header, x: JSON.parse(`${'['.repeat(HEADER_LIMITS.depth - 1)}${']'.repeat(HEADER_LIMITS.depth - 1)}`) }],
  ])('a file that loads saves again and loads the same: %s', async (_what, h) => {
    const loaded = load(h);
    const again = modelFromBytes(modelToBytes(loaded), backend);
    expect(again.spec).toEqual(loaded.spec);
    expect(again.params.data).toEqual(loaded.params.data);
    const path = join(tmp(), 'm.dpm');
    await saveModel(loaded, path);
    const fromDisk = await readModelFile(path, backend);
    expect(fromDisk.spec).toEqual(loaded.spec);
    expect(Buffer.from(fromDisk.params.data.buffer).equals(Buffer.from(loaded.params.data.buffer))).toBe(true);
  });

  it('1,000 mutated headers: each is a ModelFileError, or a model that saves and loads back the same', () => {
    const rng = new Random(2026);
    const values: unknown[] = [0, -0, 1, -1, 2.5, 1e39, -1e39, 1e-320, 2 ** 53, 4294967296, NaN, '3', '0.9', '', 'relu', 'softmax', 'adamw',
      null, true, false, [], {}, [1, 2, 3], { type: 'cosine' }, [[[[]]]], 'x'.repeat(300)];
    // every place in the header: [parent, key] pairs
    const places = (root: unknown): [Record<string, unknown>, string][] => {
      const out: [Record<string, unknown>, string][] = [];
      const walk = (v: unknown): void => {
        if (typeof v !== 'object' || v === null) return;
        for (const k of Object.keys(v)) {
          out.push([v as Record<string, unknown>, k]);
          walk((v as Record<string, unknown>)[k]);
        }
      };
      walk(root);
      return out;
    };
    let loaded = 0, refused = 0;
    for (let i = 0; i < 1000; i++) {
      const h = JSON.parse(JSON.stringify(header));
      for (let n = 1 + rng.int(2); n > 0; n--) {
        const all = places(h), [parent, key] = all[rng.int(all.length)];
        const what = rng.int(10);
        if (what === 0) delete parent[key];
        else if (what === 1) parent[`extra${i}`] = values[rng.int(values.length)];
        else parent[key] = values[rng.int(values.length)];
      }
      let model: Model;
      try {
        model = load(h);
      } catch (e) {
        if (!(e instanceof ModelFileError)) throw new Error(`mutation ${i} (${JSON.stringify(h).slice(0, 300)}): ${String(e)}`);
        refused++;
        continue;
      }
      loaded++;
      const again = modelFromBytes(modelToBytes(model), backend);
      expect(again.spec, `mutation ${i}`).toEqual(model.spec);
      expect(Buffer.from(again.params.data.buffer).equals(Buffer.from(model.params.data.buffer))).toBe(true);
    }
    // both outcomes occur: the mutations are neither all fatal nor all harmless
    expect(loaded).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(50);
  });

  it('a model whose header would be too large to load is refused when saved, naming the path', async () => {
    // normalization takes ~40 bytes per input: 300,000 inputs are beyond the header's 8 MiB
    const inputs = 300_000, mean = Array.from({ length: inputs }, (_, i) => -0.123456789 * (i + 1)), std = mean.map((v) => -v);
    const big = new Model({ inputs, layers: [{ units: 1, activation: 'sigmoid' }], loss: 'binaryCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.1 }, normalization: { mean, std } }, backend);
    const path = join(tmp(), 'big.dpm');
    await expect(saveModel(big, path)).rejects.toThrow(new RegExp(`^${path}: model file: cannot save this model: its header is \\d+ bytes, more than the ${HEADER_LIMITS.bytes}`));
    // and one within the bound saves and loads
    const n = 100_000, fits = new Model({ ...big.spec, inputs: n, normalization: { mean: mean.slice(0, n), std: std.slice(0, n) } }, backend);
    await saveModel(fits, path);
    expect((await readModelFile(path, backend)).spec).toEqual(fits.spec);
  });
});

/** The same file with another header (parameters moved to stay aligned). */
function withHeader(bytes: Uint8Array, json: string): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const oldLen = view.getUint32(12, true), oldAt = (16 + oldLen + 3) & ~3;
  const params = bytes.subarray(oldAt, bytes.length - 4);
  const head = new TextEncoder().encode(json), at = (16 + head.length + 3) & ~3;
  const out = new Uint8Array(at + params.length + 4);
  out.set(bytes.subarray(0, 12));
  new DataView(out.buffer).setUint32(12, head.length, true);
  out.set(head, 16);
  out.set(params, at);
  return out;
}
