// The module's exports: the kernel set of src/backends/backend.ts over raw byte addresses in the
// imported memory. Buffers are placed by the JavaScript side (src/backends/wasm.ts), which bumps
// from heapBase(); the kernels' own scratch (GEMM packing) lies below it.
import { gemmEx, EPI_NONE, scratchEnd, scratchEndFor } from './gemm';
export { poolControl, poolFailed, poolInit, poolQuit, poolSetActive } from './threads';
export { workerLoop, workerStart } from './worker';
export { denseForward, denseBackward, denseForwardPacked, packWeights, packedWeightsLength } from './dense';
export { lossDelta, sumSquares } from './loss';
export { sgdStep, momentumStep, adamStep } from './optim';
export { resolveProgram, runProgram } from './interpreter';
export { dropoutForward, dropoutBackward } from './dropout';
export { batchNormForward, batchNormInference, batchNormBackward, layerNormForward, layerNormBackward } from './normalization';

/** First free byte after static data and the GEMM scratch: the start of the buffer arena. */
export function heapBase(): usize {
  return scratchEnd;
}

/** The start of the buffer arena with the GEMM scratch of `threads` threads (the threads build). */
export function heapBaseFor(threads: i32): usize {
  return scratchEndFor(threads);
}

// c (m,n) = alpha·op(a)·op(b) + beta·c; op(a) (m,k), op(b) (k,n). beta = 0: c is not read.
export function gemm(transA: bool, transB: bool, m: i32, n: i32, k: i32, alpha: f32, a: usize,
  b: usize, beta: f32, c: usize): void {
  gemmEx(transA, transB, m, n, k, alpha, a, b, beta, c, EPI_NONE, 0, 0, 0, 0);
}

/** 1 when this binary was built with relaxed SIMD (fused multiply-add), 0 for plain SIMD. */
export function relaxedBuild(): bool {
  return ASC_FEATURE_RELAXED_SIMD;
}
