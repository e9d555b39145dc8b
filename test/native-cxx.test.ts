// Runs the standalone C++ kernel test (native/test/kernel_test.cc) on this machine's CPU, for
// every ISA it runs. Its arm64 (NEON) run under qemu is test/cross/neon-kernels.cross.ts, in
// `npm run test:cross`.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativePackageRoot } from '../src/backends/native.js';

const script = join(nativePackageRoot(), 'native', 'test', 'run.sh');

describe('standalone C++ kernel test', () => {
  it('passes on this CPU, for every ISA it runs', () => {
    const out = execFileSync(script, { encoding: 'utf8', env: { ...process.env, CXX: process.env.CXX ?? 'g++' } });
    expect(out).toMatch(/ok {3}scalar/);
    expect(out).toMatch(/, 0 failures/);
    if (process.arch === 'x64') {
      const isas = /ISAs this CPU runs: (.*)/.exec(out)![1].split(',');
      for (const isa of isas) expect(out).toContain(`ok   ${isa}`);
    }
  }, 180_000);
});
