// Optimizer updates: one pass over the flat arenas, n entries. ĝ = gradScale·g + weightDecay·p for
// i < decayCount (the weights, placed first), gradScale·g after it. Each kernel runs its SIMD body
// over [0, decayCount) with decay and over [decayCount, n) without, then a scalar tail. In the
// threads build a large update is split into blocks of each of the two segments (runOptimBlocks).
import { F32_MIN_NORMAL } from './abi';
import { madd, nmadd } from './simd';
import { claim, control, joinTask, publishTask, TASK_OPTIM, TASK_PARAMS, threadsFor } from './threads';

// Optimizer state below the smallest normal float32 is stored as 0, as in native/kernels/optim.inc
// (which says why: subnormal moments make every multiply of them slow on x86). NaN is kept.
// @ts-ignore: decorator
@inline function flushSubnormal(x: f32): f32 { return Mathf.abs(x) < F32_MIN_NORMAL ? 0 : x; }
// @ts-ignore: decorator
@inline function flushSubnormalV(x: v128): v128 {
  return v128.andnot(x, f32x4.lt(f32x4.abs(x), f32x4.splat(F32_MIN_NORMAL)));
}

// p (n) -= lr·ĝ
function sgdRange(p: usize, g: usize, from: i32, to: i32, lr: f32, gradScale: f32, wd: f32): void {
  const vlr = f32x4.splat(lr), vgs = f32x4.splat(gradScale), vwd = f32x4.splat(wd);
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const o = <usize>i << 2;
    const pv = v128.load(p + o);
    const gv = madd(vwd, pv, f32x4.mul(vgs, v128.load(g + o)));
    v128.store(p + o, nmadd(vlr, gv, pv));
  }
  for (; i < to; i++) {
    const o = <usize>i << 2;
    const pv = load<f32>(p + o);
    store<f32>(p + o, pv - lr * (gradScale * load<f32>(g + o) + wd * pv));
  }
}

export function sgdStep(p: usize, g: usize, n: i32, lr: f32, gradScale: f32, weightDecay: f32,
  decayCount: i32): void {
  const d = min(max(decayCount, 0), n);
  if (ASC_FEATURE_THREADS && threadsFor(n) > 1) {
    publishOptim(OPT_SGD, p, g, 0, 0, n, d, lr, gradScale, 0, 0, 0, 0, 0, weightDecay, 0, false);
    return;
  }
  sgdRange(p, g, 0, d, lr, gradScale, weightDecay);
  sgdRange(p, g, d, n, lr, gradScale, 0);
}

// v = mu·v + ĝ;  p -= lr·(nesterov ? ĝ + mu·v : v)
function momentumRange(p: usize, g: usize, v: usize, from: i32, to: i32, lr: f32, gradScale: f32,
  mu: f32, nesterov: bool, wd: f32): void {
  const vlr = f32x4.splat(lr), vgs = f32x4.splat(gradScale), vwd = f32x4.splat(wd), vmu = f32x4.splat(mu);
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const o = <usize>i << 2;
    const pv = v128.load(p + o);
    const gv = madd(vwd, pv, f32x4.mul(vgs, v128.load(g + o)));
    const vv = flushSubnormalV(madd(vmu, v128.load(v + o), gv));
    v128.store(v + o, vv);
    const step = nesterov ? madd(vmu, vv, gv) : vv;
    v128.store(p + o, nmadd(vlr, step, pv));
  }
  for (; i < to; i++) {
    const o = <usize>i << 2;
    const pv = load<f32>(p + o);
    const gi = gradScale * load<f32>(g + o) + wd * pv;
    const vi = flushSubnormal(mu * load<f32>(v + o) + gi);
    store<f32>(v + o, vi);
    store<f32>(p + o, pv - lr * (nesterov ? gi + mu * vi : vi));
  }
}

export function momentumStep(p: usize, g: usize, v: usize, n: i32, lr: f32, gradScale: f32,
  mu: f32, nesterov: bool, weightDecay: f32, decayCount: i32): void {
  const d = min(max(decayCount, 0), n);
  if (ASC_FEATURE_THREADS && threadsFor(n) > 1) {
    publishOptim(OPT_MOMENTUM, p, g, v, 0, n, d, lr, gradScale, mu, 0, 0, 0, 0, weightDecay, 0, nesterov);
    return;
  }
  momentumRange(p, g, v, 0, d, lr, gradScale, mu, nesterov, weightDecay);
  momentumRange(p, g, v, d, n, lr, gradScale, mu, nesterov, 0);
}

// m = β1·m + (1−β1)·ĝ;  v = β2·v + (1−β2)·ĝ²;  p -= lr·(m/bc1) / (sqrt(v/bc2) + eps).
// wd is the coupled decay (inside ĝ), dwd the decoupled one (p -= lr·dwd·p first, AdamW).
function adamRange(p: usize, g: usize, m: usize, v: usize, from: i32, to: i32, lr: f32,
  gradScale: f32, beta1: f32, beta2: f32, eps: f32, bc1: f32, bc2: f32, wd: f32, dwd: f32): void {
  const vgs = f32x4.splat(gradScale), vwd = f32x4.splat(wd), vdk = f32x4.splat(lr * dwd);
  const vb1 = f32x4.splat(beta1), vb2 = f32x4.splat(beta2);
  const v1b1 = f32x4.splat(1 - beta1), v1b2 = f32x4.splat(1 - beta2);
  const vlr = f32x4.splat(lr), vbc1 = f32x4.splat(bc1), vbc2 = f32x4.splat(bc2), veps = f32x4.splat(eps);
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const o = <usize>i << 2;
    let pv = v128.load(p + o);
    pv = nmadd(vdk, pv, pv);
    const gv = madd(vwd, pv, f32x4.mul(vgs, v128.load(g + o)));
    const mv = flushSubnormalV(madd(v1b1, gv, f32x4.mul(vb1, v128.load(m + o))));
    const vv = flushSubnormalV(madd(v1b2, f32x4.mul(gv, gv), f32x4.mul(vb2, v128.load(v + o))));
    v128.store(m + o, mv);
    v128.store(v + o, vv);
    const den = f32x4.add(f32x4.sqrt(f32x4.div(vv, vbc2)), veps);
    v128.store(p + o, f32x4.sub(pv, f32x4.div(f32x4.mul(vlr, f32x4.div(mv, vbc1)), den)));
  }
  for (; i < to; i++) {
    const o = <usize>i << 2;
    let pv = load<f32>(p + o);
    pv -= lr * dwd * pv;
    const gi = gradScale * load<f32>(g + o) + wd * pv;
    const mi = flushSubnormal(beta1 * load<f32>(m + o) + (1 - beta1) * gi);
    const vi = flushSubnormal(beta2 * load<f32>(v + o) + (1 - beta2) * gi * gi);
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(p + o, pv - (lr * (mi / bc1)) / (Mathf.sqrt(vi / bc2) + eps));
  }
}

export function adamStep(p: usize, g: usize, m: usize, v: usize, n: i32, lr: f32, gradScale: f32,
  beta1: f32, beta2: f32, eps: f32, bc1: f32, bc2: f32, weightDecay: f32, decoupled: bool,
  decayCount: i32): void {
  const d = min(max(decayCount, 0), n);
  const wd: f32 = decoupled ? 0 : weightDecay;
  const dwd: f32 = decoupled ? weightDecay : 0;
  if (ASC_FEATURE_THREADS && threadsFor(n) > 1) {
    // the state arrays go in the m and v slots (momentum's v in the m slot)
    publishOptim(OPT_ADAM, p, g, m, v, n, d, lr, gradScale, beta1, beta2, eps, bc1, bc2, wd, dwd, false);
    return;
  }
  adamRange(p, g, m, v, 0, d, lr, gradScale, beta1, beta2, eps, bc1, bc2, wd, dwd);
  adamRange(p, g, m, v, d, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, 0, 0);
}

// Threads build: the update split over the pool. Blocks of OPT_BLOCK entries tile each segment
// ([0, d) with decay, [d, n) without) from its start, a multiple of the SIMD width, so every entry
// goes through the vector body or the scalar tail exactly as in the whole call: the same bits.
const OPT_BLOCK: i32 = 8192;
const OPT_SGD: i32 = 0, OPT_MOMENTUM: i32 = 1, OPT_ADAM: i32 = 2;

// The task parameters (threads.ts TASK_PARAMS), read by every thread.
const O_KIND: usize = 0;
const O_P: usize = 4;
const O_G: usize = 8;
const O_M: usize = 12;
const O_V: usize = 16;
const O_N: usize = 20;
const O_D: usize = 24;
const O_LR: usize = 28;
const O_GS: usize = 32;
const O_B1: usize = 36; // beta1, or momentum's mu
const O_B2: usize = 40;
const O_EPS: usize = 44;
const O_BC1: usize = 48;
const O_BC2: usize = 52;
const O_WD: usize = 56; // the decay of the first segment (Adam: the coupled one)
const O_DWD: usize = 60; // Adam's decoupled decay of the first segment
const O_NESTEROV: usize = 64;

function publishOptim(kind: i32, p: usize, g: usize, m: usize, v: usize, n: i32, d: i32, lr: f32, gradScale: f32,
  b1: f32, b2: f32, eps: f32, bc1: f32, bc2: f32, wd: f32, dwd: f32, nesterov: bool): void {
  const t = control + TASK_PARAMS;
  store<i32>(t + O_KIND, kind);
  store<u32>(t + O_P, <u32>p);
  store<u32>(t + O_G, <u32>g);
  store<u32>(t + O_M, <u32>m);
  store<u32>(t + O_V, <u32>v);
  store<i32>(t + O_N, n);
  store<i32>(t + O_D, d);
  store<f32>(t + O_LR, lr);
  store<f32>(t + O_GS, gradScale);
  store<f32>(t + O_B1, b1);
  store<f32>(t + O_B2, b2);
  store<f32>(t + O_EPS, eps);
  store<f32>(t + O_BC1, bc1);
  store<f32>(t + O_BC2, bc2);
  store<f32>(t + O_WD, wd);
  store<f32>(t + O_DWD, dwd);
  store<i32>(t + O_NESTEROV, nesterov ? 1 : 0);
  publishTask(TASK_OPTIM);
  runOptimBlocks();
  joinTask();
}

/** Claims and updates blocks of the published optimizer update until none is left (every thread). */
export function runOptimBlocks(): void {
  const t = control + TASK_PARAMS;
  const kind = load<i32>(t + O_KIND);
  const p = <usize>load<u32>(t + O_P), g = <usize>load<u32>(t + O_G);
  const m = <usize>load<u32>(t + O_M), v = <usize>load<u32>(t + O_V);
  const n = load<i32>(t + O_N), d = load<i32>(t + O_D);
  const lr = load<f32>(t + O_LR), gs = load<f32>(t + O_GS), b1 = load<f32>(t + O_B1), b2 = load<f32>(t + O_B2);
  const eps = load<f32>(t + O_EPS), bc1 = load<f32>(t + O_BC1), bc2 = load<f32>(t + O_BC2);
  const wd0 = load<f32>(t + O_WD), dwd0 = load<f32>(t + O_DWD), nesterov = load<i32>(t + O_NESTEROV) != 0;
  const first = (d + OPT_BLOCK - 1) / OPT_BLOCK, blocks = first + (n - d + OPT_BLOCK - 1) / OPT_BLOCK;
  for (let b = claim(); b < blocks; b = claim()) {
    const decay = b < first;
    const from = decay ? b * OPT_BLOCK : d + (b - first) * OPT_BLOCK;
    const to = min(decay ? d : n, from + OPT_BLOCK);
    const wd: f32 = decay ? wd0 : 0, dwd: f32 = decay ? dwd0 : 0;
    if (kind == OPT_SGD) sgdRange(p, g, from, to, lr, gs, wd);
    else if (kind == OPT_MOMENTUM) momentumRange(p, g, m, from, to, lr, gs, b1, nesterov, wd);
    else adamRange(p, g, m, v, from, to, lr, gs, b1, b2, eps, bc1, bc2, wd, dwd);
  }
}
