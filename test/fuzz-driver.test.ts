// The fuzz machinery itself: a crashing case is reported by its signal and index, a hanging one
// by its index, the cases after them still run; and the error oracle tells a clear boundary error
// from an unclear one.
import { describe, expect, it } from 'vitest';
import { fuzz, useFuzzChild } from './fuzz/driver.js';
import { errorProblem } from './fuzz/oracle.js';
import { SELFTEST } from './fuzz/selftest.js';

const childProgram = useFuzzChild();

describe('fuzz driver', () => {
  it('names the case that died by a signal and the one that hung, and runs every other case', async () => {
    const r = await fuzz({ program: childProgram(), suite: 'selftest', backend: 'js', seed: 1, cases: 12, batch: 6, timeoutMs: 60_000, caseMs: 1_500 });
    const by = (c: string) => r.failures.filter((f) => f.category === c);
    expect(by('crash').map((f) => f.index)).toEqual([SELFTEST.crashAt]);
    expect(by('crash')[0].signature).toMatch(/^killed by SIGSEGV in self-test case/);
    expect(by('crash')[0].what).toBe('self-test case 3');
    expect(by('crash')[0].detail).toMatch(/alone, the case dies by SIGSEGV too/);
    expect(by('hang').map((f) => f.index)).toEqual([SELFTEST.hangAt]);
    expect(by('accepted').map((f) => f.index)).toEqual([SELFTEST.failAt]);
    expect(r.casesRun).toBe(12);
    expect(r.tally.passed).toBe(9);
  }, 60_000);
});

describe('boundary error oracle', () => {
  const clear = (e: unknown, kernel: string, names: string[]) => errorProblem(e, kernel, names) === null;
  it('takes a TypeError or RangeError that starts with the kernel and names the argument', () => {
    expect(clear(new RangeError('gemm: c has 11 floats, fewer than m*n = 12'), 'gemm', ['c'])).toBe(true);
    expect(clear(new TypeError('sgdStep: lr must be a number'), 'sgdStep', ['lr'])).toBe(true);
    expect(clear(new RangeError('gatherRows: rows [3, 6) are not all in src (5 rows of 4)'), 'gatherRows', ['src', 'start'])).toBe(true);
    expect(clear(new RangeError('compileStep: outs[1] has 7 floats'), 'compileStep', ['outs'])).toBe(true);
    expect(clear(new RangeError('compiled step: lr must be finite'), 'run', ['lr'])).toBe(true);
  });
  it('refuses internals, other error classes, and messages without the kernel or the argument', () => {
    expect(clear(new TypeError("Cannot read properties of null (reading 'data')"), 'gemm', ['a'])).toBe(false);
    expect(clear(new RangeError('wasm backend: a has 11 floats, needs 12'), 'gemm', ['a'])).toBe(false);
    expect(clear(new Error('gemm: a is wrong'), 'gemm', ['a'])).toBe(false);
    expect(clear(new RangeError('gemm: m must be an integer'), 'gemm', ['a'])).toBe(false);
    // a one- or two-letter name must come first: "a" is also a word
    expect(clear(new RangeError('gemm: must be a number'), 'gemm', ['a'])).toBe(false);
    expect(clear(new RangeError('compileStep: every buffer must come from this backend'), 'compileStep', ['params'])).toBe(false);
  });
});
