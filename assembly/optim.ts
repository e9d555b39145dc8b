// Optimizer updates: one pass over the flat arenas, n entries. ĝ = gradScale·g + weightDecay·p for
// i < decayCount (the weights, placed first), gradScale·g after it. Each kernel runs its SIMD body
// over [0, decayCount) with decay and over [decayCount, n) without, then a scalar tail.
import { F32_MIN_NORMAL } from './abi';
import { madd, nmadd } from './simd';

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
  adamRange(p, g, m, v, 0, d, lr, gradScale, beta1, beta2, eps, bc1, bc2, wd, dwd);
  adamRange(p, g, m, v, d, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, 0, 0);
}
