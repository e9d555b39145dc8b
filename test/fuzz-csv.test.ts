// CSV fuzzing through `deltaprop train` (test/fuzz/csv.ts): 600 mutations of a valid data file
// (bad cells, ragged rows, a duplicated target name, truncation, BOM, CRLF, garbage), in batches of
// 300 per child process. Each trains, or is one of the CLI's user errors with a clear one-line
// message naming the file, and the line for a bad cell or row.
import { describe, expect, it } from 'vitest';
import { FUZZ_SEED, fuzz, saveReport, summarize, useFuzzChild } from './fuzz/driver.js';

const SEED = FUZZ_SEED;
const CASES = 600, BATCH = 300;

const childProgram = useFuzzChild();

describe('CSV fuzzing through the CLI', () => {
  it(`${CASES} mutated CSV files: each trains, or is a clear user error naming the file and line`, async () => {
    // the js backend: the readers and the checks after them are the same on every backend
    const o = { suite: 'csv', backend: 'js', seed: SEED };
    const r = await fuzz({ ...o, program: childProgram(), cases: CASES, batch: BATCH, timeoutMs: 120_000, caseMs: 10_000 });
    console.log(`csv: ${r.casesRun} cases in ${r.children} children, ${(r.ms / 1000).toFixed(1)} s; outcomes ${JSON.stringify(r.tally)}`);
    saveReport(o, r); // every failure, as JSON, where DELTAPROP_FUZZ_REPORT names a folder
    expect(r.casesRun).toBe(CASES);
    expect(r.failures.length, summarize(o, r)).toBe(0);
  }, 180_000);
});
