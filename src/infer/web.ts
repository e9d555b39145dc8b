// deltaprop/infer for browsers and Deno: prediction only, on wasm (its .wasm fetched from the
// package's wasm/ folder, or from the `wasm` option), else js. Never imports a Node module.
import { JsBackend } from '../backends/js.js';
import type { BackendOptions } from '../backends/select.js';
import { loadWasmBackend, type WasmBackendOptions, type WasmSource, type WasmSources } from '../backends/wasm.js';
import { makeInferEntry } from './entry.js';

export * from './exports.js';

export interface InferBackendOptions extends BackendOptions {
  /** Where the wasm kernels come from (default: the package's wasm/ files). */
  wasm?: WasmSource | WasmSources;
  wasmOptions?: WasmBackendOptions;
}

export const { loaders, loadBackend, backendInfo, loadPredictor } = makeInferEntry<InferBackendOptions>({
  wasm: (o) => {
    const w = o as InferBackendOptions;
    return loadWasmBackend(w.wasm, { ...w.wasmOptions, threads: w.wasmOptions?.threads ?? o.threads });
  },
  js: () => new JsBackend(),
}, { native: 'the native addon needs Node; this runtime uses WebAssembly' });
