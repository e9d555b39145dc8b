// Runs the standalone C++ kernel test (native/test/kernel_test.cc): on this machine's CPU, and
// cross-built for arm64 under qemu-aarch64 so that the NEON micro-kernel is tested. The arm64 run
// needs Debian's g++-aarch64-linux-gnu and qemu-user (CI installs them); without them it fails and
// says so rather than passing silently.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativePackageRoot } from '../src/backends/native.js';

const script = join(nativePackageRoot(), 'native', 'test', 'run.sh');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

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

  it('passes for arm64 (NEON) under qemu-aarch64', () => {
    const missing = ['aarch64-linux-gnu-g++', 'qemu-aarch64'].filter((c) => !has(c));
    expect(missing, 'install the Debian packages g++-aarch64-linux-gnu and qemu-user').toEqual([]);
    const out = execFileSync(script, {
      encoding: 'utf8',
      env: { ...process.env, CXX: 'aarch64-linux-gnu-g++', RUN: 'qemu-aarch64 -L /usr/aarch64-linux-gnu' },
    });
    expect(out).toContain('ok   neon (micro-kernel 8x8)');
    expect(out).toMatch(/2 ISAs tested, 0 failures/);
  }, 240_000);
});
