// Dense layer forward and backward: GEMMs with fused epilogues (gemm.ts) plus the row-wise parts
// (softmax, bias gradient). Pointers are byte addresses; sizes are element counts.
import { EPI_BIAS_ACT, EPI_MUL_DERIV, EPI_NONE, gemmEx, gemmExPacked, packAll, packedLength } from './gemm';
import { ACT_LINEAR, ACT_SOFTMAX } from './abi';
import { expScalar, vexp } from './simd';

// In place over each row of y (m,n): y = e^(y − max) / Σ e^(y − max).
export function softmaxRows(y: usize, m: i32, n: i32): void {
  for (let i = 0; i < m; i++) {
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

// db (n) = scale · Σ_rows dz (m,n), overwritten.
export function biasGrad(db: usize, dz: usize, m: i32, n: i32, scale: f32): void {
  let j = 0;
  const vs = f32x4.splat(scale);
  for (; j + 4 <= n; j += 4) {
    let s = f32x4.splat(0);
    let src = dz + (<usize>j << 2);
    for (let i = 0; i < m; i++) {
      s = f32x4.add(s, v128.load(src));
      src += <usize>n << 2;
    }
    v128.store(db + (<usize>j << 2), f32x4.mul(s, vs));
  }
  for (; j < n; j++) {
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
