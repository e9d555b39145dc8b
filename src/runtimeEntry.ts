// The backend-selection functions of the entries for runtimes without Node's module system
// (browsers, Deno, Cloudflare workerd): wasm, then js. The Node entry (index.ts) adds native.
import type { Backend, BackendName } from './backends/backend.js';
import { JsBackend } from './backends/js.js';
import { probeBackends, selectBackend, warnJsFallbackOnce, type BackendLoader, type BackendOptions, type BackendReport } from './backends/select.js';
import { loadWasmBackend, type WasmBackendOptions, type WasmSource, type WasmSources } from './backends/wasm.js';
import { modelFromBytes } from './io/modelFile.js';
import { Model } from './model/model.js';
import type { ModelSpec } from './spec.js';

export interface WebBackendOptions extends BackendOptions {
  /** Where the wasm kernels come from (default: the package's wasm/ files, or the imported modules on workerd). */
  wasm?: WasmSource | WasmSources;
  /** Options of the wasm backend (relaxed SIMD, memory limit). */
  wasmOptions?: WasmBackendOptions;
}

const NO_NATIVE = 'the native addon needs Node; this runtime uses WebAssembly';

export function makeEntry(defaultWasm?: () => WasmSource | WasmSources) {
  const loaders: Partial<Record<BackendName, BackendLoader>> = {
    wasm: (o) => {
      const w = o as WebBackendOptions;
      return loadWasmBackend(w.wasm ?? defaultWasm?.(), { ...w.wasmOptions, threads: w.wasmOptions?.threads ?? o.threads });
    },
    js: () => new JsBackend(),
  };
  const unavailable = { native: NO_NATIVE };

  /**
   * Loads a backend: the one asked for (option or DELTAPROP_BACKEND), else wasm, else js (with a
   * console warning, once, that says why wasm did not load).
   */
  async function loadBackend(opts: WebBackendOptions = {}): Promise<Backend> {
    const { backend, report } = await selectBackend(loaders, opts, unavailable);
    warnJsFallbackOnce(report);
    return backend;
  }

  /** Which backend runs and why, with the status of every other backend. */
  async function backendInfo(opts: WebBackendOptions = {}): Promise<BackendReport> {
    return probeBackends(loaders, opts, unavailable);
  }

  /** Creates a model on the selected backend (see `loadBackend`). */
  async function createModel(spec: ModelSpec, opts: WebBackendOptions = {}): Promise<Model> {
    return new Model(spec, await loadBackend(opts));
  }

  /** Loads a model from the bytes of a model file onto the selected backend. */
  async function loadModel(bytes: Uint8Array, opts: WebBackendOptions = {}): Promise<Model> {
    return modelFromBytes(bytes, await loadBackend(opts));
  }

  return { loaders, loadBackend, backendInfo, createModel, loadModel };
}
