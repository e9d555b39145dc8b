// The ONNX protobuf messages, from the static module that protobufjs generates from the ONNX
// project's own schema (onnx.proto beside this file, Apache-2.0: see NOTICE.md). Static code, not
// reflection: it needs no eval or `new Function`, which Cloudflare Workers refuse.
// Regenerate with `npm run gen:onnx-proto`.
/*! The ONNX file format's schema (onnx.proto of ONNX 1.12.0), Copyright (c) ONNX Project Contributors, Apache-2.0 */
import { onnx } from './onnx-proto.js';

export { onnx };

/** What the ONNX metadata keys and tensor names of a deltaprop export are. */
export const ONNX_NAMES = {
  input: 'input',
  output: 'output',
  /** JSON array of the class names, in output order. */
  classesKey: 'classes',
  /** JSON { loss, optimizer, seed }: what training needs besides the graph. */
  trainingKey: 'deltaprop.training',
} as const;

/** The ONNX opset deltaprop writes: Softmax over one axis (13) and Gemm with optional C (11). */
export const EXPORT_OPSET = 13;
/** The IR version that goes with opset 13 (so that older runtimes and checkers accept it). */
export const EXPORT_IR_VERSION = 7;

/** An int64 from the decoder (a number, or a Long when long.js is present) as a number; NaN if it is not exact. */
export function int64ToNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && v !== null && 'low' in v && 'high' in v) {
    const { low, high, unsigned } = v as { low: number; high: number; unsigned?: boolean };
    const n = (unsigned ? high >>> 0 : high) * 2 ** 32 + (low >>> 0);
    return Number.isSafeInteger(n) ? n : NaN;
  }
  return NaN;
}
