// The standalone C++ kernel test (native/test/kernel_test.cc) cross-built for arm64 and run under
// qemu-aarch64, so that the NEON micro-kernel is checked against the scalar reference.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../packed.js';
import { QEMU, expectCrossTools } from './tools.js';

describe('standalone C++ kernel test on arm64', () => {
  it('passes for NEON and scalar under qemu-aarch64', () => {
    expectCrossTools();
    const out = execFileSync(join(repoRoot, 'native', 'test', 'run.sh'), {
      encoding: 'utf8',
      env: { ...process.env, CXX: 'aarch64-linux-gnu-g++', RUN: QEMU.join(' ') },
    });
    expect(out).toContain('ok   neon (micro-kernel 8x8)');
    expect(out).toMatch(/2 ISAs tested, 0 failures/);
  }, 240_000);
});
