// The wasm backend on several threads (the threads build on a pool of worker_threads): the same
// bits for any thread count, in kernels, a training run and inference; the threads option and
// DELTAPROP_THREADS; why it runs on one thread; a stopped worker as an error, never a hang.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Backend, Buf } from '../src/backends/backend.js';
import { loadWasmBackend, WasmBackend } from '../src/backends/wasm.js';
import { backendInfo, createModel } from '../src/index.js';
import type { ModelSpec } from '../src/spec.js';
import { rng } from './rng.js';

const THREADS = [1, 2, 3];

async function wasmOn(threads: number): Promise<WasmBackend> {
  const b = await loadWasmBackend(undefined, { threads });
  expect(b.threads, `wasm backend asked for ${threads} threads: ${String(b.threadsReason)}`).toBe(threads);
  return b as WasmBackend;
}

function fill(b: Backend, n: number, seed: number): Buf {
  const buf = b.alloc(n);
  const r = rng(seed);
  for (let i = 0; i < n; i++) buf.data[i] = 4 * r() - 2;
  return buf;
}

/** The first index where two float arrays differ in bits, or -1. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  const i = firstBitDifference(got, want);
  if (i >= 0) expect.fail(`${what}: index ${i}: ${got[i]} vs ${want[i]} (length ${got.length} vs ${want.length})`);
}

describe('wasm threads: kernels', async () => {
  const backends = await Promise.all(THREADS.map(wasmOn));

  // sizes around the split: a few tiles, ragged edges, k above one KC block, every transpose
  const cases: [number, number, number, boolean, boolean][] = [
    [256, 512, 784, false, false], [784, 512, 256, true, false], [256, 784, 512, false, true], [255, 513, 300, true, true],
    [37, 129, 300, false, false], [256, 10, 512, false, false], [5, 1000, 400, false, false], [1000, 8, 200, false, false],
  ];
  it.each(cases)('gemm %i×%i×%i (transA %s, transB %s): the same bits on 1, 2 and 3 threads', (m, n, k, ta, tb) => {
    const outs = backends.map((b) => {
      const a = fill(b, m * k, 1), w = fill(b, k * n, 2), c = fill(b, m * n, 3);
      b.gemm(ta, tb, m, n, k, 0.75, a, w, 0.5, c);
      return c.data.slice();
    });
    for (let t = 1; t < outs.length; t++) expectSameBits(outs[t], outs[0], `${THREADS[t]} threads vs 1`);
  });

  it('denseForward, its packed variant and denseBackward: the same bits on 1, 2 and 3 threads', () => {
    const [m, inp, out] = [256, 300, 200];
    const outs = backends.map((b) => {
      const x = fill(b, m * inp, 4), w = fill(b, inp * out, 5), bias = fill(b, out, 6);
      const y = b.alloc(m * out), y2 = b.alloc(m * out);
      b.denseForward(y, x, w, bias, m, inp, out, 2, 0.01); // relu
      const packed = b.packWeights!(w, inp, out);
      b.denseForwardPacked!(y2, x, w, packed, bias, m, inp, out, 3, 0.01); // tanh
      const dz = fill(b, m * out, 7), dw = b.alloc(inp * out), db = b.alloc(out), dx = b.alloc(m * inp);
      b.denseBackward(dw, db, dx, dz, x, w, m, inp, out, 1 / m, 3, 0.01);
      return [y, y2, dw, db, dx].map((v) => v.data.slice());
    });
    for (let t = 1; t < outs.length; t++) {
      ['y', 'packed y', 'dw', 'db', 'dx'].forEach((name, i) => expectSameBits(outs[t][i], outs[0][i], `${name}, ${THREADS[t]} threads vs 1`));
    }
  });
});

const WIDE: ModelSpec = {
  inputs: 784,
  layers: [{ units: 512, activation: 'relu' }, { units: 512, activation: 'relu' }, { units: 10, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy',
  optimizer: { type: 'adam', learningRate: 1e-3 },
  seed: 7,
};

function dataset(rows: number, inputs: number, classes: number, seed: number): { x: { data: Float32Array; shape: [number, number] }; y: Int32Array } {
  const r = rng(seed);
  const x = new Float32Array(rows * inputs).map(() => r());
  const y = new Int32Array(rows).map(() => Math.floor(r() * classes));
  return { x: { data: x, shape: [rows, inputs] }, y };
}

describe('wasm threads: models', () => {
  it('a wide-mlp training run (784-512-512-10, Adam, batch 256) and 256-row inference: the same bits on 1, 2 and 3 threads', async () => {
    const { x, y } = dataset(768, 784, 10, 11);
    const runs = [];
    for (const threads of THREADS) {
      const model = await createModel(WIDE, { backend: 'wasm', threads });
      expect(model.backend.threads).toBe(threads);
      const h = await model.fit(x, y, { epochs: 2, batchSize: 256, seed: 3 });
      const p = model.predict({ data: x.data.subarray(0, 256 * 784), shape: [256, 784] });
      runs.push({ loss: h.epochs.map((e) => e.loss), weights: model.getWeights(), predicted: p.data.slice() });
      (model.backend as WasmBackend).dispose();
    }
    for (let t = 1; t < runs.length; t++) {
      expect(runs[t].loss, `losses, ${THREADS[t]} threads vs 1`).toEqual(runs[0].loss);
      runs[0].weights.forEach((l, i) => {
        expectSameBits(runs[t].weights[i].w, l.w, `layer ${i} w, ${THREADS[t]} threads vs 1`);
        expectSameBits(runs[t].weights[i].b, l.b, `layer ${i} b, ${THREADS[t]} threads vs 1`);
      });
      expectSameBits(runs[t].predicted, runs[0].predicted, `256-row predict, ${THREADS[t]} threads vs 1`);
    }
  }, 120_000);
});
