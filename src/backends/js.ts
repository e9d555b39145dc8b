// The reference backend: plain loops, written to be obviously correct. Every other backend is
// tested against it. Products are accumulated in float64 and stored as float32, so that it is a
// good oracle for the float32 SIMD kernels. Every call is checked against the kernel contract
// (contract.ts) first, as on the other backends, with the same errors.
import { F32_MIN_NORMAL } from './abi.js';
import { ACT, EPS_PROB, LOSS, type ActCode, type Backend, type Buf, type LossCode } from './backend.js';
import { FAST, RESOLVED, checkKernel, isBufLike, type BufferSpace } from './contract.js';

const rowAct = (z: number, act: ActCode, alpha: number): number => activate(z, act, alpha);

const K = RESOLVED;

class JsBuf implements Buf {
  /** The ArrayBuffer it lies in and its first float there, read once: for the overlap checks. */
  readonly memory: ArrayBufferLike;
  readonly start: number;
  constructor(readonly data: Float32Array) {
    this.memory = data.buffer;
    this.start = data.byteOffset / 4;
  }
  get length(): number {
    return this.data.length;
  }
  view(offset: number, length: number): Buf {
    if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 &&
      offset + length <= this.data.length)) {
      throw new RangeError(`view(${offset}, ${length}) is outside a buffer of ${this.data.length} floats`);
    }
    return new JsBuf(this.data.subarray(offset, offset + length));
  }
}

/** Any Buf with a Float32Array (the reference runs on anyone's); its own placed without a getter call. */
const SPACE: BufferSpace = {
  accepts: isBufLike,
  length: (b) => b.data.length,
  memory: (b) => (b instanceof JsBuf ? b.memory : b.data.buffer),
  start: (b) => (b instanceof JsBuf ? b.start : b.data.byteOffset / 4),
};

/** g(z) */
export function activate(z: number, act: ActCode, alpha: number): number {
  switch (act) {
    case ACT.sigmoid: return 1 / (1 + Math.exp(-z));
    case ACT.tanh: return Math.tanh(z);
    case ACT.relu: return z > 0 ? z : 0;
    case ACT.leakyRelu: return z > 0 ? z : alpha * z;
    default: return z; // linear; softmax is taken over a row by the caller
  }
}

/** g'(z) written with the output a = g(z) (MATH.md's table). */
export function derivative(a: number, act: ActCode, alpha: number): number {
  switch (act) {
    case ACT.sigmoid: return a * (1 - a);
    case ACT.tanh: return 1 - a * a;
    case ACT.relu: return a > 0 ? 1 : 0;
    case ACT.leakyRelu: return a > 0 ? 1 : alpha;
    default: return 1;
  }
}

const clampProb = (a: number): number => Math.min(Math.max(a, EPS_PROB), 1 - EPS_PROB);

// ---- the dropout mask (backend.ts dropoutForward): a keyed integer hash, 32-bit arithmetic ----

/** murmur3's 32-bit finalizer. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The two key words of one (seed, step, layer). */
export function dropoutKey(seed: number, step: number, layer: number): [number, number] {
  const k1 = fmix(fmix(fmix((seed + 0x9e3779b9) >>> 0) ^ step) ^ ((layer + 0x7f4a7c15) >>> 0));
  return [k1, fmix((k1 + 0x9e3779b9) >>> 0)];
}

/** Element i is kept when its hash's top 24 bits reach the threshold ⌊f32(rate)·2^24⌋. */
export const dropoutThreshold = (rate: number): number => Math.floor(Math.fround(rate) * 16777216);
export const dropoutHash = (i: number, k1: number, k2: number): number => fmix((fmix((i ^ k1) >>> 0) + k2) >>> 0);
/** The kept elements' factor, in float32 arithmetic as every backend computes it. */
export const dropoutScale = (rate: number): number => Math.fround(1 / Math.fround(1 - Math.fround(rate)));

/** g'(a) in float32 arithmetic, operation by operation as the native and wasm kernels do it. */
function derivativeF32(a: number, act: ActCode, alpha: number): number {
  switch (act) {
    case ACT.sigmoid: return Math.fround(a * Math.fround(1 - a));
    case ACT.tanh: return Math.fround(1 - Math.fround(a * a));
    case ACT.relu: return a > 0 ? 1 : 0;
    case ACT.leakyRelu: return a > 0 ? 1 : Math.fround(alpha);
    default: return 1;
  }
}

export class JsBackend implements Backend {
  readonly name = 'js' as const;
  readonly isa = 'js';
  readonly threads = 1;

  setThreads(_n: number): void {}

  alloc(length: number): Buf {
    return new JsBuf(new Float32Array(length));
  }

  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Buf, b: Buf, beta: number, c: Buf): void {
    if (!FAST.gemm(SPACE, transA, transB, m, n, k, alpha, a, b, beta, c)) checkKernel(SPACE, K.gemm, transA, transB, m, n, k, alpha, a, b, beta, c);
    const A = a.data, B = b.data, C = c.data;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          s += A[transA ? p * m + i : i * k + p] * B[transB ? j * k + p : p * n + j];
        }
        C[i * n + j] = beta === 0 ? alpha * s : alpha * s + beta * C[i * n + j];
      }
    }
  }

  // y (m,out) = act(x (m,inp) · w (inp,out) + b (out))
  denseForward(y: Buf, x: Buf, w: Buf, b: Buf, m: number, inp: number, out: number,
    act: ActCode, alpha: number): void {
    if (!FAST.denseForward(SPACE, y, x, w, b, m, inp, out, act, alpha)) checkKernel(SPACE, K.denseForward, y, x, w, b, m, inp, out, act, alpha);
    const X = x.data, W = w.data, B = b.data, Y = y.data;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < out; j++) {
        let z = B[j];
        for (let p = 0; p < inp; p++) z += X[i * inp + p] * W[p * out + j];
        Y[i * out + j] = act === ACT.softmax ? z : activate(z, act, alpha);
      }
      if (act === ACT.softmax) {
        let max = -Infinity;
        for (let j = 0; j < out; j++) max = Math.max(max, Y[i * out + j]);
        let sum = 0;
        for (let j = 0; j < out; j++) sum += Math.exp(Y[i * out + j] - max);
        for (let j = 0; j < out; j++) Y[i * out + j] = Math.exp(Y[i * out + j] - max) / sum;
      }
    }
  }

  // dw (inp,out) = scale·xᵀ·dz; db (out) = scale·Σ_rows dz; dx (m,inp) = (dz·wᵀ) ⊙ g'(x)
  denseBackward(dw: Buf, db: Buf, dx: Buf | null, dz: Buf, x: Buf, w: Buf,
    m: number, inp: number, out: number, scale: number, prevAct: ActCode, alpha: number): void {
    if (!FAST.denseBackward(SPACE, dw, db, dx, dz, x, w, m, inp, out, scale, prevAct, alpha)) checkKernel(SPACE, K.denseBackward, dw, db, dx, dz, x, w, m, inp, out, scale, prevAct, alpha);
    const X = x.data, W = w.data, DZ = dz.data, DW = dw.data, DB = db.data;
    for (let p = 0; p < inp; p++) {
      for (let j = 0; j < out; j++) {
        let s = 0;
        for (let i = 0; i < m; i++) s += X[i * inp + p] * DZ[i * out + j];
        DW[p * out + j] = scale * s;
      }
    }
    for (let j = 0; j < out; j++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += DZ[i * out + j];
      DB[j] = scale * s;
    }
    if (dx === null) return;
    const DX = dx.data;
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < inp; p++) {
        let s = 0;
        for (let j = 0; j < out; j++) s += DZ[i * out + j] * W[p * out + j];
        DX[i * inp + p] = s * derivative(X[i * inp + p], prevAct, alpha);
      }
    }
  }

  lossDelta(dz: Buf, a: Buf, y: Buf, m: number, n: number, loss: LossCode, act: ActCode,
    alpha: number, delta: number, weights: Buf | null): number {
    if (!FAST.lossDelta(SPACE, dz, a, y, m, n, loss, act, alpha, delta, weights)) checkKernel(SPACE, K.lossDelta, dz, a, y, m, n, loss, act, alpha, delta, weights);
    const A = a.data, Y = y.data, DZ = dz.data, W = weights === null ? null : weights.data;
    // the float32 values the other backends compute with
    const d = Math.fround(delta);
    let total = 0;
    for (let i = 0; i < m; i++) {
      const w = W === null ? 1 : W[i];
      let row = 0;
      for (let idx = i * n; idx < (i + 1) * n; idx++) {
        const av = A[idx], yv = Y[idx], e = av - yv;
        let g: number; // dL/dz of this output, unweighted
        if (loss === LOSS.mse) {
          row += e * e / n;
          g = (2 / n) * e * derivative(av, act, alpha);
        } else if (loss === LOSS.binaryCrossEntropy) {
          const p = clampProb(av);
          row -= (yv * Math.log(p) + (1 - yv) * Math.log(1 - p)) / n;
          g = e / n;
        } else if (loss === LOSS.huber) {
          const ae = Math.abs(e);
          row += (ae <= d ? 0.5 * e * e : d * (ae - 0.5 * d)) / n;
          g = Math.min(Math.max(e, -d), d) / n * derivative(av, act, alpha);
        } else if (loss === LOSS.meanAbsoluteError) {
          row += Math.abs(e) / n;
          g = Math.sign(e) / n * derivative(av, act, alpha);
        } else {
          if (yv !== 0) row -= yv * Math.log(clampProb(av));
          g = e;
        }
        DZ[idx] = w * g;
      }
      total += w * row;
    }
    return total;
  }

  sumSquares(g: Buf, n: number): number {
    if (!FAST.sumSquares(SPACE, g, n)) checkKernel(SPACE, K.sumSquares, g, n);
    const G = g.data;
    let s = 0;
    for (let i = 0; i < n; i++) s += G[i] * G[i];
    return s;
  }

  sgdStep(p: Buf, g: Buf, n: number, lr: number, gradScale: number, weightDecay: number,
    decayCount: number): void {
    if (!FAST.sgdStep(SPACE, p, g, n, lr, gradScale, weightDecay, decayCount)) checkKernel(SPACE, K.sgdStep, p, g, n, lr, gradScale, weightDecay, decayCount);
    const P = p.data, G = g.data;
    for (let i = 0; i < n; i++) {
      const gi = gradScale * G[i] + (i < decayCount ? weightDecay * P[i] : 0);
      P[i] -= lr * gi;
    }
  }

  momentumStep(p: Buf, g: Buf, v: Buf, n: number, lr: number, gradScale: number, mu: number,
    nesterov: boolean, weightDecay: number, decayCount: number): void {
    if (!FAST.momentumStep(SPACE, p, g, v, n, lr, gradScale, mu, nesterov, weightDecay, decayCount)) checkKernel(SPACE, K.momentumStep, p, g, v, n, lr, gradScale, mu, nesterov, weightDecay, decayCount);
    const P = p.data, G = g.data, V = v.data;
    for (let i = 0; i < n; i++) {
      const gi = gradScale * G[i] + (i < decayCount ? weightDecay * P[i] : 0);
      V[i] = mu * V[i] + gi;
      if (Math.abs(V[i]) < F32_MIN_NORMAL) V[i] = 0;
      P[i] -= lr * (nesterov ? gi + mu * V[i] : V[i]);
    }
  }

  adamStep(p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, gradScale: number,
    beta1: number, beta2: number, eps: number, bc1: number, bc2: number,
    weightDecay: number, decoupled: boolean, decayCount: number): void {
    if (!FAST.adamStep(SPACE, p, g, m, v, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled, decayCount)) checkKernel(SPACE, K.adamStep, p, g, m, v, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled, decayCount);
    const P = p.data, G = g.data, M = m.data, V = v.data;
    for (let i = 0; i < n; i++) {
      const decays = i < decayCount;
      if (decoupled && decays) P[i] -= lr * weightDecay * P[i];
      const gi = gradScale * G[i] + (!decoupled && decays ? weightDecay * P[i] : 0);
      M[i] = beta1 * M[i] + (1 - beta1) * gi;
      V[i] = beta2 * V[i] + (1 - beta2) * gi * gi;
      if (Math.abs(M[i]) < F32_MIN_NORMAL) M[i] = 0;
      if (Math.abs(V[i]) < F32_MIN_NORMAL) V[i] = 0;
      P[i] -= (lr * (M[i] / bc1)) / (Math.sqrt(V[i] / bc2) + eps);
    }
  }

  // ---- layers beyond dense -----------------------------------------------------------------

  dropoutForward(y: Buf, x: Buf, n: number, rate: number, seed: number, step: number, layer: number): void {
    if (!FAST.dropoutForward(SPACE, y, x, n, rate, seed, step, layer)) checkKernel(SPACE, K.dropoutForward, y, x, n, rate, seed, step, layer);
    const X = x.data, Y = y.data;
    const [k1, k2] = dropoutKey(seed, step, layer), thr = dropoutThreshold(rate), s = dropoutScale(rate);
    for (let i = 0; i < n; i++) Y[i] = (dropoutHash(i, k1, k2) >>> 8) >= thr ? X[i] * s : 0;
  }

  dropoutBackward(dx: Buf, dy: Buf, x: Buf, n: number, rate: number, seed: number, step: number, layer: number,
    prevAct: ActCode, alpha: number): void {
    if (!FAST.dropoutBackward(SPACE, dx, dy, x, n, rate, seed, step, layer, prevAct, alpha)) checkKernel(SPACE, K.dropoutBackward, dx, dy, x, n, rate, seed, step, layer, prevAct, alpha);
    const X = x.data, DY = dy.data, DX = dx.data;
    const [k1, k2] = dropoutKey(seed, step, layer), thr = dropoutThreshold(rate), s = dropoutScale(rate);
    for (let i = 0; i < n; i++) {
      DX[i] = (dropoutHash(i, k1, k2) >>> 8) >= thr ? Math.fround(DY[i] * s) * derivativeF32(X[i], prevAct, alpha) : 0;
    }
  }

  batchNormForward(y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, update: boolean, momentum: number, eps: number, act: ActCode, alpha: number): void {
    if (!FAST.batchNormForward(SPACE, y, x, gamma, beta, runMean, runVar, mean, invStd, m, n, update, momentum, eps, act, alpha)) {
      checkKernel(SPACE, K.batchNormForward, y, x, gamma, beta, runMean, runVar, mean, invStd, m, n, update, momentum, eps, act, alpha);
    }
    if (m === 0) return;
    const X = x.data, Y = y.data, G = gamma.data, B = beta.data, RM = runMean.data, RV = runVar.data;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += X[i * n + j];
      const mu = s / m;
      let v = 0;
      for (let i = 0; i < m; i++) v += (X[i * n + j] - mu) * (X[i * n + j] - mu);
      const variance = v / m, r = 1 / Math.sqrt(variance + Math.fround(eps));
      mean.data[j] = mu;
      invStd.data[j] = r;
      for (let i = 0; i < m; i++) Y[i * n + j] = rowAct(G[j] * (X[i * n + j] - mu) * r + B[j], act, alpha);
      if (update) {
        RM[j] = momentum * RM[j] + (1 - momentum) * mu;
        RV[j] = momentum * RV[j] + (1 - momentum) * variance;
      }
    }
  }

  batchNormInference(y: Buf, x: Buf, gamma: Buf, beta: Buf, runMean: Buf, runVar: Buf, m: number, n: number,
    eps: number, act: ActCode, alpha: number): void {
    if (!FAST.batchNormInference(SPACE, y, x, gamma, beta, runMean, runVar, m, n, eps, act, alpha)) {
      checkKernel(SPACE, K.batchNormInference, y, x, gamma, beta, runMean, runVar, m, n, eps, act, alpha);
    }
    const X = x.data, Y = y.data, G = gamma.data, B = beta.data, RM = runMean.data, RV = runVar.data;
    for (let j = 0; j < n; j++) {
      const r = 1 / Math.sqrt(RV[j] + Math.fround(eps));
      for (let i = 0; i < m; i++) Y[i * n + j] = rowAct(G[j] * (X[i * n + j] - RM[j]) * r + B[j], act, alpha);
    }
  }

  batchNormBackward(dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, scale: number, prevAct: ActCode, alpha: number): void {
    if (!FAST.batchNormBackward(SPACE, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha)) {
      checkKernel(SPACE, K.batchNormBackward, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha);
    }
    const X = x.data, DY = dy.data, G = gamma.data, MU = mean.data, R = invStd.data;
    for (let j = 0; j < n; j++) {
      let S = 0, T = 0;
      for (let i = 0; i < m; i++) {
        S += DY[i * n + j];
        T += DY[i * n + j] * (X[i * n + j] - MU[j]) * R[j];
      }
      dgamma.data[j] = scale * T;
      dbeta.data[j] = scale * S;
      if (dx === null) continue;
      const DX = dx.data, k = G[j] * R[j];
      for (let i = 0; i < m; i++) {
        const xh = (X[i * n + j] - MU[j]) * R[j];
        DX[i * n + j] = k * (DY[i * n + j] - S / m - xh * T / m) * derivative(X[i * n + j], prevAct, alpha);
      }
    }
  }

  layerNormForward(y: Buf, x: Buf, gamma: Buf, beta: Buf, mean: Buf, invStd: Buf, m: number, n: number,
    eps: number, act: ActCode, alpha: number): void {
    if (!FAST.layerNormForward(SPACE, y, x, gamma, beta, mean, invStd, m, n, eps, act, alpha)) {
      checkKernel(SPACE, K.layerNormForward, y, x, gamma, beta, mean, invStd, m, n, eps, act, alpha);
    }
    if (n === 0) return;
    const X = x.data, Y = y.data, G = gamma.data, B = beta.data;
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += X[i * n + j];
      const mu = s / n;
      let v = 0;
      for (let j = 0; j < n; j++) v += (X[i * n + j] - mu) * (X[i * n + j] - mu);
      const r = 1 / Math.sqrt(v / n + Math.fround(eps));
      mean.data[i] = mu;
      invStd.data[i] = r;
      for (let j = 0; j < n; j++) Y[i * n + j] = rowAct(G[j] * (X[i * n + j] - mu) * r + B[j], act, alpha);
    }
  }

  layerNormBackward(dx: Buf | null, dgamma: Buf, dbeta: Buf, dy: Buf, x: Buf, gamma: Buf, mean: Buf, invStd: Buf,
    m: number, n: number, scale: number, prevAct: ActCode, alpha: number): void {
    if (!FAST.layerNormBackward(SPACE, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha)) {
      checkKernel(SPACE, K.layerNormBackward, dx, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale, prevAct, alpha);
    }
    const X = x.data, DY = dy.data, G = gamma.data, MU = mean.data, R = invStd.data;
    for (let j = 0; j < n; j++) {
      let S = 0, T = 0;
      for (let i = 0; i < m; i++) {
        S += DY[i * n + j];
        T += DY[i * n + j] * (X[i * n + j] - MU[i]) * R[i];
      }
      dgamma.data[j] = scale * T;
      dbeta.data[j] = scale * S;
    }
    if (dx === null || n === 0) return;
    const DX = dx.data;
    for (let i = 0; i < m; i++) {
      let a = 0, b = 0;
      for (let j = 0; j < n; j++) {
        const g = DY[i * n + j] * G[j];
        a += g;
        b += g * (X[i * n + j] - MU[i]) * R[i];
      }
      a /= n;
      b /= n;
      for (let j = 0; j < n; j++) {
        const xh = (X[i * n + j] - MU[i]) * R[i];
        DX[i * n + j] = R[i] * (DY[i * n + j] * G[j] - a - xh * b) * derivative(X[i * n + j], prevAct, alpha);
      }
    }
  }
}
