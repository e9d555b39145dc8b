// Run by test/soak.test.ts in a process of its own (node --expose-gc): trains tiny-xor-sized nets
// on the backend its argument names (native or wasm), prints a progress line ("P …") at every
// sample, so that a hang is seen with where it happened, and last one JSON line ("R …") of memory
// samples.
//   1. `steps` compiled training steps (2-8-1, tanh/sigmoid, Adam, batch 4) through one
//      CompiledStep, RSS and heap sampled every `steps / 20` steps;
//   2. `cycles` models created, fitted for one epoch (16 batches) and dropped, sampled every
//      `cycles / 10`: a model's memory must come back when it is dropped.
import { writeSync } from 'node:fs';
import { ACT, LOSS, OPT, type Backend, type StepHyper } from '../../src/backends/backend.js';
import { loadNativeBackend } from '../../src/backends/native.js';
import { loadWasmBackend } from '../../src/backends/wasm.js';
import { Model } from '../../src/model/model.js';

const [name = 'native', stepsArg = '1000000', cyclesArg = '2000'] = process.argv.slice(2);
const STEPS = Number(stepsArg), CYCLES = Number(cyclesArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const backend: Backend = name === 'wasm' ? await loadWasmBackend() : loadNativeBackend();
if (!backend.compileStep) throw new Error(`${name} has no compiled step`);

interface Sample { at: number; rss: number; heapUsed: number; external: number }
const sample = (at: number, phase: string): Sample => {
  writeSync(1, `P ${phase} ${at}\n`);
  gc();
  const m = process.memoryUsage();
  return { at, rss: m.rss, heapUsed: m.heapUsed, external: m.external };
};

// 1. one compiled step, a million runs
const m = 4, dims = [2, 8, 1], n = 2 * 8 + 8 * 1 + 8 + 1;
const buf = (len: number, f: (i: number) => number = () => 0) => {
  const b = backend.alloc(len);
  for (let i = 0; i < len; i++) b.data[i] = f(i);
  return b;
};
const params = buf(n, (i) => Math.sin(i * 12.9898) * 0.5);
const step = backend.compileStep({
  m, dims, acts: [ACT.tanh, ACT.sigmoid], alphas: [0, 0], loss: LOSS.binaryCrossEntropy,
  x: buf(8, (i) => [0, 0, 0, 1, 1, 0, 1, 1][i]), y: buf(4, (i) => [0, 1, 1, 0][i]),
  outs: [buf(m * 8), buf(m)], deltas: [buf(m * 8), buf(m)], params, grads: buf(n), backup: buf(n), n,
  wOffsets: [0, 16], bOffsets: [24, 32], optimizer: OPT.adam, state1: buf(n), state2: buf(n), decayCount: 24,
});
const h: StepHyper = { lr: 0.01, clipNorm: 0, weightDecay: 0, mu: 0, nesterov: false, beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 1, bc2: 1 };
const stepSamples: Sample[] = [sample(0, 'steps')];
let firstLoss = NaN, b1t = 1, b2t = 1;
const t0 = performance.now();
for (let t = 1; t <= STEPS; t++) {
  b1t *= 0.9;
  b2t *= 0.999;
  h.bc1 = 1 - b1t;
  h.bc2 = 1 - b2t;
  step.run(h);
  if (t === 1) firstLoss = step.loss[0];
  if (t % (STEPS / 20) === 0) stepSamples.push(sample(t, 'steps'));
}
const stepMs = performance.now() - t0;
const lastLoss = step.loss[0];

// 2. models made, fitted and dropped
const rows = 64, x = new Float32Array(rows * 2), y = new Float32Array(rows);
for (let r = 0; r < rows; r++) {
  x[2 * r] = r & 1;
  x[2 * r + 1] = (r >> 1) & 1;
  y[r] = x[2 * r] !== x[2 * r + 1] ? 1 : 0;
}
const X = { data: x, shape: [rows, 2] as [number, number] }, Y = { data: y, shape: [rows, 1] as [number, number] };
const cycleSamples: Sample[] = [sample(0, 'cycles')];
const t1 = performance.now();
for (let c = 1; c <= CYCLES; c++) {
  // a backend per model, as createModel() loads one
  const model = new Model({
    inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
    loss: 'binaryCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: c,
  }, name === 'wasm' ? await loadWasmBackend() : loadNativeBackend());
  await model.fit(X, Y, { epochs: 1, batchSize: 4 });
  if (c % (CYCLES / 10) === 0) {
    // FinalizationRegistry callbacks (wasm buffers, native ids) run after a turn of the loop
    await new Promise((resolve) => setTimeout(resolve, 0));
    cycleSamples.push(sample(c, 'cycles'));
  }
}
const cycleMs = performance.now() - t1;
writeSync(1, `R ${JSON.stringify({ backend: name, steps: STEPS, stepMs, firstLoss, lastLoss, stepSamples, cycles: CYCLES, cycleMs, cycleSamples })}\n`);
