// The wasm backend's public names at their old path (the code is in src/backends/wasm/): loading
// (load.ts), the linear-memory arena (arena.ts) and the kernels (backend.ts).
export { WasmBackend } from './wasm/backend.js';
export { hardwareThreads, registerNodeThreads, threadsUnavailableReason, WasmPoolError } from './wasm/pool.js';
export {
  loadWasmBackend, MAX_WASM_THREADS, registerNodeFs, relaxedSimdSupported, simdSupported, WASM_FILES,
  type WasmBackendOptions, type WasmSource, type WasmSources,
} from './wasm/load.js';
