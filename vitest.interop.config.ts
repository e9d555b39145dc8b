import { defineConfig } from 'vitest/config';

// `npm run test:interop`: the tests that need Debian packages besides Node (python3-torch for
// PyTorch's own ONNX exports and predictions, python3-onnx for the ONNX checker). `npm test` does
// not run them (their files end in .interop.ts, not .test.ts); a missing package fails them, with
// the package to install in the message.
export default defineConfig({
  test: {
    include: ['test/**/*.interop.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
