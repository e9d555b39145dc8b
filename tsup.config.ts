import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig, type Options } from 'tsup';

/**
 * Source maps without the sources' text: stack traces still name src/ files and lines, and the
 * package stays under its size budget (the text of every bundled dependency made up most of it).
 */
const mapsWithoutSources: Options['esbuildOptions'] = (o) => {
  o.sourcesContent = false;
};

/**
 * A self-contained ESM program for Node (the CLI, the benchmark), added to dist/ without cleaning it.
 * Exported for tests that run a program of their own in a fresh process.
 */
export const programBuild: Options = {
  format: ['esm'],
  dts: false,
  sourcemap: true,
  esbuildOptions: mapsWithoutSources,
  clean: false,
  target: 'node20',
  platform: 'node',
  splitting: false,
  external: ['node-gyp-build'],
};

/**
 * The `deltaprop` command (package.json bin): one self-contained ESM file with its shebang. Exported
 * so that test/cli.test.ts builds exactly this, without cleaning the rest of dist/.
 */
export const cliBuild: Options = {
  ...programBuild,
  entry: { cli: 'src/cli.ts' },
  banner: { js: '#!/usr/bin/env node' },
};

/**
 * The CSV worker, dist/csv-worker.js, which csvSource (dist/index.js, dist/cli.js) starts to parse
 * a file on another thread. No source map: the package stays under its size budget, and the
 * worker's code is csv-stream.ts's, mapped in the entries that import it.
 */
export const csvWorkerBuild: Options = {
  ...programBuild,
  sourcemap: false,
  entry: { 'csv-worker': 'src/io/csv-worker.ts' },
};

/**
 * `npm run bench` (bench/run.ts → dist/bench.js), which `deltaprop bench` also imports from beside
 * dist/cli.js when it runs: the CLI does not bundle the suite. tinybench is bundled; the peers
 * (tfjs, brain.js) stay run-time imports, so a missing peer is reported by the bench instead of
 * breaking the build.
 */
export const benchBuild: Options = {
  ...programBuild,
  entry: { bench: 'bench/run.ts' },
};

// ESM + CommonJS builds of the library with type declarations, and the CLI as ESM.
/**
 * An entry for browsers, Deno and workerd: ESM only, with types, no Node built-ins (platform
 * 'browser' makes a stray node: import a build error), self-contained.
 */
const browserBuild: Options = {
  format: ['esm'],
  dts: true,
  sourcemap: true,
  esbuildOptions: mapsWithoutSources,
  clean: false,
  target: 'es2022',
  platform: 'browser',
  splitting: false,
};

/** The .wasm imports of a workerd entry stay imports: the worker's bundler turns them into compiled modules. */
const wasmExternal: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'wasm-external',
  setup(build) {
    build.onResolve({ filter: /\.wasm$/ }, (args) => ({ path: args.path, external: true }));
  },
};

export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    esbuildOptions: mapsWithoutSources,
    clean: true,
    target: 'node20',
    platform: 'node',
    external: ['node-gyp-build'],
    shims: true,
  },
  {
    // browsers and Deno (web), Cloudflare workerd: ESM only, no Node built-ins (platform 'browser'
    // makes a stray node: import a build error), each entry self-contained. The workerd entry's
    // .wasm imports stay imports: the worker's bundler turns them into compiled modules.
    entry: { web: 'src/web.ts', workerd: 'src/workerd.ts' },
    ...browserBuild,
    esbuildPlugins: [wasmExternal],
  },
  // The model worker (src/worker/model-worker.ts) that createWorkerModel starts: dist/web.js finds
  // it beside itself, and so do bundlers (new URL('./model-worker.js', import.meta.url)). No types
  // (nothing imports it) and no source map (the package's size).
  { entry: { 'model-worker': 'src/worker/model-worker.ts' }, ...browserBuild, dts: false, sourcemap: false },
  // deltaprop/infer: prediction only, no training code (src/infer/); for browsers and Deno, for
  // workerd, and deltaprop/infer/onnx, the ONNX reader, apart so that the schema is only in
  // bundles that read ONNX. One build each, so that each has its own self-contained declarations
  // (built together they would share declaration chunks).
  ...Object.entries({ 'infer-web': 'src/infer/web.ts', 'infer-workerd': 'src/infer/workerd.ts', 'infer-onnx': 'src/infer/onnx.ts' })
    .map(([name, file]): Options => ({ entry: { [name]: file }, ...browserBuild, sourcemap: false, esbuildPlugins: [wasmExternal] })),
  {
    // deltaprop/infer in Node and Bun: native, then wasm, then js. ESM only, and no source maps in
    // any inference build: with them and a CommonJS copy the package would grow by a sixth (its
    // 2 MB bound, test/tarball.test.ts)
    entry: { infer: 'src/infer/node.ts' },
    format: ['esm'],
    dts: true,
    sourcemap: false,
    clean: false,
    target: 'node20',
    platform: 'node',
    external: ['node-gyp-build'],
    shims: true,
  },
  {
    // deltaprop/inline: the web entry with both .wasm builds inside the bundle (esbuild's binary
    // loader: base64, decoded once at load), for bundlers that do not emit the .wasm files
    entry: { inline: 'src/inline.ts' },
    ...browserBuild,
    esbuildPlugins: [{
      name: 'inline-wasm',
      setup(build) {
        build.onResolve({ filter: /^deltaprop-inline-wasm:/ }, (args) => {
          const which = args.path.slice('deltaprop-inline-wasm:'.length);
          if (which !== 'simd' && which !== 'relaxed') throw new Error(`inline-wasm: unknown build '${which}'`);
          return { path: resolve(`wasm/deltaprop-${which}.wasm`), namespace: 'inline-wasm' };
        });
        build.onLoad({ filter: /.*/, namespace: 'inline-wasm' }, (args) => ({ contents: readFileSync(args.path), loader: 'binary' }));
      },
    }],
  },
  cliBuild,
  csvWorkerBuild,
  benchBuild,
]);
