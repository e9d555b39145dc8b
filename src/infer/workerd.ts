// deltaprop/infer for Cloudflare Workers: prediction only, on wasm with both builds imported as
// compiled modules (workerd refuses to compile WebAssembly from bytes), else js.
// The paths are those of the built file, dist/infer-workerd.js: the build keeps .wasm imports as
// they are written (tsup.config.ts), for the worker's bundler to resolve next to it.
import relaxed from '../wasm/deltaprop-relaxed.wasm';
import simd from '../wasm/deltaprop-simd.wasm';
import { JsBackend } from '../backends/js.js';
import type { BackendOptions } from '../backends/select.js';
import { loadWasmBackend, type WasmBackendOptions } from '../backends/wasm.js';
import { makeInferEntry } from './entry.js';

export * from './exports.js';

export interface InferBackendOptions extends BackendOptions {
  wasmOptions?: WasmBackendOptions;
}

export const { loaders, loadBackend, backendInfo, loadPredictor } = makeInferEntry<InferBackendOptions>({
  wasm: (o) => loadWasmBackend({ simd, relaxed }, (o as InferBackendOptions).wasmOptions),
  js: () => new JsBackend(),
}, { native: 'the native addon needs Node; this runtime uses WebAssembly' });
