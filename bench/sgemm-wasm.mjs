// GEMM GFLOP/s of the wasm backend, single thread, both builds (plain SIMD and relaxed SIMD), for
// square n = 64 … 1024 (2048 with --big) and the benchmark's MLP shapes in the transpose cases a
// training step uses. Every case is checked against the js reference before it is timed.
// Run after `npm run compile`: node bench/sgemm-wasm.mjs [--big] [--json out.json]
import v8 from 'node:v8';
import { writeFileSync } from 'node:fs';

// Node 20 has relaxed SIMD behind a flag; it must be set before any module compiles
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const { loadWasmBackend } = await import('../dist/web.js');

const args = process.argv.slice(2);
const big = args.includes('--big');
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : null;

function rand(n, seed) {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

// Reference value of c[i][j] in float64, and a bound on float32 rounding: 2·k·u·Σ|a·b|
function refEntry(ta, tb, m, n, k, A, B, i, j) {
  let s = 0, sa = 0;
  for (let p = 0; p < k; p++) {
    const x = A[ta ? p * m + i : i * k + p] * B[tb ? j * k + p : p * n + j];
    s += x;
    sa += Math.abs(x);
  }
  return [s, 2 * (k + 2) * 2 ** -24 * sa + 1e-30];
}

function check(b, ta, tb, m, n, k, A, B, C) {
  // every entry up to 256², else 4096 entries spread over c
  const total = m * n;
  const step = total <= 65536 ? 1 : Math.floor(total / 4096);
  for (let idx = 0; idx < total; idx += step) {
    const i = Math.floor(idx / n), j = idx % n;
    const [want, bound] = refEntry(ta, tb, m, n, k, A, B, i, j);
    if (!(Math.abs(C[idx] - want) <= bound)) {
      throw new Error(`${b.isa} gemm ${m}x${n}x${k} ta=${ta} tb=${tb}: c[${i},${j}] = ${C[idx]}, want ${want}`);
    }
  }
}

function time(fn, flops) {
  fn();
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) fn();
    const dt = performance.now() - t0;
    if (dt > 50) break;
    reps *= 2;
  }
  const rates = [];
  for (let run = 0; run < 5; run++) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) fn();
    rates.push((flops * reps) / ((performance.now() - t0) / 1000) / 1e9);
  }
  rates.sort((x, y) => x - y);
  return rates[2];
}

const square = [64, 128, 256, 512, 1024, ...(big ? [2048] : [])].map((n) => ({ name: `square ${n}`, ta: false, tb: false, m: n, n, k: n }));
const mlp = [
  { name: 'mnist fwd  X·W1  64x784 · 784x128', ta: false, tb: false, m: 64, n: 128, k: 784 },
  { name: 'mnist dW1  Xᵀ·dZ 784x64 · 64x128', ta: true, tb: false, m: 784, n: 128, k: 64 },
  { name: 'mnist dX2  dZ·Wᵀ 64x10 · 10x128', ta: false, tb: true, m: 64, n: 128, k: 10 },
  { name: 'wide fwd   X·W2  256x512 · 512x512', ta: false, tb: false, m: 256, n: 512, k: 512 },
  { name: 'wide dW2   Xᵀ·dZ 512x256 · 256x512', ta: true, tb: false, m: 512, n: 512, k: 256 },
  { name: 'wide dX2   dZ·Wᵀ 256x512 · 512x512', ta: false, tb: true, m: 256, n: 512, k: 512 },
];

const backends = [await loadWasmBackend(undefined, { relaxed: false }), await loadWasmBackend(undefined, { relaxed: true })];
const results = [];
console.log(`wasm sgemm, 1 thread, GFLOP/s (median of 5)\n${'case'.padEnd(40)}${backends.map((b) => b.isa.padStart(20)).join('')}`);
for (const c of [...square, ...mlp]) {
  const A = rand(c.m * c.k, 1), B = rand(c.k * c.n, 2);
  const row = { ...c, gflops: {} };
  for (const b of backends) {
    const a = b.alloc(A.length), bb = b.alloc(B.length), cc = b.alloc(c.m * c.n);
    a.data.set(A); bb.data.set(B);
    cc.data.fill(NaN);
    b.gemm(c.ta, c.tb, c.m, c.n, c.k, 1, a, bb, 0, cc);
    check(b, c.ta, c.tb, c.m, c.n, c.k, A, B, cc.data);
    row.gflops[b.isa] = time(() => b.gemm(c.ta, c.tb, c.m, c.n, c.k, 1, a, bb, 0, cc), 2 * c.m * c.n * c.k);
  }
  results.push(row);
  console.log(`${c.name.padEnd(40)}${backends.map((b) => row.gflops[b.isa].toFixed(1).padStart(20)).join('')}`);
}
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ bench: 'sgemm-wasm', node: process.version, results }, null, 2));
