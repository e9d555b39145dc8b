// The model file: versioned and self-describing, checked on load so that a truncated, corrupted
// or hostile file is a clear error, never a crash or a wrong model.
//
//   offset  size  what
//   0       8     magic "DPMODEL\n"
//   8       4     format version (u32 LE) = 1
//   12      4     header length H in bytes (u32 LE)
//   16      H     header: UTF-8 JSON { spec: ModelSpec, paramCount, layout, createdBy }
//   16+H    pad   zero bytes up to a multiple of 4
//   …       4·P   parameters, float32 LE: all weights (in,out) layer by layer, then all biases
//   end-4   4     CRC-32 of every byte before it (u32 LE)
import type { Backend } from '../backends/backend.js';
import { Model } from '../model/model.js';
import { checkSpec, shown, type ModelSpec } from '../spec.js';

export const MAGIC = 'DPMODEL\n';
export const FORMAT_VERSION = 1;
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
  layout: 'weights-then-biases/float32le';
  createdBy: string;
}

/** Serializes the model (spec and current weights) into the model-file format. */
export function modelToBytes(model: Model): Uint8Array {
  const header: Header = {
    spec: model.spec, paramCount: model.paramCount,
    layout: 'weights-then-biases/float32le', createdBy: 'deltaprop',
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  // refuse to write what parseModelFile would refuse to read
  const tooBig = headerProblem(json, 0, json.length);
  if (tooBig) throw new ModelFileError(`model file: cannot save this model: its header ${tooBig}`);
  const paramsAt = align4(16 + json.length);
  const total = paramsAt + 4 * model.paramCount + 4;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < MAGIC.length; i++) bytes[i] = MAGIC.charCodeAt(i);
  view.setUint32(8, FORMAT_VERSION, true);
  view.setUint32(12, json.length, true);
  bytes.set(json, 16);
  const p = model.params.data;
  for (let i = 0; i < model.paramCount; i++) view.setFloat32(paramsAt + 4 * i, p[i], true);
  view.setUint32(total - 4, crc32(bytes.subarray(0, total - 4)), true);
  return bytes;
}

/** Reads a model file's bytes; throws ModelFileError naming what is wrong. */
export function parseModelFile(bytes: Uint8Array): { spec: ModelSpec; params: Float32Array } {
  if (!(bytes instanceof Uint8Array)) throw new ModelFileError('model file: expected bytes (Uint8Array)');
  if (bytes.length < 20) throw new ModelFileError(`model file: ${bytes.length} bytes is too short to be a deltaprop model (truncated?)`);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC.charCodeAt(i)) throw new ModelFileError('model file: not a deltaprop model (bad magic bytes)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== FORMAT_VERSION) {
    throw new ModelFileError(`model file: format version ${version} is not supported (this deltaprop reads version ${FORMAT_VERSION})`);
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
  if (header.layout !== undefined && header.layout !== 'weights-then-biases/float32le') {
    throw new ModelFileError(`model file: unknown parameter layout ${typeof header.layout === 'string' ? `'${header.layout}'` : shown(header.layout)} (this deltaprop reads 'weights-then-biases/float32le')`);
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
  const expected = countParams(spec);
  if (header.paramCount !== expected) {
    throw new ModelFileError(`model file: header says ${String(header.paramCount)} parameters, the architecture has ${expected}`);
  }
  const paramsAt = align4(16 + headerLength);
  if (paramsAt + 4 * expected + 4 !== bytes.length) {
    throw new ModelFileError(`model file: ${bytes.length} bytes, expected ${paramsAt + 4 * expected + 4} for ${expected} parameters (truncated or padded)`);
  }
  const params = new Float32Array(expected);
  for (let i = 0; i < expected; i++) {
    const v = view.getFloat32(paramsAt + 4 * i, true);
    if (!Number.isFinite(v)) throw new ModelFileError(`model file: parameter ${i} is ${v}`);
    params[i] = v;
  }
  return { spec, params };
}

/** Builds a model on `backend` from model-file bytes. */
export function modelFromBytes(bytes: Uint8Array, backend: Backend): Model {
  const { spec, params } = parseModelFile(bytes);
  const model = new Model(spec, backend);
  model.params.data.set(params);
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
  let n = 0, inp = spec.inputs;
  for (const l of spec.layers) {
    n += inp * l.units + l.units;
    inp = l.units;
  }
  return n;
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
