// BENCH.md's steady-state targets, on every backend this machine has: a training step allocates
// nothing (heap and RSS flat over 1,000 steps), and `fit` of wide-mlp never blocks the event loop
// for longer than 50 ms.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../src/model/model.js';
import { Random } from '../src/random.js';
import type { ModelSpec } from '../src/spec.js';
import { BACKENDS } from './backends.js';
import { STEADY_LIMITS, steadyOk, steadyState } from '../bench/steady.js';
import { programBuild } from '../tsup.config.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

function randomData(rows: number, inputs: number, classes: number, seed: number) {
  const rng = new Random(seed);
  const x = new Float32Array(rows * inputs), y = new Float32Array(rows * classes);
  for (let i = 0; i < x.length; i++) x[i] = rng.uniform();
  for (let r = 0; r < rows; r++) y[r * classes + rng.int(classes)] = 1;
  return { x: { data: x, shape: [rows, inputs] as [number, number] }, y: { data: y, shape: [rows, classes] as [number, number] } };
}

describe.each(BACKENDS.map((b) => [b.name, b] as const))('steady state on the %s backend', (_, backend) => {
  it('1,000 training steps: heap, RSS and external memory flat, no per-step buffers', async () => {
    const s = await steadyState(backend); // 128-64-32-10, Adam, batch 32; see bench/steady.ts
    const kb = (b: number): string => `${(b / 1024).toFixed(1)} KB`;
    expect(s.steps).toBe(1000);
    expect(s.lastLoss).toBeLessThan(s.firstLoss);
    expect(s.heapRetained, `JS heap retained by 1,000 steps: ${kb(s.heapRetained)}`).toBeLessThan(STEADY_LIMITS.heapRetained);
    expect(s.externalGrowth, `external (ArrayBuffer) growth: ${kb(s.externalGrowth)}`).toBeLessThan(STEADY_LIMITS.externalGrowth);
    expect(s.rssGrowth, `RSS growth: ${kb(s.rssGrowth)}`).toBeLessThan(STEADY_LIMITS.rssGrowth);
    // the quietest window: a buffer made per step shows in every window, while the test runner's
    // own messages (same isolate) add a few hundred KB to an odd one
    expect(s.cleanWindows, 'windows of 100 steps without a collection').toBeGreaterThan(0);
    expect(s.garbagePerStep, `${s.garbagePerStep.toFixed(0)} bytes of garbage per step`).toBeLessThan(STEADY_LIMITS.garbagePerStep);
    expect(steadyOk(s)).toBe(true);
  }, 60_000);

  // a fit that does not yield blocks for 16 steps or more in every run; a busy host can also
  // deschedule the process once in a while, so the bound must fail three runs in a row
  it('fit of wide-mlp keeps the event loop responsive', { retry: 2, timeout: 60_000 }, async () => {
    // BENCH.md wide-mlp: 784-512-512-10, Adam 1e-3, batch 256. fit yields between batches, so the
    // event loop waits at most for one step (plus a time slice): under 50 ms on native (the
    // target). The js reference takes seconds per step at batch 256; it runs a batch of 16 and
    // shows that fit yields between steps.
    const spec: ModelSpec = {
      inputs: 784,
      layers: [{ units: 512, activation: 'relu' }, { units: 512, activation: 'relu' }, { units: 10, activation: 'softmax' }],
      loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 1e-3 }, seed: 3,
    };
    const batch = backend.name === 'js' ? 16 : 256;
    const model = new Model(spec, backend);
    const { x, y } = randomData(batch * 8, 784, 10, 4);
    const warm = randomData(batch, 784, 10, 5);
    await model.fit(warm.x, warm.y, { epochs: 2, batchSize: batch }); // warm-up
    const steps: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await model.fit(warm.x, warm.y, { epochs: 1, batchSize: batch });
      steps.push(performance.now() - t0);
    }
    const step = steps.sort((a, b) => a - b)[1];

    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    await model.fit(x, y, { epochs: 2, batchSize: batch });
    delay.disable();
    const maxMs = delay.max / 1e6;
    // native: the target, 50 ms. Elsewhere a step can take most of that budget (wasm: about
    // 27 ms, so one slow step and a 10 ms slice would pass it), and the wait is bounded by steps:
    // 16 steps without a yield would be 16 of them, a yield after each is one (4 allows for a
    // loaded machine)
    const bound = backend.name === 'native' ? 50 : Math.max(50, 4 * step + 50);
    expect(maxMs, `event loop blocked for ${maxMs.toFixed(1)} ms (one step takes ${step.toFixed(1)} ms; bound ${bound.toFixed(0)} ms)`).toBeLessThan(bound);
  });
});

const COMPILED = BACKENDS.filter((b) => b.name === 'native' || b.name === 'wasm').map((b) => [b.name] as const);
// (none when the test backends are narrowed to js)
describe.skipIf(COMPILED.length === 0)('the compiled training loop allocates nothing per step', () => {
  // one build of the program for every backend (it takes the backend as its argument)
  const out = join(ROOT, '.tmp', `step-allocation-${process.pid}`);
  beforeAll(async () => {
    // config: false, or tsup also builds every config in tsup.config.ts into the same folder at once
    await build({ ...programBuild, config: false, entry: { 'step-allocation': 'test/programs/step-allocation.ts' }, outDir: out, silent: true });
  }, 60_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it.each(COMPILED)('%s: 20,000 compiled steps through fit leave no sampled allocation in the batch loop', async (name) => {
    // In a process of its own, as an application that trains on one backend: here, after the
    // other backends have trained with the same Model code, its call sites are polymorphic and
    // V8 boxes what it would otherwise keep in registers.
    // What V8 compiles depends on when its background compiles finish: on wasm, one process
    // in eight here, on a loaded machine with compiles delayed, settled on code that boxes a
    // number per step. A cost of the step itself shows in every process, so up to three run.
    const seen: string[] = [];
    let best = Infinity;
    for (let attempt = 0; attempt < 3 && best >= 4; attempt++) {
      const { stdout } = await run(process.execPath, [join(out, 'step-allocation.js'), name], { cwd: ROOT });
      const { bytesPerStep, steps, rounds } = JSON.parse(stdout.trim().split('\n').pop()!);
      expect(steps).toBe(20_000);
      best = Math.min(best, bytesPerStep);
      seen.push(`[${rounds.join(', ')}]`);
    }
    // the quietest round (see the program); a few bytes a step are left for the clock reads
    // between time slices. The loss travels in Float64Arrays, not as a returned number, which
    // V8 boxes (16 B a step) wherever it does not inline the call.
    expect(best, `${best.toFixed(2)} bytes sampled per step in the batch loop (rounds: ${seen.join(' ')})`).toBeLessThan(4);
  }, 120_000);
});
