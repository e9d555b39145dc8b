// tiny-xor samples/s on one backend, fused steps (one call per step) against kernel by kernel:
// a Model fit on 8192 random rows, batch 4, 20 epochs, each configuration RUNS times (default 3),
// alternating; medians (the machine is shared and noisy) and bests.
// Run: [RUNS=n] npx vite-node bench/tiny-step.ts [native|wasm|js] [threads]
import { loaders, Model, Random, type Backend } from '../src/index.js';
import { modelSpec, TRAIN_WORKLOADS } from './workloads.js';

const name = (process.argv[2] ?? 'native') as 'native' | 'wasm' | 'js';
const threads = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const backend: Backend = await loaders[name]!({ backend: name });
if (threads !== undefined) backend.setThreads(threads);

const rows = 8192, epochs = 20, batchSize = 4, r = new Random(7);
const x = { data: Float32Array.from({ length: rows * 2 }, () => r.uniform()), shape: [rows, 2] as [number, number] };
const y = { data: Float32Array.from({ length: rows }, () => r.int(2)), shape: [rows, 1] as [number, number] };

async function once(fused: boolean): Promise<number> {
  const model = new Model(modelSpec(TRAIN_WORKLOADS['tiny-xor']), backend);
  model.fusedSteps = fused;
  await model.fit(x, y, { epochs: 3, batchSize }); // warm-up: plans, compiled step, JIT
  const t0 = performance.now();
  await model.fit(x, y, { epochs, batchSize });
  return (rows * epochs) / ((performance.now() - t0) / 1000);
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
const res: Record<string, number[]> = { kernels: [], fused: [] };
const runs = Number(process.env.RUNS ?? 3);
for (let i = 0; i < runs; i++) {
  res.kernels.push(await once(false));
  res.fused.push(await once(true));
}
const fmt = (v: number) => `${(v / 1000).toFixed(0)}k`;
const us = (v: number) => `${((batchSize / v) * 1e6).toFixed(2)} us/step`;
console.log(`tiny-xor on ${name} (${backend.isa}, ${backend.threads} threads), samples/s, runs then median:`);
for (const k of ['kernels', 'fused']) console.log(`  ${k.padEnd(8)} ${res[k].map(fmt).join(' ')}  median ${fmt(median(res[k]))} (${us(median(res[k]))}), best ${fmt(Math.max(...res[k]))}`);
console.log(`  fused/kernels: ${(median(res.fused) / median(res.kernels)).toFixed(2)}x`);
