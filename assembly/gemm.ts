// GEMM: c = alpha·op(a)·op(b) + beta·c with an optional fused epilogue, BLIS-structured: op(b) is
// packed into KC×NR column panels, op(a) into MR×KC row panels, and a 4×8 register-blocked
// micro-kernel (8 f32x4 accumulators) runs over them. Packing turns all four transpose cases into
// the same inner loop and makes every micro-kernel load contiguous.
//
// Epilogues, applied once, when the last KC block has been accumulated:
//   EPI_NONE          c = alpha·acc + beta·c
//   EPI_BIAS_ACT      c = act(alpha·acc + beta·c + bias[j])          (dense forward)
//   EPI_MUL_DERIV     c = (alpha·acc + beta·c) ⊙ g'(aux[i, j])        (dense backward, dx)
// When beta is 0, c is not read: it may hold NaN.
import { madd, vactivate, vderivative } from './simd';
import { claim, CONTROL_BYTES, control, joinTask, publishTask, TASK_GEMM, TASK_GEMV, TASK_PARAMS, threadsActive } from './threads';

export const EPI_NONE: i32 = 0;
export const EPI_BIAS_ACT: i32 = 1;
export const EPI_MUL_DERIV: i32 = 2;

const MR: i32 = 4;
const NR: i32 = 8;
// A KC×NR panel of b (8 KB) stays in L1 while the MC×KC block of a (64 KB) streams from L2.
const KC: i32 = 256;
const MC: i32 = 64;
const NC: i32 = 2048;

// Scratch lives right after static data (and the threads build's control block), not in a data
// segment (2.2 MB of zeros in the binary): one region per thread of the pool, this instance's
// chosen by useScratch. Edge tiles are computed into the padded tile copies and the valid part
// copied back.
const PACK_A_BYTES: usize = <usize>(MC * KC * 4);
const PACK_B_BYTES: usize = <usize>(KC * NC * 4);
const TILE_BYTES: usize = <usize>(MR * NR * 4);
// Threads build: all of op(a) packed once a split GEMM (runGemmBlocks), when it fits: a block of c
// spans every row (tm = 1), so each block of a thread after its first reads the panels its first
// block packed instead of packing all of a again (256 × 784 floats for the wide-mlp's first layer).
const A_CACHE_BYTES: usize = ASC_FEATURE_THREADS ? <usize>(1 << 20) : 0;
/** Bytes of one thread's GEMM scratch (64-byte multiple). */
const SCRATCH_BYTES: usize = (PACK_A_BYTES + PACK_B_BYTES + 2 * TILE_BYTES + <usize>(NR * 4) + A_CACHE_BYTES + 63) & ~<usize>63;
const scratchStart: usize = control + CONTROL_BYTES;
let packA: usize = scratchStart;
let packB: usize = packA + PACK_A_BYTES;
let tileC: usize = packB + PACK_B_BYTES;
let tileAux: usize = tileC + TILE_BYTES;
let tileBias: usize = tileAux + TILE_BYTES;
let aCache: usize = (tileBias + <usize>(NR * 4) + 63) & ~<usize>63;
/** First byte after the GEMM scratch of one thread: where the buffer arena may start. */
export const scratchEnd: usize = scratchStart + SCRATCH_BYTES;

/** First byte after the scratch of `threads` threads (the threads build's arena start). */
export function scratchEndFor(threads: i32): usize {
  return scratchStart + SCRATCH_BYTES * <usize>threads;
}

/** Points this instance's GEMM at thread `tid`'s scratch (each worker's instance calls it once). */
export function useScratch(tid: i32): void {
  packA = scratchStart + SCRATCH_BYTES * <usize>tid;
  packB = packA + PACK_A_BYTES;
  tileC = packB + PACK_B_BYTES;
  tileAux = tileC + TILE_BYTES;
  tileBias = tileAux + TILE_BYTES;
  aCache = (tileBias + <usize>(NR * 4) + 63) & ~<usize>63;
}

// Per-call state of the epilogue (set once by gemmEx, read by every tile).
let gAlpha: f32 = 1;
let gBeta: f32 = 0;
let gFirst: bool = true; // first KC block: combine with beta·c
let gLast: bool = true; // last KC block: apply the epilogue
let gMode: i32 = EPI_NONE;
let gAct: i32 = 0;
let gSlope: f32 = 0;
// b already packed by packWeights (0: pack it here): read by the blocked path of gemmEx only
let gPacked: usize = 0;

// Packs rows [i0, i0+mc) × depth [p0, p0+kc) of op(a) into MR-row panels: panel r holds, for each
// p, the MR values op(a)[i0+r·MR .. +MR][p] contiguously; rows past m are zero.
// a is (m,k) row-major, or (k,m) when transA.
function packPanelsA(dst: usize, transA: bool, a: usize, m: i32, k: i32, i0: i32, mc: i32, p0: i32, kc: i32): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = min(MR, mc - ir);
    const row0 = i0 + ir;
    if (transA) {
      // op(a)[i][p] = a[p·m + i]: the MR values of one p are adjacent
      if (rows == MR) {
        let src = a + ((<usize>p0 * m + row0) << 2);
        for (let p = 0; p < kc; p++) {
          v128.store(dst, v128.load(src));
          src += <usize>m << 2;
          dst += 16;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let r = 0; r < MR; r++) {
            const v: f32 = r < rows ? load<f32>(a + ((<usize>(p0 + p) * m + row0 + r) << 2)) : 0;
            store<f32>(dst + (r << 2), v);
          }
          dst += 16;
        }
      }
    } else {
      // op(a)[i][p] = a[i·k + p]: four rows read 4 p at a time and transposed in registers
      if (rows == MR) {
        const r0 = a + ((<usize>row0 * k + p0) << 2);
        const stride = <usize>k << 2;
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const off = <usize>p << 2;
          const x0 = v128.load(r0 + off);
          const x1 = v128.load(r0 + stride + off);
          const x2 = v128.load(r0 + 2 * stride + off);
          const x3 = v128.load(r0 + 3 * stride + off);
          const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
          const t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
          const t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
          const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
          v128.store(dst, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
          v128.store(dst, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 16);
          v128.store(dst, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 32);
          v128.store(dst, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 48);
          dst += 64;
        }
        for (; p < kc; p++) {
          const off = <usize>p << 2;
          store<f32>(dst, load<f32>(r0 + off));
          store<f32>(dst + 4, load<f32>(r0 + stride + off));
          store<f32>(dst + 8, load<f32>(r0 + 2 * stride + off));
          store<f32>(dst + 12, load<f32>(r0 + 3 * stride + off));
          dst += 16;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let r = 0; r < MR; r++) {
            const v: f32 = r < rows ? load<f32>(a + ((<usize>(row0 + r) * k + p0 + p) << 2)) : 0;
            store<f32>(dst + (r << 2), v);
          }
          dst += 16;
        }
      }
    }
  }
}

// Packs depth [p0, p0+kc) × columns [j0, j0+nc) of op(b) into NR-column panels: panel c holds, for
// each p, the NR values op(b)[p][j0+c·NR .. +NR] contiguously; columns past n are zero.
// b is (k,n) row-major, or (n,k) when transB.
function packPanelsB(transB: bool, b: usize, n: i32, k: i32, p0: i32, kc: i32, j0: i32, nc: i32, to: usize = packB): void {
  let dst = to;
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const col0 = j0 + jr;
    if (!transB) {
      let src = b + ((<usize>p0 * n + col0) << 2);
      const stride = <usize>n << 2;
      if (cols == NR) {
        for (let p = 0; p < kc; p++) {
          v128.store(dst, v128.load(src));
          v128.store(dst, v128.load(src, 16), 16);
          src += stride;
          dst += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let c = 0; c < NR; c++) {
            store<f32>(dst + (c << 2), c < cols ? load<f32>(src + (c << 2)) : 0);
          }
          src += stride;
          dst += 32;
        }
      }
    } else {
      // op(b)[p][j] = b[j·k + p]: rows of the stored b, 4 at a time, transposed in registers
      const stride = <usize>k << 2;
      if (cols == NR) {
        const r0 = b + ((<usize>col0 * k + p0) << 2);
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const off = <usize>p << 2;
          for (let half = 0; half < 2; half++) {
            const rh = r0 + <usize>(half * 4) * stride + off;
            const x0 = v128.load(rh);
            const x1 = v128.load(rh + stride);
            const x2 = v128.load(rh + 2 * stride);
            const x3 = v128.load(rh + 3 * stride);
            const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
            const t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
            const t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
            const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
            const d = dst + (<usize>half << 4);
            v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
            v128.store(d, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 32);
            v128.store(d, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 64);
            v128.store(d, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 96);
          }
          dst += 128;
        }
        for (; p < kc; p++) {
          const src = r0 + (<usize>p << 2);
          for (let c = 0; c < NR; c++) store<f32>(dst + (c << 2), load<f32>(src + <usize>c * stride));
          dst += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let c = 0; c < NR; c++) {
            const v: f32 = c < cols ? load<f32>(b + ((<usize>(col0 + c) * k + p0 + p) << 2)) : 0;
            store<f32>(dst + (c << 2), v);
          }
          dst += 32;
        }
      }
    }
  }
}

// One output row segment of 4 lanes: combine, epilogue, store. c, bias, aux point at the lanes.
// @ts-ignore: decorator
@inline function finish4(acc: v128, c: usize, bias: usize, aux: usize): void {
  let v = f32x4.mul(acc, f32x4.splat(gAlpha));
  if (!gFirst) v = f32x4.add(v, v128.load(c));
  else if (gBeta != 0) v = madd(v128.load(c), f32x4.splat(gBeta), v);
  if (gLast) {
    if (gMode == EPI_BIAS_ACT) {
      v = vactivate(f32x4.add(v, v128.load(bias)), gAct, f32x4.splat(gSlope));
    } else if (gMode == EPI_MUL_DERIV) {
      v = f32x4.mul(v, vderivative(v128.load(aux), gAct, f32x4.splat(gSlope)));
    }
  }
  v128.store(c, v);
}

// Micro-kernel 4×8: c (4,8) tile at c with row stride ldc bytes += packed a (kc,4) · packed b (kc,8).
// bias points at the tile's first column, aux at its (0,0) element with row stride ldaux bytes.
function kernel4x8(kc: i32, a: usize, b: usize, c: usize, ldc: usize, bias: usize, aux: usize, ldaux: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let av = v128.load32_splat(a);
    c00 = madd(av, b0, c00); c01 = madd(av, b1, c01);
    av = v128.load32_splat(a, 4);
    c10 = madd(av, b0, c10); c11 = madd(av, b1, c11);
    av = v128.load32_splat(a, 8);
    c20 = madd(av, b0, c20); c21 = madd(av, b1, c21);
    av = v128.load32_splat(a, 12);
    c30 = madd(av, b0, c30); c31 = madd(av, b1, c31);
    a += 16;
    b += 32;
  }
  finish4(c00, c, bias, aux); finish4(c01, c + 16, bias + 16, aux + 16);
  c += ldc; aux += ldaux;
  finish4(c10, c, bias, aux); finish4(c11, c + 16, bias + 16, aux + 16);
  c += ldc; aux += ldaux;
  finish4(c20, c, bias, aux); finish4(c21, c + 16, bias + 16, aux + 16);
  c += ldc; aux += ldaux;
  finish4(c30, c, bias, aux); finish4(c31, c + 16, bias + 16, aux + 16);
}

// A tile cut by the edge of c (rows < 4 or cols < 8): run the full kernel on padded copies.
function edgeTile(kc: i32, a: usize, b: usize, c: usize, ldc: usize, rows: i32, cols: i32,
  bias: usize, aux: usize, ldaux: usize): void {
  const readC = !gFirst || gBeta != 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const t = (<usize>(r * NR + j)) << 2;
      const s = <usize>r * ldc + (<usize>j << 2);
      if (readC) store<f32>(tileC + t, load<f32>(c + s));
      if (gLast && gMode == EPI_MUL_DERIV) store<f32>(tileAux + t, load<f32>(aux + <usize>r * ldaux + (<usize>j << 2)));
    }
  }
  if (gLast && gMode == EPI_BIAS_ACT) {
    for (let j = 0; j < cols; j++) store<f32>(tileBias + (<usize>j << 2), load<f32>(bias + (<usize>j << 2)));
  }
  kernel4x8(kc, a, b, tileC, NR << 2, tileBias, tileAux, NR << 2);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      store<f32>(c + <usize>r * ldc + (<usize>j << 2), load<f32>(tileC + ((<usize>(r * NR + j)) << 2)));
    }
  }
}

// Below this many multiply-adds, packing and padded edge tiles cost more than they save (the
// layers of tiny nets, e.g. 4×2·2×8): one row of c at a time, 4 columns per vector, no packing.
const SMALL_MACS: i64 = 16384;

// op(b)[p][j .. j+lanes) as one vector (lanes past `lanes` are 0); b is (k,n), or (n,k) when transB.
// @ts-ignore: decorator
@inline function loadRowB(transB: bool, b: usize, n: i32, k: i32, p: i32, j: i32, lanes: i32): v128 {
  if (!transB && lanes == 4) return v128.load(b + ((<usize>p * n + j) << 2));
  let v = f32x4.splat(0);
  for (let r = 0; r < lanes; r++) {
    const x = transB ? load<f32>(b + ((<usize>(j + r) * k + p) << 2)) : load<f32>(b + ((<usize>p * n + j + r) << 2));
    // lane index must be constant: select it
    if (r == 0) v = f32x4.replace_lane(v, 0, x);
    else if (r == 1) v = f32x4.replace_lane(v, 1, x);
    else if (r == 2) v = f32x4.replace_lane(v, 2, x);
    else v = f32x4.replace_lane(v, 3, x);
  }
  return v;
}

// c (m,n) for small problems: acc[i, j..j+3] = Σ_p op(a)[i,p]·op(b)[p, j..j+3], then the same
// finish4 epilogue as the packed path. Column tails go through the tile scratch so that no vector
// reads or writes past the end of c, bias or aux.
function gemmSmall(transA: bool, transB: bool, m: i32, n: i32, k: i32, a: usize, b: usize, c: usize,
  bias: usize, aux: usize): void {
  if (n == 1) {
    gemmColumn(transA, m, k, a, b, c, bias, aux);
    return;
  }
  // one depth step: b stored (n,1) is b stored (1,n), the same values in the same order (the dx
  // of a layer fed by one input, a 1-unit output layer's dx): take the contiguous path
  if (k == 1) transB = false;
  const ldc = <usize>n << 2;
  // strides of op(a) along p, in bytes
  const aStep: usize = transA ? <usize>m << 2 : 4;
  const bStep: usize = <usize>n << 2;
  for (let i = 0; i < m; i++) {
    const crow = c + <usize>i * ldc, auxrow = aux + <usize>i * ldc;
    const arow = a + ((transA ? <usize>i : <usize>i * k) << 2);
    for (let j = 0; j < n; j += 4) smallSegment(transB, arow, aStep, b, bStep, n, k, j, crow, bias, auxrow);
  }
}

// Columns [j, j + min(4, n − j)) of one row of c (row at crow, its aux row at auxrow) for the
// unpacked paths: acc = Σ_p op(a)[i,p]·op(b)[p, j..j+3] with op(a)[i,p] at arow + p·aStep, then the
// finish4 epilogue; a ragged end goes through the tile scratch so that no vector reads or writes
// past the end of c, bias or aux.
// @ts-ignore: decorator
@inline function smallSegment(transB: bool, arow: usize, aStep: usize, b: usize, bStep: usize, n: i32, k: i32, j: i32,
  crow: usize, bias: usize, auxrow: usize): void {
  const lanes = min(4, n - j);
  let acc = f32x4.splat(0);
  if (!transB && lanes == 4) {
    // the common case, without per-p branches: rows of b are contiguous
    let pa = arow, pb = b + (<usize>j << 2);
    for (let p = 0; p < k; p++) {
      acc = madd(v128.load32_splat(pa), v128.load(pb), acc);
      pa += aStep;
      pb += bStep;
    }
  } else {
    for (let p = 0; p < k; p++) {
      acc = madd(v128.load32_splat(arow + <usize>p * aStep), loadRowB(transB, b, n, k, p, j, lanes), acc);
    }
  }
  const cj = crow + (<usize>j << 2), bj = bias + (<usize>j << 2), xj = auxrow + (<usize>j << 2);
  if (lanes == 4) {
    finish4(acc, cj, bj, xj);
  } else {
    const readC = !gFirst || gBeta != 0;
    for (let r = 0; r < lanes; r++) {
      const o = <usize>r << 2;
      if (readC) store<f32>(tileC + o, load<f32>(cj + o));
      if (gMode == EPI_BIAS_ACT) store<f32>(tileBias + o, load<f32>(bj + o));
      if (gMode == EPI_MUL_DERIV) store<f32>(tileAux + o, load<f32>(xj + o));
    }
    finish4(acc, tileC, tileBias, tileAux);
    for (let r = 0; r < lanes; r++) store<f32>(cj + (<usize>r << 2), load<f32>(tileC + (<usize>r << 2)));
  }
}

// finish4 as a call: the GEMV blocks finish 4 to 8 vectors each, and inlining the epilogue's
// activations into every one would add 20 KB to the module for no measurable gain.
function finishOut(acc: v128, c: usize, bias: usize, aux: usize): void {
  finish4(acc, c, bias, aux);
}

// smallSegment as a call, for the GEMV's last columns (inlined there it would double its size).
function gemvSegment(arow: usize, b: usize, ldb: usize, n: i32, k: i32, j: i32, crow: usize, bias: usize, auxrow: usize): void {
  smallSegment(false, arow, 4, b, ldb, n, k, j, crow, bias, auxrow);
}

// Rows that take the GEMV path (inference at batch 1..4).
const GEMV_ROWS: i32 = 4;

// c (m,n) for m <= GEMV_ROWS, neither operand transposed: the weights b are read once, straight
// from their rows, with no packing (which copies all of b to use it once), and the rows of a share
// each load of b. One row: 32 columns a block (8 independent accumulator chains hide the madd
// latency), then 8; more rows: 8 columns for up to 4 rows (8 accumulators). Each element is summed over p
// in order, as in gemmSmall; the columns past the last whole block go through smallSegment.
// Columns [j0, j1) of c; j0 a multiple of GEMV_BLOCK and j1 too unless it is n, so that a column
// takes the same path (32-, 8- or 4-column code) whichever split of the columns it lies in.
function gemvRows(m: i32, n: i32, k: i32, a: usize, b: usize, c: usize, bias: usize, aux: usize, j0: i32 = 0, j1: i32 = n): void {
  const ldb = <usize>n << 2, lda = <usize>k << 2;
  let j = j0;
  if (m == 1) {
    for (; j + 32 <= j1; j += 32) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let c4 = f32x4.splat(0), c5 = f32x4.splat(0), c6 = f32x4.splat(0), c7 = f32x4.splat(0);
      let pa = a, pb = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        const av = v128.load32_splat(pa);
        c0 = madd(av, v128.load(pb), c0);
        c1 = madd(av, v128.load(pb, 16), c1);
        c2 = madd(av, v128.load(pb, 32), c2);
        c3 = madd(av, v128.load(pb, 48), c3);
        c4 = madd(av, v128.load(pb, 64), c4);
        c5 = madd(av, v128.load(pb, 80), c5);
        c6 = madd(av, v128.load(pb, 96), c6);
        c7 = madd(av, v128.load(pb, 112), c7);
        pa += 4;
        pb += ldb;
      }
      const o = <usize>j << 2;
      finishOut(c0, c + o, bias + o, aux + o);
      finishOut(c1, c + o + 16, bias + o + 16, aux + o + 16);
      finishOut(c2, c + o + 32, bias + o + 32, aux + o + 32);
      finishOut(c3, c + o + 48, bias + o + 48, aux + o + 48);
      finishOut(c4, c + o + 64, bias + o + 64, aux + o + 64);
      finishOut(c5, c + o + 80, bias + o + 80, aux + o + 80);
      finishOut(c6, c + o + 96, bias + o + 96, aux + o + 96);
      finishOut(c7, c + o + 112, bias + o + 112, aux + o + 112);
    }
    for (; j + 8 <= j1; j += 8) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
      let pa = a, pb = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        const av = v128.load32_splat(pa);
        c0 = madd(av, v128.load(pb), c0);
        c1 = madd(av, v128.load(pb, 16), c1);
        pa += 4;
        pb += ldb;
      }
      const o = <usize>j << 2;
      finishOut(c0, c + o, bias + o, aux + o);
      finishOut(c1, c + o + 16, bias + o + 16, aux + o + 16);
    }
  } else {
    // rows past m repeat the last row (their sums are computed and dropped): one loop for 2..4 rows
    const a0 = a, a1 = a + lda, a2 = a + lda * <usize>min(2, m - 1), a3 = a + lda * <usize>min(3, m - 1);
    for (; j + 8 <= j1; j += 8) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let pb = b + (<usize>j << 2), pa: usize = 0;
      for (let p = 0; p < k; p++) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16);
        let av = v128.load32_splat(a0 + pa);
        c00 = madd(av, b0, c00); c01 = madd(av, b1, c01);
        av = v128.load32_splat(a1 + pa);
        c10 = madd(av, b0, c10); c11 = madd(av, b1, c11);
        av = v128.load32_splat(a2 + pa);
        c20 = madd(av, b0, c20); c21 = madd(av, b1, c21);
        av = v128.load32_splat(a3 + pa);
        c30 = madd(av, b0, c30); c31 = madd(av, b1, c31);
        pa += 4;
        pb += ldb;
      }
      const o = <usize>j << 2;
      finishOut(c00, c + o, bias + o, aux + o);
      finishOut(c01, c + o + 16, bias + o + 16, aux + o + 16);
      let cr = c + ldb, xr = aux + ldb;
      finishOut(c10, cr + o, bias + o, xr + o);
      finishOut(c11, cr + o + 16, bias + o + 16, xr + o + 16);
      if (m > 2) {
        cr += ldb; xr += ldb;
        finishOut(c20, cr + o, bias + o, xr + o);
        finishOut(c21, cr + o + 16, bias + o + 16, xr + o + 16);
      }
      if (m > 3) {
        cr += ldb; xr += ldb;
        finishOut(c30, cr + o, bias + o, xr + o);
        finishOut(c31, cr + o + 16, bias + o + 16, xr + o + 16);
      }
    }
  }
  for (let i = 0; i < m; i++) {
    const crow = c + <usize>i * ldb, auxrow = aux + <usize>i * ldb, arow = a + <usize>i * lda;
    for (let jj = j; jj < j1; jj += 4) gemvSegment(arow, b, ldb, n, k, jj, crow, bias, auxrow);
  }
}

// Threads build: a GEMV of at least this many multiply-adds splits its columns over the pool.
// It reads each weight once, so it runs at the speed of memory: two threads read their halves of
// b at once (784-512-512-10 at batch 1: 784·512 and 512·512).
const PARALLEL_GEMV_MACS: i64 = 1 << 17;
// Columns per block of a split GEMV (the m = 1 path's widest block).
const GEMV_BLOCK: i32 = 32;

// gemvRows split over the pool in column ranges of whole GEMV_BLOCKs, two per thread, claimed
// from the counter; the task's parameters use the split GEMM's slots (G_*).
function gemvParallel(threads: i32, m: i32, n: i32, k: i32, a: usize, b: usize, c: usize, bias: usize, aux: usize): void {
  const blocks = (n + GEMV_BLOCK - 1) / GEMV_BLOCK;
  const p = control + TASK_PARAMS;
  storeTaskOperands(p, m, n, k, a, b, c, bias, aux);
  store<i32>(p + G_TN, min(blocks, 2 * threads));
  publishTask(TASK_GEMV);
  runGemvBlocks();
  joinTask();
}

/** Claims and computes column ranges of the published GEMV until none is left (every thread, main included). */
export function runGemvBlocks(): void {
  const p = control + TASK_PARAMS;
  const m = load<i32>(p + G_M), n = load<i32>(p + G_N), k = load<i32>(p + G_K);
  const a = <usize>load<u32>(p + G_A), b = <usize>load<u32>(p + G_B), c = <usize>load<u32>(p + G_C);
  const bias = <usize>load<u32>(p + G_BIAS), aux = <usize>load<u32>(p + G_AUX);
  const tasks = load<i32>(p + G_TN);
  loadTaskEpilogue(p);
  gFirst = true;
  gLast = true;
  const blocks = (n + GEMV_BLOCK - 1) / GEMV_BLOCK;
  for (let t = claim(); t < tasks; t = claim()) {
    const j0 = <i32>(<i64>blocks * t / tasks) * GEMV_BLOCK, j1 = min(n, <i32>(<i64>blocks * (t + 1) / tasks) * GEMV_BLOCK);
    if (j0 < j1) gemvRows(m, n, k, a, b, c, bias, aux, j0, j1);
  }
}

// c (m,1) for small problems with one output column (a binary classifier's last layer, its dW):
// vectors run over 4 rows, c[i..i+3] = Σ_p op(a)[i..i+3, p]·b[p], and c, aux are contiguous
// columns. b (k,1) or (1,k) is the same array either way; the single bias is splatted.
function gemmColumn(transA: bool, m: i32, k: i32, a: usize, b: usize, c: usize, bias: usize, aux: usize): void {
  if (gMode == EPI_BIAS_ACT) v128.store(tileBias, v128.load32_splat(bias));
  const readC = !gFirst || gBeta != 0;
  for (let i = 0; i < m; i += 4) {
    const rows = min(4, m - i);
    let acc = f32x4.splat(0);
    let p = 0;
    if (!transA && rows == 4) {
      // the same vectors op(a)[i..i+3, p] as the lane-by-lane gather below, four depths at a time
      const r0 = a + ((<usize>i * k) << 2), stride = <usize>k << 2;
      for (; p + 4 <= k; p += 4) {
        const off = <usize>p << 2;
        const x0 = v128.load(r0 + off), x1 = v128.load(r0 + stride + off);
        const x2 = v128.load(r0 + 2 * stride + off), x3 = v128.load(r0 + 3 * stride + off);
        const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
        const t2 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
        const bp = b + off;
        acc = madd(v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), v128.load32_splat(bp), acc);
        acc = madd(v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), v128.load32_splat(bp, 4), acc);
        acc = madd(v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), v128.load32_splat(bp, 8), acc);
        acc = madd(v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), v128.load32_splat(bp, 12), acc);
      }
    }
    for (; p < k; p++) {
      let av: v128;
      if (transA && rows == 4) av = v128.load(a + ((<usize>p * m + i) << 2));
      else {
        av = f32x4.splat(0);
        for (let r = 0; r < rows; r++) {
          const x = load<f32>(a + ((transA ? <usize>p * m + i + r : <usize>(i + r) * k + p) << 2));
          if (r == 0) av = f32x4.replace_lane(av, 0, x);
          else if (r == 1) av = f32x4.replace_lane(av, 1, x);
          else if (r == 2) av = f32x4.replace_lane(av, 2, x);
          else av = f32x4.replace_lane(av, 3, x);
        }
      }
      acc = madd(av, v128.load32_splat(b + (<usize>p << 2)), acc);
    }
    const ci = c + (<usize>i << 2), xi = aux + (<usize>i << 2);
    if (rows == 4) {
      finishOut(acc, ci, tileBias, xi);
    } else {
      for (let r = 0; r < rows; r++) {
        const o = <usize>r << 2;
        if (readC) store<f32>(tileC + o, load<f32>(ci + o));
        if (gMode == EPI_MUL_DERIV) store<f32>(tileAux + o, load<f32>(xi + o));
      }
      finishOut(acc, tileC, tileBias, tileAux);
      for (let r = 0; r < rows; r++) store<f32>(ci + (<usize>r << 2), load<f32>(tileC + (<usize>r << 2)));
    }
  }
}

// c (m,n) = epilogue(alpha·op(a)·op(b) + beta·c); op(a) (m,k), op(b) (k,n). Pointers are byte
// addresses in this module's memory. bias (n) is read for EPI_BIAS_ACT, aux (m,n) for EPI_MUL_DERIV.
// REQUIRES m, n, k ≥ 0; buffers in bounds and not overlapping c (checked by the caller).
export function gemmEx(transA: bool, transB: bool, m: i32, n: i32, k: i32, alpha: f32, a: usize,
  b: usize, beta: f32, c: usize, mode: i32, bias: usize, act: i32, slope: f32, aux: usize): void {
  if (m <= 0 || n <= 0) return;
  gAlpha = alpha; gBeta = beta; gMode = mode; gAct = act; gSlope = slope;
  if (<i64>m * <i64>n * <i64>k <= SMALL_MACS) {
    gFirst = true;
    gLast = true;
    gemmSmall(transA, transB, m, n, k, a, b, c, bias, aux);
    return;
  }
  if (m <= GEMV_ROWS && !transA && !transB) {
    gFirst = true;
    gLast = true;
    if (ASC_FEATURE_THREADS) {
      const threads = threadsActive();
      if (threads > 1 && <i64>m * <i64>n * <i64>k >= PARALLEL_GEMV_MACS && n >= 2 * GEMV_BLOCK) {
        gemvParallel(threads, m, n, k, a, b, c, bias, aux);
        return;
      }
    }
    gemvRows(m, n, k, a, b, c, bias, aux);
    return;
  }
  if (ASC_FEATURE_THREADS) {
    const threads = threadsActive();
    if (threads > 1 && <i64>m * <i64>n * <i64>k >= PARALLEL_MACS) {
      gemmParallel(threads, transA, transB, m, n, k, a, b, c, bias, aux);
      return;
    }
  }
  gemmBlocked(transA, transB, m, n, k, a, b, c, bias, aux, 0, m, 0, n);
}

// The blocked path over the block rows [i0, i1) × columns [j0, j1) of c (i0 a multiple of MR, j0
// of NR), every k block. An element's sum runs over the same k blocks, each from p = 0 in order,
// whatever block of c it lies in: the blocks of a split are the bits of the whole. cached (a
// split GEMM's A_CACHE): 1 packs op(a)'s panels there as it goes, 2 reads them packed already.
function gemmBlocked(transA: bool, transB: bool, m: i32, n: i32, k: i32, a: usize, b: usize, c: usize,
  bias: usize, aux: usize, i0: i32, i1: i32, j0: i32, j1: i32, cached: i32 = 0): void {
  const mpad = <usize>((m + MR - 1) / MR * MR);
  const ldc = <usize>n << 2;
  // k split into equal blocks of at most KC (784 → 4 × 196, not 256 + 256 + 256 + 16): a thin
  // last block would re-read and re-write all of c for little work
  const kBlock = kBlockOf(k);
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    // k = 0 still runs one (empty) block so that beta and the epilogue are applied
    let pc = 0;
    do {
      const kc = min(kBlock, k - pc);
      gFirst = pc == 0;
      gLast = pc + kc >= k;
      let panels = packB;
      // a packed copy: k block pc at npad·pc, in it column j's panel at j·kc (packWeights)
      if (gPacked != 0 && !transB) panels = gPacked + ((<usize>((n + NR - 1) / NR * NR) * pc + <usize>jc * kc) << 2);
      else packPanelsB(transB, b, n, k, pc, kc, jc, nc);
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = min(MC, i1 - ic);
        // the cache: k block pc at mpad·pc floats, in it row ic's panels at ic·kc (as packAll lays b)
        let ablock = packA;
        if (cached != 0) ablock = aCache + ((mpad * <usize>pc + <usize>ic * <usize>kc) << 2);
        if (cached != 2) packPanelsA(ablock, transA, a, m, k, ic, mc, pc, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const cols = min(NR, nc - jr);
          const bp = panels + ((<usize>jr * kc) << 2);
          const j = jc + jr;
          const biasJ = bias + (<usize>j << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const rows = min(MR, mc - ir);
            const ap = ablock + ((<usize>ir * kc) << 2);
            const i = ic + ir;
            const cij = c + <usize>i * ldc + (<usize>j << 2);
            const auxij = aux + <usize>i * ldc + (<usize>j << 2);
            if (rows == MR && cols == NR) kernel4x8(kc, ap, bp, cij, ldc, biasJ, auxij, ldc);
            else edgeTile(kc, ap, bp, cij, ldc, rows, cols, biasJ, auxij, ldc);
          }
        }
      }
      pc += kBlock;
    } while (pc < k);
  }
}

// Threads build: below this many multiply-adds (~0.1 ms on one core) the blocked path runs on the
// calling thread; above, the hand-off (a futex wake, a few µs to tens of µs) is small beside it.
const PARALLEL_MACS: i64 = 1 << 19;

// The task parameters of a split GEMM (threads.ts TASK_PARAMS), read by every thread.
const G_FLAGS: usize = 0; // transA | transB << 1
const G_M: usize = 4;
const G_N: usize = 8;
const G_K: usize = 12;
const G_ALPHA: usize = 16;
const G_A: usize = 20;
const G_B: usize = 24;
const G_BETA: usize = 28;
const G_C: usize = 32;
const G_MODE: usize = 36;
const G_BIAS: usize = 40;
const G_ACT: usize = 44;
const G_SLOPE: usize = 48;
const G_AUX: usize = 52;
const G_PACKED: usize = 56;
const G_TM: usize = 60;
const G_TN: usize = 64;

// A split GEMM's or GEMV's operands and epilogue (this thread's gAlpha … gSlope) into the task
// slots at p, for every thread to read.
function storeTaskOperands(p: usize, m: i32, n: i32, k: i32, a: usize, b: usize, c: usize, bias: usize, aux: usize): void {
  store<i32>(p + G_M, m);
  store<i32>(p + G_N, n);
  store<i32>(p + G_K, k);
  store<f32>(p + G_ALPHA, gAlpha);
  store<u32>(p + G_A, <u32>a);
  store<u32>(p + G_B, <u32>b);
  store<f32>(p + G_BETA, gBeta);
  store<u32>(p + G_C, <u32>c);
  store<i32>(p + G_MODE, gMode);
  store<u32>(p + G_BIAS, <u32>bias);
  store<i32>(p + G_ACT, gAct);
  store<f32>(p + G_SLOPE, gSlope);
  store<u32>(p + G_AUX, <u32>aux);
}

// The published task's epilogue into this thread's globals.
function loadTaskEpilogue(p: usize): void {
  gAlpha = load<f32>(p + G_ALPHA);
  gBeta = load<f32>(p + G_BETA);
  gMode = load<i32>(p + G_MODE);
  gAct = load<i32>(p + G_ACT);
  gSlope = load<f32>(p + G_SLOPE);
}

// The blocked path split over the pool as native/gemm.cc splits it: a grid tm × tn of MR/NR-
// aligned blocks of c minimizing the largest block (ties split n, so that each block packs all of
// a, cheap, and its own part of b), four blocks per thread when there are tiles enough (else two)
// so that whoever is free takes the next one.
function gemmParallel(threads: i32, transA: bool, transB: bool, m: i32, n: i32, k: i32, a: usize, b: usize, c: usize,
  bias: usize, aux: usize): void {
  const mt = (m + MR - 1) / MR, nt = (n + NR - 1) / NR;
  const tiles = <i64>mt * <i64>nt;
  if (<i64>threads > tiles) threads = <i32>tiles;
  const per = <i64>(4 * threads) <= tiles ? 4 : 2;
  const tasks = <i64>(per * threads) <= tiles ? per * threads : threads;
  let tm = 1, tn = tasks;
  let best: i64 = -1;
  for (let d = 1; d <= tasks; d++) {
    if (tasks % d) continue;
    const gm = d, gn = tasks / d;
    const cost = <i64>((mt + gm - 1) / gm) * <i64>((nt + gn - 1) / gn);
    if (best < 0 || cost < best || (cost == best && gn > tn)) {
      best = cost;
      tm = gm;
      tn = gn;
    }
  }
  const p = control + TASK_PARAMS;
  store<i32>(p + G_FLAGS, (transA ? 1 : 0) | (transB ? 2 : 0));
  storeTaskOperands(p, m, n, k, a, b, c, bias, aux);
  store<u32>(p + G_PACKED, <u32>gPacked);
  store<i32>(p + G_TM, tm);
  store<i32>(p + G_TN, tn);
  publishTask(TASK_GEMM);
  runGemmBlocks();
  joinTask();
}

/** Claims and computes blocks of the published GEMM until none is left (every thread, main included). */
export function runGemmBlocks(): void {
  const p = control + TASK_PARAMS;
  const flags = load<i32>(p + G_FLAGS);
  const transA = (flags & 1) != 0, transB = (flags & 2) != 0;
  const m = load<i32>(p + G_M), n = load<i32>(p + G_N), k = load<i32>(p + G_K);
  const a = <usize>load<u32>(p + G_A), b = <usize>load<u32>(p + G_B), c = <usize>load<u32>(p + G_C);
  const bias = <usize>load<u32>(p + G_BIAS), aux = <usize>load<u32>(p + G_AUX);
  const tm = load<i32>(p + G_TM), tn = load<i32>(p + G_TN);
  loadTaskEpilogue(p);
  const packed = gPacked;
  gPacked = <usize>load<u32>(p + G_PACKED);
  const mt = (m + MR - 1) / MR, nt = (n + NR - 1) / NR;
  const tasks = tm * tn;
  // every block spans all rows: this thread's first block packs all of op(a) into its cache
  let cached = tm == 1 && <i64>mt * MR * <i64>k * 4 <= <i64>A_CACHE_BYTES ? 1 : 0;
  for (let t = claim(); t < tasks; t = claim()) {
    const bi = t / tn, bj = t % tn;
    const i0 = <i32>(<i64>mt * bi / tm) * MR, i1 = min(m, <i32>(<i64>mt * (bi + 1) / tm) * MR);
    const j0 = <i32>(<i64>nt * bj / tn) * NR, j1 = min(n, <i32>(<i64>nt * (bj + 1) / tn) * NR);
    if (i0 < i1 && j0 < j1) {
      gemmBlocked(transA, transB, m, n, k, a, b, c, bias, aux, i0, i1, j0, j1, cached);
      if (cached == 1) cached = 2;
    }
  }
  gPacked = packed;
}

// The k blocks of gemmEx's blocked path: equal blocks of at most KC.
function kBlockOf(k: i32): i32 {
  return k <= KC ? k : (k + (k + KC - 1) / KC - 1) / ((k + KC - 1) / KC);
}

/** Floats of w (k,n) packed for the blocked path (packWeights). */
export function packedLength(k: i32, n: i32): i32 {
  return (n + NR - 1) / NR * NR * k;
}

/**
 * All of w (k,n), not transposed, packed once as the blocked path packs it block by block: k block
 * pc at npad·pc floats, and in it the NR-column panel of column j at j·kc. dst holds packedLength.
 */
export function packAll(dst: usize, w: usize, k: i32, n: i32): void {
  if (k <= 0 || n <= 0) return;
  const kBlock = kBlockOf(k), npad = <usize>((n + NR - 1) / NR * NR);
  for (let pc = 0; pc < k; pc += kBlock) {
    const kc = min(kBlock, k - pc);
    packPanelsB(false, w, n, k, pc, kc, 0, n, dst + ((npad * <usize>pc) << 2));
  }
}

/** gemmEx with b also packed by packAll: the blocked path reads the copy (the same values, the same bits). */
export function gemmExPacked(m: i32, n: i32, k: i32, alpha: f32, a: usize, b: usize, packed: usize, beta: f32, c: usize,
  mode: i32, bias: usize, act: i32, slope: f32, aux: usize): void {
  gPacked = packed;
  gemmEx(false, false, m, n, k, alpha, a, b, beta, c, mode, bias, act, slope, aux);
  gPacked = 0;
}
