// Installing the packed tarball into empty projects, with each package manager users have:
// npm (its install script runs for a local tarball), npm --ignore-scripts (what npm 11 does for
// a registry dependency nobody approved), pnpm 10 and Bun (both skip it unless approved or
// trusted) and yarn 1 (runs it). With the prebuild and no compiler at all (CC=/bin/false), every
// one of them gets the native addon. Without a prebuild: npm with a compiler builds it; with
// neither, the package runs on wasm and `deltaprop info` says why, with the fix for the manager
// that installed it. Dependencies come from the registry, into caches made for this run.
// The clients are the repo's devDependencies (pnpm 10, yarn 1, bun); npm is the one running.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packedTarball, repoRoot, run, tarballWithoutPrebuilds } from './packed.js';
import { recordInstall } from './install-table.js';

type Manager = 'npm' | 'pnpm' | 'yarn' | 'bun';

const tmp = mkdtempSync(join(tmpdir(), 'deltaprop-managers-'));
const NO_COMPILER = { CC: '/bin/false', CXX: '/bin/false' };
const bin = (name: string) => join(repoRoot, 'node_modules', '.bin', name);

/**
 * Bun's binary: the bun package's bin (its postinstall puts the real binary there), else the
 * platform package's, where it stays when that postinstall did not run.
 */
function bunBinary(): string {
  const candidates = [join(repoRoot, 'node_modules', 'bun', 'bin', 'bun.exe'),
    ...['bun-linux-x64', 'bun-linux-x64-baseline'].map((f) => join(repoRoot, 'node_modules', '@oven', f, 'bin', 'bun'))];
  for (const p of candidates) {
    if (existsSync(p) && spawnSync(p, ['--version']).status === 0) return p;
  }
  throw new Error(`no working bun binary (tried ${candidates.join(', ')}): run npm install`);
}

/** The environment of an install: none of the npm_* variables of the `npm test` around us. */
function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return {
    ...env,
    npm_config_cache: join(tmp, 'npm-cache'),
    npm_config_update_notifier: 'false',
    BUN_INSTALL_CACHE_DIR: join(tmp, 'bun-cache'),
    YARN_CACHE_FOLDER: join(tmp, 'yarn-cache'),
    ...extra,
  };
}

function command(manager: Manager, tgz: string, ignoreScripts: boolean): [string, string[]] {
  switch (manager) {
    case 'npm':
      return ['npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', ...(ignoreScripts ? ['--ignore-scripts'] : []), tgz]];
    case 'pnpm':
      return [bin('pnpm'), ['add', '--store-dir', join(tmp, 'pnpm-store'), '--config.confirmModulesPurge=false', tgz]];
    case 'yarn':
      return [bin('yarn'), ['add', '--non-interactive', '--no-progress', ...(ignoreScripts ? ['--ignore-scripts'] : []), `file:${tgz}`]];
    case 'bun':
      return [bunBinary(), ['add', tgz]];
  }
}

interface Installed { dir: string; out: string; seconds: number }

async function install(name: string, manager: Manager, tgz: string, opts: { ignoreScripts?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Installed> {
  const dir = join(tmp, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true }));
  const [cmd, args] = command(manager, tgz, opts.ignoreScripts ?? false);
  const r = await run(cmd, args, { cwd: dir, env: cleanEnv(opts.env ?? {}), timeoutMs: 240_000 });
  const seconds = r.seconds;
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.status, `${manager} ${args.join(' ')} failed:\n${out}`).toBe(0);
  expect(existsSync(join(dir, 'node_modules', 'deltaprop', 'package.json')), `${manager} installed no deltaprop:\n${out}`).toBe(true);
  return { dir, out, seconds };
}

interface Info { backend: string; isa: string; why: string; backends: Record<string, { ok: boolean; isa?: string; reason?: string }> }

/** `deltaprop info --json` and a short training run, with the installed package's CLI. */
async function info(dir: string): Promise<Info> {
  const cli = join(dir, 'node_modules', 'deltaprop', 'dist', 'cli.js');
  const r = await run(process.execPath, [cli, 'info', '--json'], { cwd: dir, env: cleanEnv({}) });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

async function trains(dir: string): Promise<{ backend: string; accuracy: number }> {
  const cli = join(dir, 'node_modules', 'deltaprop', 'dist', 'cli.js');
  const r = await run(process.execPath, [cli, 'train', 'builtin:iris', '--layers', '16', '--epochs', '150', '--seed', '1', '--json', '--quiet'],
    { cwd: dir, env: cleanEnv({}) });
  expect(r.status, r.stderr).toBe(0);
  const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { backend: last.backend, accuracy: last.test_accuracy };
}

let prebuilt = '';
let plain = '';

beforeAll(async () => {
  prebuilt = await packedTarball();
  plain = await tarballWithoutPrebuilds();
}, 15 * 60_000);

// hundreds of MB of installs: removed without blocking the worker, with time to do it on a busy disk
afterAll(() => rm(tmp, { recursive: true, force: true }), 300_000);

const HOST_ISA = () => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'info', '--json'], { encoding: 'utf8' });
  return (JSON.parse(r.stdout) as Info).backends.native.isa;
};

describe('with the prebuild and no compiler, every package manager gets the native addon', () => {
  const cases: [string, Manager, boolean][] = [
    ['npm', 'npm', false],
    ['npm-ignore-scripts', 'npm', true],
    ['pnpm', 'pnpm', false],
    ['yarn', 'yarn', false],
    ['bun', 'bun', false],
  ];
  for (const [name, manager, ignoreScripts] of cases) {
    it(`${manager}${ignoreScripts ? ' --ignore-scripts' : ''}`, async () => {
      const r = await install(`prebuilt-${name}`, manager, prebuilt, { ignoreScripts, env: NO_COMPILER });
      const root = join(r.dir, 'node_modules', 'deltaprop');
      expect(existsSync(join(root, 'build')), 'nothing was compiled').toBe(false);
      const i = await info(r.dir);
      expect(i.backend, JSON.stringify(i)).toBe('native');
      expect(i.isa).toBe(HOST_ISA());
      const t = await trains(r.dir);
      expect(t.backend).toBe('native');
      expect(t.accuracy).toBeGreaterThanOrEqual(0.9);
      recordInstall({ manager, scripts: ignoreScripts ? 'ignored' : 'default', prebuild: true, compiler: false, node: process.versions.node, backend: i.backend, isa: i.isa, seconds: r.seconds });
    }, 300_000);
  }
});

describe('without a prebuild', () => {
  it('npm with a compiler: the install script builds the addon', async () => {
    const r = await install('compiles', 'npm', plain);
    expect(existsSync(join(r.dir, 'node_modules', 'deltaprop', 'build', 'Release', 'deltaprop.node'))).toBe(true);
    const i = await info(r.dir);
    expect(i.backend).toBe('native');
    expect((await trains(r.dir)).backend).toBe('native');
    recordInstall({ manager: 'npm', scripts: 'default', prebuild: false, compiler: true, node: process.versions.node, backend: i.backend, isa: i.isa, seconds: r.seconds });
  }, 400_000);

  // manager, scripts ignored, what the reason must say, what it must not say
  const fallbacks: [string, Manager, boolean, RegExp[], RegExp][] = [
    ['npm-no-compiler', 'npm', false, [/installed with npm/, /install script ran but compiling the addon failed/, /C\+\+ toolchain/, /`npm rebuild deltaprop`/], /pnpm|bun|yarn/],
    ['npm-ignore-scripts', 'npm', true, [/installed with npm/, /did not run/, /`npm install-scripts approve deltaprop && npm rebuild deltaprop`/], /pnpm|bun|yarn/],
    ['pnpm', 'pnpm', false, [/installed with pnpm/, /did not run/, /`pnpm approve-builds`/], /(?<!p)npm install-scripts|(?<!p)npm rebuild|bun|yarn/],
    ['bun', 'bun', false, [/installed with bun/, /did not run/, /`bun pm trust deltaprop`/], /(?<!p)npm install-scripts|(?<!p)npm rebuild|pnpm|yarn/],
    ['yarn-no-compiler', 'yarn', false, [/installed with yarn/, /compiling the addon failed/, /`yarn install --force`/], /(?<!p)npm install-scripts|(?<!p)npm rebuild|pnpm|bun/],
  ];
  for (const [name, manager, ignoreScripts, says, never] of fallbacks) {
    it(`${manager}${ignoreScripts ? ' --ignore-scripts' : ''}, no compiler: runs on wasm and info gives the ${manager} fix`, async () => {
      const r = await install(`plain-${name}`, manager, plain, { ignoreScripts, env: NO_COMPILER });
      const i = await info(r.dir);
      expect(i.backend, JSON.stringify(i)).toBe('wasm');
      expect(i.isa).toMatch(/^wasm-/);
      const reason = i.backends.native.reason ?? '';
      expect(reason).toMatch(/No native build was found/);
      for (const s of says) expect(reason).toMatch(s);
      // no other manager's advice (paths left out: pnpm's store path names pnpm)
      expect(reason.replace(/\S*\/node_modules\/\S*/g, '<path>')).not.toMatch(never);
      expect((await trains(r.dir)).backend).toBe('wasm');
      recordInstall({ manager, scripts: ignoreScripts ? 'ignored' : 'default', prebuild: false, compiler: false, node: process.versions.node, backend: i.backend, isa: i.isa, seconds: r.seconds });
    }, 300_000);
  }
});
