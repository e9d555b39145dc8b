// Installing the packed package into an empty project (slow: packs, compiles twice; ~1-2 min).
// The package is staged from the repo's own package.json (its real install script), binding.gyp
// and native/, with a dist/ holding just the native loader bundled as ESM and as CommonJS (so both
// ways of resolving the package root are exercised). Four installs:
//   1. with a prebuild (prebuildify --napi), install scripts off: the prebuild alone is enough;
//   2. no prebuild, a compiler: the install script builds it with node-gyp;
//   3. no prebuild, no compiler (CC/CXX=/bin/false): the install succeeds with a notice, and
//      loadNativeBackend throws saying why;
//   4. no prebuild, install scripts off (npm 11 skips a registry dependency's install script until
//      the user approves it): loading says how to approve and rebuild.
// Dependencies come from the npm cache (--offline).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativePackageRoot } from '../src/backends/native.js';

const repo = nativePackageRoot();
const tmp = mkdtempSync(join(tmpdir(), 'deltaprop-install-'));
const stage = join(tmp, 'stage');
let plainTgz = '';
let prebuiltTgz = '';

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): { status: number; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 180_000 });
  return { status: r.status ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

function pack(dest: string): string {
  const r = sh('npm', ['pack', '--ignore-scripts', '--pack-destination', dest], stage);
  expect(r.status, r.out).toBe(0);
  const name = readdirSync(dest).find((f) => f.endsWith('.tgz'));
  return join(dest, name!);
}

// An empty project that installs the tarball. (npm 11 runs a local tarball's install script;
// from the registry it runs only once the user approves it, which --ignore-scripts stands for.)
function consumer(name: string, tgz: string, flags: string[], env: NodeJS.ProcessEnv = {}): { dir: string; out: string } {
  const dir = join(tmp, `consumer-${name}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true }));
  const r = sh('npm', ['install', '--offline', '--foreground-scripts', '--no-audit', '--no-fund', ...flags, tgz], dir, env);
  expect(r.status, `npm install (${name}) failed:\n${r.out}`).toBe(0);
  return { dir, out: r.out };
}

// Loads the backend from the installed package (ESM import and CommonJS require), runs a GEMM.
const PROBE = `
const check = (m) => {
  try {
    const be = m.loadNativeBackend({ threads: 1 });
    const a = be.alloc(6), b = be.alloc(6), c = be.alloc(4);
    a.data.set([1, 2, 3, 4, 5, 6]); b.data.set([1, 0, 0, 1, 1, 1]);
    be.gemm(false, false, 2, 2, 3, 1, a, b, 0, c);
    return { ok: true, isa: be.isa, c: Array.from(c.data) };
  } catch (e) { return { ok: false, message: e.message }; }
};
const cjs = check(require('deltaprop'));
import('deltaprop').then((m) => console.log(JSON.stringify({ cjs, esm: check(m) })));
`;

function probe(dir: string): { cjs: { ok: boolean; isa?: string; c?: number[]; message?: string }; esm: { ok: boolean; message?: string } } {
  const out = execFileSync(process.execPath, ['-e', PROBE], { cwd: dir, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

beforeAll(async () => {
  mkdirSync(stage);
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
  const staged = {
    name: pkg.name, version: pkg.version, type: pkg.type, main: pkg.main, module: pkg.module,
    exports: { '.': { import: `./${pkg.module.replace(/^\.\//, '')}`, require: `./${pkg.main.replace(/^\.\//, '')}` } },
    files: pkg.files, dependencies: pkg.dependencies,
    scripts: { install: pkg.scripts.install }, // the repo's install script, verbatim
  };
  writeFileSync(join(stage, 'package.json'), JSON.stringify(staged, null, 2));
  cpSync(join(repo, 'binding.gyp'), join(stage, 'binding.gyp'));
  cpSync(join(repo, 'native'), join(stage, 'native'), { recursive: true });
  const entry = join(tmp, 'entry.ts');
  writeFileSync(entry, `export { loadNativeBackend } from ${JSON.stringify(join(repo, 'src/backends/native.ts'))};\n`);
  for (const [format, out] of [['esm', pkg.module], ['cjs', pkg.main]] as [string, string][]) {
    await build({ entryPoints: [entry], bundle: true, platform: 'node', target: 'node20', format: format as 'esm' | 'cjs', outfile: join(stage, out),
      external: ['node-gyp-build'], logLevel: 'error' });
  }
  mkdirSync(join(tmp, 'plain'));
  plainTgz = pack(join(tmp, 'plain'));
  // The prebuild, made by the repo's own `prebuild` script (prebuildify), then packed with it.
  symlinkSync(join(repo, 'node_modules'), join(stage, 'node_modules'));
  const pb = sh('npx', ['--no-install', 'prebuildify', '--napi', '--strip'], stage);
  expect(pb.status, pb.out).toBe(0);
  rmSync(join(stage, 'node_modules'));
  rmSync(join(stage, 'build'), { recursive: true, force: true });
  mkdirSync(join(tmp, 'prebuilt'));
  prebuiltTgz = pack(join(tmp, 'prebuilt'));
}, 240_000);

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('installing the packed package', () => {
  it('the tarballs hold binding.gyp, the native sources and (second) the prebuild', () => {
    const list = (tgz: string) => execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' });
    for (const f of ['package/binding.gyp', 'package/native/addon.cc', 'package/native/kernels/gemm_avx512.cc', 'package/dist/index.js', 'package/dist/index.cjs']) {
      expect(list(plainTgz)).toContain(f);
    }
    expect(list(plainTgz)).not.toContain('prebuilds/');
    expect(list(prebuiltTgz)).toMatch(new RegExp(`package/prebuilds/${process.platform}-${process.arch}/.*\\.node`));
  });

  it('1. with a prebuild: loads it without compiling (even with install scripts off)', () => {
    const { dir } = consumer('prebuilt', prebuiltTgz, ['--ignore-scripts']);
    const root = join(dir, 'node_modules', 'deltaprop');
    expect(existsSync(join(root, 'build'))).toBe(false);
    const r = probe(dir);
    expect(r.cjs, JSON.stringify(r)).toMatchObject({ ok: true, c: [4, 5, 10, 11] });
    expect(r.esm.ok, JSON.stringify(r)).toBe(true);
  }, 120_000);

  it('2. no prebuild, a compiler: the install script builds the addon with node-gyp', () => {
    const { dir } = consumer('compiles', plainTgz, []);
    const root = join(dir, 'node_modules', 'deltaprop');
    expect(existsSync(join(root, 'build', 'Release', 'deltaprop.node'))).toBe(true);
    const r = probe(dir);
    expect(r.cjs, JSON.stringify(r)).toMatchObject({ ok: true, c: [4, 5, 10, 11] });
    expect(r.esm.ok, JSON.stringify(r)).toBe(true);
  }, 180_000);

  it('3. no prebuild, no compiler: the install succeeds with a notice; loading says why it cannot', () => {
    const { dir, out } = consumer('nocompiler', plainTgz, [], { CC: '/bin/false', CXX: '/bin/false' });
    expect(out).toMatch(/deltaprop: native addon not built/);
    const r = probe(dir);
    for (const side of [r.cjs, r.esm]) {
      expect(side.ok).toBe(false);
      expect(side.message).toMatch(/native addon not loaded: No native build was found/);
      expect(side.message).toMatch(/no prebuild for .* and no local build/);
      expect(side.message).toMatch(/C\+\+ toolchain/);
    }
  }, 120_000);

  it('4. no prebuild, install scripts off (not approved): loading says how to approve and rebuild', () => {
    const { dir } = consumer('blocked', plainTgz, ['--ignore-scripts']);
    const r = probe(dir);
    expect(r.cjs.ok).toBe(false);
    expect(r.cjs.message).toMatch(/npm install-scripts approve deltaprop && npm rebuild deltaprop/);
  }, 120_000);
});
