// Model-file fuzzing (test/fuzz/model-files.ts): 1,200 mutations of real saved models, the CRC
// recomputed so that each reaches the parser, in batches of 200 per child process. The parser is
// the same whatever the backend, so most cases load onto js and a share of them onto native and
// wasm (the Model built from a hostile but valid file runs there). Each file loads to a model that
// predicts finite numbers and saves again, or is a ModelFileError with a clear message; none
// crashes, hangs, or costs unbounded memory or time. DELTAPROP_FUZZ_SEED picks another seed.
import { describe, expect, it } from 'vitest';
import { BACKENDS } from './backends.js';
import { FUZZ_SEED, fuzz, saveReport, summarize, useFuzzChild } from './fuzz/driver.js';

const SEED = FUZZ_SEED;
/** Which cases of the seed's sequence load onto which backend: [first, count]. */
const RUNS: Record<string, [number, number]> = { js: [0, 800], native: [800, 200], wasm: [1000, 200] };
const BATCH = 200;

const childProgram = useFuzzChild();

describe.each(BACKENDS.map((b) => [b.name, ...RUNS[b.name]] as const))('model-file fuzzing, loaded onto %s', (backend, from, cases) => {
  it(`cases ${from}..${from + cases - 1}: each mutated file loads, predicts finite numbers and saves again, or is a clear ModelFileError`, async () => {
    const o = { suite: 'model-files', backend, seed: SEED };
    // a case takes milliseconds (a 5,000-layer model a few hundred); 15 s without the next is a hang
    const r = await fuzz({ ...o, program: childProgram(), from, cases, batch: BATCH, timeoutMs: 180_000, caseMs: 15_000 });
    console.log(`model files on ${backend}: ${r.casesRun} cases in ${r.children} children, ${(r.ms / 1000).toFixed(1)} s; outcomes ${JSON.stringify(r.tally)}`);
    saveReport(o, r); // every failure, as JSON, where DELTAPROP_FUZZ_REPORT names a folder
    expect(r.casesRun).toBe(cases);
    expect(r.failures.length, summarize(o, r)).toBe(0);
  }, 300_000);
});
