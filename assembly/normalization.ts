// Batch and layer normalization, forward and backward (src/backends/backend.ts has the math):
//   BN, per column j:  μ = mean_i x,  σ² = mean_i (x − μ)²,  r = 1/√(σ² + ε),  y = act(γ·(x − μ)·r + β)
//                      dx = γ·r·(dy − S/m − x̂·T/m) ⊙ g'(x),  S = Σ_i dy,  T = Σ_i dy·x̂
//   LN, per row i:     the same statistics over the row; with ĝ = dy·γ,
//                      dx = r·(ĝ − mean_j ĝ − x̂·mean_j(ĝ·x̂)) ⊙ g'(x)
// Column statistics accumulate in the kernels' own outputs (mean, invStd, dgamma, dbeta): no
// scratch. Activations go through simd.ts's vector code (lane 0), the numbers of every other kernel.
import { vactivate } from './simd';
import { derivativeScalar } from './simd';

// @ts-ignore: decorator
@inline function act1(z: f32, act: i32, alpha: f32): f32 {
  return f32x4.extract_lane(vactivate(f32x4.splat(z), act, f32x4.splat(alpha)), 0);
}

// @ts-ignore: decorator
@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

export function batchNormForward(y: usize, x: usize, gamma: usize, beta: usize, runMean: usize, runVar: usize,
  mean: usize, invStd: usize, m: i32, n: i32, update: bool, momentum: f32, eps: f32, act: i32, alpha: f32): void {
  if (m == 0) return;
  const invM: f32 = <f32>1.0 / <f32>m;
  for (let j = 0; j < n; j++) {
    store<f32>(at(mean, j), 0);
    store<f32>(at(invStd, j), 0);
  }
  for (let i = 0; i < m; i++) {
    const row = x + ((<usize>i * n) << 2);
    for (let j = 0; j < n; j++) store<f32>(at(mean, j), load<f32>(at(mean, j)) + load<f32>(at(row, j)));
  }
  for (let j = 0; j < n; j++) store<f32>(at(mean, j), load<f32>(at(mean, j)) * invM);
  for (let i = 0; i < m; i++) {
    const row = x + ((<usize>i * n) << 2);
    for (let j = 0; j < n; j++) {
      const d = load<f32>(at(row, j)) - load<f32>(at(mean, j));
      store<f32>(at(invStd, j), load<f32>(at(invStd, j)) + d * d);
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
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), yr = y + ((<usize>i * n) << 2);
    for (let j = 0; j < n; j++) {
      const z = load<f32>(at(gamma, j)) * ((load<f32>(at(xr, j)) - load<f32>(at(mean, j))) * load<f32>(at(invStd, j))) +
        load<f32>(at(beta, j));
      store<f32>(at(yr, j), act1(z, act, alpha));
    }
  }
}

export function batchNormInference(y: usize, x: usize, gamma: usize, beta: usize, runMean: usize, runVar: usize,
  m: i32, n: i32, eps: f32, act: i32, alpha: f32): void {
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), yr = y + ((<usize>i * n) << 2);
    for (let j = 0; j < n; j++) {
      const r: f32 = <f32>1.0 / sqrt<f32>(load<f32>(at(runVar, j)) + eps);
      const z = load<f32>(at(gamma, j)) * ((load<f32>(at(xr, j)) - load<f32>(at(runMean, j))) * r) + load<f32>(at(beta, j));
      store<f32>(at(yr, j), act1(z, act, alpha));
    }
  }
}

export function batchNormBackward(dx: usize, dgamma: usize, dbeta: usize, dy: usize, x: usize, gamma: usize,
  mean: usize, invStd: usize, m: i32, n: i32, scale: f32, prevAct: i32, alpha: f32): void {
  for (let j = 0; j < n; j++) {
    store<f32>(at(dgamma, j), 0);
    store<f32>(at(dbeta, j), 0);
  }
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), dyr = dy + ((<usize>i * n) << 2);
    for (let j = 0; j < n; j++) {
      const g = load<f32>(at(dyr, j));
      store<f32>(at(dbeta, j), load<f32>(at(dbeta, j)) + g);
      store<f32>(at(dgamma, j), load<f32>(at(dgamma, j)) +
        g * ((load<f32>(at(xr, j)) - load<f32>(at(mean, j))) * load<f32>(at(invStd, j))));
    }
  }
  if (dx != 0 && m > 0) {
    const invM: f32 = <f32>1.0 / <f32>m;
    for (let i = 0; i < m; i++) {
      const xr = x + ((<usize>i * n) << 2), dyr = dy + ((<usize>i * n) << 2), dxr = dx + ((<usize>i * n) << 2);
      for (let j = 0; j < n; j++) {
        const r = load<f32>(at(invStd, j)), xv = load<f32>(at(xr, j));
        const xh = (xv - load<f32>(at(mean, j))) * r;
        const d = load<f32>(at(gamma, j)) * r *
          (load<f32>(at(dyr, j)) - load<f32>(at(dbeta, j)) * invM - xh * (load<f32>(at(dgamma, j)) * invM));
        store<f32>(at(dxr, j), d * derivativeScalar(xv, prevAct, alpha));
      }
    }
  }
  for (let j = 0; j < n; j++) {
    store<f32>(at(dgamma, j), load<f32>(at(dgamma, j)) * scale);
    store<f32>(at(dbeta, j), load<f32>(at(dbeta, j)) * scale);
  }
}

export function layerNormForward(y: usize, x: usize, gamma: usize, beta: usize, mean: usize, invStd: usize,
  m: i32, n: i32, eps: f32, act: i32, alpha: f32): void {
  if (n == 0) return;
  const invN: f32 = <f32>1.0 / <f32>n;
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), yr = y + ((<usize>i * n) << 2);
    let s: f32 = 0;
    for (let j = 0; j < n; j++) s += load<f32>(at(xr, j));
    const mu = s * invN;
    let v: f32 = 0;
    for (let j = 0; j < n; j++) {
      const d = load<f32>(at(xr, j)) - mu;
      v += d * d;
    }
    const r: f32 = <f32>1.0 / sqrt<f32>(v * invN + eps);
    store<f32>(at(mean, i), mu);
    store<f32>(at(invStd, i), r);
    for (let j = 0; j < n; j++) {
      const z = load<f32>(at(gamma, j)) * ((load<f32>(at(xr, j)) - mu) * r) + load<f32>(at(beta, j));
      store<f32>(at(yr, j), act1(z, act, alpha));
    }
  }
}

export function layerNormBackward(dx: usize, dgamma: usize, dbeta: usize, dy: usize, x: usize, gamma: usize,
  mean: usize, invStd: usize, m: i32, n: i32, scale: f32, prevAct: i32, alpha: f32): void {
  for (let j = 0; j < n; j++) {
    store<f32>(at(dgamma, j), 0);
    store<f32>(at(dbeta, j), 0);
  }
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), dyr = dy + ((<usize>i * n) << 2);
    const mu = load<f32>(at(mean, i)), r = load<f32>(at(invStd, i));
    for (let j = 0; j < n; j++) {
      const g = load<f32>(at(dyr, j));
      store<f32>(at(dbeta, j), load<f32>(at(dbeta, j)) + g);
      store<f32>(at(dgamma, j), load<f32>(at(dgamma, j)) + g * ((load<f32>(at(xr, j)) - mu) * r));
    }
  }
  for (let j = 0; j < n; j++) {
    store<f32>(at(dgamma, j), load<f32>(at(dgamma, j)) * scale);
    store<f32>(at(dbeta, j), load<f32>(at(dbeta, j)) * scale);
  }
  if (dx == 0 || n == 0) return;
  const invN: f32 = <f32>1.0 / <f32>n;
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2), dyr = dy + ((<usize>i * n) << 2), dxr = dx + ((<usize>i * n) << 2);
    const mu = load<f32>(at(mean, i)), r = load<f32>(at(invStd, i));
    let a: f32 = 0, b: f32 = 0;
    for (let j = 0; j < n; j++) {
      const g = load<f32>(at(dyr, j)) * load<f32>(at(gamma, j));
      a += g;
      b += g * ((load<f32>(at(xr, j)) - mu) * r);
    }
    a *= invN;
    b *= invN;
    for (let j = 0; j < n; j++) {
      const xv = load<f32>(at(xr, j));
      const xh = (xv - mu) * r;
      const d = r * (load<f32>(at(dyr, j)) * load<f32>(at(gamma, j)) - a - xh * b);
      store<f32>(at(dxr, j), d * derivativeScalar(xv, prevAct, alpha));
    }
  }
}
