import { defineConfig } from 'vitest/config';

// Test files run one at a time: several measure time (event-loop blocking during fit, thread
// scaling, per-call cost) and the native thread pool wants both cores; on a 2-core machine two
// files side by side would make those numbers about the neighbour, and the suite is no faster.
export default defineConfig({
  test: {
    fileParallelism: false,
    testTimeout: 30_000,
  },
});
