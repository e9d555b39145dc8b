// Loss of a batch and the output delta, fused; sum of squares. The loss sum is accumulated in f64
// and its log in f64 (as the reference does): it is a scalar the user reads, over the output layer
// only, so its cost is small next to the GEMMs.
import { EPS_PROB, LOSS_BINARY_CROSS_ENTROPY, LOSS_MSE } from './abi';
import { derivativeScalar } from './simd';

// @ts-ignore: decorator
@inline function clampProb(a: f64): f64 {
  return min(max(a, EPS_PROB), 1 - EPS_PROB);
}

// a (m,n) output after activation act, y (m,n) targets, dz (m,n) delta at the pre-activation.
// Returns the loss summed over the m samples (see backend.ts for each formula).
export function lossDelta(dz: usize, a: usize, y: usize, m: i32, n: i32, loss: i32, act: i32,
  alpha: f32): f64 {
  // no outputs: no loss and no delta (the mean over 0 outputs would be 0/0)
  if (n == 0) return 0;
  const count = <usize>m * n;
  let total: f64 = 0;
  const invN: f32 = <f32>1.0 / <f32>n;
  if (loss == LOSS_MSE) {
    const twoOverN: f32 = <f32>2.0 / <f32>n;
    for (let i: usize = 0; i < count; i++) {
      const av = load<f32>(a + (i << 2)), yv = load<f32>(y + (i << 2));
      const d = av - yv;
      total += <f64>d * <f64>d;
      store<f32>(dz + (i << 2), twoOverN * d * derivativeScalar(av, act, alpha));
    }
    return total / <f64>n;
  }
  if (loss == LOSS_BINARY_CROSS_ENTROPY) {
    for (let i: usize = 0; i < count; i++) {
      const av = load<f32>(a + (i << 2)), yv = load<f32>(y + (i << 2));
      const p = clampProb(<f64>av);
      // 0/1 targets (the usual case) need one log, not two
      if (yv == 1) total -= Math.log(p);
      else if (yv == 0) total -= Math.log(1 - p);
      else total -= <f64>yv * Math.log(p) + (1 - <f64>yv) * Math.log(1 - p);
      store<f32>(dz + (i << 2), (av - yv) * invN);
    }
    return total / <f64>n;
  }
  // categorical cross-entropy with a softmax output
  for (let i: usize = 0; i < count; i++) {
    const av = load<f32>(a + (i << 2)), yv = load<f32>(y + (i << 2));
    if (yv != 0) total -= <f64>yv * Math.log(clampProb(<f64>av));
    store<f32>(dz + (i << 2), av - yv);
  }
  return total;
}

// Σ g[i]² over n entries, accumulated in f64 lanes so that large arenas lose no precision.
export function sumSquares(g: usize, n: i32): f64 {
  let lo = f64x2.splat(0), hi = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(g + (<usize>i << 2));
    const a = f64x2.promote_low_f32x4(v);
    const b = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
    lo = f64x2.add(lo, f64x2.mul(a, a));
    hi = f64x2.add(hi, f64x2.mul(b, b));
  }
  const s2 = f64x2.add(lo, hi);
  let s = f64x2.extract_lane(s2, 0) + f64x2.extract_lane(s2, 1);
  for (; i < n; i++) {
    const x = <f64>load<f32>(g + (<usize>i << 2));
    s += x * x;
  }
  return s;
}
