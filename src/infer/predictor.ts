// Inference only: a model's layers on a backend, and predict. No training code (no fit, no
// optimizer state, no gradients, no checkpoints), so that a serving bundle (a Worker, a browser
// page) carries only the forward pass. The weights are set once and never change under it, which
// is what lets the constructor fold: a batch normalization after a linear dense layer becomes that
// layer's weights and bias (its running statistics are constants here), and dropout, the identity
// outside training, is dropped, so that predict runs dense layers only.
import { ACT, type ActCode, type Backend, type Buf, type PackedWeights } from '../backends/backend.js';
import { checkStagedFinite, classesOf, InputError, toMatrix, type Matrix, type MatrixInput } from '../data.js';
import { parseModelFile } from '../io/modelFile.js';
import { checkBatchSize, checkSpec, isDense, MAX_BUFFER_FLOATS, type ModelSpec, type Normalization } from '../spec.js';

/** A dense layer's parameters: w (in, out) row-major and b (out). */
export interface DenseWeights { w: ArrayLike<number>; b: ArrayLike<number> }
/** A batch normalization's parameters and running statistics, one value per feature each. */
export interface BatchNormWeights { gamma: ArrayLike<number>; beta: ArrayLike<number>; runMean: ArrayLike<number>; runVar: ArrayLike<number> }

/**
 * A model as data: its spec and, per layer of the spec, its parameters (a dense layer's w and b, a
 * batch normalization's gamma, beta, runMean and runVar, nothing ({}) for dropout).
 */
export interface ModelParts {
  spec: ModelSpec;
  weights: (DenseWeights | BatchNormWeights | Record<string, never>)[];
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

/** A dense layer before it goes to the backend, with any batch normalization after it folded in. */
interface Folded { inp: number; out: number; act: ActCode; alpha: number; w: Float32Array; b: Float32Array }

function finiteValues(what: string, v: ArrayLike<number> | undefined, n: number): ArrayLike<number> {
  if (v?.length !== n) throw new InputError(`weights: ${what} needs ${n} values, got ${v?.length === undefined ? 'none' : v.length}`);
  for (let j = 0; j < n; j++) if (!Number.isFinite(v[j])) throw new InputError(`weights: ${what}[${j}] is not finite`);
  return v;
}

/**
 * The spec's layers as dense layers: dropout dropped; each batch normalization folded into the
 * dense layer before it (dropout between them allowed), which must be linear: with
 * s = gamma / sqrt(runVar + eps), w'[i][j] = w[i][j]·s[j] and b'[j] = (b[j] − runMean[j])·s[j] +
 * beta[j] (in float64 from the float32 values, rounded once), and the layer takes the
 * normalization's activation. Anything else is refused, naming the layer.
 */
function foldLayers(spec: ModelSpec, weights: ModelParts['weights']): Folded[] {
  const out: Folded[] = [];
  let width = spec.inputs, lastDense = -1;
  spec.layers.forEach((s, l) => {
    const where = `layer ${l + 1}`;
    if (isDense(s)) {
      const lw = weights[l] as Partial<DenseWeights>, inp = width, n = s.units;
      if (lw?.w?.length !== inp * n || lw?.b?.length !== n) {
        throw new InputError(`weights: ${where} needs w of ${inp}×${n} and b of ${n} values`);
      }
      for (let j = 0; j < lw.w.length; j++) if (!Number.isFinite(lw.w[j])) throw new InputError(`weights: ${where} w[${j}] is not finite`);
      for (let j = 0; j < lw.b.length; j++) if (!Number.isFinite(lw.b[j])) throw new InputError(`weights: ${where} b[${j}] is not finite`);
      out.push({ inp, out: n, act: ACT[s.activation], alpha: s.alpha ?? 0, w: Float32Array.from(lw.w), b: Float32Array.from(lw.b) });
      width = n;
      lastDense = l;
      return;
    }
    if (s.type === 'dropout') return; // the identity outside training
    const between = spec.layers.slice(lastDense + 1, l).every((t) => !isDense(t) && t.type === 'dropout');
    const prev = out[out.length - 1];
    if (s.type !== 'batchNormalization' || !prev || !between || prev.act !== ACT.linear) {
      const why = s.type !== 'batchNormalization' ? `a ${s.type} layer depends on each row's own statistics, so it cannot be folded into weights`
        : !prev || !between ? 'a batch normalization folds only into a dense layer directly before it (dropout between them aside)'
          : `a batch normalization folds only into a dense layer with linear activation, and layer ${lastDense + 1} applies ${(spec.layers[lastDense] as { activation: string }).activation}`;
      throw new InputError(`deltaprop/infer cannot run ${where} (${s.type}): ${why}; load the model with the full entry `
        + "(deltaprop's loadModel), whose predict runs every layer type");
    }
    const p = weights[l] as Partial<BatchNormWeights>, n = width;
    const gamma = finiteValues(`${where} gamma`, p?.gamma, n), beta = finiteValues(`${where} beta`, p?.beta, n);
    const mean = finiteValues(`${where} runMean`, p?.runMean, n), variance = finiteValues(`${where} runVar`, p?.runVar, n);
    // the kernels' float32 epsilon, added to the float32 variance in float64 (js.ts batchNormInference)
    const eps = Math.fround(s.epsilon ?? 1e-3);
    for (let j = 0; j < n; j++) {
      const v = Math.fround(variance[j]) + eps;
      if (!(v > 0)) throw new InputError(`weights: ${where} runVar[${j}] + epsilon must be > 0, got ${v}`);
      const scale = Math.fround(gamma[j]) / Math.sqrt(v);
      for (let i = 0; i < prev.inp; i++) prev.w[i * n + j] = prev.w[i * n + j] * scale;
      prev.b[j] = (prev.b[j] - Math.fround(mean[j])) * scale + Math.fround(beta[j]);
    }
    for (let j = 0; j < prev.w.length; j++) if (!Number.isFinite(prev.w[j])) throw new InputError(`weights: ${where} folds into a weight that is not finite in float32`);
    for (let j = 0; j < n; j++) if (!Number.isFinite(prev.b[j])) throw new InputError(`weights: ${where} folds into a bias that is not finite in float32`);
    prev.act = ACT[s.activation ?? 'linear'];
    prev.alpha = s.alpha ?? 0;
  });
  return out;
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

  /**
   * `weights`: per layer of the spec, its parameters (ModelParts), checked for shape and
   * finiteness; batch normalizations are folded into the dense layers before them (foldLayers).
   */
  constructor(spec: ModelSpec, weights: ModelParts['weights'], backend: Backend) {
    this.spec = checkSpec(spec);
    this.backend = backend;
    this.norm = this.spec.normalization;
    if (!Array.isArray(weights) || weights.length !== this.spec.layers.length) {
      throw new InputError(`weights: expected ${this.spec.layers.length} layers, got ${Array.isArray(weights) ? weights.length : typeof weights}`);
    }
    const folded = foldLayers(this.spec, weights);
    this.layers = folded.map((f) => ({ inp: f.inp, out: f.out, act: f.act, alpha: f.alpha, w: backend.alloc(f.inp * f.out),
      b: backend.alloc(f.out), packed: null as PackedWeights | null }));
    // written after every allocation: a wasm memory that grows detaches earlier views
    this.layers.forEach((L, l) => {
      L.w.data.set(folded[l].w);
      L.b.data.set(folded[l].b);
    });
    // the weights never change after this (a predictor has no setWeights), so a packed copy
    // cannot go stale
    if (backend.packWeights && backend.denseForwardPacked) {
      for (const L of this.layers) L.packed = backend.packWeights(L.w, L.inp, L.out);
    }
    this.inputs = this.spec.inputs;
    this.outputs = folded[folded.length - 1].out;
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
  const { spec, params, stats } = parseModelFile(bytes);
  return new Predictor(spec, splitParams(spec, params, stats), backend);
}

/** A predictor from a model file's bytes, or from parts (`parseOnnx(bytes)` from 'deltaprop/infer/onnx'). */
export function predictorFrom(source: Uint8Array | ModelParts, backend: Backend): Predictor {
  if (source instanceof Uint8Array) return predictorFromBytes(source, backend);
  if (typeof source !== 'object' || source === null || !('spec' in source) || !('weights' in source)) {
    throw new InputError('model: expected the bytes of a model file (Uint8Array) or { spec, weights } (e.g. parseOnnx(bytes))');
  }
  return new Predictor(source.spec, source.weights, backend);
}

/**
 * The model file's arenas as per-layer views: params holds every dense layer's weights, then their
 * biases, then each normalization layer's gamma and beta; stats each batch normalization's running
 * mean and variance (src/model/network.ts lays them out so).
 */
function splitParams(spec: ModelSpec, params: Float32Array, stats: Float32Array): ModelParts['weights'] {
  let width = spec.inputs, weights = 0;
  const widths = spec.layers.map((s) => {
    const inp = width;
    if (isDense(s)) {
      weights += inp * s.units;
      width = s.units;
    }
    return inp;
  });
  let w = 0, b = weights, norm = weights, st = 0;
  for (const s of spec.layers) if (isDense(s)) norm += s.units;
  return spec.layers.map((s, l) => {
    const inp = widths[l];
    if (isDense(s)) {
      const n = inp * s.units, out = { w: params.subarray(w, w + n), b: params.subarray(b, b + s.units) };
      w += n;
      b += s.units;
      return out;
    }
    if (s.type === 'dropout') return {};
    const gamma = params.subarray(norm, norm + inp), beta = params.subarray(norm + inp, norm + 2 * inp);
    norm += 2 * inp;
    if (s.type !== 'batchNormalization') return { gamma, beta, runMean: new Float32Array(0), runVar: new Float32Array(0) };
    const out = { gamma, beta, runMean: stats.subarray(st, st + inp), runVar: stats.subarray(st + inp, st + 2 * inp) };
    st += 2 * inp;
    return out;
  });
}
