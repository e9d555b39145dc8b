// ONNX graphs of multilayer perceptrons as deltaprop models: the graphs PyTorch's
// torch.onnx.export writes for an nn.Sequential of Linear layers and activations (Gemm, or MatMul
// + Add), and the ones `toOnnx` writes (with the Sub/Div normalization and the class names).
//
// The file is untrusted: everything is checked before it is used, and nothing is allocated from a
// size the file states, only from data it actually holds (a tensor's dims must match its data).
import type { Backend } from '../backends/backend.js';
import { ModelFileError } from '../io/modelFile.js';
import { Model } from '../model.js';
import { checkSpec, clipped, type DenseSpec, type LossName, type ModelSpec, type Normalization, type OptimizerSpec } from '../spec.js';
import { int64ToNumber, ONNX_NAMES, onnx } from './schema.js';

/** A file that is not an ONNX model, or an ONNX graph deltaprop cannot run: the message says which part. */
export class OnnxError extends ModelFileError {
  override name = 'OnnxError';
}

export interface OnnxImportOptions {
  /** The loss for fine-tuning (default: the exported one, else inferred from the output activation). */
  loss?: LossName;
  /** The optimizer for fine-tuning (default: the exported one, else Adam with learning rate 0.001). */
  optimizer?: OptimizerSpec;
}

export interface ParsedOnnx {
  spec: ModelSpec;
  /** Per layer: w (in, out) row-major, b (out). */
  weights: { w: Float32Array; b: Float32Array }[];
  /** The producer recorded in the file, e.g. "pytorch 1.13.0" or "deltaprop 0.1.0". */
  producer: string;
}

const SUPPORTED = 'deltaprop imports MLPs: Gemm or MatMul+Add layers with Relu, LeakyRelu, Sigmoid, Tanh or Softmax, '
  + 'optionally after a Sub/Div input normalization';
const ACTIVATIONS: Record<string, DenseSpec['activation']> = { Relu: 'relu', LeakyRelu: 'leakyRelu', Sigmoid: 'sigmoid', Tanh: 'tanh', Softmax: 'softmax' };
const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;
/** A name from the file as a message quotes it: at most 40 characters (a hostile name cannot flood the message). */
const q = (s: string | null | undefined): string => `'${clipped(s ?? '')}'`;
/** Dims as a message shows them: at most 6, then how many more. */
const dimsText = (dims: (number | string)[]): string => `[${dims.slice(0, 6).join(', ')}${dims.length > 6 ? `, … ${dims.length - 6} more` : ''}]`;
/** A count; past 1e15 in exponent form. */
const countText = (n: number): string => (n < 1e15 ? String(n) : Number.isFinite(n) ? n.toPrecision(3) : 'more than 1e308');
const fail = (msg: string): never => {
  throw new OnnxError(`ONNX import: ${msg}`);
};

interface Constant {
  dims: number[];
  data: Float32Array;
}

interface LayerBuild {
  w: Float32Array;
  b: Float32Array | null;
  inp: number;
  out: number;
  activation: DenseSpec['activation'];
  alpha?: number;
  /** Made by MatMul: an Add right after it may still supply the bias. */
  biasPending: boolean;
}

/** Reads an ONNX model's bytes into a deltaprop spec and weights; throws OnnxError naming the problem. */
export function parseOnnx(bytes: Uint8Array, options: OnnxImportOptions = {}): ParsedOnnx {
  if (!(bytes instanceof Uint8Array)) fail('expected the bytes of an ONNX file (Uint8Array)');
  if (bytes.length === 0) fail('the file is empty');
  let m: onnx.ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    return fail(`not a valid ONNX model: the protobuf is truncated or corrupted (${(e as Error).message})`);
  }
  const graph = m.graph;
  if (!graph) return fail('the file has no graph (not an ONNX model, or truncated)');
  const opset = (m.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const opsetVersion = opset ? int64ToNumber(opset.version) : NaN;
  if (!(opsetVersion >= 1)) fail('the model imports no version of the standard ONNX operator set (opset_import)');
  if ((graph.sparseInitializer ?? []).length > 0) fail('sparse initializers are not supported');

  // every value the graph can read: initializers and Constant nodes are data, the one graph input is the rows
  const nodes = graph.node ?? [];
  const initializers = new Map<string, onnx.TensorProto.$Properties>();
  for (const t of graph.initializer ?? []) {
    if (!t.name) fail('an initializer has no name');
    if (initializers.has(t.name!)) fail(`two initializers are named ${q(t.name)}`);
    initializers.set(t.name!, t);
  }
  const describe = (i: number): string => `node ${i} (${clipped(nodes[i].opType || '?')}${nodes[i].name ? ` ${q(nodes[i].name)}` : ''})`;
  const constantNodes = new Map<string, { tensor: onnx.TensorProto.$Properties | null; node: number }>();
  nodes.forEach((n, i) => {
    if (n.opType !== 'Constant') return;
    const value = (n.attribute ?? []).find((a) => a.name === 'value');
    constantNodes.set(n.output?.[0] ?? '', { tensor: value?.t ?? null, node: i });
  });

  // Transpose of a weight: torch.onnx.export without constant folding leaves these in (Linear without a bias)
  const transposes = new Map<string, { source: string; perm: number[]; node: number }>();
  nodes.forEach((n, i) => {
    const source = n.input?.[0] ?? '';
    if (n.opType !== 'Transpose' || !(initializers.has(source) || constantNodes.has(source))) return;
    const perm = ((n.attribute ?? []).find((a) => a.name === 'perm')?.ints ?? []).map(int64ToNumber);
    transposes.set(n.output?.[0] ?? '', { source, perm, node: i });
  });

  const realInputs = (graph.input ?? []).filter((v) => !initializers.has(v.name ?? ''));
  if (realInputs.length !== 1) {
    fail(`the graph has ${realInputs.length} inputs (${realInputs.slice(0, 3).map((v) => q(v.name)).join(', ') || 'none'}${realInputs.length > 3 ? ', …' : ''}); an MLP has one, the rows of features`);
  }
  if ((graph.output ?? []).length !== 1) fail(`the graph has ${(graph.output ?? []).length} outputs; an MLP has one`);
  const input = realInputs[0], output = graph.output![0];
  const inputName = input.name ?? '', outputName = output.name ?? '';
  const inputDims = checkFloatMatrix(input, 'input');
  const outputDims = checkFloatMatrix(output, 'output');

  const order = topologicalOrder(nodes, new Set([inputName, ...initializers.keys()]), describe);

  const cache = new Map<string, Constant>();
  const constant = (name: string, where: string): Constant => {
    const hit = cache.get(name);
    if (hit) return hit;
    const t = transposes.get(name);
    if (t) {
      const src = constant(t.source, where);
      if (src.dims.length !== 2 || !(t.perm.length === 0 || (t.perm[0] === 1 && t.perm[1] === 0))) {
        return fail(`${describe(t.node)}: only the transpose of a 2-D weight is supported (shape ${dimsText(src.dims)}, perm ${dimsText(t.perm)})`);
      }
      const c = { dims: [src.dims[1], src.dims[0]], data: transpose(src.data, src.dims[0], src.dims[1]) };
      cache.set(name, c);
      return c;
    }
    const init = initializers.get(name);
    const fromNode = constantNodes.get(name);
    if (!init && !fromNode) return fail(`${where} needs ${q(name)} to be a constant (an initializer or a Constant node), but it is computed in the graph`);
    if (fromNode && !fromNode.tensor) return fail(`${describe(fromNode.node)}: only Constant nodes with a tensor 'value' are supported`);
    const c = readTensor((init ?? fromNode!.tensor)!, name);
    cache.set(name, c);
    return c;
  };

  let current = inputName;
  let normalization: Partial<Normalization> = {};
  let normalized = false;
  const layers: LayerBuild[] = [];
  const width = (): number => (layers.length ? layers[layers.length - 1].out : inputDims[1] > 0 ? inputDims[1] : -1);

  for (const i of order) {
    const n = nodes[i], op = n.opType ?? '', where = describe(i);
    if (op === 'Constant' || (op === 'Transpose' && transposes.has(outs0(n)))) continue;
    if (n.domain && n.domain !== 'ai.onnx') fail(`${where} is from the operator domain ${q(n.domain)}: ${SUPPORTED}`);
    const ins = (n.input ?? []).filter((s) => s !== '');
    const outs = n.output ?? [];
    if (outs.length !== 1) fail(`${where} has ${outs.length} outputs; ${SUPPORTED}`);
    const last = layers[layers.length - 1];
    // the graph must be one chain: every node continues from the one before it
    const chained = (k: number): void => {
      if (ins[k] !== current) {
        fail(`${where} reads ${q(ins[k] ?? '')} where the chain from the input has ${q(current)}: deltaprop imports a single chain of layers`);
      }
    };

    if (op === 'Identity' || (op === 'Flatten' && (attributes(n, where).axis ?? 1) === 1 && inputDims[1] > 0)) {
      // both leave a [batch, features] matrix as it is (nn.Flatten() starts many Sequentials)
      chained(0);
    } else if ((op === 'Sub' || op === 'Div') && layers.length === 0) {
      chained(0);
      if (ins.length !== 2) fail(`${where} needs 2 inputs`);
      if (op === 'Sub' ? normalization.mean || normalization.std : normalization.std) {
        fail(`${where}: deltaprop's input normalization is one Sub (mean) and then one Div (std)`);
      }
      const c = constant(ins[1], where);
      const f = inputDims[1] > 0 ? inputDims[1] : c.data.length;
      const values = featureVector(c, f, `${where}: ${q(ins[1])}`);
      if (op === 'Div' && values.some((v) => !(v > 0))) fail(`${where}: the standard deviations in ${q(ins[1])} must all be > 0`);
      normalization = { ...normalization, [op === 'Sub' ? 'mean' : 'std']: Array.from(values) };
      normalized = true;
    } else if (op === 'Gemm' || op === 'MatMul') {
      chained(0);
      const attrs = attributes(n, where);
      let transB = 0;
      if (op === 'Gemm') {
        if ((attrs.alpha ?? 1) !== 1 || (attrs.beta ?? 1) !== 1) fail(`${where}: Gemm with alpha or beta other than 1 is not supported`);
        if ((attrs.transA ?? 0) !== 0) fail(`${where}: Gemm with transA = 1 is not supported`);
        transB = attrs.transB ?? 0;
        if (ins.length < 2 || ins.length > 3) fail(`${where} needs 2 or 3 inputs`);
      } else if (ins.length !== 2) fail(`${where} needs 2 inputs`);
      const W = constant(ins[1], where);
      if (W.dims.length !== 2) fail(`${where}: the weight ${q(ins[1])} has shape ${dimsText(W.dims)}; a dense layer's is 2-D`);
      const [inp, out] = transB ? [W.dims[1], W.dims[0]] : [W.dims[0], W.dims[1]];
      const expected = width();
      if (expected > 0 && inp !== expected) fail(`${where}: the weight ${q(ins[1])} takes ${inp} inputs, but the layer before gives ${expected}`);
      if (inp === 0 || out === 0) fail(`${where}: the weight ${q(ins[1])} is empty (shape ${dimsText(W.dims)})`);
      const w = transB ? transpose(W.data, out, inp) : W.data;
      const b = ins.length === 3 ? featureVector(constant(ins[2], where), out, `${where}: the bias ${q(ins[2])}`) : null;
      // a layer without a bias of its own may get it from an Add right after it
      layers.push({ w, b, inp, out, activation: 'linear', biasPending: b === null });
    } else if (op === 'Add' && last?.biasPending && last.activation === 'linear' && !last.b) {
      if (ins.length !== 2 || !ins.includes(current)) fail(`${where} must add a bias to ${q(current)}`);
      const biasName = ins[0] === current ? ins[1] : ins[0];
      last.b = featureVector(constant(biasName, where), last.out, `${where}: the bias ${q(biasName)}`);
      last.biasPending = false;
    } else if (op in ACTIVATIONS) {
      chained(0);
      if (!last) fail(`${where}: an activation before the first layer is not supported: ${SUPPORTED}`);
      if (last.activation !== 'linear') fail(`${where}: two activations in a row are not supported: ${SUPPORTED}`);
      const attrs = attributes(n, where);
      last.activation = ACTIVATIONS[op];
      last.biasPending = false;
      if (op === 'LeakyRelu') {
        const alpha = attrs.alpha ?? 0.01;
        if (!(alpha >= 0)) fail(`${where}: LeakyRelu alpha ${alpha} is not supported (deltaprop's slope is ≥ 0)`);
        last.alpha = Math.fround(alpha);
      }
      if (op === 'Softmax') {
        const axis = attrs.axis ?? (opsetVersion >= 13 ? -1 : 1);
        if (axis !== -1 && axis !== 1) fail(`${where}: Softmax over axis ${axis} is not supported (an MLP's is over the last axis, -1 or 1)`);
      }
    } else {
      fail(`${where} is not supported: ${SUPPORTED}`);
    }
    current = outs[0];
  }

  if (layers.length === 0) fail(`the graph has no dense layer: ${SUPPORTED}`);
  if (current !== outputName) fail(`the graph's output ${q(output.name)} is not the end of the chain of layers (${q(current)})`);
  const outputs = layers[layers.length - 1].out;
  if (outputDims[1] > 0 && outputDims[1] !== outputs) fail(`the output ${q(output.name)} is declared ${outputDims[1]} wide, but the last layer gives ${outputs}`);
  layers.forEach((l, k) => {
    if (l.activation === 'softmax' && k !== layers.length - 1) fail(`layer ${k + 1}: Softmax is only supported on the output layer`);
  });
  const inputs = layers[0].inp;

  const meta = new Map((m.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
  const training = readTraining(meta.get(ONNX_NAMES.trainingKey));
  const classes = readClasses(meta.get(ONNX_NAMES.classesKey), outputs);
  const out = layers[layers.length - 1].activation;
  const loss: LossName = options.loss ?? training.loss
    ?? (out === 'softmax' ? 'categoricalCrossEntropy' : out === 'sigmoid' ? 'binaryCrossEntropy' : 'mse');
  const spec: ModelSpec = {
    inputs,
    layers: layers.map((l) => ({ units: l.out, activation: l.activation, ...(l.activation === 'leakyRelu' ? { alpha: l.alpha } : {}) })),
    loss,
    // huber's delta travels with the exported loss, not with another one chosen here
    ...(loss === 'huber' && training.loss === 'huber' && training.huberDelta !== undefined ? { huberDelta: training.huberDelta } : {}),
    optimizer: options.optimizer ?? training.optimizer ?? { type: 'adam', learningRate: 1e-3 },
    ...(training.seed !== undefined ? { seed: training.seed } : {}),
    ...(normalized ? { normalization: { mean: normalization.mean ?? new Array(inputs).fill(0), std: normalization.std ?? new Array(inputs).fill(1) } } : {}),
    ...(classes ? { classes } : {}),
  };
  let checked: ModelSpec;
  try {
    checked = checkSpec(spec);
  } catch (e) {
    return fail(`the graph is not a model deltaprop can train: ${(e as Error).message}`);
  }
  const producer = [m.producerName, m.producerVersion].filter(Boolean).join(' ');
  return { spec: checked, weights: layers.map((l) => ({ w: l.w, b: l.b ?? new Float32Array(l.out) })), producer };
}

/** Builds a model on `backend` from the bytes of an ONNX file (see parseOnnx). */
export function modelFromOnnx(bytes: Uint8Array, backend: Backend, options: OnnxImportOptions = {}): Model {
  const { spec, weights } = parseOnnx(bytes, options);
  const model = new Model(spec, backend);
  model.setWeights(weights);
  return model;
}

/** A graph input or output must be a float32 matrix [batch, width]; returns its dims (-1 where symbolic). */
const outs0 = (n: onnx.NodeProto.$Properties): string => n.output?.[0] ?? '';

function checkFloatMatrix(v: onnx.ValueInfoProto.$Properties, what: string): number[] {
  const t = v.type?.tensorType;
  if (!t) return fail(`the graph ${what} ${q(v.name)} is not a tensor`);
  if (t.elemType !== T.FLOAT) fail(`the graph ${what} ${q(v.name)} has element type ${typeName(t.elemType ?? 0)}; deltaprop runs float32`);
  if (!t.shape) return [-1, -1];
  const dims = (t.shape.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && !d.dimParam ? int64ToNumber(d.dimValue) : -1));
  if (dims.length !== 2) fail(`the graph ${what} ${q(v.name)} has shape ${dimsText(dims.map((d) => (d < 0 ? '?' : d)))}; an MLP's is [batch, features]`);
  if (dims.some((d) => Number.isNaN(d) || d === 0 || d > 2 ** 31)) fail(`the graph ${what} ${q(v.name)} has an invalid dimension`);
  return dims;
}

/**
 * Node indices in an order where every node comes after the nodes it reads (Kahn's algorithm);
 * a cycle, a value produced twice, or a value that nothing provides is an error naming the node.
 */
function topologicalOrder(nodes: onnx.NodeProto.$Properties[], given: Set<string>, describe: (i: number) => string): number[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) {
      if (o === '') continue;
      if (given.has(o) || producer.has(o)) fail(`${describe(i)} writes ${q(o)}, which the graph already has`);
      producer.set(o, i);
    }
  });
  const waiting = new Array<number>(nodes.length).fill(0);
  const readers = nodes.map(() => [] as number[]);
  nodes.forEach((n, i) => {
    for (const name of n.input ?? []) {
      if (name === '' || given.has(name)) continue;
      const p = producer.get(name);
      if (p === undefined) fail(`${describe(i)} reads ${q(name)}, which no initializer, graph input or node provides (a missing initializer?)`);
      waiting[i]++;
      readers[p!].push(i);
    }
  });
  const order: number[] = [];
  const ready = nodes.map((_, i) => i).filter((i) => waiting[i] === 0);
  // an index, not shift(): a hostile graph of many independent nodes must not take quadratic time
  for (let k = 0; k < ready.length; k++) {
    const i = ready[k];
    order.push(i);
    for (const r of readers[i]) if (--waiting[r] === 0) ready.push(r);
  }
  if (order.length !== nodes.length) {
    const stuck = waiting.findIndex((w) => w > 0);
    fail(`the graph has a cycle: ${describe(stuck)} depends on its own output`);
  }
  return order;
}

function attributes(n: onnx.NodeProto.$Properties, where: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of n.attribute ?? []) {
    if (a.type === A.INT || (a.type === undefined && a.i !== undefined && a.i !== null)) out[a.name ?? ''] = int64ToNumber(a.i);
    else if (a.type === A.FLOAT) out[a.name ?? ''] = a.f ?? 0;
    else fail(`${where}: attribute ${q(a.name)} of type ${A[a.type ?? 0] ?? a.type} is not supported`);
    if (!Number.isFinite(out[a.name ?? ''])) fail(`${where}: attribute ${q(a.name)} is not a finite number`);
  }
  return out;
}

/** A tensor's values as float32, after checking that its dims and its data agree (before allocating). */
function readTensor(t: onnx.TensorProto.$Properties, name: string): Constant {
  const what = `tensor ${q(name)}`;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) fail(`${what} keeps its data in an external file, which is not supported`);
  if (t.segment) fail(`${what} is segmented, which is not supported`);
  const type = t.dataType ?? 0;
  if (type !== T.FLOAT && type !== T.DOUBLE) fail(`${what} has data type ${typeName(type)}; deltaprop imports float32 or float64 weights`);
  const dims = (t.dims ?? []).map(int64ToNumber);
  let count = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) fail(`${what} has an invalid dimension in ${dimsText((t.dims ?? []).map(int64ToNumber))}`);
    count *= d;
  }
  const size = type === T.FLOAT ? 4 : 8;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const listed = type === T.FLOAT ? (t.floatData ?? []) : (t.doubleData ?? []);
  const held = raw ? raw.length / size : listed.length;
  if (held !== count) {
    fail(`${what} has dims ${dimsText(dims)} (${countText(count)} values), but its data holds ${raw ? `${raw.length} bytes` : `${listed.length} values`}`);
  }
  const data = new Float32Array(count);
  if (raw) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++) data[i] = size === 4 ? view.getFloat32(4 * i, true) : view.getFloat64(8 * i, true);
  } else {
    for (let i = 0; i < count; i++) data[i] = listed[i];
  }
  for (let i = 0; i < count; i++) if (!Number.isFinite(data[i])) fail(`${what}: value ${i} is ${data[i]}`);
  return { dims, data };
}

/** A constant that is one value per feature ([n], [1, n]), or one value for all ([], [1]). */
function featureVector(c: Constant, n: number, what: string): Float32Array {
  const vectorShape = c.dims.filter((d) => d !== 1).length <= 1 && c.dims.length <= 2;
  if (vectorShape && c.data.length === n) return c.data;
  if (vectorShape && c.data.length === 1) return new Float32Array(n).fill(c.data[0]);
  return fail(`${what} has shape ${dimsText(c.dims)}; expected ${n} values ([${n}] or [1, ${n}])`);
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

function typeName(code: number): string {
  return T[code] ?? `code ${code}`;
}

function readTraining(json: string | undefined): { loss?: LossName; huberDelta?: number; optimizer?: OptimizerSpec; seed?: number } {
  if (json === undefined) return {};
  try {
    const t = JSON.parse(json) as { loss?: LossName; huberDelta?: number; optimizer?: OptimizerSpec; seed?: number };
    if (typeof t !== 'object' || t === null) throw new Error('not an object');
    return { loss: t.loss, huberDelta: t.huberDelta, optimizer: t.optimizer, seed: t.seed };
  } catch (e) {
    return fail(`metadata '${ONNX_NAMES.trainingKey}' is not valid JSON (${(e as Error).message})`);
  }
}

function readClasses(json: string | undefined, outputs: number): string[] | undefined {
  if (json === undefined) return undefined;
  let classes: unknown;
  try {
    classes = JSON.parse(json);
  } catch (e) {
    return fail(`metadata '${ONNX_NAMES.classesKey}' is not valid JSON (${(e as Error).message})`);
  }
  const fits = Array.isArray(classes) && classes.every((c) => typeof c === 'string') && classes.length === outputs;
  if (!fits) fail(`metadata '${ONNX_NAMES.classesKey}' must be a JSON array of ${outputs} class names`);
  return classes as string[];
}
