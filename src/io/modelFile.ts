// The model file: versioned and self-describing, checked on load so that a truncated, corrupted
// or hostile file is a clear error, never a crash or a wrong model.
//
//   offset  size  what
//   0       8     magic "DPMODEL\n"
//   8       4     format version (u32 LE) = 2
//   12      4     header length H in bytes (u32 LE)
//   16      H     header: UTF-8 JSON { spec: ModelSpec, paramCount, statCount, layout, createdBy }
//   16+H    pad   zero bytes up to a multiple of 4
//   …       4·P   parameters, float32 LE: all dense weights (in,out) layer by layer, then all dense
//                 biases, then each normalization layer's γ and β (width each), in layer order
//   …       4·S   statistics, float32 LE: each batch normalization's running mean and variance
//   end-4   4     CRC-32 of every byte before it (u32 LE)
//
// Version 1 (dense layers only) is the same without statCount and the statistics; it still loads.
import type { Backend } from '../backends/backend.js';
import { Model } from '../model/model.js';
import { checkSpec, isDense, layerParams, layerWidths, shown, type ModelSpec } from '../spec.js';

export const MAGIC = 'DPMODEL\n';
export const FORMAT_VERSION = 2;
/** The versions this deltaprop reads. */
const READS = [1, 2];
const LAYOUT_V1 = 'weights-then-biases/float32le';
const LAYOUT = 'weights-then-biases-then-normalization-then-statistics/float32le';
/**
 * Bounds on the JSON header, checked on its bytes before JSON.parse so that a hostile header
 * cannot make parsing recurse or allocate without limit (parsing 10 MB of `[{},{},…]` takes
 * about 300 MB): its size (a spec's largest part is its normalization, ~40 bytes per input, so
 * 8 MiB holds some 200,000 inputs), its nesting (a spec nests 4 deep) and its objects and
 * arrays (one per layer, and a few).
 */
export const HEADER_LIMITS = { bytes: 8 * 1024 * 1024, depth: 16, containers: 100_000 };

export class ModelFileError extends Error {
  override name = 'ModelFileError';
}

interface Header {
  spec: ModelSpec;
  paramCount: number;
  /** Version 2: the floats of running statistics after the parameters (absent: 0). */
  statCount?: number;
  layout: string;
  createdBy: string;
}

/** Serializes the model (spec and current weights) into the model-file format. */
export function modelToBytes(model: Model): Uint8Array {
  const stats = model.getRunningStats();
  const header: Header = {
    spec: model.spec, paramCount: model.paramCount, statCount: stats.length, layout: LAYOUT, createdBy: 'deltaprop',
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  // refuse to write what parseModelFile would refuse to read
  const tooBig = headerProblem(json, 0, json.length);
  if (tooBig) throw new ModelFileError(`model file: cannot save this model: its header ${tooBig}`);
  const paramsAt = align4(16 + json.length);
  const total = paramsAt + 4 * (model.paramCount + stats.length) + 4;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < MAGIC.length; i++) bytes[i] = MAGIC.charCodeAt(i);
  view.setUint32(8, FORMAT_VERSION, true);
  view.setUint32(12, json.length, true);
  bytes.set(json, 16);
  const p = model.getParams();
  for (let i = 0; i < model.paramCount; i++) view.setFloat32(paramsAt + 4 * i, p[i], true);
  const statsAt = paramsAt + 4 * model.paramCount;
  for (let i = 0; i < stats.length; i++) view.setFloat32(statsAt + 4 * i, stats[i], true);
  view.setUint32(total - 4, crc32(bytes.subarray(0, total - 4)), true);
  return bytes;
}

/** Reads a model file's bytes; throws ModelFileError naming what is wrong. */
export function parseModelFile(bytes: Uint8Array): { spec: ModelSpec; params: Float32Array; stats: Float32Array; version: number } {
  if (!(bytes instanceof Uint8Array)) throw new ModelFileError('model file: expected bytes (Uint8Array)');
  if (bytes.length < 20) throw new ModelFileError(`model file: ${bytes.length} bytes is too short to be a deltaprop model (truncated?)`);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC.charCodeAt(i)) throw new ModelFileError('model file: not a deltaprop model (bad magic bytes)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (!READS.includes(version)) {
    throw new ModelFileError(`model file: format version ${version} is not supported (this deltaprop reads versions ${READS.join(' and ')})`);
  }
  const headerLength = view.getUint32(12, true);
  if (16 + headerLength + 4 > bytes.length) {
    throw new ModelFileError(`model file: header of ${headerLength} bytes does not fit in a ${bytes.length}-byte file (truncated or corrupted)`);
  }
  const stored = view.getUint32(bytes.length - 4, true);
  if (crc32(bytes.subarray(0, bytes.length - 4)) !== stored) {
    throw new ModelFileError('model file: checksum mismatch (the file is truncated or corrupted)');
  }
  const problem = headerProblem(bytes, 16, 16 + headerLength);
  if (problem) throw new ModelFileError(`model file: the header ${problem}; refused before parsing`);
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(16, 16 + headerLength)));
  } catch (e) {
    throw new ModelFileError(`model file: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new ModelFileError(`model file: the header must be a JSON object, got ${shown(header)}`);
  }
  if (typeof header.spec !== 'object' || header.spec === null || Array.isArray(header.spec)) {
    throw new ModelFileError(`model file: header has no model spec (spec is ${shown(header.spec)})`);
  }
  const layout = version === 1 ? LAYOUT_V1 : LAYOUT;
  if (header.layout !== undefined && header.layout !== layout) {
    throw new ModelFileError(`model file: unknown parameter layout ${typeof header.layout === 'string' ? `'${header.layout.slice(0, 80)}'` : shown(header.layout)} (format ${version} has '${layout}')`);
  }
  if (typeof header.paramCount !== 'number') {
    throw new ModelFileError(`model file: paramCount must be a number, got ${shown(header.paramCount)}`);
  }
  let spec: ModelSpec;
  try {
    spec = checkSpec(header.spec);
  } catch (e) {
    throw new ModelFileError(`model file: invalid model spec: ${(e as Error).message}`);
  }
  if (version === 1) {
    const beyond = spec.layers.findIndex((l) => !isDense(l));
    if (beyond >= 0) throw new ModelFileError(`model file: layer ${beyond + 1} is not dense, which format 1 cannot hold (a corrupted or hand-made file)`);
  }
  const expected = countParams(spec), expectedStats = countStats(spec);
  if (header.paramCount !== expected) {
    throw new ModelFileError(`model file: header says ${String(header.paramCount)} parameters, the architecture has ${expected}`);
  }
  // absent: none (a version-2 header of a model without batch normalization may leave it out)
  const statCount = version === 1 ? 0 : (header.statCount ?? 0);
  if (statCount !== expectedStats) {
    throw new ModelFileError(`model file: header says ${shown(statCount)} running statistics, the architecture has ${expectedStats}`);
  }
  const paramsAt = align4(16 + headerLength), floats = expected + expectedStats;
  if (paramsAt + 4 * floats + 4 !== bytes.length) {
    const what = expectedStats ? `${expected} parameters and ${expectedStats} running statistics` : `${expected} parameters`;
    throw new ModelFileError(`model file: ${bytes.length} bytes, expected ${paramsAt + 4 * floats + 4} for ${what} (truncated or padded)`);
  }
  const params = new Float32Array(expected);
  for (let i = 0; i < expected; i++) {
    const v = view.getFloat32(paramsAt + 4 * i, true);
    if (!Number.isFinite(v)) throw new ModelFileError(`model file: parameter ${i} is ${v}`);
    params[i] = v;
  }
  const stats = new Float32Array(expectedStats), statsAt = paramsAt + 4 * expected;
  let at = 0, width = spec.inputs;
  spec.layers.forEach((l, k) => {
    if (isDense(l)) width = l.units;
    if (isDense(l) || l.type !== 'batchNormalization') return;
    for (let j = 0; j < 2 * width; j++) {
      const v = view.getFloat32(statsAt + 4 * (at + j), true);
      const what = j < width ? 'running mean' : 'running variance';
      if (!Number.isFinite(v) || (j >= width && v < 0)) throw new ModelFileError(`model file: layer ${k + 1} (batchNormalization) ${what} ${j % width} is ${v}`);
      stats[at + j] = v;
    }
    at += 2 * width;
  });
  return { spec, params, stats, version };
}

/** Builds a model on `backend` from model-file bytes. */
export function modelFromBytes(bytes: Uint8Array, backend: Backend): Model {
  const { spec, params, stats } = parseModelFile(bytes);
  const model = new Model(spec, backend);
  model.setParams(params);
  model.setRunningStats(stats);
  return model;
}

/**
 * What is wrong with the JSON in bytes[from, to) against HEADER_LIMITS, or null: one pass over the
 * bytes, counting brackets outside strings (the JSON itself is checked by JSON.parse after).
 */
function headerProblem(bytes: Uint8Array, from: number, to: number): string | null {
  const { bytes: maxBytes, depth: maxDepth, containers: maxContainers } = HEADER_LIMITS;
  if (to - from > maxBytes) return `is ${to - from} bytes, more than the ${maxBytes} a model header may have`;
  let depth = 0, containers = 0, inString = false;
  for (let i = from; i < to; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next byte is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) { // { [
      if (++depth > maxDepth) return `nests deeper than ${maxDepth} levels`;
      if (++containers > maxContainers) return `has more than ${maxContainers} objects and arrays`;
    } else if (c === 0x7d || c === 0x5d) { // } ]
      depth--;
    }
  }
  return null;
}

function countParams(spec: ModelSpec): number {
  const widths = layerWidths(spec);
  return spec.layers.reduce((n, l, k) => n + layerParams(l, k === 0 ? spec.inputs : widths[k - 1]), 0);
}

/** Batch normalization's running mean and variance: 2 × width per such layer. */
function countStats(spec: ModelSpec): number {
  const widths = layerWidths(spec);
  return spec.layers.reduce((n, l, k) => n + (!isDense(l) && l.type === 'batchNormalization' ? 2 * widths[k] : 0), 0);
}

const align4 = (n: number): number => (n + 3) & ~3;

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE 802.3, reflected, as in zlib and PNG). */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
