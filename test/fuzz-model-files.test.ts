// Model-file fuzzing (test/fuzz/model-files.ts): 1,200 mutations of real saved models (400 per
// backend the model loads onto), the CRC recomputed so that each reaches the parser, each batch in
// a child process. Each file loads to a model that predicts finite numbers and saves again, or is
// a ModelFileError with a clear message; none crashes, hangs, or costs unbounded memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from './backends.js';
import { buildPrograms, fuzz, saveReport, summarize } from './fuzz/driver.js';

const SEED = Number(process.env.DELTAPROP_FUZZ_SEED ?? 20261201);
const CASES = 400, BATCH = 200;

let program = '';
let remove = (): void => {};
beforeAll(async () => {
  const built = await buildPrograms({ 'fuzz-child': 'test/fuzz/child.ts' });
  program = `${built.dir}/fuzz-child.js`;
  remove = built.remove;
}, 60_000);
afterAll(() => remove());

describe.each(BACKENDS.map((b) => [b.name] as const))('model-file fuzzing, loaded onto %s', (backend) => {
  it(`${CASES} mutated model files: each loads, predicts finite numbers and saves again, or is a clear ModelFileError`, async () => {
    // each backend sees other cases of the same generator: the seed differs per backend
    const o = { suite: 'model-files', backend, seed: SEED + ['native', 'wasm', 'js'].indexOf(backend) };
    const r = await fuzz({ ...o, program, cases: CASES, batch: BATCH, timeoutMs: 120_000, caseMs: 15_000 });
    console.log(`model files on ${backend}: ${r.casesRun} cases in ${r.children} children, ${(r.ms / 1000).toFixed(1)} s; outcomes ${JSON.stringify(r.tally)}`);
    saveReport(o, r); // every failure, as JSON, where DELTAPROP_FUZZ_REPORT names a folder
    expect(r.casesRun).toBe(CASES);
    expect(r.failures.length, summarize(o, r)).toBe(0);
  }, 300_000);
});
