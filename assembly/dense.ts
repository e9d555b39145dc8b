// Dense layer forward and backward: GEMMs with fused epilogues (gemm.ts) plus the row-wise parts
// (softmax, bias gradient). Pointers are byte addresses; sizes are element counts.
import { EPI_BIAS_ACT, EPI_MUL_DERIV, EPI_NONE, gemmEx, gemmExPacked, packAll, packedLength } from './gemm';
import { ACT_LINEAR, ACT_SOFTMAX } from './abi';
import { expScalar, vexp } from './simd';
import { claim, control, joinTask, publishTask, TASK_BIAS_GRAD, TASK_PARAMS, TASK_SOFTMAX, threadsFor } from './threads';

// In place over each row of y (m,n): y = e^(y − max) / Σ e^(y − max). Rows are independent: the
// threads build splits a large one into row blocks (runSoftmaxBlocks), the same bits.
export function softmaxRows(y: usize, m: i32, n: i32): void {
  if (ASC_FEATURE_THREADS && m > 1 && threadsFor(<i64>m * <i64>n) > 1) {
    publishRows(TASK_SOFTMAX, y, 0, m, n, 0);
    return;
  }
  softmaxRowRange(y, 0, m, n);
}

function softmaxRowRange(y: usize, i0: i32, i1: i32, n: i32): void {
  for (let i = i0; i < i1; i++) {
    const row = y + ((<usize>i * n) << 2);
    let vmax = f32x4.splat(-Infinity);
    let j = 0;
    for (; j + 4 <= n; j += 4) vmax = f32x4.max(vmax, v128.load(row + (<usize>j << 2)));
    let mx = max(max(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1)),
      max(f32x4.extract_lane(vmax, 2), f32x4.extract_lane(vmax, 3)));
    for (; j < n; j++) mx = max(mx, load<f32>(row + (<usize>j << 2)));
    const vm = f32x4.splat(mx);
    let vsum = f32x4.splat(0);
    let sum: f32 = 0;
    j = 0;
    for (; j + 4 <= n; j += 4) {
      const e = vexp(f32x4.sub(v128.load(row + (<usize>j << 2)), vm));
      v128.store(row + (<usize>j << 2), e);
      vsum = f32x4.add(vsum, e);
    }
    for (; j < n; j++) {
      const e = expScalar(load<f32>(row + (<usize>j << 2)) - mx);
      store<f32>(row + (<usize>j << 2), e);
      sum += e;
    }
    sum += (f32x4.extract_lane(vsum, 0) + f32x4.extract_lane(vsum, 1)) +
      (f32x4.extract_lane(vsum, 2) + f32x4.extract_lane(vsum, 3));
    const inv = f32x4.splat(<f32>1.0 / sum);
    j = 0;
    for (; j + 4 <= n; j += 4) v128.store(row + (<usize>j << 2), f32x4.mul(v128.load(row + (<usize>j << 2)), inv));
    const s = <f32>1.0 / sum;
    for (; j < n; j++) store<f32>(row + (<usize>j << 2), load<f32>(row + (<usize>j << 2)) * s);
  }
}

// y (m,out) = act(x (m,inp) · w (inp,out) + b (out)); softmax over each row.
export function denseForward(y: usize, x: usize, w: usize, b: usize, m: i32, inp: i32, out: i32,
  act: i32, alpha: f32): void {
  const epiAct = act == ACT_SOFTMAX ? ACT_LINEAR : act;
  gemmEx(false, false, m, out, inp, 1, x, w, 0, y, EPI_BIAS_ACT, b, epiAct, alpha, 0);
  if (act == ACT_SOFTMAX) softmaxRows(y, m, out);
}

/** Floats of w (inp,out) packed for denseForwardPacked. */
export function packedWeightsLength(inp: i32, out: i32): i32 {
  return packedLength(inp, out);
}

/** w (inp,out) packed once into dst (packedWeightsLength floats), for denseForwardPacked. */
export function packWeights(dst: usize, w: usize, inp: i32, out: i32): void {
  packAll(dst, w, inp, out);
}

// denseForward with w also packed by packWeights: the blocked path reads the packed copy instead
// of packing w again (the same bits); the few-row and small paths read w.
export function denseForwardPacked(y: usize, x: usize, w: usize, packed: usize, b: usize, m: i32, inp: i32, out: i32,
  act: i32, alpha: f32): void {
  const epiAct = act == ACT_SOFTMAX ? ACT_LINEAR : act;
  gemmExPacked(m, out, inp, 1, x, w, packed, 0, y, EPI_BIAS_ACT, b, epiAct, alpha, 0);
  if (act == ACT_SOFTMAX) softmaxRows(y, m, out);
}

// db (n) = scale · Σ_rows dz (m,n), overwritten. Each column sums its rows in order whatever
// columns it is computed with: the threads build splits a large one into column blocks
// (runBiasGradBlocks) of a multiple of 4 columns, so the vector and scalar columns stay the same.
export function biasGrad(db: usize, dz: usize, m: i32, n: i32, scale: f32): void {
  if (ASC_FEATURE_THREADS && n > BIAS_COLS && threadsFor(<i64>m * <i64>n) > 1) {
    publishRows(TASK_BIAS_GRAD, db, dz, m, n, scale);
    return;
  }
  biasGradColumns(db, dz, m, n, scale, 0, n);
}

// biasGrad over the columns [j0, j1), j0 a multiple of 4
function biasGradColumns(db: usize, dz: usize, m: i32, n: i32, scale: f32, j0: i32, j1: i32): void {
  let j = j0;
  const vs = f32x4.splat(scale);
  for (; j + 4 <= j1; j += 4) {
    let s = f32x4.splat(0);
    let src = dz + (<usize>j << 2);
    for (let i = 0; i < m; i++) {
      s = f32x4.add(s, v128.load(src));
      src += <usize>n << 2;
    }
    v128.store(db + (<usize>j << 2), f32x4.mul(s, vs));
  }
  for (; j < j1; j++) {
    let s: f32 = 0;
    for (let i = 0; i < m; i++) s += load<f32>(dz + ((<usize>i * n + j) << 2));
    store<f32>(db + (<usize>j << 2), s * scale);
  }
}

// Backward of y = g(x·w + b) given dz (m,out) at its pre-activation:
//   dw (inp,out) = scale·xᵀ·dz;  db (out) = scale·Σ_rows dz;  dx (m,inp) = (dz·wᵀ) ⊙ g'(x)
// x (m,inp) is the previous layer's output, prevAct its activation. dx = 0 means "not needed".
export function denseBackward(dw: usize, db: usize, dx: usize, dz: usize, x: usize, w: usize,
  m: i32, inp: i32, out: i32, scale: f32, prevAct: i32, alpha: f32): void {
  gemmEx(true, false, inp, out, m, scale, x, dz, 0, dw, EPI_NONE, 0, 0, 0, 0);
  biasGrad(db, dz, m, out, scale);
  if (dx == 0) return;
  const mode = prevAct == ACT_LINEAR ? EPI_NONE : EPI_MUL_DERIV;
  gemmEx(false, true, m, inp, out, 1, dz, w, 0, dx, mode, 0, prevAct, alpha, x);
}

// Threads build: softmax in blocks of rows of about ROWS_BLOCK_ELEMENTS, the bias gradient in blocks
// of BIAS_COLS columns.
const ROWS_BLOCK_ELEMENTS: i32 = 4096;
const BIAS_COLS: i32 = 64;

// The task parameters (threads.ts TASK_PARAMS), read by every thread.
const R_OUT: usize = 0; // y (softmax) or db
const R_IN: usize = 4; // dz (bias gradient)
const R_M: usize = 8;
const R_N: usize = 12;
const R_SCALE: usize = 16;

function publishRows(kind: i32, out: usize, inp: usize, m: i32, n: i32, scale: f32): void {
  const t = control + TASK_PARAMS;
  store<u32>(t + R_OUT, <u32>out);
  store<u32>(t + R_IN, <u32>inp);
  store<i32>(t + R_M, m);
  store<i32>(t + R_N, n);
  store<f32>(t + R_SCALE, scale);
  publishTask(kind);
  if (kind == TASK_SOFTMAX) runSoftmaxBlocks();
  else runBiasGradBlocks();
  joinTask();
}

/** Claims and computes row blocks of the published softmax until none is left (every thread). */
export function runSoftmaxBlocks(): void {
  const t = control + TASK_PARAMS;
  const y = <usize>load<u32>(t + R_OUT), m = load<i32>(t + R_M), n = load<i32>(t + R_N);
  const rows = max(1, ROWS_BLOCK_ELEMENTS / max(n, 1));
  const blocks = (m + rows - 1) / rows;
  for (let b = claim(); b < blocks; b = claim()) softmaxRowRange(y, b * rows, min(m, (b + 1) * rows), n);
}

/** Claims and computes column blocks of the published bias gradient until none is left (every thread). */
export function runBiasGradBlocks(): void {
  const t = control + TASK_PARAMS;
  const db = <usize>load<u32>(t + R_OUT), dz = <usize>load<u32>(t + R_IN);
  const m = load<i32>(t + R_M), n = load<i32>(t + R_N), scale = load<f32>(t + R_SCALE);
  const blocks = (n + BIAS_COLS - 1) / BIAS_COLS;
  for (let b = claim(); b < blocks; b = claim()) biasGradColumns(db, dz, m, n, scale, b * BIAS_COLS, min(n, (b + 1) * BIAS_COLS));
}
