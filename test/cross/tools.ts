// What the cross tests need from Debian (qemu-user, g++-aarch64-linux-gnu with its arm64 libc
// and libstdc++): each test first checks for them and fails naming the packages.
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';

/** qemu-aarch64 with the cross toolchain's arm64 libraries (the loader, libc, libstdc++). */
export const QEMU = ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu'];

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

export function expectCrossTools(): void {
  const missing = ['aarch64-linux-gnu-g++', 'qemu-aarch64'].filter((c) => !has(c));
  expect(missing, 'install the Debian packages g++-aarch64-linux-gnu and qemu-user (.ci/run does)').toEqual([]);
}
