// The wasm loader must never wait on the event loop: WebAssembly.compile's promise settles from a
// task V8 posts to the embedder, and Node does not count that task as keeping the loop alive
// (nodejs/node#36616). A program that creates backend after backend could then hang or exit with
// the load pending. In Node the loader compiles and instantiates synchronously; these tests hold it
// to that, and run the create / fit / gc() cycle many times in child processes with a timeout, so
// a hang fails here instead of stalling the suite. Needs the built package (dist/).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = (f: string): string => JSON.stringify(pathToFileURL(join(root, f)).href);

beforeAll(() => {
  for (const f of ['dist/index.js', 'dist/index.cjs', 'dist/web.js']) {
    if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run \`npm run compile\` first`);
  }
});

interface Run {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs an ES module program in a fresh Node; a run past `timeoutMs` is killed (SIGKILL). */
function runChild(program: string, flags: string[], timeoutMs: number): Promise<Run> {
  const t0 = Date.now();
  return new Promise((done) => {
    execFile(process.execPath, [...flags, '--input-type=module', '-e', program],
      { cwd: root, timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number; signal?: string }) | null;
        done({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr, ms: Date.now() - t0 });
      });
  });
}

describe('the wasm loader does not wait on the event loop', () => {
  it.each([
    ['Node entry (ESM)', 'dist/index.js', 'import'],
    ['Node entry (CommonJS)', 'dist/index.cjs', 'import'],
    ['web entry under Node', 'dist/web.js', 'import'],
  ])('%s: loadWasmBackend settles before the loop turns once', async (_label, file) => {
    // an immediate runs on the loop's first turn: if it ran first, the load waited on the loop
    const program = `const m = await import(${entry(file)});
      let turned = false;
      setImmediate(() => { turned = true; });
      const b = await m.loadWasmBackend();
      const b2 = await m.loadWasmBackend(undefined, { relaxed: false });
      console.log(JSON.stringify({ turned, isa: b.isa, isa2: b2.isa }));`;
    const r = await runChild(program, [], 20_000);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.isa).toMatch(/^wasm-/);
    expect(out.isa2).toBe('wasm-simd128');
    expect(out.turned).toBe(false);
  });
});

describe('create / fit / gc() cycles never hang (child processes with a timeout)', () => {
  // Each run: backend after backend, two epochs of a 2-8-1 net each, gc() every 500 cycles; half
  // the runs also hold a listening server, so that the loop stays alive and a pending load would
  // hang rather than end the process.
  const CYCLES = 2000;
  const RUNS = 8;
  const program = (keepAlive: boolean): string => `import net from 'node:net';
    const { Model, loadWasmBackend } = await import(${entry('dist/index.js')});
    const server = ${keepAlive} ? net.createServer().listen(0, '127.0.0.1') : null;
    const x = [[0, 0], [0, 1], [1, 0], [1, 1]], y = [0, 1, 1, 0];
    const spec = { inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
      loss: 'binaryCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.5 }, seed: 1 };
    let loss = 0;
    for (let i = 0; i < ${CYCLES}; i++) {
      const model = new Model(spec, await loadWasmBackend());
      const h = await model.fit(x, y, { epochs: 2, batchSize: 4 });
      loss = h.epochs[1].loss;
      if (i % 500 === 499) gc();
    }
    server?.close();
    console.log(JSON.stringify({ cycles: ${CYCLES}, loss }));`;

  it(`${RUNS} runs of ${CYCLES} cycles each finish`, async () => {
    const runs: Run[] = [];
    // two at a time: the machine has two cores
    for (let i = 0; i < RUNS; i += 2) {
      runs.push(...await Promise.all([runChild(program(false), ['--expose-gc'], 25_000), runChild(program(true), ['--expose-gc'], 25_000)]));
    }
    const hung = runs.filter((r) => r.signal === 'SIGKILL').length;
    console.info(`wasm create/fit/gc cycles: ${runs.length} runs, ${hung} hung, ${runs.map((r) => r.ms).join(' / ')} ms`);
    for (const r of runs) {
      expect(r.signal, `a run was killed after ${r.ms} ms (hung): ${r.stderr}`).toBeNull();
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.cycles).toBe(CYCLES);
      expect(Number.isFinite(out.loss)).toBe(true);
    }
  }, 120_000);
});
