// The physical limit: the machine's fp32 FMA peak (bench/peers/fma-peak.cc, register-only FMAs on
// the widest ISA, 1 thread and all threads), and every figure of a run as a share of it. A GEMM
// does 2·m·n·k flops; a training step of an MLP does its GEMMs: per layer the forward x·W, dW = xᵀ·dz
// and, for every layer but the first (whose input needs no gradient), dx = dz·Wᵀ.
import { join } from 'node:path';
import { compileProgram } from './systems/compiled.js';
import { runPython } from './systems/python.js';

export interface Peak {
  /** 'avx512f' or 'avx2-fma'. */
  isa: string;
  /** GFLOP/s on one thread and on `threads` threads (best of 5 runs each). */
  one: number;
  all: number;
  threads: number;
}

/** GEMM flops of one training sample (one row of a step) through layers of widths `sizes`. */
export function trainFlopsPerSample(sizes: readonly number[]): number {
  let f = 0;
  for (let i = 0; i + 1 < sizes.length; i++) {
    const mk = sizes[i] * sizes[i + 1];
    f += 2 * mk /* forward */ + 2 * mk /* dW */ + (i > 0 ? 2 * mk : 0); /* dx */
  }
  return f;
}

/** The peak that a run on `threads` threads can reach: one thread's, all threads', or in between. */
export function peakFor(peak: Peak, threads: number | undefined): number {
  const t = Math.max(1, threads ?? 1);
  if (t === 1) return peak.one;
  if (t >= peak.threads) return peak.all;
  return Math.min(peak.all, peak.one * t);
}

export interface PeakFields {
  peak_gflops?: number;
  pct_of_peak?: number;
}

/**
 * A row's achieved GFLOP/s: measured (sgemm), or samples/s × the GEMM flops of a sample
 * (training). `sizes` are the workload's layer widths; undefined when the row has no rate.
 */
export function achievedGflops(row: { gflops?: number; samples_per_s?: number; error?: string }, sizes?: readonly number[]): number | undefined {
  if (row.error) return undefined;
  if (row.gflops !== undefined) return row.gflops;
  if (row.samples_per_s !== undefined && sizes) return (row.samples_per_s * trainFlopsPerSample(sizes)) / 1e9;
  return undefined;
}

/** peak_gflops and pct_of_peak of a row (nothing without a peak or a rate). */
export function peakFields(row: { gflops?: number; samples_per_s?: number; threads?: number; error?: string }, sizes: readonly number[] | undefined,
  peak: Peak | null): PeakFields {
  if (!peak) return {};
  const g = achievedGflops(row, sizes);
  const p = peakFor(peak, row.threads);
  return g === undefined ? { peak_gflops: p } : { peak_gflops: p, pct_of_peak: (100 * g) / p };
}

/**
 * Compiles bench/peers/fma-peak.cc (cached) and measures 1 thread and `threads` threads, each the
 * best of 5 runs of `millions` million iterations (20: about 0.2 s a run at 250 GFLOP/s).
 */
export async function measurePeak(root: string, threads: number, millions = 20): Promise<Peak> {
  const bin = compileProgram(join(root, 'bench', 'peers', 'fma-peak.cc'), ['-O2', '-std=c++17', '-pthread'], [],
    'install one with: sudo apt-get install -y g++');
  const once = async (t: number): Promise<{ isa: string; gflops: number }> => {
    const lines = await runPython(bin.path, [String(t), String(millions)], {}, () => {}, 120_000);
    const l = lines.find((x) => typeof x.gflops === 'number' || x.error);
    if (!l || l.error) throw new Error(`fma-peak: ${String(l?.error ?? 'no result')}`);
    return { isa: String(l.isa), gflops: l.gflops as number };
  };
  const one = await once(1);
  const all = threads > 1 ? await once(threads) : one;
  return { isa: one.isa, one: one.gflops, all: all.gflops, threads };
}
