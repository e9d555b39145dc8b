// onnxruntime-web (its wasm build, in Node) as an inference peer, in its own process: loaded beside
// onnxruntime-node, the two share onnxruntime-common's backend registry and one would run the
// other's sessions. Started by bench/infer.ts with one JSON argument:
//   { model: "<path of the .onnx file>", threads: N, inputs: 784, rows: [1, 256], check: [...] }
// prints {"info": ...}, {"check": outputs of the check rows} and {"ready": true}, then answers one
// JSON request per stdin line, timing itself (no pipe round trip in the figures):
//   {"op": "latency", "calls": n}         → {"us": [per-call microseconds]}   (one row per call)
//   {"op": "time", "rows": r, "units": u} → {"seconds": s}                    (u calls of r rows)
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const cfg = JSON.parse(process.argv[2]);
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
let ort;
try {
  ort = await import('onnxruntime-web');
} catch (e) {
  say({ error: `onnxruntime-web cannot be imported (npm install --save-dev onnxruntime-web): ${String(e.message).split('\n')[0]}` });
  process.exit(1);
}
ort.env.wasm.numThreads = cfg.threads;
ort.env.logLevel = 'error';
const session = await ort.InferenceSession.create(readFileSync(cfg.model), {
  executionProviders: ['wasm'], graphOptimizationLevel: 'all', executionMode: 'sequential',
});
const input = session.inputNames[0], output = session.outputNames[0];
const feeds = {};
for (const rows of cfg.rows) {
  const x = new Float32Array(rows * cfg.inputs);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 1000) / 1000;
  feeds[rows] = x;
}
const run = async (x, rows) => {
  const out = await session.run({ [input]: new ort.Tensor('float32', x, [rows, cfg.inputs]) });
  return out[output].data;
};
say({ info: true, version: ort.env.versions?.web ?? 'unknown', threads: ort.env.wasm.numThreads });
const checkRows = cfg.check.length / cfg.inputs;
say({ check: Array.from(await run(Float32Array.from(cfg.check), checkRows)) });
for (const rows of cfg.rows) for (let i = 0; i < 20; i++) await run(feeds[rows], rows); // warm
say({ ready: true });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const q = JSON.parse(line);
  try {
    if (q.op === 'latency') {
      const us = [];
      for (let i = 0; i < q.calls; i++) {
        const t0 = performance.now();
        await run(feeds[1], 1);
        us.push((performance.now() - t0) * 1000);
      }
      say({ us });
    } else if (q.op === 'time') {
      const t0 = performance.now();
      for (let i = 0; i < q.units; i++) await run(feeds[q.rows], q.rows);
      say({ seconds: (performance.now() - t0) / 1000 });
    } else {
      say({ error: `unknown op ${q.op}` });
    }
  } catch (e) {
    say({ error: String(e && e.message || e) });
  }
}
await session.release();
process.exit(0);
