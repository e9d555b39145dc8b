// Native sgemm GFLOP/s, checked against a float64 reference before timing, optionally side by
// side with OpenBLAS (bench/peers/openblas.py, at its best: without OPENBLAS_CORETYPE /
// OPENBLAS_L2_SIZE in its process) run in the same invocation.
//   node bench/sgemm-native.mjs [threads] [--isa avx2-fma] [--vs-openblas] [--rounds 3] [--shapes]
// Prints "sgemm n=N threads=T GFLOP/s" lines like the OpenBLAS tool, then ratios (median of rounds).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const addon = require('node-gyp-build')(root);

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const threads = Number(argv.find((a) => /^\d+$/.test(a)) ?? 1);
const isa = opt('--isa', '');
const rounds = Number(opt('--rounds', 3));
const k = addon.create(isa, threads);
const SIZES = [64, 128, 256, 512, 784, 1024, 2048];

function rand(n, seed) {
  const a = addon.alloc(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32;
  }
  return a;
}

// Checks 64 sampled entries of c against a float64 dot product.
function check(ta, tb, m, n, kk, a, b, c, what) {
  for (let s = 0; s < 64; s++) {
    const i = (s * 7919) % m, j = (s * 104729) % n;
    let ref = 0;
    for (let p = 0; p < kk; p++) ref += a[ta ? p * m + i : i * kk + p] * b[tb ? j * kk + p : p * n + j];
    if (Math.abs(c[i * n + j] - ref) > 1e-5 * Math.sqrt(kk) * Math.max(1, Math.abs(ref))) {
      throw new Error(`${what}: c[${i},${j}] = ${c[i * n + j]}, reference ${ref}`);
    }
  }
}

function gflops(ta, tb, m, n, kk) {
  const a = rand(m * kk, 1), b = rand(kk * n, 2), c = addon.alloc(m * n);
  k.gemm(ta, tb, m, n, kk, 1, a, b, 0, c);
  check(ta, tb, m, n, kk, a, b, c, `${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${m}x${n}x${kk}`);
  const flop = 2 * m * n * kk;
  const reps = Math.max(3, Math.floor(3e9 / flop));
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) k.gemm(ta, tb, m, n, kk, 1, a, b, 0, c);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9 / reps);
  }
  return flop / best / 1e9;
}

function openblas() {
  const script = join(root, 'bench', 'peers', 'openblas.py');
  const shapes = SIZES.map((n) => ({ m: n, n, k: n, transA: false, transB: false, label: String(n) }));
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE; // the peer's own process only: its best kernel
  delete env.OPENBLAS_L2_SIZE;
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const out = execFileSync(python, [script, JSON.stringify({ shapes, reps: 3, target: 0.2 })], { encoding: 'utf8', env });
  const r = {};
  for (const line of out.split('\n').filter(Boolean)) {
    const l = JSON.parse(line);
    if (l.info) console.log(`openblas ${l.openblas} kernel ${l.kernel}`);
    else if (l.gflops) r[l.shape] = l.gflops;
    else if (l.error) console.log(`openblas n=${l.shape}: ${l.error}`);
  }
  return r;
}

const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const ours = Object.fromEntries(SIZES.map((n) => [n, []]));
const theirs = Object.fromEntries(SIZES.map((n) => [n, []]));
for (let r = 0; r < rounds; r++) {
  if (flag('--vs-openblas')) {
    const ob = openblas();
    for (const n of SIZES) if (ob?.[n]) theirs[n].push(ob[n]);
  }
  for (const n of SIZES) {
    const g = gflops(false, false, n, n, n);
    ours[n].push(g);
    console.log(`native ${k.isa} sgemm n=${n} threads=${threads} ${g.toFixed(1)} GFLOP/s`);
  }
}
console.log(`\nmedians of ${rounds} rounds, ${k.isa}, ${threads} thread(s):`);
for (const n of SIZES) {
  const o = median(ours[n]);
  const t = theirs[n].length ? median(theirs[n]) : null;
  console.log(`n=${String(n).padStart(4)}  native ${o.toFixed(1).padStart(6)} GFLOP/s` +
    (t ? `   openblas ${t.toFixed(1).padStart(6)}   ratio ${(o / t).toFixed(2)}` : ''));
}

if (flag('--shapes')) {
  // The transpose cases a training step runs, at the benchmark's MLP shapes (batch m).
  console.log('\nMLP shapes (forward X·W NN, dW = Xᵀ·dZ TN, dX = dZ·Wᵀ NT):');
  for (const [m, inp, out] of [[64, 784, 128], [256, 784, 512], [256, 512, 512], [128, 784, 256], [64, 128, 10]]) {
    const nn = gflops(false, false, m, out, inp), tn = gflops(true, false, inp, out, m), nt = gflops(false, true, m, inp, out);
    console.log(`m=${m} ${inp}->${out}: NN ${nn.toFixed(1)}  TN ${tn.toFixed(1)}  NT ${nt.toFixed(1)} GFLOP/s`);
  }
}
