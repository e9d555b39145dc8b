// The benchmark's steady-state target: a training step allocates nothing, so heap and RSS stay flat
// over 1,000 steps. Measured here for the bench's targets table and asserted by
// test/steady-state.test.ts on every backend.
import { PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Model, Random, type Backend, type ModelSpec } from '../src/index.js';

/** A collection on demand (a flag set at run time takes effect for a new context's global). */
export function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export interface SteadyState {
  steps: number;
  /** Growth over the measured steps, after a full collection on both sides (bytes). */
  heapRetained: number;
  rssGrowth: number;
  externalGrowth: number;
  /**
   * JS-heap bytes allocated per step in the quietest window of 100 steps without a collection: a
   * buffer made every step shows in every window, while other code sharing the isolate (a test
   * runner's messages, timers) adds to odd windows only.
   */
  garbagePerStep: number;
  /** Windows of 100 steps without a collection (the garbage figure's sample). */
  cleanWindows: number;
  /** Mean training loss of the first and the last window (it must fall: the steps are real). */
  firstLoss: number;
  lastLoss: number;
}

const nextTick = (): Promise<void> => new Promise((r) => setImmediate(r));
const IN = 128;

/**
 * 1,000 steps (10 `fit` epochs of 100 batches of 32) of a 128-64-32-10 ReLU net with Adam, after
 * as many for warm-up: three layers so the dx path runs, Adam so the optimizer state is in play,
 * small enough for the js reference. A batch-sized buffer made or leaked per step would be 16 KB
 * (32 × 128 floats): 16 MB over the run.
 */
export async function steadyState(backend: Backend): Promise<SteadyState> {
  const gc = exposeGc();
  const spec: ModelSpec = {
    inputs: IN,
    layers: [{ units: 64, activation: 'relu' }, { units: 32, activation: 'relu' }, { units: 10, activation: 'softmax' }],
    loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 1e-3 }, seed: 1,
  };
  const model = new Model(spec, backend);
  const batch = 32, batches = 100, rows = batch * batches;
  const rng = new Random(2);
  const xd = new Float32Array(rows * IN), yd = new Float32Array(rows * 10);
  for (let i = 0; i < xd.length; i++) xd[i] = rng.uniform();
  for (let r = 0; r < rows; r++) yd[r * 10 + rng.int(10)] = 1;
  const x = { data: xd, shape: [rows, IN] as [number, number] }, y = { data: yd, shape: [rows, 10] as [number, number] };
  const epoch = () => model.fit(x, y, { epochs: 1, batchSize: batch, shuffle: false });
  for (let i = 0; i < 10; i++) await epoch(); // warm-up: JIT, batch plans, optimizer state

  const collections: number[] = []; // start times, on the performance.now() clock
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) collections.push(e.startTime);
  });
  observer.observe({ entryTypes: ['gc'] });
  gc();
  await nextTick();
  const before = process.memoryUsage();
  // Each window starts from an empty young generation: the heap growth of a window without a
  // collection is what its 100 steps (and one fit call's bookkeeping) allocated.
  const perStep: number[] = [];
  const losses: number[] = [];
  for (let w = 0; w < 10; w++) {
    gc();
    const t0 = performance.now();
    const h0 = process.memoryUsage().heapUsed;
    const history = await epoch();
    const grown = process.memoryUsage().heapUsed - h0;
    const t1 = performance.now();
    await nextTick(); // gc entries are delivered asynchronously
    await nextTick();
    if (!collections.some((t) => t > t0 && t < t1)) perStep.push(grown / batches);
    losses.push(history.epochs[0].loss);
  }
  observer.disconnect();
  gc();
  await nextTick();
  const after = process.memoryUsage();
  return {
    steps: 10 * batches,
    heapRetained: after.heapUsed - before.heapUsed,
    rssGrowth: after.rss - before.rss,
    externalGrowth: after.external - before.external,
    garbagePerStep: perStep.length ? Math.min(...perStep) : NaN,
    cleanWindows: perStep.length,
    firstLoss: losses[0],
    lastLoss: losses[losses.length - 1],
  };
}

/**
 * The limits the test asserts and the bench reports. Heap 256 KB: compiled code and a test
 * runner's own objects move it by up to ~200 KB, while a leaked small object per step (≥ 256
 * bytes) reaches it. RSS 8 MB and external 1 MB: half of one leaked batch buffer per step (16 MB)
 * and above the page-level noise seen (up to ~4 MB of RSS). Garbage 8 KB a step: boxing float
 * arguments to kernels costs a few hundred bytes to a few KB, a batch-sized buffer 16 KB.
 */
export const STEADY_LIMITS = { heapRetained: 256 * 1024, rssGrowth: 8 * 1024 * 1024, externalGrowth: 1024 * 1024, garbagePerStep: 8192 };

export function steadyOk(s: SteadyState): boolean {
  return s.heapRetained < STEADY_LIMITS.heapRetained && s.rssGrowth < STEADY_LIMITS.rssGrowth
    && s.externalGrowth < STEADY_LIMITS.externalGrowth && s.cleanWindows > 0 && s.garbagePerStep < STEADY_LIMITS.garbagePerStep
    && s.lastLoss < s.firstLoss;
}
