// Gradients against finite differences of an independent float64 forward pass, for every
// activation × loss pair the API allows, on seeded random inputs in [−2, 2].
import { describe, expect, it } from 'vitest';
import type { ActivationName, LossName } from '../src/backends/backend.js';
import { Model } from '../src/model/model.js';
import { Random } from '../src/random.js';
import type { DenseSpec, ModelSpec } from '../src/spec.js';
import { BACKENDS } from './backends.js';

const EPS = 1e-7;

/**
 * Float64 loss of the model spec at parameters `p` (arena layout: all W, then all b); with row
 * weights w, Σ wᵢ·Lᵢ over the rows (Keras's sum over the batch size).
 */
function referenceLoss(spec: ModelSpec, p: Float64Array, x: number[][], y: number[][], w?: number[]): number {
  const dims = [spec.inputs, ...spec.layers.map((l) => (l as DenseSpec).units)];
  const wOff: number[] = [], bOff: number[] = [];
  let off = 0;
  for (let l = 0; l < spec.layers.length; l++) { wOff.push(off); off += dims[l] * dims[l + 1]; }
  for (let l = 0; l < spec.layers.length; l++) { bOff.push(off); off += dims[l + 1]; }
  let total = 0;
  for (let s = 0; s < x.length; s++) {
    let a = x[s];
    (spec.layers as DenseSpec[]).forEach((layer, l) => {
      const z = Array.from({ length: dims[l + 1] }, (_, j) => {
        let v = p[bOff[l] + j];
        for (let i = 0; i < dims[l]; i++) v += a[i] * p[wOff[l] + i * dims[l + 1] + j];
        return v;
      });
      const alpha = layer.alpha ?? 0.01;
      switch (layer.activation) {
        case 'sigmoid': a = z.map((v) => 1 / (1 + Math.exp(-v))); break;
        case 'tanh': a = z.map(Math.tanh); break;
        case 'relu': a = z.map((v) => Math.max(0, v)); break;
        case 'leakyRelu': a = z.map((v) => (v > 0 ? v : alpha * v)); break;
        case 'softmax': {
          const mx = Math.max(...z), e = z.map((v) => Math.exp(v - mx)), sum = e.reduce((q, r) => q + r, 0);
          a = e.map((v) => v / sum);
          break;
        }
        default: a = z;
      }
    });
    const t = y[s], n = a.length, d = spec.huberDelta ?? 1;
    let L: number;
    if (spec.loss === 'mse') L = a.reduce((q, v, j) => q + (v - t[j]) ** 2, 0) / n;
    else if (spec.loss === 'huber') L = a.reduce((q, v, j) => { const e = Math.abs(v - t[j]); return q + (e <= d ? 0.5 * e * e : d * (e - 0.5 * d)); }, 0) / n;
    else if (spec.loss === 'meanAbsoluteError') L = a.reduce((q, v, j) => q + Math.abs(v - t[j]), 0) / n;
    else if (spec.loss === 'binaryCrossEntropy') L = -a.reduce((q, v, j) => q + t[j] * Math.log(v) + (1 - t[j]) * Math.log(1 - v), 0) / n;
    else L = -a.reduce((q, v, j) => q + t[j] * Math.log(Math.max(v, EPS)), 0);
    total += (w ? w[s] : 1) * L;
  }
  return total / x.length;
}

const HIDDEN: ActivationName[] = ['sigmoid', 'tanh', 'relu', 'leakyRelu', 'linear'];
const OUTPUTS: [LossName, ActivationName][] = [
  ['mse', 'linear'], ['mse', 'sigmoid'], ['mse', 'tanh'], ['mse', 'relu'], ['mse', 'leakyRelu'],
  ['binaryCrossEntropy', 'sigmoid'], ['categoricalCrossEntropy', 'softmax'],
  ['huber', 'linear'], ['huber', 'tanh'], ['huber', 'sigmoid'], ['meanAbsoluteError', 'linear'], ['meanAbsoluteError', 'leakyRelu'],
];

function problem(loss: LossName, outputs: number, rows: number, inputs: number, seed: number): { x: number[][]; y: number[][] } {
  const r = new Random(seed);
  const x = Array.from({ length: rows }, () => Array.from({ length: inputs }, () => 4 * r.uniform() - 2));
  const y = Array.from({ length: rows }, () => {
    if (loss === 'categoricalCrossEntropy') {
      const row = new Array<number>(outputs).fill(0);
      row[r.int(outputs)] = 1;
      return row;
    }
    if (loss === 'binaryCrossEntropy') return Array.from({ length: outputs }, () => (r.uniform() < 0.5 ? 0 : 1));
    return Array.from({ length: outputs }, () => 4 * r.uniform() - 2);
  });
  return { x, y };
}

function checkGradients(model: Model, x: number[][], y: number[][], sampleWeight?: number[]): void {
  const spec = model.spec;
  // Random biases: with zero biases a dead ReLU layer puts the next z exactly on a kink, where a
  // finite difference measures the mean of both one-sided slopes.
  const r = new Random(99), params = model.params.data;
  for (let i = 0; i < params.length; i++) if (params[i] === 0) params[i] = r.uniform() - 0.5;
  // the weights as float32, as the loss reads them
  const w = sampleWeight?.map(Math.fround);
  const { loss, grads } = model.gradients(x, y, { sampleWeight });
  const p = Float64Array.from(model.params.data);
  expect(loss).toBeCloseTo(referenceLoss(spec, p, x, y, w), 5);
  const h = 1e-5;
  for (let i = 0; i < p.length; i++) {
    const keep = p[i];
    p[i] = keep + h;
    const up = referenceLoss(spec, p, x, y, w);
    p[i] = keep - h;
    const down = referenceLoss(spec, p, x, y, w);
    p[i] = keep;
    const numeric = (up - down) / (2 * h);
    const tol = 2e-4 + 2e-3 * Math.abs(numeric);
    if (Math.abs(grads[i] - numeric) > tol) {
      throw new Error(`parameter ${i}: backprop ${grads[i]}, finite difference ${numeric} (${JSON.stringify(spec.layers)}, ${spec.loss})`);
    }
  }
}

describe.each(BACKENDS.map((b) => [b.name, b] as const))('gradients vs finite differences on %s', (_name, backend) => {
  for (const [loss, outAct] of OUTPUTS) {
    it.each(HIDDEN)(`${loss} with a ${outAct} output, %s hidden layers`, (hidden) => {
      const outputs = loss === 'categoricalCrossEntropy' ? 4 : 2;
      const spec: ModelSpec = {
        inputs: 5,
        layers: [{ units: 6, activation: hidden, alpha: 0.1 }, { units: 3, activation: hidden, alpha: 0.1 }, { units: outputs, activation: outAct, alpha: 0.2 }],
        loss, optimizer: { type: 'sgd', learningRate: 0.1 }, seed: 7,
      };
      const model = new Model(spec, backend);
      const { x, y } = problem(loss, outputs, 7, 5, 11);
      checkGradients(model, x, y);
    });
  }

  // huber's delta small enough that the outputs fall on both sides of it
  it.each([0.3, 1, 2.5])('huber with delta %s', (huberDelta) => {
    const spec: ModelSpec = {
      inputs: 4, layers: [{ units: 5, activation: 'tanh' }, { units: 3, activation: 'linear' }],
      loss: 'huber', huberDelta, optimizer: { type: 'sgd', learningRate: 0.1 }, seed: 5,
    };
    const { x, y } = problem('huber', 3, 8, 4, 13);
    checkGradients(new Model(spec, backend), x, y);
  });

  // per-row weights (0 included): the loss and every gradient are the weighted sums
  for (const [loss, outAct] of OUTPUTS.filter(([, a]) => a === 'linear' || a === 'sigmoid' || a === 'softmax')) {
    it(`${loss} with a ${outAct} output, with sample weights`, () => {
      const outputs = loss === 'categoricalCrossEntropy' ? 4 : 2;
      const spec: ModelSpec = {
        inputs: 5, layers: [{ units: 6, activation: 'tanh' }, { units: outputs, activation: outAct }],
        loss, optimizer: { type: 'sgd', learningRate: 0.1 }, seed: 7,
      };
      const { x, y } = problem(loss, outputs, 7, 5, 17);
      checkGradients(new Model(spec, backend), x, y, [0.5, 2, 0, 1.3, 3, 0.1, 1]);
    });
  }

  it('a deeper network (4 hidden layers, mixed activations)', () => {
    const spec: ModelSpec = {
      inputs: 3,
      layers: [
        { units: 8, activation: 'tanh' }, { units: 7, activation: 'leakyRelu', alpha: 0.05 },
        { units: 6, activation: 'sigmoid' }, { units: 5, activation: 'relu' }, { units: 3, activation: 'softmax' },
      ],
      loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 1e-3 }, seed: 3,
    };
    const model = new Model(spec, backend);
    const { x, y } = problem('categoricalCrossEntropy', 3, 9, 3, 5);
    checkGradients(model, x, y);
  });
});
