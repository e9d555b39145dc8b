// Everything that runs in any JavaScript runtime: the model, the reference backend, model files
// as bytes, backend selection. No Node-only imports here: the browser, Deno, Bun and workerd
// entries re-export this module.
export { ACT, LOSS, EPS_PROB } from './backends/backend.js';
export type { ActCode, ActivationName, Backend, BackendName, Buf, LossCode, LossName } from './backends/backend.js';
export { JsBackend } from './backends/js.js';
export { BackendError, probeBackends, selectBackend, BACKEND_NAMES } from './backends/select.js';
export type { BackendLoader, BackendOptions, BackendReport, BackendStatus } from './backends/select.js';
export { fitNormalization, InputError, isBatchSource, toMatrix, toTargets } from './data.js';
export type { Batch, BatchSource, Matrix, MatrixInput, TargetInput } from './data.js';
export { Model } from './model/model.js';
export { TrainingError } from './model/fit.js';
export type { BatchLogs, CheckpointOptions, EpochLogs, Evaluation, FitOptions, History, Metrics, Monitor } from './model/fit.js';
export type { LayerSummary, ModelSummary } from './model/summary.js';
export type { EvaluateOptions } from './model/model.js';
export type { ClassWeight, ClassWeightMap } from './model/weights.js';
export { classificationMetrics, MetricAccumulator, metricsFromConfusion, regressionMetrics, rocAuc } from './metrics.js';
export type { ClassificationMetrics, PerClassMetrics, RegressionMetrics } from './metrics.js';
export { checkSpec, scheduledRate, SpecError } from './spec.js';
export type { BatchNormSpec, DenseSpec, DropoutSpec, LayerNormSpec, LayerSpec, LayerType, ModelSpec, NormActivationName, Normalization, OptimizerName, OptimizerSpec, Schedule } from './spec.js';
export { FORMAT_VERSION, ModelFileError, modelFromBytes, modelToBytes, parseModelFile } from './io/modelFile.js';
export { permutation, Random } from './random.js';
// The wasm backend is Node-free too: its loader takes a module, bytes or a URL in any runtime.
export { loadWasmBackend, relaxedSimdSupported, simdSupported, WasmBackend, WASM_FILES } from './backends/wasm.js';
export type { WasmBackendOptions, WasmSource, WasmSources } from './backends/wasm.js';
