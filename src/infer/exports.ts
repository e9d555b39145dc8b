// The runtime-neutral part of every inference entry.
export { Predictor, predictorFrom, predictorFromBytes, type ModelParts } from './predictor.js';
export { ACT } from '../backends/backend.js';
export type { ActivationName, Backend, BackendName, Buf } from '../backends/backend.js';
export { JsBackend } from '../backends/js.js';
export { BackendError, BACKEND_NAMES } from '../backends/select.js';
export type { BackendOptions, BackendReport, BackendStatus } from '../backends/select.js';
export { InputError, type Matrix, type MatrixInput } from '../data.js';
export { ModelFileError, parseModelFile } from '../io/modelFile.js';
export { SpecError, type ModelSpec, type Normalization } from '../spec.js';
export { loadWasmBackend, WasmBackend } from '../backends/wasm.js';
export type { WasmBackendOptions, WasmSource, WasmSources } from '../backends/wasm.js';
