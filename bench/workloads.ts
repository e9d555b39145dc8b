// The benchmark workloads (bench/README.md): model shapes, optimizers and the synthetic data they train on. Every
// system (deltaprop backends and peers) reads its configuration from here, so that a row in the
// results table always means the same work.
import { Random, type LayerSpec, type ModelSpec } from '../src/index.js';

export type TrainWorkloadName = 'mnist-mlp' | 'wide-mlp' | 'tiny-xor';
/** The Fashion-MNIST runs: epochs over the real data, test accuracy after each. */
export type FashionName = 'fashion' | 'fashion-regularized';
export const FASHION: FashionName[] = ['fashion', 'fashion-regularized'];
export const isFashion = (w: string): w is FashionName => (FASHION as string[]).includes(w);
export type WorkloadName = TrainWorkloadName | FashionName | 'sgemm' | 'infer';
export const WORKLOADS: WorkloadName[] = ['mnist-mlp', 'wide-mlp', 'tiny-xor', 'fashion', 'fashion-regularized', 'sgemm', 'infer'];

export interface TrainWorkload {
  name: TrainWorkloadName | FashionName;
  /** Layer widths, input first: [784, 128, 10]. */
  sizes: number[];
  hidden: 'relu' | 'tanh';
  output: 'softmax' | 'sigmoid';
  loss: 'categoricalCrossEntropy' | 'binaryCrossEntropy';
  optimizer: 'sgd' | 'adam';
  lr: number;
  batch: number;
  /**
   * After each hidden layer, batch normalization and dropout at this rate: the hidden dense layer
   * is linear and the batch normalization applies the activation (PyTorch's Linear → BatchNorm1d →
   * ReLU → Dropout), with Keras's momentum 0.99 and epsilon 1e-3 (PyTorch: momentum 0.01, eps 1e-3).
   */
  regularized?: { dropout: number };
  /** Epochs of a full run (Fashion-MNIST; default: the suite's --epochs, 10). */
  epochs?: number;
}

export const TRAIN_WORKLOADS: Record<TrainWorkloadName | FashionName, TrainWorkload> = {
  'mnist-mlp': { name: 'mnist-mlp', sizes: [784, 128, 10], hidden: 'relu', output: 'softmax', loss: 'categoricalCrossEntropy', optimizer: 'sgd', lr: 0.1, batch: 64 },
  'wide-mlp': { name: 'wide-mlp', sizes: [784, 512, 512, 10], hidden: 'relu', output: 'softmax', loss: 'categoricalCrossEntropy', optimizer: 'adam', lr: 1e-3, batch: 256 },
  'tiny-xor': { name: 'tiny-xor', sizes: [2, 8, 1], hidden: 'tanh', output: 'sigmoid', loss: 'binaryCrossEntropy', optimizer: 'sgd', lr: 0.5, batch: 4 },
  fashion: { name: 'fashion', sizes: [784, 256, 128, 10], hidden: 'relu', output: 'softmax', loss: 'categoricalCrossEntropy', optimizer: 'adam', lr: 1e-3, batch: 128 },
  'fashion-regularized': {
    name: 'fashion-regularized', sizes: [784, 512, 512, 10], hidden: 'relu', output: 'softmax', loss: 'categoricalCrossEntropy', optimizer: 'adam',
    lr: 1e-3, batch: 128, regularized: { dropout: 0.2 }, epochs: 20,
  },
};

export const SEED = 20240905;

/** The deltaprop model spec of a workload. */
export function modelSpec(w: TrainWorkload, seed = SEED): ModelSpec {
  const n = w.sizes.length - 1, reg = w.regularized;
  return {
    inputs: w.sizes[0],
    layers: w.sizes.slice(1).flatMap((units, i): LayerSpec[] => {
      if (i === n - 1 || !reg) return [{ units, activation: i === n - 1 ? w.output : w.hidden }];
      return [{ units, activation: 'linear', init: 'he' }, { type: 'batchNormalization', activation: w.hidden }, { type: 'dropout', rate: reg.dropout }];
    }),
    loss: w.loss,
    optimizer: { type: w.optimizer, learningRate: w.lr },
    seed,
  };
}

/**
 * A pool of training rows that a timed run cycles through: x (rows, in) and one-hot (or 0/1)
 * targets y (rows, out). Random uniform inputs and random labels (bench/README.md); the XOR truth table
 * for tiny-xor. Sized to a few MB, with enough batches that per-call overhead of a run is spread
 * over many steps (tiny-xor steps take about a microsecond).
 */
export interface Pool {
  x: Float32Array;
  y: Float32Array;
  rows: number;
  batches: number;
  /** Class index per row (for peers that take labels), or the 0/1 target for one output. */
  labels: Int32Array;
}

export function makePool(w: TrainWorkload, seed = SEED): Pool {
  const inp = w.sizes[0], out = w.sizes[w.sizes.length - 1];
  const batches = Math.min(1024, Math.max(4, Math.floor((1 << 20) / (w.batch * inp))));
  const rows = batches * w.batch;
  const x = new Float32Array(rows * inp), y = new Float32Array(rows * out), labels = new Int32Array(rows);
  const rng = new Random(seed);
  for (let r = 0; r < rows; r++) {
    if (w.name === 'tiny-xor') {
      const a = r & 1, b = (r >> 1) & 1; // each batch of 4 is the whole truth table
      x[r * 2] = a;
      x[r * 2 + 1] = b;
      labels[r] = a ^ b;
      y[r] = a ^ b;
      continue;
    }
    for (let j = 0; j < inp; j++) x[r * inp + j] = rng.uniform();
    labels[r] = rng.int(out);
    y[r * out + labels[r]] = 1;
  }
  return { x, y, rows, batches, labels };
}

/** One GEMM problem: c (m,n) = op(a) (m,k) · op(b) (k,n). */
export interface GemmShape {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Where it comes from: 'square' or e.g. 'wide-mlp L2 dx'. */
  origin: string;
}

export function shapeLabel(s: GemmShape): string {
  return `${s.transA ? 'T' : 'N'}${s.transB ? 'T' : 'N'} ${s.m}x${s.n}x${s.k}`;
}

/**
 * The GEMMs of one training step of each MLP workload (all three transpose cases: forward
 * x·W (NN), dW = xᵀ·dz (TN), dx = dz·Wᵀ (NT, not for the first layer)), and the squares.
 */
export function gemmShapes(quick: boolean): GemmShape[] {
  const squares = quick ? [64, 128, 256] : [64, 128, 256, 512, 1024, 2048];
  const out: GemmShape[] = squares.map((n) => ({ m: n, n, k: n, transA: false, transB: false, origin: 'square' }));
  const seen = new Set(out.map(shapeLabel));
  const from: (TrainWorkloadName | FashionName)[] = quick ? ['mnist-mlp'] : ['mnist-mlp', 'wide-mlp', 'fashion'];
  for (const name of from) {
    const w = TRAIN_WORKLOADS[name];
    for (let l = 0; l + 1 < w.sizes.length; l++) {
      const inp = w.sizes[l], units = w.sizes[l + 1], m = w.batch;
      const cand: GemmShape[] = [
        { m, n: units, k: inp, transA: false, transB: false, origin: `${name} L${l + 1} forward` },
        { m: inp, n: units, k: m, transA: true, transB: false, origin: `${name} L${l + 1} dW` },
      ];
      if (l > 0) cand.push({ m, n: inp, k: units, transA: false, transB: true, origin: `${name} L${l + 1} dx` });
      for (const s of cand) {
        if (seen.has(shapeLabel(s))) continue;
        seen.add(shapeLabel(s));
        out.push(s);
      }
    }
  }
  return out;
}

/** Floating-point operations of one GEMM (a multiply-add counts two). */
export const gemmFlops = (s: GemmShape): number => 2 * s.m * s.n * s.k;
