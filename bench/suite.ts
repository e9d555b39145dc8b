// The benchmark run: every requested workload on every deltaprop backend that loads and on every
// peer that is installed, in one process (Python peers as child processes of it). Each system is
// checked (loss falls; deltaprop agrees with the js reference; gemm agrees with float64) before it
// is timed, and a system that fails its check is reported, not timed.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, platform, arch, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { BACKEND_NAMES, loaders, Random, type Backend, type BackendName } from '../src/index.js';
import { DatasetMissingError, findFashion, loadFashion } from './fashion.js';
import { measurePeak, peakFields, type Peak } from './peak.js';
import { compileProgram } from './systems/compiled.js';
import { deltapropFashion, deltapropTrainer, GemmBuffers, gemmRunner, parityWithReference, trainedOutputs } from './systems/deltaprop.js';
import { brainTrainer, tfjsFashion, tfjsTrainer } from './systems/js-peers.js';
import {
  findPython, ONEDNN_HANDICAPS, OPENBLAS_HANDICAPS, removedSettings, runPython, startPeerTimer,
  type ChildEnv, type PeerTimer, type PyLine,
} from './systems/python.js';
import type { FashionRun, TrainSystem } from './systems/types.js';
import { steadyOk, steadyState, type SteadyState } from './steady.js';
import { measure, measureTimed, pairedRatio, type TimingOptions } from './timing.js';
import {
  coldStart, deltapropInferPredictor, deltapropPredictor, INFER_BATCH, INFER_SHAPES, INFER_TOLERANCE, inferModel, inferRows, measureInterleaved, modelToBytes, onnxFile,
  ortNodePredictor, ortWebPredictor, tfjsWasmPredictor, type ColdStart, type InferSystem,
} from './infer.js';
import { FASHION, gemmFlops, gemmShapes, isFashion, makePool, SEED, shapeLabel, TRAIN_WORKLOADS, WORKLOADS, type GemmShape, type TrainWorkloadName, type WorkloadName } from './workloads.js';

/** Rest after each side of a paired sgemm round: OpenBLAS's threads spin for a while after a call. */
const PEER_SETTLE_MS = 300;

export const PEERS = ['tfjs-cpu', 'tfjs-wasm', 'brain.js', 'pytorch', 'openblas', 'onednn', 'onnxruntime-node', 'onnxruntime-web'] as const;

/** How to install each peer that does not come with npm (the bench's documented setup). */
export const PEER_INSTALL: Partial<Record<PeerName, string>> = {
  pytorch: 'sudo apt-get install -y --no-install-recommends python3-torch python3-threadpoolctl',
  openblas: 'sudo apt-get install -y --no-install-recommends python3-numpy python3-threadpoolctl libopenblas0-pthread',
  onednn: 'sudo apt-get install -y --no-install-recommends libdnnl-dev g++',
};
/** The GEMM peers: the native sgemm target is against the best of them. */
export const GEMM_PEERS = ['openblas', 'onednn'] as const;
export type PeerName = (typeof PEERS)[number];

export interface BenchOptions {
  /** Workloads to run (default: all). */
  workloads?: WorkloadName[];
  /** deltaprop backends to run (default: every one that loads). */
  backends?: BackendName[];
  /** Peers to run (default: all; [] for none). */
  peers?: PeerName[];
  /** Short runs: fewer repetitions, smaller sgemm and Fashion-MNIST sets, one epoch. */
  quick?: boolean;
  /** Folder with the Fashion-MNIST IDX files. */
  fashion?: string;
  /** Fashion-MNIST epochs (default 10, quick 1). */
  epochs?: number;
  /** Timed repetitions (default 5, quick 3). */
  reps?: number;
  /** Threads for "all threads" runs of the native backend and PyTorch (default: the machine's). */
  threads?: number;
  /** Progress messages (default: none). */
  log?: (msg: string) => void;
  /** Each result as soon as it is measured. */
  onRow?: (row: ResultRow) => void;
}

/** One measured (or failed) system on one workload; the JSON-lines record. */
export interface ResultRow {
  workload: WorkloadName;
  system: string;
  /** Median samples per second (training workloads; fashion: training rows / median epoch time). */
  samples_per_s?: number;
  /** Median GFLOP/s (sgemm). */
  gflops?: number;
  /** Slowest and fastest repetition, same unit as the median. */
  min?: number;
  max?: number;
  reps?: number;
  /** sgemm: 'NN 256x256x256' (m x n x k) and where the shape comes from. */
  shape?: string;
  origin?: string;
  threads?: number;
  isa?: string;
  /** The kernel the system ran: a peer's (OpenBLAS's architecture, oneDNN's JIT ISA), deltaprop's ISA. */
  kernel?: string;
  /** The machine's FMA peak at this row's thread count, and this row's share of it (GEMM flops). */
  peak_gflops?: number;
  pct_of_peak?: number;
  note?: string;
  /** PyTorch: the split of threads between torch and its OpenBLAS, and how the others compared. */
  torch_threads?: number;
  blas_threads?: number;
  split_speeds?: Record<string, number>;
  /** PyTorch: the SIMD level of torch's own kernels it ran with, and the probe's samples/s of each. */
  torch_cpu_capability?: string;
  capability_speeds?: Record<string, number>;
  /** What was checked before timing, and the outcome. */
  check?: Record<string, unknown>;
  /** fashion */
  epoch_seconds?: number[];
  test_accuracy?: number[];
  total_seconds?: number;
  /** infer: batch-1 latency percentiles (µs, pooled over the rounds), batch-256 rows/s (median of the rounds). */
  latency_p50_us?: number;
  latency_p99_us?: number;
  latency_samples?: number;
  rows_per_s?: number;
  throughput_rounds?: number[];
  /** Why this system has no number. */
  error?: string;
}

export interface BenchResults {
  meta: {
    date: string; node: string; platform: string; cpu: string; cores: number; quick: boolean;
    reps: number; epochs: number; threads: number;
  };
  /** Status of each deltaprop backend and peer: ok, or why it did not run. */
  systems: Record<string, { ok: boolean; detail?: string; reason?: string; kernel?: string }>;
  /** The machine's fp32 FMA peak (null when it could not be measured: see systems['fma-peak']). */
  peak: Peak | null;
  rows: ResultRow[];
  /** Memory over 1,000 steps per deltaprop backend (bench/steady.ts), with any training workload. */
  steady?: Record<string, SteadyState & { ok: boolean }>;
  /**
   * Native sgemm against each GEMM peer in paired rounds, on every shape of the sweep (a quick run:
   * the target's squares, n ≥ 256): the median of per-round speed ratios (deltaprop over the
   * peer), and the rounds.
   */
  pairedSgemm?: PairedSgemm[];
  /** infer: cold starts in workerd (miniflare), per system. */
  coldStarts?: ColdStart[];
}

/**
 * Whether a BLAS peer's lines show its kernel computing wrong results: PyTorch's kernel check
 * (torch.mm against float64) or any OpenBLAS sgemm shape's check. A loss that does not fall is
 * not the kernel's fault, and does not count.
 */
export function kernelFailed(lines: PyLine[]): boolean {
  const failed = (c: unknown): boolean => (c as { ok?: boolean } | undefined)?.ok === false;
  return lines.some((l) => (l.info && failed(l.kernel_check)) || (!l.info && l.workload === 'sgemm' && failed(l.check)));
}

export interface PairedSgemm {
  shape: string;
  threads: number;
  peer: (typeof GEMM_PEERS)[number];
  ratio: number;
  rounds: number[];
}

const here = (): string => {
  try {
    return fileURLToPath(new URL('.', import.meta.url));
  } catch {
    return process.cwd();
  }
};

/** The package root (for bench/peers/ and the shared datasets folder beside a clone). */
export function benchRoot(): string {
  for (let dir = here(); ;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'deltaprop') return dir;
      } catch {
        // unreadable package.json: not ours, keep going up
      }
    }
    const up = dirname(dir);
    if (up === dir) return join(here(), '..');
    dir = up;
  }
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchResults> {
  const quick = opts.quick ?? false;
  const log = opts.log ?? (() => {});
  const workloads = opts.workloads ?? WORKLOADS;
  const peers = new Set<PeerName>(opts.peers ?? PEERS);
  const threads = opts.threads ?? availableParallelism();
  const timing: TimingOptions = { reps: opts.reps ?? (quick ? 3 : 5), targetSeconds: quick ? 0.15 : 0.5 };
  const defaultEpochs = 10;
  const epochs = opts.epochs ?? (quick ? 1 : defaultEpochs);
  const root = benchRoot();
  const results: BenchResults = {
    meta: {
      date: new Date().toISOString(), node: process.version, platform: `${platform()} ${release()} ${arch()}`,
      cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), quick, reps: timing.reps, epochs, threads,
    },
    systems: {},
    peak: null,
    rows: [],
  };

  // The physical limit first: every row is reported as a share of it as soon as it is measured.
  try {
    const p = await measurePeak(root, threads, quick ? 5 : 20);
    // more threads cannot lower the limit: a lower figure means other work had a core
    if (p.all < p.one) {
      log(`fp32 FMA peak: ${p.all.toFixed(1)} GFLOP/s on ${p.threads} threads is below one thread's; the cores are busy (taking one thread's)`);
      p.all = p.one;
    }
    results.peak = p;
    results.systems['fma-peak'] = { ok: true, kernel: p.isa, detail: `register-only FMA loop, ${p.isa}: ${p.one.toFixed(1)} GFLOP/s on 1 thread, ${p.all.toFixed(1)} on ${p.threads}` };
    log(`fp32 FMA peak (${p.isa}): ${p.one.toFixed(1)} GFLOP/s on 1 thread, ${p.all.toFixed(1)} on ${p.threads}`);
  } catch (e) {
    results.systems['fma-peak'] = { ok: false, reason: (e as Error).message };
    log(`fp32 FMA peak: not measured: ${(e as Error).message}`);
  }
  const add = (row: ResultRow): void => {
    if (!row.kernel && row.isa) row.kernel = row.isa;
    Object.assign(row, peakFields(row, row.workload === 'sgemm' ? undefined : TRAIN_WORKLOADS[row.workload as TrainWorkloadName]?.sizes, results.peak));
    results.rows.push(row);
    opts.onRow?.(row);
    if (row.error) log(`  ${row.workload} ${row.system}${row.shape ? ` ${row.shape}` : ''}: ${row.error}`);
  };

  // deltaprop backends: the js reference always loads (it is the oracle of the checks).
  const wanted = opts.backends ?? BACKEND_NAMES;
  const backends: Backend[] = [];
  let reference: Backend | null = null;
  for (const name of BACKEND_NAMES) {
    if (!wanted.includes(name) && name !== 'js') continue;
    try {
      const b = await loaders[name]!({ backend: name });
      if (name === 'js') reference = b;
      if (!wanted.includes(name)) continue;
      if (b.name === 'native') b.setThreads(threads);
      backends.push(b);
      results.systems[`deltaprop-${name}`] = { ok: true, kernel: b.isa, detail: `threads ${b.threads}` };
    } catch (e) {
      results.systems[`deltaprop-${name}`] = { ok: false, reason: (e as Error).message };
      log(`deltaprop-${name}: not available: ${(e as Error).message}`);
    }
  }

  const torch = peers.has('pytorch') ? findPython('torch') : null;
  const numpy = peers.has('openblas') ? findPython('numpy') : null;
  const notInstalled = (peer: PeerName, reason: string): { ok: false; reason: string } =>
    ({ ok: false, reason: `not installed (${reason}); install with: ${PEER_INSTALL[peer]}` });
  if (torch) results.systems.pytorch = 'python' in torch ? { ok: true, detail: torch.python } : notInstalled('pytorch', torch.reason);
  if (numpy) results.systems.openblas = 'python' in numpy ? { ok: true, detail: numpy.python } : notInstalled('openblas', numpy.reason);
  const peerScript = (name: string): string => join(root, 'bench', 'peers', name);

  // OpenBLAS (and PyTorch, whose BLAS it is) at its best: without OPENBLAS_CORETYPE /
  // OPENBLAS_L2_SIZE in its own process, unless that kernel fails its check (then again with them).
  const forced = removedSettings(process.env, OPENBLAS_HANDICAPS);
  const atBest: Record<'pytorch' | 'openblas', boolean> = { pytorch: true, openblas: true };
  const blasEnv = (peer: 'pytorch' | 'openblas', set: Record<string, string>): ChildEnv =>
    ({ set, remove: atBest[peer] ? OPENBLAS_HANDICAPS : [] });
  const kernelNote = (peer: 'pytorch' | 'openblas', kernel: string): string => atBest[peer]
    ? `${kernel} (${forced.length ? `run without ${forced.join(', ')}` : 'OPENBLAS_CORETYPE not set'})`
    : `${kernel}, forced by ${forced.join(', ')}: the best kernel failed its check or crashed`;

  /**
   * Runs a Python peer and turns its lines into rows. A check that failed on the best kernel
   * (PyTorch: its kernel check; OpenBLAS: any shape's) discards the lines and runs the peer again
   * with the machine's OPENBLAS_* settings, once: every later run of that peer keeps them.
   */
  const pyRows = async (peer: 'pytorch' | 'openblas', script: string, python: string, config: unknown, set: Record<string, string>,
    timeoutMs: number, workload: WorkloadName, extra: Partial<ResultRow> = {}): Promise<void> => {
    const system = peer;
    const run = async (): Promise<{ lines: PyLine[]; failure: null } | { lines: null; failure: Error }> => {
      try {
        return { lines: await runPython(python, [script, JSON.stringify(config)], blasEnv(peer, set), () => {}, timeoutMs), failure: null };
      } catch (e) {
        return { lines: null, failure: e as Error };
      }
    };
    let r = await run();
    // a kernel that computes wrong results, or crashes (older OpenBLAS builds on some CPUs)
    if ((r.failure || kernelFailed(r.lines!)) && atBest[peer] && forced.length) {
      const kernel = r.lines?.find((l) => l.info)?.kernel;
      log(`  ${system}: ${r.failure ? `crashed without ${forced.join(', ')} (${r.failure.message})` : `kernel ${String(kernel)} failed its check`}; again with them`);
      atBest[peer] = false;
      r = await run();
    }
    if (r.failure) {
      add({ workload, system, error: r.failure.message });
      return;
    }
    const lines = r.lines!;
    let kernel = 'unknown';
    for (const l of lines) {
      if (l.info) {
        kernel = String(l.kernel ?? 'unknown');
        const skip = ['info', 'system', 'kernel', 'kernel_check'];
        const rest = Object.entries(l).filter(([k, v]) => !skip.includes(k) && v !== null && v !== undefined)
          .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
        results.systems[system] = { ok: true, kernel: kernelNote(peer, kernel), detail: `${python}, ${rest.join(', ')}` };
        continue;
      }
      const row = Object.assign(l, extra) as unknown as ResultRow & { train_loss?: number[] };
      const k = String(row.kernel ?? kernel);
      row.kernel = atBest[peer] ? k : `${k} (forced by ${forced.join(', ')}: the best kernel failed its check or crashed)`;
      if (isFashion(row.workload) && row.epoch_seconds && row.test_accuracy) {
        row.total_seconds = row.epoch_seconds.reduce((x, y) => x + y, 0);
        const tl = row.train_loss ?? [];
        const falls = tl.length < 2 || tl[tl.length - 1] < tl[0];
        row.check = { train_loss: tl, loss_falls: falls, ok: falls && row.test_accuracy[row.test_accuracy.length - 1] > 0.5 };
        delete row.train_loss;
        log(`  ${system}: ${row.total_seconds.toFixed(1)} s for ${row.epoch_seconds.length} epochs, test accuracy ${row.test_accuracy[row.test_accuracy.length - 1].toFixed(4)}`);
      }
      // a peer whose own check failed has no number worth comparing with
      if (row.check?.ok === false && !row.error) row.error = `check failed: ${JSON.stringify(row.check)}`;
      add(row);
    }
  };

  /**
   * Torch's own kernels (activations, loss, the optimizer: not the GEMMs, which are OpenBLAS's)
   * default to AVX2 on AVX-512 CPUs; ATEN_CPU_CAPABILITY=avx512, read at start-up, raises them.
   * A short probe of the workload in a process of each kind picks the faster, unless the machine
   * already sets the variable (then that is what the user runs).
   */
  const torchCapability = async (python: string, workload: WorkloadName): Promise<{ set: Record<string, string>; fields: Partial<ResultRow> }> => {
    if (process.env.ATEN_CPU_CAPABILITY !== undefined) return { set: {}, fields: { torch_cpu_capability: `${process.env.ATEN_CPU_CAPABILITY} (ATEN_CPU_CAPABILITY set)` } };
    const speeds: Record<string, number> = {};
    for (const [label, set] of [['default', {}], ['avx512', { ATEN_CPU_CAPABILITY: 'avx512' }]] as const) {
      try {
        const lines = await runPython(python, [peerScript('pytorch.py'), JSON.stringify({ workloads: [workload], threads, target: timing.targetSeconds, probe_only: true })],
          blasEnv('pytorch', { OPENBLAS_NUM_THREADS: String(threads), ...set }), () => {}, 300_000);
        const rate = lines.find((l) => l.probe)?.samples_per_s;
        if (typeof rate === 'number') speeds[label] = rate;
      } catch (e) {
        log(`  pytorch: SIMD probe (${label}) failed: ${(e as Error).message}`);
      }
    }
    const best = (speeds.avx512 ?? 0) > (speeds.default ?? Infinity) ? 'avx512' : 'default';
    return {
      set: best === 'avx512' ? { ATEN_CPU_CAPABILITY: 'avx512' } : {},
      fields: { torch_cpu_capability: best, ...(Object.keys(speeds).length ? { capability_speeds: speeds } : {}) },
    };
  };

  // ---- training workloads
  for (const name of workloads.filter((w): w is TrainWorkloadName => w in TRAIN_WORKLOADS && !isFashion(w))) {
    const w = TRAIN_WORKLOADS[name];
    const pool = makePool(w);
    log(`${name}: ${w.sizes.join('-')}, batch ${w.batch}, ${w.optimizer} lr ${w.lr}`);

    const timeTrainer = async (make: () => Promise<TrainSystem> | TrainSystem, base: Partial<ResultRow>): Promise<void> => {
      let t: TrainSystem | null = null;
      try {
        t = await make();
        // Loss falls on a fixed batch: after 4 steps, or (brain.js's per-sample sigmoid net sits on
        // XOR's plateau for hundreds of passes) after 40, 160 or 1,160 in all.
        const before = await t.checkLoss();
        let after = before, steps = 0;
        const started = performance.now();
        for (const more of [4, 36, 120, 1000]) {
          if (steps > 0 && performance.now() - started > 20_000) break; // slow systems: 4 steps say enough
          await t.trainOnCheck(more);
          steps += more;
          after = await t.checkLoss();
          if (after < before || !Number.isFinite(after)) break;
        }
        const check: Record<string, unknown> = { ...(base.check ?? {}), loss_before: before, loss_after: after, check_steps: steps };
        const falls = after < before && Number.isFinite(after);
        if (!falls || check.ok === false) {
          add({ workload: name, system: t.system, ...base, check: { ...check, ok: false },
            error: !falls ? `check failed: loss ${before.toPrecision(4)} -> ${after.toPrecision(4)} did not fall over ${steps} steps` : `check failed: ${String(check.why)}` });
          return;
        }
        // target: the event loop is never blocked longer than 50 ms while fit trains
        const delay = t.system.startsWith('deltaprop-') ? monitorEventLoopDelay({ resolution: 1 }) : null;
        delay?.enable();
        const r = await measure((u) => t!.run(u), t.samplesPerUnit, timing);
        delay?.disable();
        if (delay) check.event_loop_max_ms = delay.max / 1e6;
        add({ workload: name, system: t.system, samples_per_s: r.median, min: r.min, max: r.max, reps: r.reps, ...base,
          ...(t.note ? { note: t.note } : {}), check: { ...check, ok: true } });
        log(`  ${t.system}${base.threads && t.system === 'deltaprop-native' ? ` (${base.threads} thread${base.threads > 1 ? 's' : ''})` : ''}: ${fmt(r.median)} samples/s`);
      } catch (e) {
        add({ workload: name, system: base.system ?? 'unknown', ...base, error: (e as Error).message });
      } finally {
        t?.dispose?.();
      }
    };

    for (const b of backends) {
      const system = `deltaprop-${b.name}`;
      let check: Record<string, unknown> = {};
      if (b !== reference && reference) {
        const p = await parityWithReference(b, reference, w, pool);
        check = { vs_js_max_output_diff: p.maxOutputDiff, vs_js_loss_rel_diff: p.lossRelDiff, ok: p.ok,
          ...(p.ok ? {} : { why: `outputs after ${p.steps} steps differ from the js reference by ${p.maxOutputDiff.toExponential(2)} (loss by ${p.lossRelDiff.toExponential(2)} relative)` }) };
      }
      await timeTrainer(() => deltapropTrainer(b, w, pool), { system, isa: b.isa, threads: b.threads, check });
      // target: the native backend gives the same bits for any thread count, and 2 threads ≥ 1.7× one on wide-mlp
      if (b.name === 'native' && name === 'wide-mlp' && b.threads > 1) {
        const all = b.threads;
        const many = await trainedOutputs(b, w, pool);
        b.setThreads(1);
        try {
          const one = await trainedOutputs(b, w, pool);
          const same = one.length === many.length && one.every((v, i) => Object.is(v, many[i]));
          // the target's ratio, from paired rounds of all threads and one (see pairedRatio)
          const t = deltapropTrainer(b, w, pool);
          const paired = await pairedRatio([(u) => (b.setThreads(all), t.run(u)), (u) => (b.setThreads(1), t.run(u))], timing);
          log(`  deltaprop-native ${all} threads vs 1, paired rounds: ${paired.median.toFixed(2)}× (${paired.ratios.map((v) => v.toFixed(2)).join(' ')})`);
          b.setThreads(1);
          await timeTrainer(() => deltapropTrainer(b, w, pool), {
            system, isa: b.isa, threads: 1,
            check: { same_bits_1_vs_all_threads: same, ok: same, threads_ratio_paired: paired.median, threads_ratio_rounds: paired.ratios,
              ...(same ? {} : { why: `outputs after 3 steps differ between 1 and ${all} threads` }) },
          });
        } finally {
          b.setThreads(all);
        }
      }
    }
    if (peers.has('tfjs-cpu')) await timeTrainer(() => tfjsTrainer('cpu', w, pool), { system: 'tfjs-cpu' });
    if (peers.has('tfjs-wasm')) await timeTrainer(() => tfjsTrainer('wasm', w, pool), { system: 'tfjs-wasm' });
    if (peers.has('brain.js')) await timeTrainer(() => brainTrainer(w, pool), { system: 'brain.js' });
    if (torch && 'python' in torch) {
      // OpenBLAS's pool at `threads`: pytorch.py picks the split of threads between torch and it
      const cap = await torchCapability(torch.python, name);
      await pyRows('pytorch', peerScript('pytorch.py'), torch.python, { workloads: [name], threads, reps: timing.reps, target: timing.targetSeconds },
        { OPENBLAS_NUM_THREADS: String(threads), ...cap.set }, 600_000, name, cap.fields);
      const last = results.rows[results.rows.length - 1];
      if (last.system === 'pytorch' && last.samples_per_s) log(`  pytorch: ${fmt(last.samples_per_s)} samples/s`);
    }
  }

  // ---- steady state: heap and RSS flat over 1,000 steps (a small net; seconds even on js)
  if (workloads.some((w) => w in TRAIN_WORKLOADS && !isFashion(w))) {
    results.steady = {};
    for (const b of backends) {
      try {
        const st = await steadyState(b);
        results.steady[`deltaprop-${b.name}`] = { ...st, ok: steadyOk(st) };
        log(`steady state deltaprop-${b.name}: heap ${(st.heapRetained / 1024).toFixed(1)} KB, RSS ${(st.rssGrowth / 1024).toFixed(0)} KB over ${st.steps} steps, ${st.garbagePerStep.toFixed(0)} B of garbage per step`);
      } catch (e) {
        log(`steady state deltaprop-${b.name}: ${(e as Error).message}`);
      }
    }
  }

  // ---- Fashion-MNIST: the plain model, and the one with batch normalization and dropout
  for (const fashionName of FASHION.filter((f) => workloads.includes(f))) {
    const w = TRAIN_WORKLOADS[fashionName];
    // the regularized model's full run is its own epoch count (quick runs: 1, or --epochs)
    const epochs = opts.epochs ?? (quick ? 1 : w.epochs ?? defaultEpochs);
    let dir: string | null = null;
    try {
      dir = findFashion(opts.fashion, root);
    } catch (e) {
      if (!(e instanceof DatasetMissingError)) throw e;
      add({ workload: fashionName, system: 'all', error: e.message });
    }
    if (dir) {
      const limit = quick ? { train: 10000, test: 2000 } : undefined;
      const data = loadFashion(dir, limit);
      log(`${fashionName}: ${w.sizes.join('-')}${w.regularized ? `, batch normalization and dropout ${w.regularized.dropout} after each hidden layer` : ''}, `
        + `${data.trainRows} training and ${data.testRows} test rows from ${dir}, ${epochs} epoch${epochs > 1 ? 's' : ''}`);
      const record = (r: FashionRun, extra: Partial<ResultRow>): void => {
        const total = r.epochSeconds.reduce((a, b) => a + b, 0);
        const falls = r.trainLoss.length < 2 || r.trainLoss[r.trainLoss.length - 1] < r.trainLoss[0];
        const acc = r.testAccuracy[r.testAccuracy.length - 1];
        add({ workload: fashionName, system: r.system, samples_per_s: data.trainRows / median(r.epochSeconds),
          epoch_seconds: r.epochSeconds, test_accuracy: r.testAccuracy, total_seconds: total, ...extra,
          ...(r.note ? { note: r.note } : {}), check: { train_loss: r.trainLoss, loss_falls: falls, ok: falls && acc > 0.5 } });
        log(`  ${r.system}: ${total.toFixed(1)} s for ${r.epochSeconds.length} epoch${r.epochSeconds.length > 1 ? 's' : ''}, test accuracy ${acc.toFixed(4)}`);
      };
      for (const b of backends) {
        // The js reference takes minutes per epoch here; it runs only when asked for by name.
        if (b.name === 'js' && !opts.backends?.includes('js')) {
          add({ workload: fashionName, system: 'deltaprop-js', error: 'skipped: the js reference takes minutes per epoch (run with --backend js to include it)' });
          continue;
        }
        try {
          record(await deltapropFashion(b, w, data, epochs), { isa: b.isa, threads: b.threads });
        } catch (e) {
          add({ workload: fashionName, system: `deltaprop-${b.name}`, error: (e as Error).message });
        }
      }
      // tfjs's peer builds the plain model only
      if (peers.has('tfjs-wasm') && !w.regularized) {
        try {
          record(await tfjsFashion('wasm', w, data, epochs), {});
        } catch (e) {
          add({ workload: fashionName, system: 'tfjs-wasm', error: (e as Error).message });
        }
      }
      if (torch && 'python' in torch) {
        const cap = await torchCapability(torch.python, fashionName);
        await pyRows('pytorch', peerScript('pytorch.py'), torch.python,
          { workloads: [fashionName], threads, fashion: dir, epochs, limit: limit ?? null, reps: timing.reps, target: timing.targetSeconds },
          { OPENBLAS_NUM_THREADS: String(threads), ...cap.set }, 3_600_000, fashionName, cap.fields);
      }
    }
  }

  // ---- sgemm
  if (workloads.includes('sgemm')) {
    const shapes = gemmShapes(quick);
    const gemmTiming: TimingOptions = { reps: timing.reps, targetSeconds: quick ? 0.05 : 0.2 };
    log(`sgemm: ${shapes.length} shapes`);
    for (const b of backends) {
      const bufs = new GemmBuffers(b, shapes);
      const all = b.threads;
      const counts = b.name === 'native' && all > 1 ? [1, all] : [b.threads];
      for (const t of counts) {
        b.setThreads(t);
        for (const s of shapes) {
          const base = { workload: 'sgemm' as const, system: `deltaprop-${b.name}`, shape: shapeLabel(s), origin: s.origin, threads: t, isa: b.isa };
          // The reference's plain loops run about 1 GFLOP/s: large squares would take minutes.
          if (b.name === 'js' && gemmFlops(s) > 2 * 512 ** 3) {
            add({ ...base, error: 'skipped: larger than 512³ on the js reference' });
            continue;
          }
          try {
            const g = gemmRunner(bufs, s);
            const err = g.check();
            const check = { max_rel_err: err, ok: err < 1e-4 };
            if (!check.ok) {
              add({ ...base, check, error: `check failed: relative error ${err.toExponential(2)} against float64` });
              continue;
            }
            const r = await measure((u) => g.run(u), g.flops / 1e9, gemmTiming);
            add({ ...base, gflops: r.median, min: r.min, max: r.max, reps: r.reps, check });
          } catch (e) {
            add({ ...base, error: (e as Error).message });
          }
        }
        log(`  deltaprop-${b.name} (${t} thread${t > 1 ? 's' : ''}) done`);
      }
      b.setThreads(all);
    }
    const counts = threads > 1 ? [1, threads] : [1];
    const labelled = (list: GemmShape[]) => list.map((s) => ({ ...s, label: shapeLabel(s) }));
    if (numpy && 'python' in numpy) {
      for (const t of counts) {
        await pyRows('openblas', peerScript('openblas.py'), numpy.python,
          { shapes: labelled(shapes), reps: gemmTiming.reps, target: gemmTiming.targetSeconds },
          { OPENBLAS_NUM_THREADS: String(t) }, 600_000, 'sgemm');
        log(`  openblas (${t} thread${t > 1 ? 's' : ''}) done`);
      }
      // the python rows carry the shape label; add the origin for the table
      for (const r of results.rows) {
        if (r.system === 'openblas' && r.shape && !r.origin) r.origin = shapes.find((s) => shapeLabel(s) === r.shape)?.origin;
      }
    }

    // oneDNN's dnnl_sgemm: a small C++ program built here, run once per thread count (OpenMP)
    let onednn: string | null = null;
    if (peers.has('onednn')) {
      try {
        onednn = compileProgram(peerScript('onednn-sgemm.cc'), ['-O2', '-std=c++17', '-fopenmp'], ['-ldnnl'], `install with: ${PEER_INSTALL.onednn}`).path;
        results.systems.onednn = { ok: true, detail: 'dnnl_sgemm (bench/peers/onednn-sgemm.cc, g++ -O2 -fopenmp -ldnnl)' };
      } catch (e) {
        const msg = (e as Error).message;
        results.systems.onednn = { ok: false, reason: msg.startsWith('not installed') ? msg : `${msg}; install with: ${PEER_INSTALL.onednn}` };
        log(`onednn: ${results.systems.onednn.reason}`);
      }
    }
    const onednnEnv = (t: number): ChildEnv => ({ set: { OMP_NUM_THREADS: String(t) }, remove: ONEDNN_HANDICAPS });
    const onednnArgs = (list: GemmShape[]): string[] => list.map((s) => `${s.transA ? 'T' : 'N'}${s.transB ? 'T' : 'N'}:${s.m}:${s.n}:${s.k}`);
    if (onednn) {
      for (const t of counts) {
        let peer: PeerTimer | null = null;
        try {
          peer = await startPeerTimer(onednn, onednnArgs(shapes), onednnEnv(t));
          const kernel = `${String(peer.ready.kernel)}, oneDNN ${String(peer.ready.version)}`;
          results.systems.onednn.kernel = kernel;
          results.systems.onednn.detail = `dnnl_sgemm, OpenMP threads ${counts.join(' and ')} (OMP_NUM_THREADS), built from bench/peers/onednn-sgemm.cc with g++ -O2 -fopenmp -ldnnl`;
          for (const [i, s] of shapes.entries()) {
            const base = { workload: 'sgemm' as const, system: 'onednn', shape: shapeLabel(s), origin: s.origin, threads: Number(peer.ready.threads) || t, kernel };
            const check = peer.before[i]?.check as { max_rel_err: number; ok: boolean } | undefined;
            if (!check?.ok) {
              add({ ...base, ...(check ? { check } : {}), error: `check failed: relative error ${check?.max_rel_err.toExponential(2) ?? '?'} against float64` });
              continue;
            }
            const p = peer;
            const r = await measureTimed((u) => p.time(i, u), gemmFlops(s) / 1e9, gemmTiming);
            add({ ...base, gflops: r.median, min: r.min, max: r.max, reps: r.reps, check });
          }
          log(`  onednn (${t} thread${t > 1 ? 's' : ''}) done`);
        } catch (e) {
          add({ workload: 'sgemm', system: 'onednn', threads: t, error: (e as Error).message });
        } finally {
          peer?.close();
        }
      }
    }

    // The shapes again, in paired rounds against each GEMM peer (one repetition of each per
    // round, in alternating order): the sweeps above run minutes apart, and a neighbour taking a
    // core in between moves a 2-thread ratio by a third. The target's squares get more rounds; a
    // quick run pairs only them.
    const native = backends.find((b) => b.name === 'native');
    const isTarget = (s: GemmShape): boolean => s.origin === 'square' && s.m >= 256;
    const pairs = shapes.filter((s) => isTarget(s) || !quick);
    const starters: [(typeof GEMM_PEERS)[number], (t: number) => Promise<PeerTimer>][] = [];
    if (numpy && 'python' in numpy) {
      const py = numpy.python;
      starters.push(['openblas', (t) => startPeerTimer(py, [peerScript('openblas.py'), JSON.stringify({ shapes: labelled(pairs), serve: true })],
        blasEnv('openblas', { OPENBLAS_NUM_THREADS: String(t) }))]);
    }
    if (onednn) {
      const bin = onednn;
      starters.push(['onednn', (t) => startPeerTimer(bin, onednnArgs(pairs), onednnEnv(t))]);
    }
    if (native && pairs.length && starters.length) {
      const bufs = new GemmBuffers(native, pairs), all = native.threads;
      results.pairedSgemm = [];
      for (const [name, start] of starters) {
        for (const t of counts) {
          native.setThreads(t);
          let peer: PeerTimer | null = null;
          try {
            peer = await start(t);
            for (const [i, s] of pairs.entries()) {
              const label = shapeLabel(s);
              if ((peer.before[i]?.check as { ok?: boolean } | undefined)?.ok !== true) {
                log(`  native vs ${name} ${label}: not paired, ${name} failed its check`);
                continue;
              }
              const g = gemmRunner(bufs, s), p = peer;
              // a peer's threads spin for a while after a call (OpenBLAS's, OpenMP's): the rest
              // lets them go idle; one OpenBLAS thread does not spin
              const ratio = await pairedRatio([(u) => g.run(u), (u) => p.time(i, u)], gemmTiming,
                isTarget(s) ? 2 * gemmTiming.reps + 1 : gemmTiming.reps, isTarget(s) || t > 1 ? PEER_SETTLE_MS : 0);
              results.pairedSgemm.push({ shape: label, threads: t, peer: name, ratio: ratio.median, rounds: ratio.ratios });
              log(`  native vs ${name} ${label}, ${t} thread${t > 1 ? 's' : ''}, paired rounds: ${ratio.median.toFixed(2)}× (${ratio.ratios.map((v) => v.toFixed(2)).join(' ')})`);
            }
          } catch (e) {
            log(`  paired sgemm rounds against ${name} failed: ${(e as Error).message}`);
          } finally {
            peer?.close();
          }
        }
      }
      native.setThreads(all);
    }
  }
  // ---- inference: predict against onnxruntime-node, onnxruntime-web and tfjs-wasm (bench/infer.ts)
  if (workloads.includes('infer')) {
    const dir = mkdtempSync(join(tmpdir(), 'deltaprop-infer-'));
    // the wasm threads build at each thread count above 1, loaded once for both shapes (its workers start once)
    const wasmAt = new Map<number, Promise<Backend>>();
    try {
      for (const name of INFER_SHAPES) {
        const w = TRAIN_WORKLOADS[name], shape = `${name} ${w.sizes.join('-')}`;
        log(`infer: ${shape}, batch 1 and ${INFER_BATCH}`);
        const refModel = inferModel(name, reference ?? backends[0]);
        const onnx = onnxFile(refModel, dir, name);
        const checkRows = new Random(SEED + 2);
        const cx = new Float32Array(4 * w.sizes[0]).map(() => checkRows.uniform());
        const want = refModel.predict({ data: cx, shape: [4, w.sizes[0]] }).data;
        const systems: InferSystem[] = [];
        const tryAdd = async (system: string, threads: number | undefined, make: () => Promise<InferSystem> | InferSystem): Promise<void> => {
          try {
            const s = await make();
            const got = await s.check(cx, 4);
            const diff = got.length === want.length ? got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0) : Infinity;
            if (!(diff <= INFER_TOLERANCE)) {
              add({ workload: 'infer', system, shape, threads, check: { vs_js_max_output_diff: diff, ok: false },
                error: `check failed: outputs differ from the js reference by ${diff.toExponential(2)}` });
              await s.close();
              return;
            }
            (s as InferSystem & { diff?: number }).diff = diff;
            systems.push(s);
          } catch (e) {
            add({ workload: 'infer', system, shape, threads, error: (e as Error).message });
          }
        };
        const counts = threads > 1 ? [1, threads] : [1];
        for (const b of backends) {
          if (b.name === 'js') continue; // the reference: seconds per wide-mlp batch, and the oracle of the checks
          if (b.name === 'native') {
            for (const t of counts) {
              const nb = t === b.threads ? b : await loaders.native!({ backend: 'native', threads: t });
              await tryAdd('deltaprop-native', t, () => deltapropPredictor(refModel, nb));
              await tryAdd('deltaprop/infer-native', t, () => deltapropInferPredictor(refModel, nb));
            }
          } else if (b.name === 'wasm') {
            // 1 thread: the default build (what createModel gives without `threads`); more: the
            // threads build, compared with onnxruntime-web at the same numThreads
            for (const t of counts) {
              let wb = b;
              if (t !== b.threads) {
                if (!wasmAt.has(t)) wasmAt.set(t, Promise.resolve(loaders.wasm!({ backend: 'wasm', threads: t })));
                try {
                  wb = await wasmAt.get(t)!;
                } catch (e) {
                  for (const system of ['deltaprop-wasm', 'deltaprop/infer-wasm']) add({ workload: 'infer', system, shape, threads: t, error: `the wasm backend on ${t} threads did not load: ${(e as Error).message}` });
                  continue;
                }
                if (wb.threads !== t) {
                  for (const system of ['deltaprop-wasm', 'deltaprop/infer-wasm']) {
                    add({ workload: 'infer', system, shape, threads: t, error: `the wasm backend runs ${wb.threads} thread${wb.threads > 1 ? 's' : ''} here, not ${t}: ${wb.threadsReason ?? 'no reason given'}` });
                  }
                  continue;
                }
              }
              await tryAdd('deltaprop-wasm', t, () => deltapropPredictor(refModel, wb));
              await tryAdd('deltaprop/infer-wasm', t, () => deltapropInferPredictor(refModel, wb));
            }
          } else {
            await tryAdd(`deltaprop-${b.name}`, 1, () => deltapropPredictor(refModel, b));
            await tryAdd(`deltaprop/infer-${b.name}`, 1, () => deltapropInferPredictor(refModel, b));
          }
        }
        if (peers.has('onnxruntime-node')) for (const t of counts) await tryAdd('onnxruntime-node', t, () => ortNodePredictor(onnx.bytes, w.sizes[0], t));
        if (peers.has('onnxruntime-web')) for (const t of counts) await tryAdd('onnxruntime-web', t, () => ortWebPredictor(peerScript('ort-web.mjs'), onnx.path, w.sizes[0], t, cx));
        if (peers.has('tfjs-wasm')) await tryAdd('tfjs-wasm', 1, () => tfjsWasmPredictor(refModel));
        const measured = await measureInterleaved(systems, quick ? 3 : 7, quick ? 100 : 300, quick ? 0.05 : 0.15, log);
        for (const s of systems) {
          const m = measured.get(s)!;
          const isa = s.isa ?? (s.system.startsWith('deltaprop') ? backends.find((b) => s.system.endsWith(`-${b.name}`))?.isa : undefined);
          const base: ResultRow = { workload: 'infer', system: s.system, shape, threads: s.threads, ...(isa ? { isa } : {}), ...(s.note ? { note: s.note } : {}),
            check: { vs_js_max_output_diff: (s as InferSystem & { diff?: number }).diff, ok: true } };
          if (m instanceof Error) add({ ...base, error: m.message });
          else {
            add({ ...base, latency_p50_us: m.p50_us, latency_p99_us: m.p99_us, latency_samples: m.latency_samples, rows_per_s: m.rows_per_s, throughput_rounds: m.rounds });
            log(`  ${s.system} (${s.threads} thread${s.threads > 1 ? 's' : ''}): batch 1 p50 ${m.p50_us.toFixed(1)} µs, p99 ${m.p99_us.toFixed(1)} µs; batch ${INFER_BATCH} ${fmt(m.rows_per_s)} rows/s`);
          }
          await s.close();
        }
        // cold start in workerd: deltaprop/infer on wasm against onnxruntime-web, a fresh workerd per sample, alternating
        results.coldStarts ??= [];
        const inputs = w.sizes[0];
        const ref1 = refModel.predict({ data: inferRows(1, inputs), shape: [1, inputs] }).data;
        const samples = quick ? 2 : 5;
        const kinds: ('deltaprop-wasm' | 'onnxruntime-web')[] = ['deltaprop-wasm', ...(peers.has('onnxruntime-web') ? ['onnxruntime-web' as const] : [])];
        const starts = new Map<string, ColdStart>();
        for (let s = 0; s < samples; s++) {
          for (const k of s % 2 ? [...kinds].reverse() : kinds) {
            if (starts.get(k)?.error) continue;
            const one = await coldStart(k, root, { model: k === 'deltaprop-wasm' ? modelToBytes(refModel) : onnx.bytes, inputs, reference: ref1 }, 1, log);
            const prev = starts.get(k);
            if (!prev) starts.set(k, { ...one, system: `${k} ${shape}` });
            else if (one.error) prev.error = one.error;
            else {
              prev.start_ms.push(...one.start_ms);
              prev.first_ms.push(...one.first_ms);
              prev.warm_ms.push(...one.warm_ms);
              prev.maxDiff = Math.max(prev.maxDiff, one.maxDiff);
            }
          }
        }
        for (const c of starts.values()) {
          if (!c.error && !(c.maxDiff <= INFER_TOLERANCE)) c.error = `check failed: the worker's prediction differs from the js reference by ${c.maxDiff.toExponential(2)}`;
          results.coldStarts.push(c);
          log(`  ${c.system} in workerd: ${c.error ?? `start ${median(c.start_ms).toFixed(0)} ms, first request ${median(c.first_ms).toFixed(1)} ms, warm request ${median(c.warm_ms).toFixed(1)} ms`}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      for (const w of wasmAt.values()) (await w.catch(() => null) as { dispose?: () => void } | null)?.dispose?.();
    }
    for (const p of ['onnxruntime-node', 'onnxruntime-web'] as const) {
      if (!peers.has(p)) continue;
      const rows = results.rows.filter((r) => r.workload === 'infer' && r.system === p);
      const good = rows.find((r) => !r.error);
      results.systems[p] = good ? { ok: true, detail: good.note } : { ok: false, reason: rows.find((r) => r.error)?.error ?? 'did not run' };
    }
  }

  for (const p of ['tfjs-cpu', 'tfjs-wasm', 'brain.js'] as const) {
    if (!peers.has(p)) continue;
    const rows = results.rows.filter((r) => r.system === p);
    const ok = rows.some((r) => !r.error);
    results.systems[p] = ok ? { ok: true, detail: rows.find((r) => r.note)?.note } : { ok: false, reason: rows.find((r) => r.error)?.error ?? 'no workload ran it' };
  }
  return results;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)} k`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(2)} k`;
  return x.toPrecision(3);
}
