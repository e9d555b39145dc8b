// Inference only: a model's layers on a backend, and predict. No training code (no fit, no
// optimizer state, no gradients, no checkpoints), so that a serving bundle (a Worker, a browser
// page) carries only the forward pass. The weights are set once and never change under it.
import { ACT, type ActCode, type Backend, type Buf, type PackedWeights } from '../backends/backend.js';
import { checkStagedFinite, classesOf, InputError, toMatrix, type Matrix, type MatrixInput } from '../data.js';
import { parseModelFile } from '../io/modelFile.js';
import { checkBatchSize, checkSpec, isDense, MAX_BUFFER_FLOATS, type DenseSpec, type ModelSpec, type Normalization } from '../spec.js';

/** The spec's layers, all dense: the serving entry runs no dropout or normalization layers yet. */
function denseLayers(spec: ModelSpec): DenseSpec[] {
  const other = spec.layers.find((l) => !isDense(l));
  if (other) {
    throw new InputError(`deltaprop/infer runs dense layers only, and this model has a ${other.type} layer; `
      + "load it with the full entry (deltaprop's loadModel), whose predict runs every layer type");
  }
  return spec.layers as DenseSpec[];
}

/** A model as data: its spec and, per layer, w (in, out) row-major and b (out). */
export interface ModelParts {
  spec: ModelSpec;
  weights: { w: ArrayLike<number>; b: ArrayLike<number> }[];
}

interface Layer {
  inp: number;
  out: number;
  act: ActCode;
  alpha: number;
  w: Buf;
  b: Buf;
  /** w packed once where the backend can (its blocked GEMM would pack it on every call). */
  packed: PackedWeights | null;
}

/** Up to this many rows, the backends' few-row (GEMV) path reads w as it is: no packed copy is read. */
const GEMV_ROWS = 4;

export class Predictor {
  readonly spec: ModelSpec;
  readonly backend: Backend;
  readonly inputs: number;
  readonly outputs: number;
  private readonly layers: Layer[];
  private readonly norm: Normalization | undefined;
  private capacity = 0;
  private x: Buf | null = null;
  private acts: Buf[] = [];

  /** `weights`: per layer w (in, out) and b (out), checked for shape and finiteness. */
  constructor(spec: ModelSpec, weights: ModelParts['weights'], backend: Backend) {
    this.spec = checkSpec(spec);
    this.backend = backend;
    this.norm = this.spec.normalization;
    const dense = denseLayers(this.spec);
    const dims = [this.spec.inputs, ...dense.map((l) => l.units)];
    if (!Array.isArray(weights) || weights.length !== this.spec.layers.length) {
      throw new InputError(`weights: expected ${this.spec.layers.length} layers, got ${Array.isArray(weights) ? weights.length : typeof weights}`);
    }
    this.layers = dense.map((s, l) => {
      const inp = dims[l], out = dims[l + 1], lw = weights[l];
      if (lw?.w?.length !== inp * out || lw?.b?.length !== out) {
        throw new InputError(`weights: layer ${l + 1} needs w of ${inp}×${out} and b of ${out} values`);
      }
      for (let j = 0; j < lw.w.length; j++) if (!Number.isFinite(lw.w[j])) throw new InputError(`weights: layer ${l + 1} w[${j}] is not finite`);
      for (let j = 0; j < lw.b.length; j++) if (!Number.isFinite(lw.b[j])) throw new InputError(`weights: layer ${l + 1} b[${j}] is not finite`);
      const w = backend.alloc(inp * out), b = backend.alloc(out);
      return { inp, out, act: ACT[s.activation], alpha: s.alpha ?? 0, w, b, packed: null as PackedWeights | null };
    });
    // written after every allocation: a wasm memory that grows detaches earlier views
    this.layers.forEach((L, l) => {
      L.w.data.set(weights[l].w);
      L.b.data.set(weights[l].b);
    });
    // the weights never change after this (a predictor has no setWeights), so a packed copy
    // cannot go stale
    if (backend.packWeights && backend.denseForwardPacked) {
      for (const L of this.layers) L.packed = backend.packWeights(L.w, L.inp, L.out);
    }
    this.inputs = dims[0];
    this.outputs = dims[dims.length - 1];
  }

  /** Outputs (rows, outputs) for the rows of x: probabilities for classifiers, values otherwise. */
  predict(x: MatrixInput, batchSize = 256): Matrix {
    const X = toMatrix(x, 'inputs', this.inputs, 'staged');
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize: must be a positive integer, got ${String(batchSize)}`);
    const rows = X.shape[0], outs = this.outputs, inp = this.inputs;
    const result = new Float32Array(rows * outs);
    for (let start = 0; start < rows; start += batchSize) {
      const m = Math.min(batchSize, rows - start);
      this.reserve(m);
      const xb = this.x!.view(0, m * inp);
      const src = X.data.subarray(start * inp, (start + m) * inp);
      const norm = this.norm;
      if (norm) {
        const d = xb.data;
        for (let i = 0; i < m; i++) {
          const o = i * inp;
          for (let j = 0; j < inp; j++) d[o + j] = (src[o + j] - norm.mean[j]) / norm.std[j];
        }
      } else {
        xb.data.set(src);
      }
      checkStagedFinite(this.backend.sumSquares(xb, m * inp), X, start, m, 'inputs');
      let input = xb;
      for (let l = 0; l < this.layers.length; l++) {
        const L = this.layers[l], y = this.acts[l].view(0, m * L.out);
        if (L.packed && m > GEMV_ROWS) this.backend.denseForwardPacked!(y, input, L.w, L.packed, L.b, m, L.inp, L.out, L.act, L.alpha);
        else this.backend.denseForward(y, input, L.w, L.b, m, L.inp, L.out, L.act, L.alpha);
        input = y;
      }
      result.set(input.data, start * outs);
    }
    return { data: result, shape: [rows, outs] };
  }

  /** Predicted class per row (argmax; for one sigmoid output, 1 when p ≥ 0.5). */
  predictClasses(x: MatrixInput, batchSize = 256): Int32Array {
    return classesOf(this.predict(x, batchSize));
  }

  /** The class names stored with the model, if any. */
  get classes(): string[] | undefined {
    return this.spec.classes;
  }

  /** Buffers for batches of m rows; grown (doubling, within a buffer's limit) only for a larger m. */
  private reserve(m: number): void {
    if (m <= this.capacity) return;
    checkBatchSize(this.spec, m);
    let widest = this.inputs;
    for (const l of this.layers) widest = Math.max(widest, l.out);
    this.capacity = Math.max(m, Math.min(this.capacity * 2, Math.floor(MAX_BUFFER_FLOATS / widest)));
    this.x = this.backend.alloc(this.capacity * this.inputs);
    this.acts = this.layers.map((l) => this.backend.alloc(this.capacity * l.out));
  }
}

/** A predictor on `backend` from the bytes of a model file (validated as loadModel does). */
export function predictorFromBytes(bytes: Uint8Array, backend: Backend): Predictor {
  const { spec, params } = parseModelFile(bytes);
  return new Predictor(spec, splitParams(spec, params), backend);
}

/** A predictor from a model file's bytes, or from parts (`parseOnnx(bytes)` from 'deltaprop/infer/onnx'). */
export function predictorFrom(source: Uint8Array | ModelParts, backend: Backend): Predictor {
  if (source instanceof Uint8Array) return predictorFromBytes(source, backend);
  if (typeof source !== 'object' || source === null || !('spec' in source) || !('weights' in source)) {
    throw new InputError('model: expected the bytes of a model file (Uint8Array) or { spec, weights } (e.g. parseOnnx(bytes))');
  }
  return new Predictor(source.spec, source.weights, backend);
}

/** The model file's params arena (all weights, then all biases) as per-layer views. */
function splitParams(spec: ModelSpec, params: Float32Array): ModelParts['weights'] {
  const dims = [spec.inputs, ...denseLayers(spec).map((l) => l.units)];
  let w = 0, b = 0;
  for (let l = 0; l + 1 < dims.length; l++) b += dims[l] * dims[l + 1];
  const out: ModelParts['weights'] = [];
  for (let l = 0; l + 1 < dims.length; l++) {
    const n = dims[l] * dims[l + 1];
    out.push({ w: params.subarray(w, w + n), b: params.subarray(b, b + dims[l + 1]) });
    w += n;
    b += dims[l + 1];
  }
  return out;
}
