// Kernel-boundary fuzzing (test/fuzz/kernels.ts): 2,400 seeded calls per backend through the
// Backend interface, valid ones mixed with mutated ones, each batch of 400 in a child process so
// that a crash or a hang is reported with the case that caused it. The expected error shape is
// in test/fuzz/oracle.ts: a TypeError or RangeError whose message matches /^<kernel>: <argument>\b/.
// Replay one case with the command printed beside it; DELTAPROP_FUZZ_SEED picks another seed.
import { describe, expect, it } from 'vitest';
import { BACKENDS } from './backends.js';
import { FUZZ_SEED, fuzz, saveReport, summarize, useFuzzChild } from './fuzz/driver.js';

const SEED = FUZZ_SEED;
const CASES = 2400, BATCH = 400;

const childProgram = useFuzzChild();

describe.each(BACKENDS.map((b) => [b.name] as const))('kernel boundary fuzzing on %s', (backend) => {
  it(`${CASES} seeded calls, valid and mutated: a valid call matches js, a bad one throws a clear error, none crashes or hangs`, async () => {
    const o = { suite: 'kernels', backend, seed: SEED };
    // a batch takes about a second; 30 s is a hang
    const r = await fuzz({ ...o, program: childProgram(), cases: CASES, batch: BATCH, timeoutMs: 120_000, caseMs: 2_000 });
    console.log(`kernels on ${backend}: ${r.casesRun} cases in ${r.children} children, ${(r.ms / 1000).toFixed(1)} s; outcomes ${JSON.stringify(r.tally)}`);
    saveReport(o, r); // every failure, as JSON, where DELTAPROP_FUZZ_REPORT names a folder
    expect(r.casesRun).toBe(CASES);
    expect(r.failures.length, summarize(o, r)).toBe(0);
  }, 300_000);
});
