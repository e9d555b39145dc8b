// Model files: save → load is bit-identical; truncated, corrupted, hostile or foreign files are
// clear errors; saving is atomic.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../src/backends/js.js';
import { readModelFile, saveModel } from '../src/io/files.js';
import { crc32, FORMAT_VERSION, ModelFileError, modelFromBytes, modelToBytes } from '../src/io/modelFile.js';
import { Model } from '../src/model.js';
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
    expect(() => modelFromBytes(reseal(bad), backend)).toThrow(/format version 2 is not supported/);
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
