// Model-file fuzzing (src/io/modelFile.ts): real model files, trained and saved, then mutated
// (bit flips, truncation, fields of the fixed header, edits of the JSON header: wrong types, huge
// and negative numbers, deep nesting, giant strings, missing and extra fields, extra layers), with
// the CRC recomputed so that the mutation reaches the parser. Each must either
//   - load to a model that predicts finite numbers (unless the file holds a value beyond 1e15,
//     where float32 arithmetic may overflow honestly), saves again, and loads again to the same
//     predictions; or
//   - throw a ModelFileError whose message is clear (clearModelFileMessage).
// and cost at most a bounded amount of memory and time.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../src/backends/backend.js';
import { JsBackend } from '../../src/backends/js.js';
import { crc32, ModelFileError, modelFromBytes, modelToBytes, parseModelFile } from '../../src/io/modelFile.js';
import { readModelFile, saveModel } from '../../src/io/files.js';
import { Model } from '../../src/model/model.js';
import type { DenseSpec, ModelSpec } from '../../src/spec.js';
import { rng } from '../rng.js';
import { loadTestBackend } from './kernels.js';
import { caseSeed, type CaseOutcome, type Suite } from './protocol.js';

type R = () => number;
const int = (r: R, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: R, a: readonly T[]): T => a[int(r, 0, a.length - 1)];

/** Real models: every activation, loss and optimizer, with normalization and class names. */
const BASE_SPECS: ModelSpec[] = [
  { inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }], loss: 'binaryCrossEntropy',
    optimizer: { type: 'adam', learningRate: 0.01 }, seed: 1 },
  { inputs: 4, layers: [{ units: 6, activation: 'relu' }, { units: 3, activation: 'softmax' }], loss: 'categoricalCrossEntropy',
    optimizer: { type: 'momentum', learningRate: 0.05, momentum: 0.8, nesterov: true, clipNorm: 1 }, seed: 2,
    normalization: { mean: [0.5, -1, 2, 0], std: [1, 2, 0.5, 3] }, classes: ['setosa', 'versicolor', 'virginica'] },
  { inputs: 3, layers: [{ units: 5, activation: 'leakyRelu', alpha: 0.2 }, { units: 4, activation: 'sigmoid' }, { units: 2, activation: 'linear' }],
    loss: 'mse', optimizer: { type: 'sgd', learningRate: 0.1, weightDecay: 1e-4, schedule: { type: 'step', stepSize: 2, gamma: 0.5 } }, seed: 3 },
  { inputs: 1, layers: [{ units: 1, activation: 'linear' }], loss: 'mse',
    optimizer: { type: 'adamw', learningRate: 1e-3, schedule: { type: 'cosine', epochs: 5, minLearningRate: 1e-5 } }, seed: 4 },
  { inputs: 6, layers: [{ units: 4, activation: 'sigmoid', init: 'he' }, { units: 4, activation: 'tanh' }, { units: 4, activation: 'relu' },
    { units: 2, activation: 'softmax' }], loss: 'categoricalCrossEntropy',
  optimizer: { type: 'adam', learningRate: 3e-3, beta1: 0.8, beta2: 0.99, epsilon: 1e-7, schedule: { type: 'exponential', gamma: 0.9 } }, seed: 5,
  classes: ['no', 'yes'] },
];

interface Base { spec: ModelSpec; bytes: Uint8Array }

async function trainedBases(): Promise<Base[]> {
  const js = new JsBackend();
  const out: Base[] = [];
  for (const spec of BASE_SPECS) {
    const model = new Model(spec, js);
    const r = rng(spec.seed ?? 0), rows = 16, outs = (spec.layers[spec.layers.length - 1] as DenseSpec).units;
    const x = new Float32Array(rows * spec.inputs).map(() => r() * 2 - 1);
    const y = new Float32Array(rows * outs);
    for (let i = 0; i < rows; i++) {
      if (spec.loss === 'mse') for (let j = 0; j < outs; j++) y[i * outs + j] = r();
      else if (outs === 1) y[i] = r() < 0.5 ? 1 : 0;
      else y[i * outs + int(r, 0, outs - 1)] = 1;
    }
    await model.fit({ data: x, shape: [rows, spec.inputs] }, { data: y, shape: [rows, outs] }, { epochs: 2, batchSize: 4 });
    out.push({ spec, bytes: modelToBytes(model) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The file's parts, and putting them back together with a correct CRC

const align4 = (n: number): number => (n + 3) & ~3;

interface Parts { header: Uint8Array; params: Uint8Array }

function split(bytes: Uint8Array): Parts {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = v.getUint32(12, true);
  return { header: bytes.slice(16, 16 + h), params: bytes.slice(align4(16 + h), bytes.length - 4) };
}

/** Magic, version 1, the header and its length, padding, the parameters and the CRC. */
function assemble(header: Uint8Array, params: Uint8Array): Uint8Array {
  const at = align4(16 + header.length);
  const out = new Uint8Array(at + params.length + 4);
  out.set(new TextEncoder().encode('DPMODEL\n'), 0);
  const v = new DataView(out.buffer);
  v.setUint32(8, 1, true);
  v.setUint32(12, header.length, true);
  out.set(header, 16);
  out.set(params, at);
  return withCrc(out);
}

/** Recomputes the CRC-32 in the last 4 bytes, so that a mutation reaches the parser. */
function withCrc(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 4) return bytes;
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  return bytes;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------
// Mutations

interface Mutated { bytes: Uint8Array; label: string; kind: string }

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path into the header JSON (objects and arrays), the root included. */
function paths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.slice(0, 20).forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k], [...at, k], out);
  return out;
}

function getAt(v: Json, p: (string | number)[]): Json {
  return p.reduce<Json>((o, k) => (o as Record<string, Json>)[k as string], v);
}

function setAt(root: Json, p: (string | number)[], value: Json | undefined): void {
  const parent = getAt(root, p.slice(0, -1)) as Record<string, Json> & Json[];
  const k = p[p.length - 1];
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(k as number, 1);
    else delete parent[k as string];
  } else parent[k as string] = value;
}

function nested(depth: number, leaf = '0'): string {
  return '['.repeat(depth) + leaf + ']'.repeat(depth);
}

/** Replacement values: each wrong in type or range somewhere in a model header. */
function weirdValue(r: R, current: Json): { label: string; text?: string; value?: Json } {
  const choices: (() => { label: string; text?: string; value?: Json })[] = [
    () => ({ label: 'null', value: null }),
    () => ({ label: 'true', value: true }),
    () => ({ label: '0', value: 0 }),
    () => ({ label: '-1', value: -1 }),
    () => ({ label: '1.5', value: 1.5 }),
    () => ({ label: '1e308', value: 1e308 }),
    () => ({ label: '-1e308', value: -1e308 }),
    () => ({ label: '2^53', value: 2 ** 53 }),
    () => ({ label: '2^31', value: 2 ** 31 }),
    () => ({ label: '1e9', value: 1e9 }),
    () => ({ label: 'the empty string', value: '' }),
    () => ({ label: 'the value as a string', value: typeof current === 'string' ? current : JSON.stringify(current) }),
    () => ({ label: 'an empty array', value: [] }),
    () => ({ label: 'an empty object', value: {} }),
    () => ({ label: 'the value in an array', value: [current] }),
    () => ({ label: 'a giant string', value: 'A'.repeat(int(r, 1e4, 2e6)) }),
    () => { const d = int(r, 100, 200_000); return { label: `arrays nested ${d} deep`, text: nested(d) }; },
    () => { const d = int(r, 100, 100_000); return { label: `objects nested ${d} deep`, text: '{"a":'.repeat(d) + '0' + '}'.repeat(d) }; },
    () => ({ label: 'a 100,000-element array', value: new Array(100_000).fill(1) }),
    () => ({ label: '1e400 (JSON number beyond float64)', text: '1e400' }),
  ];
  return pick(r, choices)();
}

function editJson(r: R, base: Base): Mutated {
  const { header, params } = split(base.bytes);
  const doc = JSON.parse(new TextDecoder().decode(header)) as Json;
  const spec = (doc as { spec: Record<string, Json> }).spec;
  const op = r();
  const finish = (label: string, json: string, p = params, kind = 'json'): Mutated => ({ bytes: assemble(enc(json), p), label, kind });
  const randomParams = (n: number) => {
    const p = new Uint8Array(4 * n), v = new DataView(p.buffer);
    for (let i = 0; i < n; i++) v.setFloat32(4 * i, r() * 2 - 1, true);
    return p;
  };
  const count = (s: { inputs: number; layers: { units: number }[] }) =>
    s.layers.reduce((acc, l, i) => acc + (i === 0 ? s.inputs : s.layers[i - 1].units) * l.units + l.units, 0);
  if (op < 0.12) {
    // consistent edits: the file is valid and must load, predict and save
    const s = JSON.parse(JSON.stringify(spec)) as { inputs: number; layers: { units: number; activation: string }[] };
    const kind = int(r, 0, 3);
    let label: string;
    if (kind === 0) {
      s.layers.splice(s.layers.length - 1, 0, { units: int(r, 1, 9), activation: pick(r, ['relu', 'tanh', 'sigmoid', 'linear', 'leakyRelu']) });
      label = 'an extra hidden layer (consistent)';
    } else if (kind === 1 && s.layers.length >= 2) {
      s.layers.splice(int(r, 0, s.layers.length - 2), 1);
      label = 'a hidden layer removed (consistent)';
    } else if (kind === 2) {
      const many = int(r, 2000, 5000);
      s.layers.splice(s.layers.length - 1, 0, ...Array.from({ length: many }, () => ({ units: 1, activation: 'linear' })));
      label = `${many} extra hidden layers of 1 unit (consistent)`;
    } else {
      const l = int(r, 0, s.layers.length - 1);
      if (l < s.layers.length - 1) s.layers[l].units = int(r, 1, 40);
      label = 'a layer width changed (consistent)';
    }
    // normalization and classes follow inputs and outputs, which stay as they were
    const n = count(s);
    return finish(label, JSON.stringify({ ...(doc as object), spec: s, paramCount: n }), randomParams(n), 'consistent');
  }
  if (op < 0.2) {
    // text-level edits of the header
    const text = new TextDecoder().decode(header);
    const edits: [string, () => Uint8Array][] = [
      ['header cut in the middle', () => enc(text.slice(0, int(r, 0, text.length - 1)))],
      ['trailing garbage after the JSON', () => enc(`${text} x`)],
      ['a byte-order mark first', () => enc(`\ufeff${text}`)],
      ['an invalid UTF-8 byte', () => { const h = enc(text); h[int(r, 0, h.length - 1)] = 0xff; return h; }],
      ['whitespace padding (still valid)', () => enc(`  ${text}\n\t `)],
      ['a duplicated key with another value', () => enc(text.replace('"paramCount":', '"paramCount":1,"paramCount":'))],
      ['the whole header nested 100,000 deep', () => enc(nested(100_000))],
      ['a 4 MB array of nested objects', () => enc(`{"spec":${'{"a":'.repeat(200_000)}0${'}'.repeat(200_000)}}`)],
      ['the header is a bare number', () => enc('67')],
      ['the header is null', () => enc('null')],
    ];
    const [label, make] = pick(r, edits);
    return { bytes: assemble(make(), params), label, kind: 'text' };
  }
  // one value anywhere in the header replaced, removed, or a key added
  // half the time a field the parser must check by name, else any value of the header
  const all = paths(doc).filter((p) => p.length > 0);
  const named = all.filter((p) => ['paramCount', 'inputs', 'units', 'layers', 'activation', 'loss', 'learningRate', 'mean', 'std', 'classes'].includes(String(p[p.length - 1])));
  const p = r() < 0.5 && named.length ? pick(r, named) : pick(r, all);
  const where = p.join('.');
  const roll = r();
  if (roll < 0.2) {
    const copy = JSON.parse(JSON.stringify(doc)) as Json;
    setAt(copy, p, undefined);
    return finish(`${where} removed`, JSON.stringify(copy));
  }
  if (roll < 0.3) {
    const parentPath = p.slice(0, -1);
    const parent = getAt(doc, parentPath);
    if (parent && typeof parent === 'object' && !Array.isArray(parent)) {
      const copy = JSON.parse(JSON.stringify(doc)) as Json;
      const key = pick(r, ['__proto__', 'constructor', 'extra', 'units', 'x'.repeat(5000)]);
      const w = weirdValue(r, null);
      const target = getAt(copy, parentPath) as Record<string, Json>;
      const json = JSON.stringify(copy);
      // added through the text, so that "__proto__" is an own key as a file would have it
      const inner = JSON.stringify(target);
      const added = inner === '{}' ? `{${JSON.stringify(key)}:@@}` : `{${JSON.stringify(key)}:@@,${inner.slice(1)}`;
      const text = json.replace(inner, added).replace('@@', w.text ?? JSON.stringify(w.value));
      return finish(`key ${key.length > 20 ? `"${key.slice(0, 8)}…" (${key.length} chars)` : JSON.stringify(key)} = ${w.label} added at ${parentPath.join('.') || 'the top'}`, text);
    }
  }
  const w = weirdValue(r, getAt(doc, p));
  const copy = JSON.parse(JSON.stringify(doc)) as Json;
  setAt(copy, p, '@@MARK@@');
  const text = JSON.stringify(copy).replace('"@@MARK@@"', w.text ?? JSON.stringify(w.value));
  return finish(`${where} = ${w.label}`, text);
}

function mutateBinary(r: R, base: Base): Mutated {
  const b = base.bytes.slice();
  const v = new DataView(b.buffer);
  const { header } = split(base.bytes);
  const paramsAt = align4(16 + header.length), P = (b.length - 4 - paramsAt) / 4;
  const ops: [string, () => Mutated][] = [
    ['bit flips', () => {
      const k = int(r, 1, 8), at: number[] = [];
      for (let i = 0; i < k; i++) { const bit = int(r, 0, (b.length - 4) * 8 - 1); at.push(bit); b[bit >> 3] ^= 1 << (bit & 7); }
      return { bytes: withCrc(b), label: `${k} bit(s) flipped at ${at.join(', ')}`, kind: 'bits' };
    }],
    ['a byte set', () => {
      const at = int(r, 0, b.length - 5), val = pick(r, [0, 0xff, 0x7f, 0x80, int(r, 0, 255)]);
      b[at] = val;
      return { bytes: withCrc(b), label: `byte ${at} = ${val}`, kind: 'bits' };
    }],
    ['truncated', () => {
      const cut = int(r, 0, b.length - 1);
      const t = new Uint8Array(cut + 4);
      t.set(b.subarray(0, cut));
      return { bytes: withCrc(t), label: `truncated to ${cut} bytes (+ a CRC)`, kind: 'truncate' };
    }],
    ['truncated, no CRC', () => ({ bytes: b.slice(0, int(r, 0, b.length - 1)), label: 'truncated, no CRC fix', kind: 'truncate' })],
    ['extended', () => {
      const extra = int(r, 1, 64), t = new Uint8Array(b.length + extra);
      t.set(b.subarray(0, b.length - 4));
      for (let i = b.length - 4; i < t.length - 4; i++) t[i] = int(r, 0, 255);
      return { bytes: withCrc(t), label: `${extra} bytes appended`, kind: 'truncate' };
    }],
    ['header length', () => {
      const val = pick(r, [0, 1, header.length - 1, header.length + 1, header.length + 4, b.length, 2 ** 31, 0xffffffff, 16 * 1024 * 1024]);
      v.setUint32(12, val >>> 0, true);
      return { bytes: withCrc(b), label: `header length = ${val}`, kind: 'fixed' };
    }],
    ['version', () => {
      const val = pick(r, [0, 2, 255, 0xffffffff]);
      v.setUint32(8, val, true);
      return { bytes: withCrc(b), label: `format version = ${val}`, kind: 'fixed' };
    }],
    ['magic', () => {
      const at = int(r, 0, 7);
      b[at] ^= 0x20;
      return { bytes: withCrc(b), label: `magic byte ${at} changed`, kind: 'fixed' };
    }],
    ['a parameter', () => {
      const i = int(r, 0, P - 1), val = pick(r, [NaN, Infinity, -Infinity, 3.4e38, -3.4e38, 1e20, -0, 1e-45, 1e-39]);
      v.setFloat32(paramsAt + 4 * i, val, true);
      return { bytes: withCrc(b), label: `parameter ${i} = ${val}`, kind: 'param' };
    }],
    ['bit flips, no CRC fix', () => {
      const bit = int(r, 0, (b.length - 4) * 8 - 1);
      b[bit >> 3] ^= 1 << (bit & 7);
      return { bytes: b, label: `bit ${bit} flipped, CRC left stale`, kind: 'bits' };
    }],
    ['tiny', () => {
      const len = pick(r, [0, 1, 8, 12, 16, 19, 20]);
      return { bytes: len >= 4 ? withCrc(b.slice(0, len)) : b.slice(0, len), label: `only the first ${len} bytes`, kind: 'truncate' };
    }],
  ];
  return pick(r, ops)[1]();
}

/**
 * The one case that costs seconds while the parser has no bound (issue: "a 10 MB nested header
 * costs 273 MB to parse"): scheduled once, at this index, instead of drawn at random.
 */
export const HUGE_HEADER_CASE = 17;
/** And one whose paramCount is the right number as a string (the error must say the type is wrong). */
export const COUNT_AS_STRING_CASE = 18;

export function mutateModelFile(r: R, bases: Base[], index: number): Mutated & { base: number } {
  const base = int(r, 0, bases.length - 1);
  if (index === HUGE_HEADER_CASE) {
    return { bytes: assemble(enc(`{"spec":${nested(5_000_000)}}`), split(bases[base].bytes).params), label: 'a 10 MB header of arrays nested 5,000,000 deep', kind: 'text', base };
  }
  if (index === COUNT_AS_STRING_CASE) {
    const { header, params } = split(bases[base].bytes);
    const doc = JSON.parse(new TextDecoder().decode(header)) as { paramCount: unknown };
    doc.paramCount = String(doc.paramCount);
    return { bytes: assemble(enc(JSON.stringify(doc)), params), label: 'paramCount = the right count as a string', kind: 'json', base };
  }
  const m = r() < 0.55 ? editJson(r, bases[base]) : mutateBinary(r, bases[base]);
  return { ...m, base };
}

// ---------------------------------------------------------------------------------------------
// The oracle

/**
 * A clear model-file error: a ModelFileError whose message starts with "model file: " (after
 * "<path>: " when read from disk), is at most 300 characters, and is not a JavaScript internal
 * (a property of undefined, a stack overflow, "[object Object]") or a sentence that contradicts
 * itself ("header says 67 parameters, the architecture has 67": a number given as a string).
 */
export function modelFileErrorProblem(e: unknown, path: string | null): string | null {
  if (!(e instanceof ModelFileError)) {
    return `threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`.slice(0, 400) + ' (expected a ModelFileError)';
  }
  const msg = e.message;
  const prefix = path ? `${path}: model file: ` : 'model file: ';
  if (!msg.startsWith(prefix)) return `message ${JSON.stringify(msg.slice(0, 200))} does not start with "${prefix}"`;
  if (msg.length > 300 + prefix.length) return `message of ${msg.length} characters (at most 300): ${JSON.stringify(msg.slice(0, 200))}…`;
  const internal = /Cannot read propert|Cannot convert|is not a function|is not iterable|Maximum call stack|\[object Object\]|undefined is not|out of memory|Invalid array length|Invalid string length/i;
  if (internal.test(msg)) return `message is a JavaScript internal: ${JSON.stringify(msg.slice(0, 200))}`;
  const same = /says (\S+) parameters, the architecture has (\S+)$/.exec(msg);
  if (same && same[1] === same[2]) return `message contradicts itself: ${JSON.stringify(msg)}`;
  return null;
}

/** Per case: the peak RSS may not grow by more than this above the RSS when the case began. */
const CASE_MEMORY_BYTES = 160 * 1024 * 1024;
/** Per case: a load (or refusal), predict, save and reload takes less than this. */
const CASE_MS = 4000;

interface Ctx { backend: Backend; bases: Base[]; dir: string }

function extremeValues(model: Model): boolean {
  const p = model.params.data;
  for (let i = 0; i < p.length; i++) if (Math.abs(p[i]) > 1e15) return true;
  const n = model.spec.normalization;
  return !!n && (n.mean.some((m) => Math.abs(m) > 1e15) || n.std.some((s) => s < 1e-15 || s > 1e15));
}

async function runCase(ctx: Ctx, seed: number, index: number): Promise<CaseOutcome> {
  const r = rng(caseSeed(seed, index));
  const m = mutateModelFile(r, ctx.bases, index);
  const viaFile = r() < 0.1;
  const what = describeMutation(m, viaFile);
  const sig = (category: string, detail = '') => `model file: ${m.label.replace(/\d+(\.\d+)?(e[+-]?\d+)?/g, '#').slice(0, 80)}${detail} → ${category}`;
  const fail = (category: string, detail: string, sigDetail = ''): CaseOutcome => ({ failure: { category, signature: sig(category, sigDetail), what, detail }, bucket: `${m.kind}: ${category}` });
  const rssBefore = process.memoryUsage().rss, peakBefore = process.resourceUsage().maxRSS * 1024;
  const t0 = performance.now();
  const path = viaFile ? join(ctx.dir, `case-${index}.dpm`) : null;
  let model: Model;
  try {
    if (path) {
      writeFileSync(path, m.bytes);
      model = await readModelFile(path, ctx.backend);
    } else model = modelFromBytes(m.bytes, ctx.backend);
  } catch (e) {
    const problem = modelFileErrorProblem(e, path);
    const cost = costProblem(rssBefore, peakBefore, t0);
    if (cost) return fail(cost[0], cost[1]);
    if (problem) return fail('unclear', problem, e instanceof ModelFileError ? '' : ` (${(e as Error).name ?? typeof e})`);
    const reason = (e as Error).message.replace(path ? `${path}: ` : '', '').replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/g, '#').slice(0, 60);
    return { failure: null, bucket: `refused: ${reason}` };
  }
  // loaded: predict, save, load again
  try {
    const inputs = model.inputs;
    const probe = new Float32Array(3 * inputs);
    for (let i = 0; i < inputs; i++) { probe[inputs + i] = 0.5; probe[2 * inputs + i] = r() * 2 - 1; }
    const out = model.predict({ data: probe, shape: [3, inputs] });
    const bad = out.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0 && !extremeValues(model)) {
      return fail('wrong', `loaded, but predicts ${out.data[bad]} (output ${bad}) with every value in the file below 1e15`);
    }
    let again: Uint8Array;
    try {
      again = modelToBytes(model);
      parseModelFile(again);
      if (path) await saveModel(model, path);
    } catch (e) {
      return fail('wrong', `loaded, but does not save again: ${String(e).slice(0, 300)}`);
    }
    const back = modelFromBytes(again, ctx.backend).predict({ data: probe, shape: [3, inputs] });
    for (let i = 0; i < out.data.length; i++) {
      if (!Object.is(back.data[i], out.data[i])) return fail('wrong', `saved and loaded again, output ${i} is ${back.data[i]} instead of ${out.data[i]}`);
    }
    const cost = costProblem(rssBefore, peakBefore, t0);
    if (cost) return fail(cost[0], cost[1]);
    return { failure: null, bucket: bad >= 0 ? 'loaded (extreme values, non-finite output)' : `loaded (${m.kind})` };
  } catch (e) {
    return fail('wrong', `loaded, then predict/save threw ${String(e).slice(0, 300)}`, ` (${(e as Error).name})`);
  }
}

function costProblem(rssBefore: number, peakBefore: number, t0: number): [string, string] | null {
  const ms = performance.now() - t0;
  const peak = process.resourceUsage().maxRSS * 1024;
  // only a new peak set during this case counts (the peak of an earlier case stays in maxRSS)
  if (peak > peakBefore && peak - rssBefore > CASE_MEMORY_BYTES) {
    return ['memory', `peak RSS rose to ${(peak / 1048576).toFixed(0)} MB, ${((peak - rssBefore) / 1048576).toFixed(0)} MB above the ${(rssBefore / 1048576).toFixed(0)} MB at the start of the case (bound ${CASE_MEMORY_BYTES / 1048576} MB)`];
  }
  if (ms > CASE_MS) return ['slow', `took ${ms.toFixed(0)} ms (bound ${CASE_MS} ms)`];
  return null;
}

function describeMutation(m: Mutated & { base: number }, viaFile: boolean): string {
  return `base model ${m.base} (${BASE_SPECS[m.base].inputs}-${BASE_SPECS[m.base].layers.map((l) => (l as DenseSpec).units).join('-')}), ${m.kind} mutation: ${m.label}; ${m.bytes.length} bytes${viaFile ? ', read from a file' : ''}`;
}

export const modelFileSuite: Suite = {
  async setup(backend) {
    const ctx: Ctx = { backend: await loadTestBackend(backend), bases: await trainedBases(), dir: mkdtempSync(join(tmpdir(), 'deltaprop-fuzz-')) };
    process.on('exit', () => rmSync(ctx.dir, { recursive: true, force: true }));
    return ctx;
  },
  run: (ctx, seed, index) => runCase(ctx as Ctx, seed, index),
  describe(ctx, seed, index) {
    const r = rng(caseSeed(seed, index));
    const m = mutateModelFile(r, (ctx as Ctx).bases, index);
    return describeMutation(m, r() < 0.1);
  },
};
