// The inference workload (`--workload infer`): one model per shape (mnist-mlp 784-128-10, wide-mlp
// 784-512-512-10), exported with toOnnx, served by deltaprop's predict (native, wasm) and by the
// peers: onnxruntime-node (in this process), onnxruntime-web (its wasm, in its own process: loaded
// beside onnxruntime-node, the two share onnxruntime-common's backend registry) and tfjs-wasm, at
// an explicit thread count. Every system's outputs are checked against the js reference first.
// Batch-1 latency (p50, p99) and batch-256 throughput are measured in interleaved rounds (each
// round measures every system once, in a rotating order), so that a neighbour that takes a core
// for a few seconds slows every system, not whichever ran then. Cold start: a fresh workerd
// (miniflare) per sample, deltaprop/infer and onnxruntime-web in the same kind of worker.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { gzipSync } from 'node:zlib';
import { Model, modelToBytes, Random, toOnnx, type Backend, type DenseSpec } from '../src/index.js';
import { Predictor } from '../src/infer/node.js';
import { useTf } from './systems/js-peers.js';
import { modelSpec, SEED, TRAIN_WORKLOADS, type TrainWorkloadName } from './workloads.js';

export const INFER_SHAPES: TrainWorkloadName[] = ['mnist-mlp', 'wide-mlp'];
/** Rows of a throughput call. */
export const INFER_BATCH = 256;
/** Largest |output − js reference| a system may show on the check rows. */
export const INFER_TOLERANCE = 1e-5;

/** One system serving one model: a batch-1 latency sample and a timed run of batch-256 calls. */
export interface InferSystem {
  system: string;
  threads: number;
  /** deltaprop's: the ISA of the backend it runs on. */
  isa?: string;
  note?: string;
  /** Outputs for the check rows (rows × inputs), row-major. */
  check(rows: Float32Array, count: number): Promise<Float32Array>;
  /** Microseconds of each of `calls` batch-1 predictions (one row each). */
  latency(calls: number): Promise<number[]>;
  /** Seconds for `units` predictions of INFER_BATCH rows. */
  time(units: number): Promise<number>;
  close(): Promise<void> | void;
}

/** The input rows every system predicts on: the same deterministic values in each process. */
export function inferRows(rows: number, inputs: number): Float32Array {
  const x = new Float32Array(rows * inputs);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 1000) / 1000;
  return x;
}

/** The shape's model: its seeded weights and small random biases (so that a bias that is dropped shows). */
export function inferModel(name: TrainWorkloadName, backend: Backend): Model {
  const w = TRAIN_WORKLOADS[name];
  const model = new Model(modelSpec(w), backend);
  const rng = new Random(SEED + 1);
  model.setWeights(model.getWeights().map((l) => ({ w: l.w, b: l.b.map(() => 0.1 * rng.normal()) })));
  return model;
}

/** Times `calls` calls one by one, in microseconds. */
async function perCall(calls: number, once: () => unknown): Promise<number[]> {
  const us: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await once();
    us.push((performance.now() - t0) * 1000);
  }
  return us;
}

async function timed(units: number, once: () => unknown): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < units; i++) await once();
  return (performance.now() - t0) / 1000;
}

/** What a deltaprop row runs on, where the backend name and ISA do not say it: the wasm threads build. */
function backendNote(backend: Backend): string | undefined {
  return backend.name === 'wasm' && backend.threads > 1 ? `wasm threads build, ${backend.threads} threads (shared memory, ${backend.threads - 1} worker${backend.threads > 2 ? 's' : ''} beside the calling thread)` : undefined;
}

/** deltaprop's public predict on a backend (a Model holding the shape's weights; it packs them once where the backend can). */
export function deltapropPredictor(model: Model, backend: Backend, label = `deltaprop-${backend.name}`): InferSystem {
  const m = new Model(model.spec, backend);
  m.setWeights(model.getWeights());
  const inputs = model.inputs;
  const one = { data: inferRows(1, inputs), shape: [1, inputs] as [number, number] };
  const many = { data: inferRows(INFER_BATCH, inputs), shape: [INFER_BATCH, inputs] as [number, number] };
  const threads = backend.threads;
  const note = backendNote(backend);
  return {
    system: label,
    threads,
    isa: backend.isa,
    ...(note ? { note: `Model.predict, ${note}` } : {}),
    async check(rows, count) {
      return m.predict({ data: rows, shape: [count, inputs] }).data;
    },
    async latency(calls) {
      backend.setThreads(threads);
      return perCall(calls, () => m.predict(one));
    },
    async time(units) {
      backend.setThreads(threads);
      return timed(units, () => m.predict(many, INFER_BATCH));
    },
    close() {},
  };
}

/** deltaprop/infer's Predictor on a backend: the serving path (no training code, weights packed once where the backend can). */
export function deltapropInferPredictor(model: Model, backend: Backend): InferSystem {
  const p = new Predictor(model.spec, model.getWeights(), backend);
  const inputs = model.inputs;
  const one = { data: inferRows(1, inputs), shape: [1, inputs] as [number, number] };
  const many = { data: inferRows(INFER_BATCH, inputs), shape: [INFER_BATCH, inputs] as [number, number] };
  const threads = backend.threads;
  return {
    system: `deltaprop/infer-${backend.name}`,
    threads,
    isa: backend.isa,
    note: `deltaprop/infer Predictor${backend.packWeights ? ', weights packed once' : ''}${backendNote(backend) ? `, ${backendNote(backend)}` : ''}`,
    async check(rows, count) {
      return p.predict({ data: rows, shape: [count, inputs] }).data;
    },
    async latency(calls) {
      backend.setThreads(threads);
      return perCall(calls, () => p.predict(one));
    },
    async time(units) {
      backend.setThreads(threads);
      return timed(units, () => p.predict(many, INFER_BATCH));
    },
    close() {},
  };
}

// A module name in a variable keeps the bundler from inlining the peer: it stays a run-time import.
async function importPeer(name: string): Promise<unknown> {
  try {
    return await import(name);
  } catch (e) {
    throw new Error(`${name} cannot be imported (npm install --save-dev ${name}): ${(e as Error).message.split('\n')[0]}`);
  }
}

/** onnxruntime-node in this process, with `threads` intra-op threads. */
export async function ortNodePredictor(onnx: Uint8Array, inputs: number, threads: number): Promise<InferSystem> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const ort: any = await importPeer('onnxruntime-node');
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const input = session.inputNames[0], output = session.outputNames[0];
  const run = async (x: Float32Array, rows: number): Promise<Float32Array> =>
    (await session.run({ [input]: new ort.Tensor('float32', x, [rows, inputs]) }))[output].data as Float32Array;
  const one = inferRows(1, inputs), many = inferRows(INFER_BATCH, inputs);
  for (let i = 0; i < 20; i++) await run(one, 1);
  return {
    system: 'onnxruntime-node',
    threads,
    note: `onnxruntime-node ${String(ort.env?.versions?.node ?? '')} (cpu, ${threads} intra-op thread${threads > 1 ? 's' : ''})`.replace(' ()', ''),
    check: (rows, count) => run(rows, count),
    latency: (calls) => perCall(calls, () => run(one, 1)),
    time: (units) => timed(units, () => run(many, INFER_BATCH)),
    close: () => session.release(),
  };
}

/** onnxruntime-web's wasm in a child Node process (bench/peers/ort-web.mjs), `threads` wasm threads. */
export async function ortWebPredictor(peerScript: string, onnxFile: string, inputs: number, threads: number, checkRows: Float32Array): Promise<InferSystem> {
  const child = spawn(process.execPath, [peerScript, JSON.stringify({ model: onnxFile, threads, inputs, rows: [1, INFER_BATCH], check: Array.from(checkRows) })],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (err += d));
  const waiting: ((l: Record<string, unknown>) => void)[] = [];
  const queued: Record<string, unknown>[] = [];
  let dead: Error | null = null;
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.trim()) return;
    let l: Record<string, unknown>;
    try {
      l = JSON.parse(line);
    } catch {
      err += `unparsed output: ${line}\n`;
      return;
    }
    const w = waiting.shift();
    if (w) w(l);
    else queued.push(l);
  });
  const closed = new Promise<never>((_, reject) => child.on('close', (code, signal) => {
    dead = new Error(`onnxruntime-web peer ${signal ? `killed by ${signal}` : `exited ${code}`}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
    reject(dead);
  }));
  closed.catch(() => {});
  const next = (ms = 300_000): Promise<Record<string, unknown>> => {
    if (queued.length) return Promise.resolve(queued.shift()!);
    if (dead) return Promise.reject(dead);
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      new Promise<Record<string, unknown>>((resolve) => waiting.push(resolve)),
      closed,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error('onnxruntime-web peer: no answer in time'));
        }, ms);
      }),
    ]).finally(() => clearTimeout(timer));
  };
  const expect = async (key: string): Promise<Record<string, unknown>> => {
    const l = await next();
    if (l.error) throw new Error(`onnxruntime-web: ${String(l.error)}`);
    if (!(key in l)) throw new Error(`onnxruntime-web peer: expected '${key}', got ${JSON.stringify(l).slice(0, 200)}`);
    return l;
  };
  try {
    const info = await expect('info');
    const check = Float32Array.from((await expect('check')).check as number[]);
    await expect('ready');
    const ask = async (q: unknown, key: string): Promise<Record<string, unknown>> => {
      child.stdin.write(`${JSON.stringify(q)}\n`);
      return expect(key);
    };
    return {
      system: 'onnxruntime-web',
      threads,
      note: `onnxruntime-web ${String(info.version)} (wasm in Node, its own process, numThreads ${String(info.threads)})`,
      check: async () => check,
      latency: async (calls) => (await ask({ op: 'latency', calls }, 'us')).us as number[],
      time: async (units) => (await ask({ op: 'time', rows: INFER_BATCH, units }, 'seconds')).seconds as number,
      close: () => {
        child.stdin.end();
      },
    };
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
}

/** tfjs-wasm: the same weights as tf tensors, predict = one tidy forward pass and a dataSync. */
export async function tfjsWasmPredictor(model: Model): Promise<InferSystem> {
  const tf = await useTf('wasm');
  const layers = model.getWeights().map((l, i) => ({
    W: tf.tensor2d(l.w, [(model.spec.layers[i - 1] as DenseSpec | undefined)?.units ?? model.inputs, (model.spec.layers[i] as DenseSpec).units]),
    b: tf.tensor1d(l.b), act: (model.spec.layers[i] as DenseSpec).activation,
  }));
  const inputs = model.inputs;
  const forward = (x: Float32Array, rows: number): Float32Array => tf.tidy(() => {
    let h = tf.tensor2d(x, [rows, inputs]);
    for (const { W, b, act } of layers) {
      const z = tf.add(tf.matMul(h, W), b);
      h = act === 'relu' ? tf.relu(z) : act === 'softmax' ? tf.softmax(z) : z;
    }
    return h.dataSync() as Float32Array;
  });
  const one = inferRows(1, inputs), many = inferRows(INFER_BATCH, inputs);
  for (let i = 0; i < 20; i++) forward(one, 1);
  const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? 2 : 1;
  return {
    system: 'tfjs-wasm',
    threads,
    note: `tfjs wasm (simd ${tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'on' : 'off'}, threads ${threads > 1 ? 'on' : 'off'})`,
    check: async (rows, count) => forward(rows, count),
    latency: async (calls) => {
      await tf.setBackend('wasm');
      return perCall(calls, () => forward(one, 1));
    },
    time: async (units) => timed(units, () => forward(many, INFER_BATCH)),
    close: () => layers.forEach((l) => {
      l.W.dispose();
      l.b.dispose();
    }),
  };
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export interface InferMeasure {
  p50_us: number;
  p99_us: number;
  latency_samples: number;
  rows_per_s: number;
  /** rows/s of each round */
  rounds: number[];
}

/**
 * Interleaved rounds over every system: each round takes `calls` batch-1 samples of each system,
 * then one timed run of batch-256 calls of each (sized once to about `seconds`), in an order that
 * rotates from round to round. p50 and p99 pool every round's samples; throughput is the median of
 * the rounds.
 */
export async function measureInterleaved(systems: InferSystem[], rounds: number, calls: number, seconds: number,
  log: (m: string) => void = () => {}): Promise<Map<InferSystem, InferMeasure | Error>> {
  const out = new Map<InferSystem, InferMeasure | Error>();
  const lat = new Map<InferSystem, number[]>(), thr = new Map<InferSystem, number[]>(), units = new Map<InferSystem, number>();
  for (const s of systems) {
    try {
      await s.latency(Math.min(50, calls)); // warm-up
      const one = Math.max(await s.time(1), 1e-6);
      units.set(s, Math.max(1, Math.round(seconds / one)));
      lat.set(s, []);
      thr.set(s, []);
    } catch (e) {
      out.set(s, e as Error);
    }
  }
  const live = (): InferSystem[] => systems.filter((s) => !out.has(s));
  for (let r = 0; r < rounds; r++) {
    const order = live();
    const rot = order.length ? r % order.length : 0;
    const seq = [...order.slice(rot), ...order.slice(0, rot)];
    for (const s of seq) {
      try {
        lat.get(s)!.push(...await s.latency(calls));
      } catch (e) {
        out.set(s, e as Error);
      }
    }
    for (const s of [...seq].reverse()) {
      if (out.has(s)) continue;
      try {
        const u = units.get(s)!;
        thr.get(s)!.push((u * INFER_BATCH) / Math.max(await s.time(u), 1e-9));
      } catch (e) {
        out.set(s, e as Error);
      }
    }
    log(`  round ${r + 1}/${rounds} done`);
  }
  for (const s of live()) {
    const l = [...lat.get(s)!].sort((a, b) => a - b);
    const t = thr.get(s)!;
    const ts = [...t].sort((a, b) => a - b);
    out.set(s, { p50_us: percentile(l, 50), p99_us: percentile(l, 99), latency_samples: l.length, rows_per_s: ts[ts.length >> 1], rounds: t });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cold start in workerd (miniflare)

export interface ColdStart {
  system: string;
  /** new Miniflare() until ready: workerd's start, the script's load and its .wasm modules' compile. */
  start_ms: number[];
  /** The first request: instantiate, model load, one prediction (and the request's round trip). */
  first_ms: number[];
  /** A later request of the same worker: the round trip and one prediction. */
  warm_ms: number[];
  /** Bytes of the worker: its script, its .wasm modules and the model, and the script gzipped. */
  bundle: { script: number; scriptGzip: number; wasm: number; model: number };
  /** Largest |output − reference| of its first prediction. */
  maxDiff: number;
  error?: string;
}

const DELTAPROP_WORKER = `import { loadPredictor } from 'deltaprop/infer';
import model from './model.dpm';
let predictor = null;
export default {
  async fetch(request) {
    try {
      const x = new Float32Array(await request.arrayBuffer());
      predictor ??= await loadPredictor(new Uint8Array(model), { backend: 'wasm' });
      const y = predictor.predict({ data: x, shape: [x.length / predictor.inputs, predictor.inputs] });
      return Response.json({ isa: predictor.backend.isa, y: Array.from(y.data) });
    } catch (e) {
      return new Response(String(e && e.stack || e), { status: 500 });
    }
  },
};
`;

const ORT_WEB_WORKER = `import * as ort from 'onnxruntime-web/wasm';
import model from './model.onnx';
import wasmBinary from './ort-wasm-simd-threaded.bin';
let session = null;
export default {
  async fetch(request) {
    try {
      const x = new Float32Array(await request.arrayBuffer());
      if (!session) {
        ort.env.wasm.numThreads = 1;
        ort.env.wasm.wasmBinary = wasmBinary;
        session = await ort.InferenceSession.create(new Uint8Array(model), { executionProviders: ['wasm'] });
      }
      const input = session.inputNames[0];
      const out = await session.run({ [input]: new ort.Tensor('float32', x, [x.length / INPUTS, INPUTS]) });
      return Response.json({ y: Array.from(out[session.outputNames[0]].data) });
    } catch (e) {
      return new Response(String(e && e.stack || e), { status: 500 });
    }
  },
};
`;

/**
 * Bundles a worker the way wrangler does (esbuild, the workerd condition, .wasm imports as
 * compiled modules beside the script, data files as Data modules) and starts a fresh workerd per
 * sample: start, first request, one warm request.
 */
export async function coldStart(system: 'deltaprop-wasm' | 'onnxruntime-web', root: string, files: { model: Uint8Array; inputs: number; reference: Float32Array },
  samples: number, log: (m: string) => void = () => {}): Promise<ColdStart> {
  const { build } = (await importPeer('esbuild')) as typeof import('esbuild');
  const { Miniflare } = (await importPeer('miniflare')) as typeof import('miniflare');
  const out = mkdtempSync(join(tmpdir(), `deltaprop-cold-${system}-`));
  const result: ColdStart = { system, start_ms: [], first_ms: [], warm_ms: [], bundle: { script: 0, scriptGzip: 0, wasm: 0, model: files.model.length }, maxDiff: NaN };
  try {
    const src = join(out, 'src');
    mkdirSync(src);
    const modelName = system === 'deltaprop-wasm' ? 'model.dpm' : 'model.onnx';
    writeFileSync(join(src, modelName), files.model);
    writeFileSync(join(src, 'worker.mjs'), system === 'deltaprop-wasm' ? DELTAPROP_WORKER : ORT_WEB_WORKER.replace(/INPUTS/g, String(files.inputs)));
    if (system === 'onnxruntime-web') {
      const ortDist = join(root, 'node_modules', 'onnxruntime-web', 'dist');
      const wasm = join(ortDist, 'ort-wasm-simd-threaded.wasm');
      if (!existsSync(wasm)) throw new Error(`onnxruntime-web is not installed (${wasm} is missing): npm install --save-dev onnxruntime-web`);
      copyFileSync(wasm, join(src, 'ort-wasm-simd-threaded.bin'));
    }
    const dist = join(out, 'dist');
    mkdirSync(dist);
    let wasmBytes = 0;
    await build({
      entryPoints: [join(src, 'worker.mjs')], bundle: true, minify: true, format: 'esm', platform: 'browser', outfile: join(dist, 'worker.js'),
      conditions: ['workerd', 'worker', 'browser'], logLevel: 'silent', absWorkingDir: root, nodePaths: [join(root, 'node_modules')],
      plugins: [{
        name: 'worker-modules',
        setup(b) {
          // the package itself, as its exports map resolves under the workerd condition
          b.onResolve({ filter: /^deltaprop\/infer$/ }, () => ({ path: join(root, 'dist', 'infer-workerd.js') }));
          // as wrangler: a .wasm import becomes a CompiledWasm module, data files Data modules, next to the script
          b.onResolve({ filter: /\.(wasm|dpm|onnx|bin)$/ }, (args) => {
            const from = join(args.resolveDir, args.path);
            copyFileSync(from, join(dist, basename(args.path)));
            if (args.path.endsWith('.wasm')) wasmBytes += statSync(from).size;
            return { path: `./${basename(args.path)}`, external: true };
          });
        },
      }],
    });
    const script = readFileSync(join(dist, 'worker.js'));
    result.bundle.script = script.length;
    result.bundle.scriptGzip = gzipSync(script, { level: 9 }).length;
    result.bundle.wasm = wasmBytes + (system === 'onnxruntime-web' ? statSync(join(dist, 'ort-wasm-simd-threaded.bin')).size : 0);
    const x = inferRows(1, files.inputs);
    for (let s = 0; s < samples; s++) {
      const t0 = performance.now();
      const mf = new Miniflare({
        modules: true, scriptPath: join(dist, 'worker.js'), modulesRoot: dist, compatibilityDate: '2025-01-01',
        modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }, { type: 'Data', include: ['**/*.dpm', '**/*.onnx', '**/*.bin'] }],
      });
      try {
        await mf.ready;
        const t1 = performance.now();
        const first = await mf.dispatchFetch('http://localhost/', { method: 'POST', body: x });
        const text = await first.text();
        const t2 = performance.now();
        if (first.status !== 200) throw new Error(`the worker's first request failed: ${text.split('\n')[0].slice(0, 300)}`);
        const y = (JSON.parse(text) as { y: number[] }).y;
        result.maxDiff = y.reduce((m, v, i) => Math.max(m, Math.abs(v - files.reference[i])), y.length === files.reference.length ? 0 : Infinity);
        const t3 = performance.now();
        await (await mf.dispatchFetch('http://localhost/', { method: 'POST', body: x })).text();
        const t4 = performance.now();
        result.start_ms.push(t1 - t0);
        result.first_ms.push(t2 - t1);
        result.warm_ms.push(t4 - t3);
      } finally {
        await mf.dispose();
      }
      log(`  ${system} cold start ${s + 1}/${samples}: start ${result.start_ms[s].toFixed(0)} ms, first request ${result.first_ms[s].toFixed(1)} ms`);
    }
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0].replace(/"[^"]*worker\.js"/, '"worker.js"');
    result.error = /dynamic module specifiers are unsupported/.test(msg)
      ? `workerd refuses the worker: its bundle has a computed dynamic import() (onnxruntime-web's loader of its wasm glue), and workerd loads only modules known before it runs (${msg})`
      : msg;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  return result;
}

/** The .onnx file of a model, written where a child process can read it. */
export function onnxFile(model: Model, dir: string, name: string): { bytes: Uint8Array; path: string } {
  const bytes = toOnnx(model);
  const path = join(dir, `${name}.onnx`);
  writeFileSync(path, bytes);
  return { bytes, path };
}

export { modelToBytes };
