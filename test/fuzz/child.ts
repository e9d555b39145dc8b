// The fuzz child: runs cases [from, from + count) of one suite on one backend and reports each
// start and each failure on stdout as it happens (protocol.ts). Run by driver.ts, or by hand to
// replay a case:
//   npx vite-node test/fuzz/child.ts -- kernels native 20261201 1234 1
import { writeSync } from 'node:fs';
import type { CaseOutcome, Suite } from './protocol.js';
import { csvSuite } from './csv.js';
import { kernelSuite } from './kernels.js';
import { modelFileSuite } from './model-files.js';
import { selfTestSuite } from './selftest.js';

const SUITES: Record<string, Suite> = { kernels: kernelSuite, 'model-files': modelFileSuite, csv: csvSuite, selftest: selfTestSuite };

const line = (s: string): void => {
  writeSync(1, `${s}\n`);
};

async function main(argv: string[]): Promise<void> {
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  const [suiteName, backend, seedArg, fromArg, countArg, ...flags] = args;
  const suite = SUITES[suiteName];
  if (!suite) throw new Error(`usage: child SUITE BACKEND SEED FROM COUNT [--verbose]; suites: ${Object.keys(SUITES).join(', ')}`);
  const seed = Number(seedArg), from = Number(fromArg), count = Number(countArg);
  const verbose = flags.includes('--verbose');
  const ctx = await suite.setup(backend, seed);
  const tally: Record<string, number> = {};
  for (let i = from; i < from + count; i++) {
    // the description first: if the case crashes or hangs, this line is what the parent has.
    // An exception out of the suite's own code is a fault of the fuzzer, reported as such.
    let r: CaseOutcome;
    try {
      line(`S ${i} ${suite.describe(ctx, seed, i).replace(/\n/g, ' ')}`);
      r = await suite.run(ctx, seed, i);
    } catch (e) {
      const msg = String((e as Error)?.stack ?? e).slice(0, 600).replace(/\n/g, ' | ');
      r = { failure: { category: 'harness', signature: `fuzzer fault: ${String(e).slice(0, 80)}`, what: `case ${i}`, detail: msg }, bucket: 'harness fault' };
    }
    tally[r.bucket] = (tally[r.bucket] ?? 0) + 1;
    if (r.failure) line(`F ${JSON.stringify({ index: i, ...r.failure })}`);
    else if (verbose) line(`# passed: ${r.bucket}`);
    line(`O ${r.bucket.replace(/\n/g, ' ')}`);
  }
  line(`T ${JSON.stringify(tally)}`);
}

await main(process.argv.slice(2));
