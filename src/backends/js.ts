// The reference backend: plain loops, written to be obviously correct. Every other backend is
// tested against it. Products are accumulated in float64 and stored as float32, so that it is a
// good oracle for the float32 SIMD kernels. Every call is checked against the kernel contract
// (contract.ts) first, as on the other backends, with the same errors.
import { F32_MIN_NORMAL } from './abi.js';
import { ACT, EPS_PROB, LOSS, type ActCode, type Backend, type Buf, type LossCode } from './backend.js';
import { FAST, RESOLVED, checkKernel, isBufLike, type BufferSpace } from './contract.js';

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
}
