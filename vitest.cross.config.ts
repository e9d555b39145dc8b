import { defineConfig } from 'vitest/config';

// `npm run test:cross`: the tests that need Debian's qemu-user and g++-aarch64-linux-gnu (.ci/run
// installs them): the NEON kernels and the arm64 prebuild, run under qemu-aarch64. One file at a
// time, as in the main suite.
export default defineConfig({
  test: {
    include: ['test/cross/**/*.cross.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
  },
});
