// ONNX in and out: works from bytes, so every entry (Node, browsers, Deno, workerd) exports it.
export { toOnnx } from './export.js';
export { modelFromOnnx, OnnxError, parseOnnx } from './import.js';
export type { OnnxImportOptions, ParsedOnnx } from './import.js';
export { ONNX_NAMES } from './schema.js';
