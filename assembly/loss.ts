// Loss of a batch and the output delta, fused; sum of squares. The loss sum is accumulated in f64
// and its log in f64 (as the reference does): it is a scalar the user reads, over the output layer
// only, so its cost is small next to the GEMMs.
import { EPS_PROB, LOSS_BINARY_CROSS_ENTROPY, LOSS_CATEGORICAL_CROSS_ENTROPY, LOSS_HUBER, LOSS_MEAN_ABSOLUTE_ERROR, LOSS_MSE } from './abi';
import { derivativeScalar } from './simd';

// @ts-ignore: decorator
@inline function clampProb(a: f64): f64 {
  return min(max(a, EPS_PROB), 1 - EPS_PROB);
}

// a (m,n) output after activation act, y (m,n) targets, dz (m,n) delta at the pre-activation;
// weights (m floats, 0 for none) scale each row's loss and delta; delta is huber's threshold.
// Returns the loss summed over the m samples (see backend.ts for each formula).
export function lossDelta(dz: usize, a: usize, y: usize, m: i32, n: i32, loss: i32, act: i32,
  alpha: f32, delta: f32, weights: usize): f64 {
  // no outputs: no loss and no delta (the mean over 0 outputs would be 0/0)
  if (n == 0) return 0;
  let total: f64 = 0;
  const invN: f32 = <f32>1.0 / <f32>n;
  const twoOverN: f32 = <f32>2.0 / <f32>n;
  const weighted = weights != 0;
  for (let r = 0; r < m; r++) {
    const w: f32 = weighted ? load<f32>(weights + (<usize>r << 2)) : 1;
    // without weights the sum runs on in element order; with them, per row, then times its weight
    let row: f64 = weighted ? 0 : total;
    const from = <usize>r * n, to = from + <usize>n;
    if (loss == LOSS_MSE) {
      for (let i = from; i < to; i++) {
        const av = load<f32>(a + (i << 2)), yv = load<f32>(y + (i << 2));
        const d = av - yv;
        row += <f64>d * <f64>d;
        store<f32>(dz + (i << 2), twoOverN * d * derivativeScalar(av, act, alpha) * w);
      }
    } else if (loss == LOSS_BINARY_CROSS_ENTROPY) {
      for (let i = from; i < to; i++) {
        const av = load<f32>(a + (i << 2)), yv = load<f32>(y + (i << 2));
        const p = clampProb(<f64>av);
        // 0/1 targets (the usual case) need one log, not two
        if (yv == 1) row -= Math.log(p);
        else if (yv == 0) row -= Math.log(1 - p);
        else row -= <f64>yv * Math.log(p) + (1 - <f64>yv) * Math.log(1 - p);
        store<f32>(dz + (i << 2), (av - yv) * invN * w);
      }
    } else if (loss == LOSS_HUBER) {
      const dd = <f64>delta;
      for (let i = from; i < to; i++) {
        const av = load<f32>(a + (i << 2)), yv = load<f32>(y + (i << 2));
        const e = av - yv;
        const ed = <f64>av - <f64>yv, ae = Math.abs(ed);
        row += ae <= dd ? 0.5 * ed * ed : dd * (ae - 0.5 * dd);
        const g: f32 = e > delta ? delta : (e < -delta ? -delta : e);
        store<f32>(dz + (i << 2), g * invN * derivativeScalar(av, act, alpha) * w);
      }
    } else if (loss == LOSS_MEAN_ABSOLUTE_ERROR) {
      for (let i = from; i < to; i++) {
        const av = load<f32>(a + (i << 2)), yv = load<f32>(y + (i << 2));
        const e = av - yv;
        row += Math.abs(<f64>av - <f64>yv);
        // the subgradient at e = 0 is 0, as Keras takes it
        const sgn: f32 = e > 0 ? 1 : (e < 0 ? -1 : 0);
        store<f32>(dz + (i << 2), sgn * invN * derivativeScalar(av, act, alpha) * w);
      }
    } else {
      // categorical cross-entropy with a softmax output
      for (let i = from; i < to; i++) {
        const av = load<f32>(a + (i << 2)), yv = load<f32>(y + (i << 2));
        if (yv != 0) row -= <f64>yv * Math.log(clampProb(<f64>av));
        store<f32>(dz + (i << 2), (av - yv) * w);
      }
    }
    if (weighted) total += <f64>w * row;
    else total = row;
  }
  return loss == LOSS_CATEGORICAL_CROSS_ENTROPY ? total : total / <f64>n;
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
