// The model's description as users write it, and its validation. Everything a model file stores
// about the architecture, loss and optimizer is a ModelSpec.
import { ACT, LOSS, type ActivationName, type LossName } from './backends/backend.js';

export type { ActivationName, LossName };

export interface DenseSpec {
  /** Output width of the layer. */
  units: number;
  activation: ActivationName;
  /** Slope for x < 0 of `leakyRelu` (default 0.01). */
  alpha?: number;
  /** Weight initialization; default He for ReLU-like activations, Glorot otherwise. */
  init?: 'he' | 'glorot';
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
  layers: DenseSpec[];
  loss: LossName;
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

const positiveInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0;
const positive = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0;
const nonNegative = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;

/** Throws a SpecError naming the first problem; returns the spec with defaults filled in. */
export function checkSpec(spec: ModelSpec): ModelSpec {
  if (typeof spec !== 'object' || spec === null) throw new SpecError('model spec: expected an object');
  if (!positiveInt(spec.inputs)) throw new SpecError(`inputs: must be a positive integer, got ${String(spec.inputs)}`);
  if (!Array.isArray(spec.layers) || spec.layers.length === 0) {
    throw new SpecError('layers: need at least one dense layer');
  }
  const layers = spec.layers.map((l, i): DenseSpec => {
    const where = `layer ${i + 1}`;
    if (typeof l !== 'object' || l === null) throw new SpecError(`${where}: expected { units, activation }`);
    if (!positiveInt(l.units)) throw new SpecError(`${where}: units must be a positive integer, got ${String(l.units)}`);
    if (!ACTIVATIONS.includes(l.activation)) {
      throw new SpecError(`${where}: unknown activation '${String(l.activation)}' (known: ${ACTIVATIONS.join(', ')})`);
    }
    if (l.activation === 'softmax' && i !== spec.layers.length - 1) {
      throw new SpecError(`${where}: softmax is only allowed on the output layer`);
    }
    if (l.alpha !== undefined && !nonNegative(l.alpha)) throw new SpecError(`${where}: alpha must be ≥ 0`);
    if (l.init !== undefined && l.init !== 'he' && l.init !== 'glorot') {
      throw new SpecError(`${where}: unknown init '${String(l.init)}' (known: he, glorot)`);
    }
    const init = l.init ?? (l.activation === 'relu' || l.activation === 'leakyRelu' ? 'he' : 'glorot');
    return { units: l.units, activation: l.activation, alpha: l.activation === 'leakyRelu' ? (l.alpha ?? 0.01) : 0, init };
  });
  if (!LOSSES.includes(spec.loss)) {
    throw new SpecError(`loss: unknown loss '${String(spec.loss)}' (known: ${LOSSES.join(', ')})`);
  }
  const out = layers[layers.length - 1];
  if (spec.loss === 'categoricalCrossEntropy' && out.activation !== 'softmax') {
    throw new SpecError(`loss: categoricalCrossEntropy needs a softmax output layer, got ${out.activation}`);
  }
  if (spec.loss === 'binaryCrossEntropy' && out.activation !== 'sigmoid') {
    throw new SpecError(`loss: binaryCrossEntropy needs a sigmoid output layer, got ${out.activation}`);
  }
  if (spec.loss === 'mse' && out.activation === 'softmax') {
    throw new SpecError('loss: a softmax output needs categoricalCrossEntropy, not mse');
  }
  if (spec.loss === 'categoricalCrossEntropy' && out.units < 2) {
    throw new SpecError('loss: categoricalCrossEntropy needs at least 2 output units');
  }
  const optimizer = checkOptimizer(spec.optimizer);
  if (spec.seed !== undefined && !(Number.isInteger(spec.seed) && spec.seed >= 0 && spec.seed < 2 ** 32)) {
    throw new SpecError(`seed: must be an integer in [0, 2^32), got ${String(spec.seed)}`);
  }
  if (spec.normalization !== undefined) checkNormalization(spec.normalization, spec.inputs);
  if (spec.classes !== undefined) {
    if (!Array.isArray(spec.classes) || spec.classes.length !== out.units || !spec.classes.every((c) => typeof c === 'string')) {
      throw new SpecError(`classes: expected ${out.units} class names (one per output), got ${JSON.stringify(spec.classes)}`);
    }
  }
  return { ...spec, layers, optimizer, seed: spec.seed ?? 0 };
}

function checkOptimizer(o: OptimizerSpec): OptimizerSpec {
  if (typeof o !== 'object' || o === null) throw new SpecError("optimizer: expected { type: 'adam', learningRate: 0.001 } or similar");
  if (!OPTIMIZERS.includes(o.type)) {
    throw new SpecError(`optimizer: unknown optimizer '${String(o.type)}' (known: ${OPTIMIZERS.join(', ')})`);
  }
  if (!positive(o.learningRate)) {
    throw new SpecError(`optimizer: learningRate must be a positive number, got ${String(o.learningRate)}`);
  }
  if (o.weightDecay !== undefined && !nonNegative(o.weightDecay)) throw new SpecError('optimizer: weightDecay must be ≥ 0');
  if (o.clipNorm !== undefined && !positive(o.clipNorm)) throw new SpecError('optimizer: clipNorm must be > 0');
  if (o.schedule !== undefined) checkSchedule(o.schedule);
  if (o.type === 'momentum') {
    const mu = o.momentum ?? 0.9;
    if (!(mu >= 0 && mu < 1)) throw new SpecError('optimizer: momentum must be in [0, 1)');
    return { ...o, momentum: mu, nesterov: o.nesterov ?? false };
  }
  if (o.type === 'adam' || o.type === 'adamw') {
    const beta1 = o.beta1 ?? 0.9, beta2 = o.beta2 ?? 0.999, epsilon = o.epsilon ?? 1e-8;
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new SpecError('optimizer: beta1 and beta2 must be in [0, 1)');
    if (!positive(epsilon)) throw new SpecError('optimizer: epsilon must be > 0');
    return { ...o, beta1, beta2, epsilon, weightDecay: o.weightDecay ?? (o.type === 'adamw' ? 0.01 : 0) };
  }
  return { ...o };
}

function checkSchedule(s: Schedule): void {
  if (s.type === 'step') {
    if (!positiveInt(s.stepSize) || !positive(s.gamma)) throw new SpecError('schedule: step needs stepSize (epochs, integer > 0) and gamma > 0');
  } else if (s.type === 'exponential') {
    if (!positive(s.gamma)) throw new SpecError('schedule: exponential needs gamma > 0');
  } else if (s.type === 'cosine') {
    if (s.epochs !== undefined && !positiveInt(s.epochs)) throw new SpecError('schedule: cosine epochs must be a positive integer');
    if (s.minLearningRate !== undefined && !nonNegative(s.minLearningRate)) throw new SpecError('schedule: minLearningRate must be ≥ 0');
  } else {
    throw new SpecError(`schedule: unknown type '${String((s as { type: unknown }).type)}' (known: step, exponential, cosine)`);
  }
}

function checkNormalization(n: Normalization, inputs: number): void {
  const ok = (a: unknown): a is number[] => Array.isArray(a) && a.length === inputs && a.every((v) => Number.isFinite(v));
  if (!ok(n.mean) || !ok(n.std) || n.std.some((s) => s <= 0)) {
    throw new SpecError(`normalization: mean and std must be ${inputs} finite numbers, std > 0`);
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
