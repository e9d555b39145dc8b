// deltaprop itself on one backend: training workloads through the public Model API (fit), the
// backend's gemm, and the checks against the js reference.
import { Model, Random, type Backend, type Buf, type Matrix } from '../../src/index.js';
import { gemmFlops, modelSpec, type GemmShape, type Pool, type TrainWorkload } from '../workloads.js';
import type { FashionData, FashionRun, TrainSystem } from './types.js';

const rowsOf = (data: Float32Array, from: number, count: number, cols: number): Matrix =>
  ({ data: data.subarray(from * cols, (from + count) * cols), shape: [count, cols] });

/**
 * A unit of work is one `fit` epoch over the pool (pool.batches steps), or over one batch on the
 * js reference, whose wide-mlp step takes seconds.
 */
export function deltapropTrainer(backend: Backend, w: TrainWorkload, pool: Pool): TrainSystem {
  const inp = w.sizes[0], out = w.sizes[w.sizes.length - 1];
  const model = new Model(modelSpec(w), backend);
  const rows = backend.name === 'js' && w.name !== 'tiny-xor' ? w.batch : pool.rows;
  const x = rowsOf(pool.x, 0, rows, inp), y = rowsOf(pool.y, 0, rows, out);
  const cx = rowsOf(pool.x, 0, w.batch, inp), cy = rowsOf(pool.y, 0, w.batch, out);
  return {
    system: `deltaprop-${backend.name}`,
    samplesPerUnit: rows,
    checkLoss: () => model.evaluate(cx, cy, w.batch).loss,
    trainOnCheck: async (steps) => {
      await model.fit(cx, cy, { epochs: steps, batchSize: w.batch, shuffle: false });
    },
    run: async (units) => {
      await model.fit(x, y, { epochs: units, batchSize: w.batch, shuffle: false });
    },
  };
}

export interface ParityResult {
  /** Largest |output − reference output| on the check batch after the steps. */
  maxOutputDiff: number;
  /** Relative difference of the mean loss after the steps. */
  lossRelDiff: number;
  steps: number;
  ok: boolean;
}

/**
 * Trains the same seeded model for a few steps on `backend` and on the js reference and compares
 * the outputs on the first batch. Outputs (probabilities), not single weights: Adam's first
 * steps move a weight by ±lr whatever the size of its gradient, so a gradient near zero can flip
 * sign between two correct float orders while the outputs still agree closely.
 */
export async function parityWithReference(backend: Backend, reference: Backend, w: TrainWorkload, pool: Pool,
  steps = 3): Promise<ParityResult> {
  const results = [];
  for (const b of [backend, reference]) results.push(await trainedModel(b, w, pool, steps));
  let maxOutputDiff = 0;
  for (let i = 0; i < results[0].out.length; i++) {
    maxOutputDiff = Math.max(maxOutputDiff, Math.abs(results[0].out[i] - results[1].out[i]));
  }
  const lossRelDiff = Math.abs(results[0].loss - results[1].loss) / Math.max(Math.abs(results[1].loss), 1e-12);
  return { maxOutputDiff, lossRelDiff, steps, ok: maxOutputDiff <= 2e-3 && lossRelDiff <= 1e-3 && Number.isFinite(results[0].loss) };
}

/** A fresh seeded model after `steps` steps on the pool's first batches: outputs and loss on the first batch. */
async function trainedModel(b: Backend, w: TrainWorkload, pool: Pool, steps: number): Promise<{ out: Float32Array; loss: number }> {
  const inp = w.sizes[0], out = w.sizes[w.sizes.length - 1];
  const x = rowsOf(pool.x, 0, steps * w.batch, inp), y = rowsOf(pool.y, 0, steps * w.batch, out);
  const cx = rowsOf(pool.x, 0, w.batch, inp), cy = rowsOf(pool.y, 0, w.batch, out);
  const model = new Model(modelSpec(w), b);
  await model.fit(x, y, { epochs: 1, batchSize: w.batch, shuffle: false });
  return { out: model.predict(cx, w.batch).data, loss: model.evaluate(cx, cy, w.batch).loss };
}

/** The outputs of `trainedModel` (for bitwise comparisons across thread counts). */
export async function trainedOutputs(b: Backend, w: TrainWorkload, pool: Pool, steps = 3): Promise<Float32Array> {
  return (await trainedModel(b, w, pool, steps)).out;
}

/** Fashion-MNIST through `fit`: seconds per epoch from fit's own epoch timing, test accuracy after each. */
export async function deltapropFashion(backend: Backend, w: TrainWorkload, data: FashionData, epochs: number): Promise<FashionRun> {
  const model = new Model(modelSpec(w), backend);
  const x = { data: data.trainX, shape: [data.trainRows, 784] as [number, number] };
  const tx = { data: data.testX, shape: [data.testRows, 784] as [number, number] };
  const run: FashionRun = { system: `deltaprop-${backend.name}`, epochSeconds: [], testAccuracy: [], trainLoss: [] };
  await model.fit(x, data.trainY, {
    epochs, batchSize: w.batch, shuffle: true,
    onEpochEnd: (logs) => {
      run.epochSeconds.push(logs.seconds);
      run.trainLoss.push(logs.loss);
      run.testAccuracy.push(model.evaluate(tx, data.testY, 1000).accuracy ?? NaN);
    },
  });
  return run;
}

/** Buffers for every GEMM shape of a run, allocated once (the wasm arena never frees). */
export class GemmBuffers {
  readonly a: Buf;
  readonly b: Buf;
  readonly c: Buf;
  constructor(readonly backend: Backend, shapes: GemmShape[]) {
    const most = (f: (s: GemmShape) => number): number => Math.max(...shapes.map(f));
    this.a = backend.alloc(most((s) => s.m * s.k));
    this.b = backend.alloc(most((s) => s.k * s.n));
    this.c = backend.alloc(most((s) => s.m * s.n));
    const rng = new Random(7);
    // a and b are read through views, so filling the whole buffers once serves every shape
    const fill = (buf: Buf): void => {
      const d = buf.data;
      for (let i = 0; i < d.length; i++) d[i] = rng.uniform() * 2 - 1;
    };
    fill(this.a);
    fill(this.b);
  }
}

export interface GemmRunner {
  /** Largest error of 64 sampled entries against a float64 dot product, relative to Σ|a·b|. */
  check(): number;
  run(units: number): void;
  flops: number;
}

export function gemmRunner(bufs: GemmBuffers, s: GemmShape): GemmRunner {
  const { backend } = bufs;
  const a = bufs.a.view(0, s.m * s.k), b = bufs.b.view(0, s.k * s.n), c = bufs.c.view(0, s.m * s.n);
  const call = (): void => backend.gemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, b, 0, c);
  return {
    flops: gemmFlops(s),
    check() {
      bufs.c.data.fill(Number.NaN); // beta = 0 must not read c
      call();
      const A = a.data, B = b.data, C = c.data, rng = new Random(11);
      let worst = 0;
      for (let t = 0; t < 64; t++) {
        const i = rng.int(s.m), j = rng.int(s.n);
        let ref = 0, mag = 0;
        for (let p = 0; p < s.k; p++) {
          const av = s.transA ? A[p * s.m + i] : A[i * s.k + p];
          const bv = s.transB ? B[j * s.k + p] : B[p * s.n + j];
          ref += av * bv;
          mag += Math.abs(av * bv);
        }
        const err = Math.abs(C[i * s.n + j] - ref) / Math.max(mag, 1e-30);
        worst = Math.max(worst, Number.isNaN(err) ? Infinity : err);
      }
      return worst;
    },
    run(units) {
      for (let u = 0; u < units; u++) call();
    },
  };
}
