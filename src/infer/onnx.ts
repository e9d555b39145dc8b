// deltaprop/infer/onnx: the ONNX reader alone (the ONNX schema is about 105 kB minified), for
// `loadPredictor(parseOnnx(bytes))`; an inference bundle that reads only model files leaves it out.
export { OnnxError, parseOnnx, type OnnxImportOptions, type ParsedOnnx } from '../onnx/import.js';
