// The native loader's advice when no addon loads, for each package manager's layout (made here
// as folders; the real installs are in install-managers.test.ts): the manager is recognized from
// what it leaves on disk or the user agent its install script recorded, and only its fix is given.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectPackageManager, installAdvice, managerFromUserAgent, projectRoot } from '../src/backends/install-advice.js';

const tmp = mkdtempSync(join(tmpdir(), 'deltaprop-advice-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NOT_FOUND = 'No native build was found for platform=linux arch=x64 runtime=node abi=115 uv=1 libc=glibc node=20.20.2';

/** A project folder with deltaprop installed under it, and the files a manager leaves. */
function project(name: string, files: string[], packagePath = ['node_modules', 'deltaprop']): string {
  const dir = join(tmp, name);
  const root = join(dir, ...packagePath);
  mkdirSync(root, { recursive: true });
  for (const f of files) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), '');
  }
  return root;
}

describe('which package manager installed deltaprop', () => {
  it('reads the user agent', () => {
    expect(managerFromUserAgent('pnpm/10.34.9 npm/? node/v20.20.2 linux x64')).toBe('pnpm');
    expect(managerFromUserAgent('npm/11.19.1 node/v20.20.2 linux x64 workspaces/false')).toBe('npm');
    expect(managerFromUserAgent('yarn/1.22.22 npm/? node/v20.20.2 linux x64')).toBe('yarn');
    expect(managerFromUserAgent('bun/1.4.5 npm/? node/v20.20.2 linux x64')).toBe('bun');
    expect(managerFromUserAgent('')).toBeNull();
    expect(managerFromUserAgent(undefined)).toBeNull();
  });

  it('finds the project above the outermost node_modules', () => {
    expect(projectRoot('/p/node_modules/.pnpm/deltaprop@0.1.0/node_modules/deltaprop')).toBe('/p');
    expect(projectRoot('/p/node_modules/a/node_modules/deltaprop')).toBe('/p');
    expect(projectRoot('/work/deltaprop')).toBeNull();
  });

  it('tells the layouts apart', () => {
    expect(detectPackageManager(project('pnpm', [], ['node_modules', '.pnpm', 'deltaprop@0.1.0', 'node_modules', 'deltaprop']))).toBe('pnpm');
    expect(detectPackageManager(project('bun', ['bun.lock']))).toBe('bun');
    expect(detectPackageManager(project('bun-binary-lock', ['bun.lockb']))).toBe('bun');
    expect(detectPackageManager(project('yarn', ['node_modules/.yarn-integrity', 'yarn.lock']))).toBe('yarn');
    expect(detectPackageManager(project('npm', ['node_modules/.package-lock.json', 'package-lock.json']))).toBe('npm');
    expect(detectPackageManager(project('none', []))).toBeNull();
  });

  it('the recorded user agent wins over the layout', () => {
    const root = project('recorded', ['node_modules/.package-lock.json']);
    expect(detectPackageManager(root, { userAgent: 'yarn/1.22.22 npm/? node/v20', target: 'linux-x64' })).toBe('yarn');
  });
});

describe('the advice', () => {
  const others = (m: string) => ({
    npm: /pnpm|bun|yarn/,
    pnpm: /(?<!p)npm (install-scripts|rebuild)|bun|yarn/,
    yarn: /(?<!p)npm (install-scripts|rebuild)|pnpm|bun/,
    bun: /(?<!p)npm (install-scripts|rebuild)|pnpm|yarn/,
  }[m]!);
  const strip = (s: string) => s.replace(/\S*\/(node_modules|deltaprop-advice-)\S*/g, '<path>');

  it.each([
    ['npm', ['node_modules/.package-lock.json'], /`npm install-scripts approve deltaprop && npm rebuild deltaprop`/],
    ['pnpm', ['node_modules/.pnpm/lock.yaml'], /`pnpm approve-builds`.*`pnpm rebuild deltaprop`/],
    ['yarn', ['node_modules/.yarn-integrity'], /`yarn install --force`/],
    ['bun', ['bun.lock'], /`bun pm trust deltaprop`/],
  ] as const)('%s, install script skipped: how to allow it, for that manager only', (m, files, fix) => {
    const advice = installAdvice(project(`skipped-${m}`, [...files]), NOT_FOUND);
    expect(advice).toMatch(new RegExp(`installed with ${m}\\b`));
    expect(advice).toMatch(/did not run/);
    expect(advice).toMatch(fix);
    expect(strip(advice)).not.toMatch(others(m));
  });

  it.each([
    ['npm', 'npm/11.19.1 node/v20.20.2 linux x64', /`npm rebuild deltaprop`/],
    ['pnpm', 'pnpm/10.34.9 npm/? node/v20.20.2 linux x64', /`pnpm rebuild deltaprop`/],
    ['yarn', 'yarn/1.22.22 npm/? node/v20.20.2 linux x64', /`yarn install --force`/],
  ] as const)('%s, install script ran and the build failed: a toolchain, then the rebuild', (m, userAgent, fix) => {
    const root = project(`failed-${m}`, []);
    mkdirSync(join(root, 'build'));
    writeFileSync(join(root, 'build', 'install-failed.json'), JSON.stringify({ userAgent, target: 'linux-x64' }));
    const advice = installAdvice(root, NOT_FOUND);
    expect(advice).toMatch(/install script ran but compiling the addon failed/);
    expect(advice).toMatch(/C\+\+ toolchain/);
    expect(advice).toMatch(fix);
    expect(strip(advice)).not.toMatch(others(m));
  });

  it('an unrecognized layout gets every manager\'s fix, each named', () => {
    const advice = installAdvice(project('unknown', []), NOT_FOUND);
    expect(advice).toMatch(/package manager not recognized/);
    for (const fix of [/npm: npm skips/, /pnpm: pnpm does not run/, /yarn: yarn did not run/, /bun: Bun does not run/]) expect(advice).toMatch(fix);
  });

  it('a build that does not load (e.g. an older glibc) gets the rebuild for its manager', () => {
    const advice = installAdvice(project('dlopen', ['pnpm-lock.yaml', 'node_modules/.pnpm/lock.yaml']),
      "/p/node_modules/deltaprop/prebuilds/linux-x64/deltaprop.glibc.node: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found");
    expect(advice).toMatch(/did not load \(installed with pnpm\)/);
    expect(advice).toMatch(/`pnpm rebuild deltaprop`/);
    expect(advice).toMatch(/glibc >= 2\.34/);
  });

  it('a missing node-gyp-build says to reinstall', () => {
    expect(installAdvice(project('no-ngb', []), 'the node-gyp-build package is missing (Cannot find module)')).toMatch(/Reinstall deltaprop/);
  });
});
