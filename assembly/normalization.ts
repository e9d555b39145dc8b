// Batch and layer normalization, forward and backward (src/backends/backend.ts has the math):
//   BN, per column j:  μ = mean_i x,  σ² = mean_i (x − μ)²,  r = 1/√(σ² + ε),  y = act(γ·(x − μ)·r + β)
//                      dx = γ·r·(dy − S/m − x̂·T/m) ⊙ g'(x),  S = Σ_i dy,  T = Σ_i dy·x̂
//   LN, per row i:     the same statistics over the row; with ĝ = dy·γ,
//                      dx = r·(ĝ − mean_j ĝ − x̂·mean_j(ĝ·x̂)) ⊙ g'(x)
// Column statistics accumulate in the kernels' own outputs (mean, invStd, dgamma, dbeta): no
// scratch. Rows are walked four columns at a time (v128), the last n % 4 columns through the same
// vector code on one lane, so that every column gets the same arithmetic.
import { vactivate, vderivative } from './simd';

// @ts-ignore: decorator
@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

// @ts-ignore: decorator
@inline function ld(p: usize, j: i32, lanes: i32): v128 {
  return lanes == 4 ? v128.load(at(p, j)) : f32x4.splat(load<f32>(at(p, j)));
}

// @ts-ignore: decorator
@inline function st(p: usize, j: i32, lanes: i32, v: v128): void {
  if (lanes == 4) v128.store(at(p, j), v);
  else store<f32>(at(p, j), f32x4.extract_lane(v, 0));
}

/** The width of the step at column j: 4 while four columns remain, then 1. */
// @ts-ignore: decorator
@inline function lanesAt(j: i32, n: i32): i32 {
  return j + 4 <= n ? 4 : 1;
}

/** y = act(γ·((x − shift)·scale) + β) over rows of n, per-column shift and scale. */
function affineAct(y: usize, x: usize, scale: usize, shift: usize, gamma: usize, beta: usize, m: i32, n: i32, act: i32,
  alpha: f32): void {
  const slope = f32x4.splat(alpha);
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), yr = y + ((<usize>i * n) << 2);
    for (let j = 0; j < n;) {
      const l = lanesAt(j, n);
      const z = f32x4.add(f32x4.mul(ld(gamma, j, l), f32x4.mul(f32x4.sub(ld(xr, j, l), ld(shift, j, l)), ld(scale, j, l))), ld(beta, j, l));
      st(yr, j, l, vactivate(z, act, slope));
      j += l;
    }
  }
}

export function batchNormForward(y: usize, x: usize, gamma: usize, beta: usize, runMean: usize, runVar: usize,
  mean: usize, invStd: usize, m: i32, n: i32, update: bool, momentum: f32, eps: f32, act: i32, alpha: f32): void {
  if (m == 0) return;
  const invM: f32 = <f32>1.0 / <f32>m;
  memory.fill(mean, 0, <usize>n << 2);
  memory.fill(invStd, 0, <usize>n << 2);
  for (let i = 0; i < m; i++) {
    const row = x + ((<usize>i * n) << 2);
    for (let j = 0; j < n;) {
      const l = lanesAt(j, n);
      st(mean, j, l, f32x4.add(ld(mean, j, l), ld(row, j, l)));
      j += l;
    }
  }
  for (let j = 0; j < n; j++) store<f32>(at(mean, j), load<f32>(at(mean, j)) * invM);
  for (let i = 0; i < m; i++) {
    const row = x + ((<usize>i * n) << 2);
    for (let j = 0; j < n;) {
      const l = lanesAt(j, n);
      const d = f32x4.sub(ld(row, j, l), ld(mean, j, l));
      st(invStd, j, l, f32x4.add(ld(invStd, j, l), f32x4.mul(d, d)));
      j += l;
    }
  }
  const keep: f32 = <f32>1.0 - momentum;
  for (let j = 0; j < n; j++) {
    const v = load<f32>(at(invStd, j)) * invM;
    if (update) {
      store<f32>(at(runMean, j), momentum * load<f32>(at(runMean, j)) + keep * load<f32>(at(mean, j)));
      store<f32>(at(runVar, j), momentum * load<f32>(at(runVar, j)) + keep * v);
    }
    store<f32>(at(invStd, j), <f32>1.0 / sqrt<f32>(v + eps));
  }
  affineAct(y, x, invStd, mean, gamma, beta, m, n, act, alpha);
}

export function batchNormInference(y: usize, x: usize, gamma: usize, beta: usize, runMean: usize, runVar: usize,
  m: i32, n: i32, eps: f32, act: i32, alpha: f32): void {
  const slope = f32x4.splat(alpha), ve = f32x4.splat(eps), one = f32x4.splat(1);
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), yr = y + ((<usize>i * n) << 2);
    for (let j = 0; j < n;) {
      const l = lanesAt(j, n);
      const r = f32x4.div(one, f32x4.sqrt(f32x4.add(ld(runVar, j, l), ve)));
      const z = f32x4.add(f32x4.mul(ld(gamma, j, l), f32x4.mul(f32x4.sub(ld(xr, j, l), ld(runMean, j, l)), r)), ld(beta, j, l));
      st(yr, j, l, vactivate(z, act, slope));
      j += l;
    }
  }
}

export function batchNormBackward(dx: usize, dgamma: usize, dbeta: usize, dy: usize, x: usize, gamma: usize,
  mean: usize, invStd: usize, m: i32, n: i32, scale: f32, prevAct: i32, alpha: f32): void {
  memory.fill(dgamma, 0, <usize>n << 2);
  memory.fill(dbeta, 0, <usize>n << 2);
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), dyr = dy + ((<usize>i * n) << 2);
    for (let j = 0; j < n;) {
      const l = lanesAt(j, n);
      const g = ld(dyr, j, l);
      st(dbeta, j, l, f32x4.add(ld(dbeta, j, l), g));
      const xh = f32x4.mul(f32x4.sub(ld(xr, j, l), ld(mean, j, l)), ld(invStd, j, l));
      st(dgamma, j, l, f32x4.add(ld(dgamma, j, l), f32x4.mul(g, xh)));
      j += l;
    }
  }
  if (dx != 0 && m > 0) {
    const invM = f32x4.splat(<f32>1.0 / <f32>m), slope = f32x4.splat(alpha);
    for (let i = 0; i < m; i++) {
      const xr = x + ((<usize>i * n) << 2), dyr = dy + ((<usize>i * n) << 2), dxr = dx + ((<usize>i * n) << 2);
      for (let j = 0; j < n;) {
        const l = lanesAt(j, n);
        const r = ld(invStd, j, l), xv = ld(xr, j, l);
        const xh = f32x4.mul(f32x4.sub(xv, ld(mean, j, l)), r);
        const inner = f32x4.sub(f32x4.sub(ld(dyr, j, l), f32x4.mul(ld(dbeta, j, l), invM)), f32x4.mul(xh, f32x4.mul(ld(dgamma, j, l), invM)));
        st(dxr, j, l, f32x4.mul(f32x4.mul(f32x4.mul(ld(gamma, j, l), r), inner), vderivative(xv, prevAct, slope)));
        j += l;
      }
    }
  }
  for (let j = 0; j < n; j++) {
    store<f32>(at(dgamma, j), load<f32>(at(dgamma, j)) * scale);
    store<f32>(at(dbeta, j), load<f32>(at(dbeta, j)) * scale);
  }
}

/** The lanes of v summed. */
// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

export function layerNormForward(y: usize, x: usize, gamma: usize, beta: usize, mean: usize, invStd: usize,
  m: i32, n: i32, eps: f32, act: i32, alpha: f32): void {
  if (n == 0) return;
  const invN: f32 = <f32>1.0 / <f32>n, slope = f32x4.splat(alpha);
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), yr = y + ((<usize>i * n) << 2);
    let vs = f32x4.splat(0);
    let s: f32 = 0;
    let j = 0;
    for (; j + 4 <= n; j += 4) vs = f32x4.add(vs, v128.load(at(xr, j)));
    for (; j < n; j++) s += load<f32>(at(xr, j));
    const mu = (hsum(vs) + s) * invN, vmu = f32x4.splat(mu);
    let vv = f32x4.splat(0);
    let v: f32 = 0;
    j = 0;
    for (; j + 4 <= n; j += 4) {
      const d = f32x4.sub(v128.load(at(xr, j)), vmu);
      vv = f32x4.add(vv, f32x4.mul(d, d));
    }
    for (; j < n; j++) {
      const d = load<f32>(at(xr, j)) - mu;
      v += d * d;
    }
    const r: f32 = <f32>1.0 / sqrt<f32>((hsum(vv) + v) * invN + eps), vr = f32x4.splat(r);
    store<f32>(at(mean, i), mu);
    store<f32>(at(invStd, i), r);
    for (j = 0; j < n;) {
      const l = lanesAt(j, n);
      const z = f32x4.add(f32x4.mul(ld(gamma, j, l), f32x4.mul(f32x4.sub(ld(xr, j, l), vmu), vr)), ld(beta, j, l));
      st(yr, j, l, vactivate(z, act, slope));
      j += l;
    }
  }
}

export function layerNormBackward(dx: usize, dgamma: usize, dbeta: usize, dy: usize, x: usize, gamma: usize,
  mean: usize, invStd: usize, m: i32, n: i32, scale: f32, prevAct: i32, alpha: f32): void {
  memory.fill(dgamma, 0, <usize>n << 2);
  memory.fill(dbeta, 0, <usize>n << 2);
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), dyr = dy + ((<usize>i * n) << 2);
    const vmu = f32x4.splat(load<f32>(at(mean, i))), vr = f32x4.splat(load<f32>(at(invStd, i)));
    for (let j = 0; j < n;) {
      const l = lanesAt(j, n);
      const g = ld(dyr, j, l);
      st(dbeta, j, l, f32x4.add(ld(dbeta, j, l), g));
      st(dgamma, j, l, f32x4.add(ld(dgamma, j, l), f32x4.mul(g, f32x4.mul(f32x4.sub(ld(xr, j, l), vmu), vr))));
      j += l;
    }
  }
  for (let j = 0; j < n; j++) {
    store<f32>(at(dgamma, j), load<f32>(at(dgamma, j)) * scale);
    store<f32>(at(dbeta, j), load<f32>(at(dbeta, j)) * scale);
  }
  if (dx == 0 || n == 0) return;
  const invN: f32 = <f32>1.0 / <f32>n, slope = f32x4.splat(alpha);
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), dyr = dy + ((<usize>i * n) << 2), dxr = dx + ((<usize>i * n) << 2);
    const mu = load<f32>(at(mean, i)), r = load<f32>(at(invStd, i)), vmu = f32x4.splat(mu), vr = f32x4.splat(r);
    let va = f32x4.splat(0), vb = f32x4.splat(0);
    let a: f32 = 0, b: f32 = 0;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const g = f32x4.mul(v128.load(at(dyr, j)), v128.load(at(gamma, j)));
      va = f32x4.add(va, g);
      vb = f32x4.add(vb, f32x4.mul(g, f32x4.mul(f32x4.sub(v128.load(at(xr, j)), vmu), vr)));
    }
    for (; j < n; j++) {
      const g = load<f32>(at(dyr, j)) * load<f32>(at(gamma, j));
      a += g;
      b += g * ((load<f32>(at(xr, j)) - mu) * r);
    }
    const ma = f32x4.splat((hsum(va) + a) * invN), mb = f32x4.splat((hsum(vb) + b) * invN);
    for (j = 0; j < n;) {
      const l = lanesAt(j, n);
      const xv = ld(xr, j, l);
      const xh = f32x4.mul(f32x4.sub(xv, vmu), vr);
      const d = f32x4.mul(vr, f32x4.sub(f32x4.sub(f32x4.mul(ld(dyr, j, l), ld(gamma, j, l)), ma), f32x4.mul(xh, mb)));
      st(dxr, j, l, f32x4.mul(d, vderivative(xv, prevAct, slope)));
      j += l;
    }
  }
}
