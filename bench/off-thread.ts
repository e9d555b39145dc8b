// Off-thread training's cost, in alternating rounds on one process: each round fits the same
// workload on the thread and off it (fit's offThread), the order swapped from round to round so
// that drift in the machine's speed falls on both alike. Prints, per mode, the range and median of
// samples/s, its ratio to the on-thread fit of the same round, and the event loop's utilization
// during the fit (performance.eventLoopUtilization, as test/off-thread.test.ts measures it). On a loaded machine
// the utilization counts the time the loop's thread waits for a core inside a callback; the last
// column, the loop thread's own CPU time per step (Linux: /proc/self/task/<pid>/schedstat), does not.
// The rows are random (bench/workloads.ts makePool's kind), 6144 by default: test/off-thread.test.ts's
// 24 batches of wide-mlp.
//   npx vite-node bench/off-thread.ts -- [--workload wide-mlp,mnist-mlp] [--rounds 6] [--epochs 2] [--rows 6144]
//     [--modes on-thread,off-thread,off-thread+onBatchEnd]
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createModel, Random, type FitOptions, type Model } from '../src/index.js';
import { modelSpec, SEED, TRAIN_WORKLOADS, type TrainWorkloadName } from './workloads.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const workloads = opt('workload', 'wide-mlp,mnist-mlp').split(',') as TrainWorkloadName[];
const rounds = Number.parseInt(opt('rounds', '6'), 10);
const epochs = Number.parseInt(opt('epochs', '2'), 10);
const rows = Number.parseInt(opt('rows', '6144'), 10);
for (const w of workloads) if (!TRAIN_WORKLOADS[w]) throw new Error(`--workload: unknown workload '${w}'`);
if (!(rounds >= 1 && epochs >= 1 && rows >= 1)) throw new Error('--rounds, --epochs and --rows must be positive integers');

// 'off-thread+onBatchEnd': off the thread with a batch callback (a no-op), which hands the
// batches off one at a time; without one they go up to 64 per hand-off.
type Mode = 'on-thread' | 'off-thread' | 'off-thread+onBatchEnd';
const ALL_MODES: Mode[] = ['on-thread', 'off-thread', 'off-thread+onBatchEnd'];
const MODES = opt('modes', ALL_MODES.join(',')).split(',') as Mode[];
for (const m of MODES) if (!ALL_MODES.includes(m)) throw new Error(`--modes: unknown mode '${m}' (known: ${ALL_MODES.join(', ')})`);
if (!MODES.includes('on-thread')) throw new Error('--modes: must include on-thread (the ratios divide by it)');
/** The event loop's thread's CPU time so far (ms), or NaN where the kernel does not say. */
const loopCpu = (): number => {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
};

async function once(model: Model, mode: Mode, x: { data: Float32Array; shape: [number, number] }, y: { data: Float32Array; shape: [number, number] },
  batchSize: number): Promise<{ sps: number; elu: number; cpu: number }> {
  const options: FitOptions = { epochs, batchSize, offThread: mode !== 'on-thread' };
  if (mode === 'off-thread+onBatchEnd') options.onBatchEnd = () => {};
  const t0 = performance.now(), start = performance.eventLoopUtilization(), cpu0 = loopCpu();
  const h = await model.fit(x, y, options);
  const elu = performance.eventLoopUtilization(start).utilization, seconds = (performance.now() - t0) / 1000;
  const cpu = (loopCpu() - cpu0) / (epochs * Math.ceil(x.shape[0] / batchSize));
  if (h.offThread !== (mode !== 'on-thread')) throw new Error(`${mode}: the fit ran ${h.offThread ? 'off' : 'on'} the thread`);
  return { sps: (x.shape[0] * epochs) / seconds, elu, cpu };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b), h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};
const range = (xs: number[], f: (v: number) => string): string => `${f(Math.min(...xs))}–${f(Math.max(...xs))} (median ${f(median(xs))})`;

for (const name of workloads) {
  const w = TRAIN_WORKLOADS[name];
  const inp = w.sizes[0], out = w.sizes[w.sizes.length - 1], rng = new Random(SEED);
  const x = { data: Float32Array.from({ length: rows * inp }, () => rng.uniform()), shape: [rows, inp] as [number, number] };
  const y = { data: new Float32Array(rows * out), shape: [rows, out] as [number, number] };
  for (let r = 0; r < rows; r++) y.data[r * out + rng.int(out)] = 1;
  const model = await createModel(modelSpec(w), { backend: 'native' });
  for (const mode of MODES) await once(model, mode, x, y, w.batch); // warm: plans, compiled programs, JIT
  const sps = new Map<Mode, number[]>(MODES.map((m) => [m, []])), ratio = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const elu = new Map<Mode, number[]>(MODES.map((m) => [m, []])), cpu = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  for (let r = 0; r < rounds; r++) {
    const order = MODES.map((_, i) => MODES[(i + r) % MODES.length]);
    const got = new Map<Mode, { sps: number; elu: number; cpu: number }>();
    for (const mode of order) got.set(mode, await once(model, mode, x, y, w.batch));
    for (const mode of MODES) {
      sps.get(mode)!.push(got.get(mode)!.sps);
      ratio.get(mode)!.push(got.get(mode)!.sps / got.get('on-thread')!.sps);
      elu.get(mode)!.push(got.get(mode)!.elu);
      cpu.get(mode)!.push(got.get(mode)!.cpu);
    }
    process.stderr.write(`${name} round ${r + 1}/${rounds}: ${MODES.map((m) => `${m} ${got.get(m)!.sps.toFixed(0)}/s, loop ${(100 * got.get(m)!.elu).toFixed(1)}%`).join('; ')}\n`);
  }
  console.log(`\n${name} (${rows} rows, batch ${w.batch}, ${epochs} epochs a fit, ${rounds} rounds, ${model.backend.threads} threads)`);
  console.log('| mode | samples/s | ÷ on-thread, same round | event loop busy | loop thread CPU per step (ms) |');
  console.log('|---|---|---|---|---|');
  for (const mode of MODES) {
    console.log(`| ${mode} | ${range(sps.get(mode)!, (v) => v.toFixed(0))} | ${range(ratio.get(mode)!, (v) => v.toFixed(3))} | ${range(elu.get(mode)!, (v) => `${(100 * v).toFixed(1)}%`)} | ${range(cpu.get(mode)!, (v) => v.toFixed(3))} |`);
  }
}
