// Timing: warm up, size one repetition to a target duration, then let tinybench run the
// repetitions and report the median and the spread. Work per repetition is counted by the caller
// (samples, or floating-point operations), so rates are work / median time.
import { Bench } from 'tinybench';

export interface TimingOptions {
  /** Repetitions measured after warm-up. */
  reps: number;
  /** Seconds one repetition should take (a repetition is `units` calls of the unit of work). */
  targetSeconds: number;
}

export interface Rate {
  /** Work per second at the median repetition time. */
  median: number;
  /** Work per second of the slowest and the fastest repetition. */
  min: number;
  max: number;
  reps: number;
  /** Units of work per repetition. */
  units: number;
}

/**
 * Measures `run(units)` (which does `units` units of work, each worth `workPerUnit`): one timed
 * warm-up unit (which also compiles/JITs) sizes the repetition, a second warm-up at that size,
 * then `reps` repetitions.
 */
export async function measure(run: (units: number) => unknown, workPerUnit: number, opts: TimingOptions): Promise<Rate> {
  await run(1); // first call: JIT, lazy allocations, thread-pool start
  const t0 = performance.now();
  await run(1);
  const one = Math.max((performance.now() - t0) / 1000, 1e-7);
  const units = Math.max(1, Math.round(opts.targetSeconds / one));
  // Slow systems (a tfjs-cpu step of wide-mlp takes over a second): fewer repetitions, same median.
  const reps = one > 2 * opts.targetSeconds ? Math.min(opts.reps, 3) : opts.reps;
  // A repetition of one slow unit has been warmed up twice already.
  const bench = new Bench({ iterations: reps, time: 0, warmup: units > 1, warmupIterations: 1, warmupTime: 0, throws: true });
  bench.add('run', async () => {
    await run(units);
  });
  await bench.run();
  const r = bench.tasks[0].result;
  if (!r || !('latency' in r)) throw new Error(`timing failed: ${r && 'error' in r ? r.error.message : 'no result'}`);
  const work = units * workPerUnit;
  const perMs = (ms: number): number => (work / ms) * 1000;
  return { median: perMs(r.latency.p50), min: perMs(r.latency.max), max: perMs(r.latency.min), reps: r.latency.samplesCount, units };
}
