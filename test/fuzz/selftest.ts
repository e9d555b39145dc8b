// A suite whose cases misbehave on purpose, for test/fuzz-driver.test.ts: the driver must name
// the case that crashed (by a signal), the one that hung, and report the failures of the rest.
import type { CaseOutcome, Suite } from './protocol.js';

export const SELFTEST = { crashAt: 3, hangAt: 7, failAt: 9 } as const;

export const selfTestSuite: Suite = {
  async setup() {
    return null;
  },
  run(_ctx, _seed, index): CaseOutcome {
    if (index === SELFTEST.crashAt) process.kill(process.pid, 'SIGSEGV');
    if (index === SELFTEST.hangAt) for (;;) { /* a kernel that never returns */ }
    if (index === SELFTEST.failAt) {
      return { failure: { category: 'accepted', signature: 'selftest: bad input taken', what: `case ${index}`, detail: 'did not throw' }, bucket: 'failed' };
    }
    return { failure: null, bucket: 'passed' };
  },
  describe: (_ctx, _seed, index) => `self-test case ${index}`,
};
