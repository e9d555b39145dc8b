// deltaprop/infer's Predictor folds each batch normalization into the linear dense layer before it
// (and drops dropout, the identity outside training), so that serving runs dense layers only. The
// folded predictions must equal the full Model's (dense, then batchNormInference) within the sum of
// both computations' float32 rounding bounds, on every backend; layers that cannot be folded are
// refused with a message naming the layer and why.
import { describe, expect, it } from 'vitest';
import { Model, modelToBytes, type ModelSpec } from '../src/index.js';
import { Predictor, predictorFromBytes } from '../src/infer/node.js';
import { BACKENDS } from './backends.js';
import { rng } from './rng.js';

const U = 2 ** -24; // float32's unit roundoff

const SPEC: ModelSpec = {
  inputs: 6,
  layers: [
    { units: 5, activation: 'linear' },
    { type: 'batchNormalization', activation: 'relu', epsilon: 1e-3 },
    { type: 'dropout', rate: 0.3 },
    { units: 4, activation: 'linear' },
    { type: 'batchNormalization', activation: 'tanh', epsilon: 0.01 },
    { units: 3, activation: 'linear' },
  ],
  loss: 'mse',
  optimizer: { type: 'sgd', learningRate: 0.1 },
  seed: 5,
};

interface Dense { inp: number; out: number; w: Float32Array; b: Float32Array }
interface Norm { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array; eps: number }

/**
 * Per output, a bound on |folded − unfolded| for the rows of x: each side's error against the exact
 * (float64) unfolded network, summed. A dense layer of fan-in k computed in float32 (any summation
 * order, then the bias) is off by at most (k + 1)·u·(Σ|x||w| + |b|); the batch normalization's few
 * roundings (subtract, scale, shift) and the fold's (w·s, (b − mean)·s + beta) add at most
 * 4u·(|s|·(|y| + |mean|) + |beta|) each; so a folded unit's two sides differ by at most
 * 2(k + 4)·u·(|s|·(Σ|x||w| + |b| + |mean|) + |beta|), plus the error its inputs carried, times
 * |w|·|s|. relu, tanh and linear are 1-Lipschitz, so errors pass through them unscaled; dropout is
 * the identity. u = 2^-24.
 */
function foldBound(x: Float64Array, rows: number, dense: Dense[], norms: (Norm | null)[]): Float64Array {
  const outs = dense[dense.length - 1].out, bound = new Float64Array(rows * outs);
  for (let r = 0; r < rows; r++) {
    let h = Array.from(x.subarray(r * dense[0].inp, (r + 1) * dense[0].inp)), e = h.map(() => 0);
    dense.forEach((L, l) => {
      const nh: number[] = [], ne: number[] = [], k = L.inp, N = norms[l];
      for (let j = 0; j < L.out; j++) {
        let y = L.b[j], mag = Math.abs(L.b[j]), carried = 0;
        for (let i = 0; i < k; i++) {
          y += h[i] * L.w[i * L.out + j];
          mag += (Math.abs(h[i]) + e[i]) * Math.abs(L.w[i * L.out + j]);
          carried += e[i] * Math.abs(L.w[i * L.out + j]);
        }
        if (!N) {
          nh.push(y);
          ne.push(carried + 2 * (k + 2) * U * mag);
          continue;
        }
        const s = N.gamma[j] / Math.sqrt(N.variance[j] + N.eps);
        const z = (y - N.mean[j]) * s + N.beta[j];
        nh.push(z);
        ne.push(carried * Math.abs(s) + 2 * (k + 4) * U * (Math.abs(s) * (mag + Math.abs(N.mean[j])) + Math.abs(N.beta[j])));
      }
      // the activations of this net: relu after the first normalization, tanh after the second, linear last
      h = nh.map((v) => (l === 0 ? Math.max(v, 0) : l === 1 ? Math.tanh(v) : v));
      e = ne;
    });
    for (let j = 0; j < outs; j++) bound[r * outs + j] = e[j];
  }
  return bound;
}

describe.each(BACKENDS.map((b) => [b.name, b] as const))('Predictor folds batch normalization on %s', (_name, backend) => {
  it('folded predictions equal the full model\'s within both sides\' float32 rounding bounds, at every batch size', () => {
    const model = new Model(SPEC, backend);
    const r = rng(11);
    const dense = model.getWeights();
    // random gamma, beta (the params after the dense layers' weights and biases) and running statistics
    const denseCount = dense.reduce((n, L) => n + L.w.length + L.b.length, 0);
    const params = model.params.data;
    for (let i = denseCount; i < params.length; i++) params[i] = i % 2 === 0 ? r() * 4 - 2 : r() * 2 - 1;
    const stats = model.getRunningStats();
    // [mean (5), var (5)] of the first normalization, then [mean (4), var (4)] of the second
    for (let i = 0; i < stats.length; i++) stats[i] = i < 5 || (i >= 10 && i < 14) ? r() * 2 - 1 : 0.05 + r() * 3;
    model.setRunningStats(stats);
    const rows = 37, x = Float32Array.from({ length: rows * 6 }, () => r() * 4 - 2);
    const X = { data: x, shape: [rows, 6] as [number, number] };
    const unfolded = model.predict(X).data;

    const p = predictorFromBytes(modelToBytes(model), backend);
    // the bound, from the model's own float32 parameters
    const all = model.params.data, st = model.getRunningStats(), widths = [5, 4];
    let at = denseCount, sAt = 0;
    const norms: (Norm | null)[] = [0, 1, 2].map((l) => {
      if (l === 2) return null;
      const n = widths[l], eps = Math.fround((SPEC.layers[l === 0 ? 1 : 4] as { epsilon: number }).epsilon);
      const out = { gamma: all.slice(at, at + n), beta: all.slice(at + n, at + 2 * n), mean: st.slice(sAt, sAt + n), variance: st.slice(sAt + n, sAt + 2 * n), eps };
      at += 2 * n;
      sAt += 2 * n;
      return out;
    });
    const layers = dense.map((L, l) => ({ inp: [6, 5, 4][l], out: [5, 4, 3][l], w: L.w, b: L.b }));
    const bound = foldBound(Float64Array.from(x), rows, layers, norms);
    // the statistics are not the initial ones: the fold has something to do
    expect(Math.max(...norms[0]!.mean.map(Math.abs))).toBeGreaterThan(0.1);
    for (const batch of [1, 4, 5, 256]) {
      const folded = p.predict(X, batch).data;
      let worst = 0;
      for (let i = 0; i < folded.length; i++) {
        const diff = Math.abs(folded[i] - unfolded[i]);
        worst = Math.max(worst, diff / bound[i]);
        expect(diff, `batch ${batch}, output ${i}: ${folded[i]} vs ${unfolded[i]}, bound ${bound[i]}`).toBeLessThanOrEqual(bound[i]);
      }
      expect(worst).toBeLessThanOrEqual(1);
    }
  });

  it('layers that cannot be folded are refused, naming the layer and why', () => {
    const refused = (layers: ModelSpec['layers'], message: RegExp) => {
      const spec: ModelSpec = { ...SPEC, layers };
      const bytes = modelToBytes(new Model(spec, backend));
      expect(() => predictorFromBytes(bytes, backend)).toThrow(message);
    };
    refused([{ units: 5, activation: 'relu' }, { type: 'batchNormalization' }, { units: 3, activation: 'linear' }],
      /cannot run layer 2 \(batchNormalization\): a batch normalization folds only into a dense layer with linear activation, and layer 1 applies relu; load the model with the full entry/);
    refused([{ type: 'batchNormalization' }, { units: 3, activation: 'linear' }],
      /cannot run layer 1 \(batchNormalization\): a batch normalization folds only into a dense layer directly before it/);
    refused([{ units: 5, activation: 'linear' }, { type: 'layerNormalization' }, { units: 3, activation: 'linear' }],
      /cannot run layer 2 \(layerNormalization\): a layerNormalization layer depends on each row's own statistics/);
  });

  it('bad batch-normalization parts are refused by name', () => {
    const spec: ModelSpec = { ...SPEC, layers: [{ units: 2, activation: 'linear' }, { type: 'batchNormalization' }, { units: 1, activation: 'linear' }] };
    const dense = { w: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], b: [0, 0] }, last = { w: [1, 1], b: [0] };
    const bn = { gamma: [1, 1], beta: [0, 0], runMean: [0, 0], runVar: [1, 1] };
    expect(() => new Predictor(spec, [dense, bn, last], backend)).not.toThrow();
    expect(() => new Predictor(spec, [dense, { ...bn, runVar: [1, -1] }, last], backend)).toThrow(/layer 2 runVar\[1\] \+ epsilon must be > 0/);
    expect(() => new Predictor(spec, [dense, { ...bn, gamma: [1, NaN] }, last], backend)).toThrow(/layer 2 gamma\[1\] is not finite/);
    expect(() => new Predictor(spec, [dense, { ...bn, beta: [0] }, last], backend)).toThrow(/layer 2 beta needs 2 values, got 1/);
    expect(() => new Predictor(spec, [dense, {}, last], backend)).toThrow(/layer 2 gamma needs 2 values, got none/);
  });
});
