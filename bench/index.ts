// The benchmark suite as a library and as a command: `npm run bench` (bench/run.ts, built to
// dist/bench.js) and `deltaprop bench`, which loads dist/bench.js only when it is asked for, so
// that the library's CLI does not carry the suite.
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { BACKEND_NAMES, type BackendName } from '../src/index.js';
import { jsonLine, markdown, writeResults } from './report.js';
import { PEERS, runBench, type BenchResults, type PeerName } from './suite.js';
import { WORKLOADS, type WorkloadName } from './workloads.js';

export { runBench, kernelFailed, PEERS, PEER_INSTALL, GEMM_PEERS, type BenchOptions, type BenchResults, type ResultRow, type PeerName, type PairedSgemm } from './suite.js';
export { trainFlopsPerSample, peakFor, peakFields, achievedGflops, measurePeak, type Peak } from './peak.js';
export { markdown, targets, vsBestGemmPeer, writeResults, jsonLine, type Target } from './report.js';
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
  return results.rows.filter((r) => r.system.startsWith('deltaprop') && r.check?.ok === false)
    .map((r) => `${r.workload} ${r.system}${r.shape ? ` ${r.shape}` : ''}${r.threads ? ` (${r.threads} threads)` : ''}: ${r.error ?? 'check failed'}`);
}

/**
 * The `bench` command, named as it is invoked (`deltaprop bench`, or `deltaprop-bench` for
 * `npm run bench`); its action sets process.exitCode to 1 when a deltaprop check failed.
 */
export function benchCommand(name = 'deltaprop-bench'): Command {
  const run = name === 'deltaprop bench' ? '$ deltaprop bench' : '$ npm run bench --';
  return new Command(name)
    .description('benchmark deltaprop\'s backends against TensorFlow.js, brain.js, PyTorch, OpenBLAS and oneDNN (peers at their best), '
      + 'with every figure as % of the machine\'s FMA peak')
    .addOption(new Option('-w, --workload <names>', `comma-separated workloads (${WORKLOADS.join(', ')}); default all`).argParser(listOf('workload', WORKLOADS)))
    .addOption(new Option('-b, --backend <names>', `comma-separated deltaprop backends (${BACKEND_NAMES.join(', ')}); default every one that loads`).argParser(listOf('backend', BACKEND_NAMES)))
    .addOption(new Option('-p, --peers <names>', `comma-separated peers (${PEERS.join(', ')}), all or none`)
      .argParser(listOf<PeerName>('peer', PEERS, { all: [...PEERS], none: [] })).default([...PEERS], 'all'))
    .option('-q, --quick', 'short run: fewer repetitions, smaller sgemm and Fashion-MNIST sets, one epoch')
    .option('--json', 'print one JSON object per result on stdout instead of the tables')
    .option('--fashion <path>', 'folder with the Fashion-MNIST IDX files (default: /usr/share/datasets/fashion-mnist, from Debian\'s dataset-fashion-mnist)')
    .option('-o, --out <dir>', 'results folder (JSON, markdown, SVG charts)', 'bench/results')
    .option('--no-out', 'write no files')
    .addOption(new Option('--epochs <n>', 'Fashion-MNIST epochs (default 10, --quick 1)').argParser(positiveInt('--epochs')))
    .addOption(new Option('--reps <n>', 'timed repetitions (default 5, --quick 3)').argParser(positiveInt('--reps')))
    .addOption(new Option('--threads <n>', 'threads for the "all threads" runs (default: every core)').argParser(positiveInt('--threads')))
    .addHelpText('after', `
Examples:
  ${run} --quick --peers none                 # deltaprop's backends only, short
  ${run} --quick --workload sgemm --peers openblas,onednn
  ${run} --workload sgemm,mnist-mlp --backend native,wasm --json
  ${run}                                      # every workload, backend and peer; results in bench/results

Peers that are not installed are listed with the command that installs them.`)
    .action(async (o: BenchCliOptions) => {
      const { results } = await benchAction(o);
      const failed = failedChecks(results);
      if (failed.length) {
        process.stderr.write(`deltaprop checks failed:\n${failed.map((f) => `  ${f}`).join('\n')}\n`);
        process.exitCode = 1;
      }
    });
}

/**
 * Runs the command on `args` (the arguments after the command name) and returns its exit code:
 * 0, 1 (a deltaprop check failed, or a usage error: reported on one line that points to --help).
 * `deltaprop bench` calls this from dist/bench.js.
 */
export async function runBenchCommand(args: string[], name = 'deltaprop-bench'): Promise<number> {
  const cmd = benchCommand(name).exitOverride()
    .configureOutput({ outputError: (s, write) => write(`${name.split(' ')[0]}: ${s.trim().replace(/\n+/g, ' ')} (see '${name} --help')\n`) });
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await cmd.parseAsync(args, { from: 'user' });
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    throw e;
  } finally {
    process.exitCode = before;
  }
}

/** `node dist/bench.js [options]` */
export async function main(argv: string[] = process.argv): Promise<void> {
  process.exitCode = await runBenchCommand(argv.slice(2));
}
