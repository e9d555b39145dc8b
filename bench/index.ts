// The benchmark suite as a library and as a command: `npm run bench` (bench/run.ts) and
// `deltaprop bench` (the CLI adds `benchCommand()` to its program).
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKEND_NAMES } from '../src/backends/select.js';
import type { BackendName } from '../src/backends/backend.js';
import { jsonLine, markdown, writeResults } from './report.js';
import { PEERS, runBench, type BenchResults, type PeerName } from './suite.js';
import { WORKLOADS, type WorkloadName } from './workloads.js';

export { runBench, PEERS, type BenchOptions, type BenchResults, type ResultRow, type PeerName } from './suite.js';
export { markdown, targets, writeResults, jsonLine } from './report.js';
export { WORKLOADS, TRAIN_WORKLOADS, gemmShapes, type WorkloadName } from './workloads.js';

function listOf<T extends string>(what: string, known: readonly T[], extra: Record<string, T[]> = {}) {
  return (value: string): T[] => {
    const out: T[] = [];
    for (const v of value.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (v in extra) out.push(...extra[v]);
      else if ((known as readonly string[]).includes(v)) out.push(v as T);
      else throw new InvalidArgumentError(`unknown ${what} '${v}' (known: ${[...known, ...Object.keys(extra)].join(', ')})`);
    }
    return [...new Set(out)];
  };
}

const positiveInt = (what: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a positive integer, got '${v}'`);
  return n;
};

export interface BenchCliOptions {
  workload?: WorkloadName[];
  backend?: BackendName[];
  peers: PeerName[];
  quick?: boolean;
  json?: boolean;
  fashion?: string;
  out: string | false;
  epochs?: number;
  reps?: number;
  threads?: number;
}

/** Runs the suite as the command line asked; returns the results and the files written. */
export async function benchAction(o: BenchCliOptions): Promise<{ results: BenchResults; files: string[] }> {
  const err = (m: string): void => {
    process.stderr.write(`${m}\n`);
  };
  const results = await runBench({
    workloads: o.workload, backends: o.backend, peers: o.peers, quick: o.quick, fashion: o.fashion,
    epochs: o.epochs, reps: o.reps, threads: o.threads, log: err,
    onRow: o.json ? (r) => process.stdout.write(`${jsonLine(r)}\n`) : undefined,
  });
  const files = o.out === false ? [] : writeResults(results, resolve(o.out));
  if (!o.json) process.stdout.write(`\n${markdown(results)}`);
  if (files.length) err(`results: ${files.join(', ')}`);
  return { results, files };
}

/** A deltaprop system whose check failed (loss did not fall, outputs or GEMM disagree with the reference). */
export function failedChecks(results: BenchResults): string[] {
  return results.rows.filter((r) => r.system.startsWith('deltaprop-') && r.check?.ok === false)
    .map((r) => `${r.workload} ${r.system}${r.shape ? ` ${r.shape}` : ''}${r.threads ? ` (${r.threads} threads)` : ''}: ${r.error ?? 'check failed'}`);
}

/** The `bench` command; exits 1 when a deltaprop check failed. */
export function benchCommand(): Command {
  return new Command('bench')
    .description('benchmark deltaprop\'s backends against TensorFlow.js, brain.js, PyTorch and OpenBLAS on the BENCH.md workloads')
    .addOption(new Option('-w, --workload <names>', `comma-separated workloads (${WORKLOADS.join(', ')}); default all`).argParser(listOf('workload', WORKLOADS)))
    .addOption(new Option('-b, --backend <names>', `comma-separated deltaprop backends (${BACKEND_NAMES.join(', ')}); default every one that loads`).argParser(listOf('backend', BACKEND_NAMES)))
    .addOption(new Option('-p, --peers <names>', `comma-separated peers (${PEERS.join(', ')}), all or none`)
      .argParser(listOf<PeerName>('peer', PEERS, { all: [...PEERS], none: [] })).default([...PEERS], 'all'))
    .option('-q, --quick', 'short run: fewer repetitions, smaller sgemm and Fashion-MNIST sets, one epoch')
    .option('--json', 'print one JSON object per result on stdout instead of the tables')
    .option('--fashion <path>', 'folder with the Fashion-MNIST IDX files (default: /usr/share/datasets/fashion-mnist, then ../shared/datasets/fashion-mnist beside the package)')
    .option('-o, --out <dir>', 'results folder (JSON, markdown, SVG charts)', 'bench/results')
    .option('--no-out', 'write no files')
    .addOption(new Option('--epochs <n>', 'Fashion-MNIST epochs (default 10, --quick 1)').argParser(positiveInt('--epochs')))
    .addOption(new Option('--reps <n>', 'timed repetitions (default 5, --quick 3)').argParser(positiveInt('--reps')))
    .addOption(new Option('--threads <n>', 'threads for the "all threads" runs (default: every core)').argParser(positiveInt('--threads')))
    .action(async (o: BenchCliOptions) => {
      const { results } = await benchAction(o);
      const failed = failedChecks(results);
      if (failed.length) {
        process.stderr.write(`deltaprop checks failed:\n${failed.map((f) => `  ${f}`).join('\n')}\n`);
        process.exitCode = 1;
      }
    });
}

/** `node dist/bench.js [options]` */
export async function main(argv: string[] = process.argv): Promise<void> {
  await benchCommand().name('deltaprop-bench').parseAsync(argv);
}
