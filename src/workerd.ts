// The entry for Cloudflare Workers (workerd), which refuse to compile WebAssembly from bytes at
// run time: both builds are imported as modules (the bundler or wrangler turns each .wasm import
// into a compiled WebAssembly.Module) and feature detection picks one.
import relaxed from '../wasm/deltaprop-relaxed.wasm';
import simd from '../wasm/deltaprop-simd.wasm';
import { makeEntry } from './runtimeEntry.js';

export * from './core.js';
export type { WebBackendOptions } from './runtimeEntry.js';

export const { loaders, loadBackend, backendInfo, createModel, loadModel } = makeEntry(() => ({ simd, relaxed }));
