import { defineConfig } from 'tsup';

// ESM + CommonJS builds of the library with type declarations, and the CLI as ESM.
export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
    external: ['node-gyp-build'],
    shims: true,
  },
]);
