// The model's description as users write it, and its validation. Everything a model file stores
// about the architecture, loss and optimizer is a ModelSpec.
import { ACT, LOSS, type ActivationName, type LossName } from './backends/backend.js';
import { InputError } from './data.js';

export type { ActivationName, LossName };

export interface DenseSpec {
  /** Optional: a layer without a type is dense. */
  type?: 'dense';
  /** Output width of the layer. */
  units: number;
  activation: ActivationName;
  /** Slope for x < 0 of `leakyRelu` (default 0.01). */
  alpha?: number;
  /** Weight initialization; default He for ReLU-like activations, Glorot otherwise. */
  init?: 'he' | 'glorot';
}

/** Inverted dropout: in training, each value is zeroed with probability `rate` and the rest scaled by 1/(1 − rate); off in evaluate and predict. */
export interface DropoutSpec {
  type: 'dropout';
  /** In [0, 1). */
  rate: number;
}

/** Activations a normalization layer may apply after its scale and shift (softmax only ends a dense output layer). */
export type NormActivationName = Exclude<ActivationName, 'softmax'>;

/**
 * Batch normalization (Keras's BatchNormalization): batch statistics in training, the running
 * averages in evaluate and predict; learnable scale γ and shift β; then `activation` (default linear).
 */
export interface BatchNormSpec {
  type: 'batchNormalization';
  /** Running averages: r ← momentum·r + (1 − momentum)·batch (default 0.99, Keras's). */
  momentum?: number;
  /** Added to the variance (default 1e-3, Keras's). */
  epsilon?: number;
  activation?: NormActivationName;
  alpha?: number;
}

/** Layer normalization over each row's features (Keras's LayerNormalization), learnable γ and β, then `activation`. */
export interface LayerNormSpec {
  type: 'layerNormalization';
  /** Added to the variance (default 1e-3, Keras's). */
  epsilon?: number;
  activation?: NormActivationName;
  alpha?: number;
}

export type LayerSpec = DenseSpec | DropoutSpec | BatchNormSpec | LayerNormSpec;
export const LAYER_TYPES = ['dense', 'dropout', 'batchNormalization', 'layerNormalization'] as const;
export type LayerType = (typeof LAYER_TYPES)[number];

/** A dense layer (one without a type, or with type 'dense'). */
export const isDense = (l: LayerSpec): l is DenseSpec => l.type === undefined || l.type === 'dense';

/** Each layer's output width, in order (dropout and the normalizations keep their input's). */
export function layerWidths(spec: Pick<ModelSpec, 'inputs' | 'layers'>): number[] {
  let w = spec.inputs;
  return spec.layers.map((l) => (w = isDense(l) ? l.units : w));
}

/** Learnable parameters of a layer whose input has `inp` values (dense: W and b; normalizations: γ and β). */
export function layerParams(l: LayerSpec, inp: number): number {
  if (isDense(l)) return inp * l.units + l.units;
  return l.type === 'dropout' ? 0 : 2 * inp;
}

/** A layer in a few words, for one-line model descriptions: '64 relu', 'dropout 0.2', 'batchNormalization'. */
export function describeLayer(l: LayerSpec): string {
  if (isDense(l)) return `${l.units} ${l.activation}`;
  if (l.type === 'dropout') return `dropout ${l.rate}`;
  return l.activation && l.activation !== 'linear' ? `${l.type} ${l.activation}` : l.type;
}

export type Schedule =
  | { type: 'step'; stepSize: number; gamma: number }
  | { type: 'exponential'; gamma: number }
  | { type: 'cosine'; epochs?: number; minLearningRate?: number };

interface OptimizerBase {
  learningRate: number;
  /** L2 weight decay on the weights (not the biases): the gradient gets + weightDecay·w. */
  weightDecay?: number;
  /** Clip the gradient of all parameters together to this global norm. */
  clipNorm?: number;
  /** Learning rate per epoch; `fit` applies it at the start of every epoch. */
  schedule?: Schedule;
}

export type OptimizerSpec =
  | (OptimizerBase & { type: 'sgd' })
  | (OptimizerBase & { type: 'momentum'; momentum?: number; nesterov?: boolean })
  | (OptimizerBase & { type: 'adam' | 'adamw'; beta1?: number; beta2?: number; epsilon?: number });

export type OptimizerName = OptimizerSpec['type'];

/** Feature standardization applied to every input row: (x − mean) / std. */
export interface Normalization {
  mean: number[];
  std: number[];
}

export interface ModelSpec {
  /** Width of an input row. */
  inputs: number;
  /** Dense layers and, between them, dropout and normalization layers; the last is dense. */
  layers: LayerSpec[];
  loss: LossName;
  /**
   * Huber's threshold δ (loss `huber` only; default 1, as Keras): the loss is e²/2 for |e| ≤ δ,
   * δ(|e| − δ/2) beyond.
   */
  huberDelta?: number;
  optimizer: OptimizerSpec;
  /** Seed for the initial weights (and the default shuffling seed of `fit`). */
  seed?: number;
  normalization?: Normalization;
  /** Class names, in output order, for classifiers (stored in model files). */
  classes?: string[];
}

export class SpecError extends Error {
  override name = 'SpecError';
}

const ACTIVATIONS = Object.keys(ACT) as ActivationName[];
const LOSSES = Object.keys(LOSS) as LossName[];
const OPTIMIZERS: OptimizerName[] = ['sgd', 'momentum', 'adam', 'adamw'];

/** The largest finite float32: the kernels compute in float32, where anything beyond is ±Infinity. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * The most floats one buffer may hold: the native backend's limit (4 GiB), which a wasm memory
 * (4 GiB in all) cannot exceed either. Activation buffers (batch rows × layer width) are held to it.
 */
export const MAX_BUFFER_FLOATS = 2 ** 30 - 1;

/**
 * The most parameters a model may have: one buffer of them, and a model file (header included)
 * that fits in one Uint8Array (4 GiB) so that every model that saves also loads.
 */
export const MAX_PARAMS = 2 ** 30 - 2 ** 22;

const positiveInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0;
const inFloat32 = (n: number): boolean => Number.isFinite(n) && Math.abs(n) <= FLOAT32_MAX;
const positive = (n: unknown): n is number => typeof n === 'number' && inFloat32(n) && n > 0;
const nonNegative = (n: unknown): n is number => typeof n === 'number' && inFloat32(n) && n >= 0;
/** In [0, 1), as a number (a string '0.9' compares as a number in JavaScript, and must not pass). */
const unitInterval = (n: unknown): n is number => typeof n === 'number' && n >= 0 && n < 1;

/** A string as an error message quotes it: at most 40 characters, so a hostile value cannot flood the message. */
export const clipped = (s: string): string => (s.length > 40 ? `${s.slice(0, 40)}…` : s);

/** A value as an error message shows it: a number as itself, anything else with its type. */
export function shown(v: unknown): string {
  if (typeof v === 'number' || v === null || v === undefined) return String(v);
  if (typeof v === 'string') return `the string '${clipped(v)}'`;
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${String(v)} (a ${typeof v})`;
}

/** For a number that is finite but beyond float32: says why it is refused. */
const float32Note = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) > FLOAT32_MAX ? ' within float32 (at most 3.4e38)' : '');

/** A name as an error message shows it: quoted when it is a string, else with its type. */
const named = (v: unknown): string => (typeof v === 'string' ? `'${clipped(v)}'` : shown(v));

/** A count with thousands separators; past 1e15 in exponent form (a hostile 1e308 stays short). */
const count = (n: number): string => (Math.abs(n) < 1e15 ? n.toLocaleString('en-US') : n.toPrecision(3));

/** Whether a loss is a classifier's (accuracy and the classification metrics apply). */
export const isClassificationLoss = (loss: LossName): boolean => loss === 'binaryCrossEntropy' || loss === 'categoricalCrossEntropy';

/** Throws a SpecError naming the first problem; returns the spec with defaults filled in. */
export function checkSpec(spec: ModelSpec): ModelSpec {
  if (typeof spec !== 'object' || spec === null) throw new SpecError('model spec: expected an object');
  if (!positiveInt(spec.inputs)) throw new SpecError(`inputs: must be a positive integer, got ${shown(spec.inputs)}`);
  if (!Array.isArray(spec.layers) || spec.layers.length === 0) {
    throw new SpecError('layers: need at least one dense layer');
  }
  const layers = spec.layers.map((l, i): LayerSpec => checkLayer(l, i, spec.layers.length));
  if (!LOSSES.includes(spec.loss)) {
    throw new SpecError(`loss: unknown loss ${named(spec.loss)} (known: ${LOSSES.join(', ')})`);
  }
  checkSize(spec.inputs, layers);
  const out = layers[layers.length - 1] as DenseSpec; // checkLayer: the output layer is dense
  if (spec.loss === 'categoricalCrossEntropy' && out.activation !== 'softmax') {
    throw new SpecError(`loss: categoricalCrossEntropy needs a softmax output layer, got ${out.activation}`);
  }
  if (spec.loss === 'binaryCrossEntropy' && out.activation !== 'sigmoid') {
    throw new SpecError(`loss: binaryCrossEntropy needs a sigmoid output layer, got ${out.activation}`);
  }
  if ((spec.loss === 'mse' || spec.loss === 'huber' || spec.loss === 'meanAbsoluteError') && out.activation === 'softmax') {
    throw new SpecError(`loss: a softmax output needs categoricalCrossEntropy, not ${spec.loss}`);
  }
  if (spec.huberDelta !== undefined && spec.loss !== 'huber') {
    throw new SpecError(`huberDelta: only the huber loss takes it, and the loss is ${spec.loss}`);
  }
  const huberDelta = spec.huberDelta ?? 1;
  if (spec.loss === 'huber' && !positive(huberDelta)) {
    throw new SpecError(`huberDelta: must be a number > 0${float32Note(huberDelta)}, got ${shown(huberDelta)}`);
  }
  if (spec.loss === 'categoricalCrossEntropy' && out.units < 2) {
    throw new SpecError('loss: categoricalCrossEntropy needs at least 2 output units');
  }
  const optimizer = checkOptimizer(spec.optimizer);
  if (spec.seed !== undefined && !(Number.isInteger(spec.seed) && spec.seed >= 0 && spec.seed < 2 ** 32)) {
    throw new SpecError(`seed: must be an integer in [0, 2^32), got ${shown(spec.seed)}`);
  }
  if (spec.normalization !== undefined) checkNormalization(spec.normalization, spec.inputs);
  if (spec.classes !== undefined) {
    if (!Array.isArray(spec.classes) || spec.classes.length !== out.units || !spec.classes.every((c) => typeof c === 'string')) {
      const got = Array.isArray(spec.classes) ? `${spec.classes.length} values${spec.classes.every((c) => typeof c === 'string') ? '' : ', not all strings'}` : shown(spec.classes);
      throw new SpecError(`classes: expected ${out.units} class names (one string per output), got ${got}`);
    }
  }
  // the fields a spec has, and no others: a model file's header carries nothing else along
  const checked: ModelSpec = { inputs: spec.inputs, layers, loss: spec.loss, optimizer, seed: spec.seed ?? 0 };
  if (spec.loss === 'huber') checked.huberDelta = huberDelta;
  if (spec.normalization !== undefined) checked.normalization = { mean: spec.normalization.mean, std: spec.normalization.std };
  if (spec.classes !== undefined) checked.classes = spec.classes;
  return checked;
}

const KEYS: Record<string, readonly string[]> = {
  dense: ['type', 'units', 'activation', 'alpha', 'init'],
  dropout: ['type', 'rate'],
  batchNormalization: ['type', 'momentum', 'epsilon', 'activation', 'alpha'],
  layerNormalization: ['type', 'epsilon', 'activation', 'alpha'],
};

/** One layer, checked, with its defaults filled in (a dense layer's `type` is left out, as before types existed). */
function checkLayer(l: LayerSpec, i: number, count: number): LayerSpec {
  const where = `layer ${i + 1}`;
  if (typeof l !== 'object' || l === null) throw new SpecError(`${where}: expected { units, activation } or { type, … }`);
  const type: unknown = l.type ?? 'dense';
  if (!(LAYER_TYPES as readonly unknown[]).includes(type)) {
    throw new SpecError(`${where}: unknown layer type ${named(type)} (known: ${LAYER_TYPES.join(', ')})`);
  }
  if (type !== 'dense') {
    if (i === count - 1) throw new SpecError(`${where}: the output layer must be dense, got ${type as string} (the loss is taken on a dense layer's activation)`);
    const extra = Object.keys(l).find((k) => !KEYS[type as string].includes(k) && (l as unknown as Record<string, unknown>)[k] !== undefined);
    if (extra !== undefined) {
      const why = extra === 'units' ? ` (${type as string} keeps its input's width)` : '';
      throw new SpecError(`${where}: ${type as string} takes no ${clipped(extra)}${why}; its options are ${KEYS[type as string].slice(1).join(', ')}`);
    }
  }
  if (type === 'dropout') {
    const d = l as DropoutSpec;
    if (!unitInterval(d.rate) || !(Math.fround(d.rate) < 1)) throw new SpecError(`${where}: dropout rate must be a number in [0, 1), got ${shown(d.rate)}`);
    return { type: 'dropout', rate: d.rate };
  }
  if (type === 'batchNormalization' || type === 'layerNormalization') {
    const n = l as BatchNormSpec | LayerNormSpec;
    const epsilon = n.epsilon ?? 1e-3;
    if (!positive(epsilon) || Math.fround(epsilon) === 0) throw new SpecError(`${where}: ${type} epsilon must be a number > 0${float32Note(epsilon)}, got ${shown(epsilon)}`);
    const activation = n.activation ?? 'linear';
    if (activation === ('softmax' as string)) throw new SpecError(`${where}: softmax is only allowed on the output layer, which is dense`);
    if (!ACTIVATIONS.includes(activation)) {
      throw new SpecError(`${where}: unknown activation ${named(activation)} (known: ${ACTIVATIONS.filter((a) => a !== 'softmax').join(', ')})`);
    }
    if (n.alpha !== undefined && !nonNegative(n.alpha)) throw new SpecError(`${where}: alpha must be a number ≥ 0${float32Note(n.alpha)}, got ${shown(n.alpha)}`);
    const alpha = activation === 'leakyRelu' ? (n.alpha ?? 0.01) : 0;
    if (type === 'layerNormalization') return { type, epsilon, activation, alpha };
    const momentum = (n as BatchNormSpec).momentum ?? 0.99;
    if (!(typeof momentum === 'number' && momentum >= 0 && momentum <= 1)) {
      throw new SpecError(`${where}: batchNormalization momentum must be a number in [0, 1], got ${shown(momentum)}`);
    }
    return { type, momentum, epsilon, activation, alpha };
  }
  const d = l as DenseSpec;
  if (!positiveInt(d.units)) throw new SpecError(`${where}: units must be a positive integer, got ${shown(d.units)}`);
  if (!ACTIVATIONS.includes(d.activation)) {
    throw new SpecError(`${where}: unknown activation ${named(d.activation)} (known: ${ACTIVATIONS.join(', ')})`);
  }
  if (d.activation === 'softmax' && i !== count - 1) {
    throw new SpecError(`${where}: softmax is only allowed on the output layer`);
  }
  if (d.alpha !== undefined && !nonNegative(d.alpha)) throw new SpecError(`${where}: alpha must be a number ≥ 0${float32Note(d.alpha)}, got ${shown(d.alpha)}`);
  if (d.init !== undefined && d.init !== 'he' && d.init !== 'glorot') {
    throw new SpecError(`${where}: unknown init ${named(d.init)} (known: he, glorot)`);
  }
  const init = d.init ?? (d.activation === 'relu' || d.activation === 'leakyRelu' ? 'he' : 'glorot');
  return { units: d.units, activation: d.activation, alpha: d.activation === 'leakyRelu' ? (d.alpha ?? 0.01) : 0, init };
}

function checkOptimizer(o: OptimizerSpec): OptimizerSpec {
  if (typeof o !== 'object' || o === null) throw new SpecError("optimizer: expected { type: 'adam', learningRate: 0.001 } or similar");
  if (!OPTIMIZERS.includes(o.type)) {
    throw new SpecError(`optimizer: unknown optimizer ${named(o.type)} (known: ${OPTIMIZERS.join(', ')})`);
  }
  if (!positive(o.learningRate)) {
    throw new SpecError(`optimizer: learningRate must be a positive number${float32Note(o.learningRate)}, got ${shown(o.learningRate)}`);
  }
  if (o.weightDecay !== undefined && !nonNegative(o.weightDecay)) throw new SpecError(`optimizer: weightDecay must be a number ≥ 0${float32Note(o.weightDecay)}, got ${shown(o.weightDecay)}`);
  if (o.clipNorm !== undefined && !positive(o.clipNorm)) throw new SpecError(`optimizer: clipNorm must be a number > 0${float32Note(o.clipNorm)}, got ${shown(o.clipNorm)}`);
  if (o.schedule !== undefined) checkSchedule(o.schedule);
  if (o.type === 'momentum') {
    const mu = o.momentum ?? 0.9;
    if (!unitInterval(mu)) throw new SpecError(`optimizer: momentum must be a number in [0, 1), got ${shown(mu)}`);
    if (o.nesterov !== undefined && typeof o.nesterov !== 'boolean') throw new SpecError(`optimizer: nesterov must be true or false, got ${shown(o.nesterov)}`);
    return { ...o, momentum: mu, nesterov: o.nesterov ?? false };
  }
  if (o.type === 'adam' || o.type === 'adamw') {
    const beta1 = o.beta1 ?? 0.9, beta2 = o.beta2 ?? 0.999, epsilon = o.epsilon ?? 1e-8;
    if (!unitInterval(beta1)) throw new SpecError(`optimizer: beta1 must be a number in [0, 1), got ${shown(beta1)}`);
    if (!unitInterval(beta2)) throw new SpecError(`optimizer: beta2 must be a number in [0, 1), got ${shown(beta2)}`);
    if (!positive(epsilon)) throw new SpecError(`optimizer: epsilon must be a number > 0, got ${shown(epsilon)}`);
    return { ...o, beta1, beta2, epsilon, weightDecay: o.weightDecay ?? (o.type === 'adamw' ? 0.01 : 0) };
  }
  return { ...o };
}

function checkSchedule(s: Schedule): void {
  if (typeof s !== 'object' || s === null) throw new SpecError(`schedule: expected { type: 'step' | 'exponential' | 'cosine', … }, got ${shown(s)}`);
  if (s.type === 'step') {
    if (!positiveInt(s.stepSize) || !positive(s.gamma)) throw new SpecError('schedule: step needs stepSize (epochs, integer > 0) and gamma > 0');
  } else if (s.type === 'exponential') {
    if (!positive(s.gamma)) throw new SpecError('schedule: exponential needs gamma > 0');
  } else if (s.type === 'cosine') {
    if (s.epochs !== undefined && !positiveInt(s.epochs)) throw new SpecError('schedule: cosine epochs must be a positive integer');
    if (s.minLearningRate !== undefined && !nonNegative(s.minLearningRate)) throw new SpecError('schedule: minLearningRate must be ≥ 0');
  } else {
    throw new SpecError(`schedule: unknown type ${shown((s as { type: unknown }).type)} (known: step, exponential, cosine)`);
  }
}

function checkNormalization(n: Normalization, inputs: number): void {
  if (typeof n !== 'object' || n === null) throw new SpecError(`normalization: expected { mean, std } of ${inputs} numbers each, got ${shown(n)}`);
  for (const key of ['mean', 'std'] as const) {
    const a: unknown = n[key];
    if (!Array.isArray(a) || a.length !== inputs) {
      throw new SpecError(`normalization: ${key} must be ${inputs} numbers (one per input), got ${Array.isArray(a) ? `${a.length}` : shown(a)}`);
    }
    for (let j = 0; j < inputs; j++) {
      const v: unknown = a[j];
      // float32 range: the staged inputs are float32, and a mean or std beyond it makes them ±Infinity
      if (typeof v !== 'number' || !inFloat32(v) || (key === 'std' && v <= 0)) {
        throw new SpecError(`normalization: ${key}[${j}] must be a finite float32 number${key === 'std' ? ' > 0' : ''}, got ${shown(v)}`);
      }
    }
  }
}

/** Parameters, and one row of every layer's activations, within what a buffer and a model file hold. */
function checkSize(inputs: number, layers: LayerSpec[]): void {
  let params = 0, inp = inputs, biggest = 0, biggestAt = 0;
  const widths = layerWidths({ inputs, layers });
  layers.forEach((l, i) => {
    const n = layerParams(l, inp);
    params += n;
    if (n > biggest) {
      biggest = n;
      biggestAt = i;
    }
    inp = widths[i];
  });
  if (params > MAX_PARAMS) {
    const from = biggestAt === 0 ? inputs : widths[biggestAt - 1];
    throw new SpecError(`model size: ${count(params)} parameters is more than a model can hold (${count(MAX_PARAMS)}, 4 GiB of float32); `
      + `layer ${biggestAt + 1} alone (${count(from)} inputs × ${count(widths[biggestAt])} units) has ${count(biggest)}`);
  }
}

/**
 * Throws if a batch of `rows` rows needs an activation buffer (rows × the widest layer, input
 * included) beyond MAX_BUFFER_FLOATS, naming the batch size that would fit.
 */
export function checkBatchSize(spec: ModelSpec, rows: number): void {
  const widest = Math.max(spec.inputs, ...layerWidths(spec));
  if (rows * widest > MAX_BUFFER_FLOATS) {
    throw new InputError(`batch size: ${count(rows)} rows × ${count(widest)} values (the widest layer) is more than a buffer holds `
      + `(${count(MAX_BUFFER_FLOATS)} floats); use batches of at most ${count(Math.floor(MAX_BUFFER_FLOATS / widest))} rows`);
  }
}

/** Learning rate for a (0-based) epoch under the optimizer's schedule. */
export function scheduledRate(o: OptimizerSpec, epoch: number, totalEpochs: number): number {
  const lr = o.learningRate, s = o.schedule;
  if (!s) return lr;
  if (s.type === 'step') return lr * Math.pow(s.gamma, Math.floor(epoch / s.stepSize));
  if (s.type === 'exponential') return lr * Math.pow(s.gamma, epoch);
  const T = s.epochs ?? totalEpochs, min = s.minLearningRate ?? 0;
  return min + 0.5 * (lr - min) * (1 + Math.cos((Math.PI * Math.min(epoch, T)) / T));
}
