// Runs ONNX files with onnxruntime-web (its wasm build, in Node) and prints the outputs as one JSON
// line. In its own process: loaded beside onnxruntime-node, the two share onnxruntime-common's
// backend registry and one would run the other's sessions.
//
//   node test/onnx/ort-web-run.mjs JOB.json    JOB: [{ file, input: { data, shape } }, …]
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';

ort.env.wasm.numThreads = 1;
const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = [];
for (const c of job) {
  const session = await ort.InferenceSession.create(readFileSync(c.file), { executionProviders: ['wasm'] });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', Float32Array.from(c.input.data), c.input.shape) };
  const out = (await session.run(feeds))[session.outputNames[0]];
  results.push({ file: c.file, shape: out.dims, data: Array.from(out.data) });
  await session.release();
}
process.stdout.write(`${JSON.stringify(results)}\n`);
