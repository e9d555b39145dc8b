// What a fuzz child and its parent say to each other, and the shape of one case's verdict. A child
// writes one line per event to stdout, synchronously, so that the last `S` line before a crash
// names the case that was running.
//   S <index> <what>    a case starts (with its description)
//   F <json Verdict>    a case failed its oracle
//   O <bucket>          a case ended, with its outcome bucket (for the run's histogram)
//   T <json tally>      the batch is done (outcome counts), written once at the end
export interface Verdict {
  index: number;
  /**
   * crash, hang, memory, slow; wrong (a valid input gave a wrong or non-finite result); wrote (threw
   * after writing); refused (a valid input threw); accepted (bad input taken); unclear (error type
   * or message); harness (a fault of the fuzzer itself, not of the library)
   */
  category: string;
  /** Groups equal defects: kernel, argument and mutation, or a mutation kind and an outcome. */
  signature: string;
  /** What the case did, enough to understand it without replaying. */
  what: string;
  detail: string;
}

/** What a suite's case returns to the child: a verdict (null when it passed) and an outcome bucket. */
export interface CaseOutcome {
  failure: Omit<Verdict, 'index'> | null;
  /** Outcome bucket for the run's histogram, e.g. "threw RangeError" or "loaded". */
  bucket: string;
}

export interface Suite {
  /** Loads what every case of a batch shares (the backend, base files). */
  setup(backend: string, seed: number): Promise<unknown>;
  run(ctx: unknown, seed: number, index: number): Promise<CaseOutcome> | CaseOutcome;
  /** A one-line description of case `index` (for reports), without running it. */
  describe(ctx: unknown, seed: number, index: number): string;
}

/** Seeds a case's generator from the run's seed and the case index (so any case replays alone). */
export function caseSeed(seed: number, index: number): number {
  return fmix(fmix(seed >>> 0) ^ fmix((index + 0x7f4a7c15) >>> 0));
}

// murmur3's finalizer: every input bit reaches every output bit
function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
