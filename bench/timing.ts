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

/**
 * The speed ratio of two ways of running the same work (all threads against one, deltaprop
 * against a peer), measured in paired rounds: each round times one repetition of each, in
 * alternating order, so that both see the same state of a shared machine (a neighbour that takes
 * a core for a few seconds slows both, not whichever happened to run then), with `settleMs` of
 * rest after each. Returns the median of the per-round ratios (time of runs[1] over time of
 * runs[0]: how much faster runs[0] is) and the rounds themselves.
 */
export async function pairedRatio(runs: [(units: number) => unknown, (units: number) => unknown], opts: TimingOptions,
  rounds = 2 * opts.reps + 1, settleMs = 0): Promise<{ median: number; ratios: number[] }> {
  const time = async (i: 0 | 1, units: number): Promise<number> => {
    const t0 = performance.now();
    await runs[i](units);
    return performance.now() - t0;
  };
  await runs[0](1); // warm-up of each
  await runs[1](1);
  const one = Math.max(await time(1, 1) / 1000, 1e-7); // runs[1], the slower one, sizes a repetition
  const units = Math.max(1, Math.round(opts.targetSeconds / one));
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const ms: [number, number] = [0, 0];
    for (const i of (r % 2 ? [1, 0] : [0, 1]) as (0 | 1)[]) {
      ms[i] = await time(i, units);
      // let the side just timed go idle: a peer's threads that spin after a call (OpenBLAS's do,
      // for up to a few hundred milliseconds) would take the cores from the next side
      if (settleMs > 0) await new Promise((done) => setTimeout(done, settleMs));
    }
    ratios.push(ms[1] / ms[0]);
  }
  const sorted = [...ratios].sort((a, b) => a - b);
  return { median: sorted[sorted.length >> 1], ratios };
}

/**
 * `measure` for a peer in another process that times itself (`time(units)` resolves to the seconds
 * it took, without the pipe's round trip): the same warm-ups and sizing, the median of `reps`.
 */
export async function measureTimed(time: (units: number) => Promise<number>, workPerUnit: number, opts: TimingOptions): Promise<Rate> {
  await time(1);
  const one = Math.max(await time(1), 1e-7);
  const units = Math.max(1, Math.round(opts.targetSeconds / one));
  const reps = one > 2 * opts.targetSeconds ? Math.min(opts.reps, 3) : opts.reps;
  if (units > 1) await time(units);
  const secs: number[] = [];
  for (let r = 0; r < reps; r++) secs.push(Math.max(await time(units), 1e-9));
  const sorted = [...secs].sort((a, b) => a - b);
  const h = sorted.length >> 1;
  const med = sorted.length % 2 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
  const work = units * workPerUnit;
  return { median: work / med, min: work / sorted[sorted.length - 1], max: work / sorted[0], reps, units };
}
