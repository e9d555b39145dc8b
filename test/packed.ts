// The package as `npm pack` makes it (prepack: the prebuilds; prepare: wasm and dist/), made once
// and shared by every test that installs it. Tarballs are kept under .tmp/packed/ by a hash of
// the sources that go into them (every file git tracks or would track, less the tests), so a
// change to any source packs again, and a run with nothing changed reuses the last tarball.
//
//   packedTarball()            the release package (linux-x64 and linux-arm64 prebuilds) where the
//                              arm64 cross compiler is installed (CI), else the host-only package
//                              (DELTAPROP_PREBUILDS=linux-x64): npm test needs no cross compiler
//   tarballWithoutPrebuilds()  that tarball less prebuilds/: installs that must compile or fall back
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..');
const cacheRoot = join(repoRoot, '.tmp', 'packed');

export type PackKind = 'host' | 'release';

/** Whether this machine can make the release package (Debian's g++-aarch64-linux-gnu). */
export function canPackRelease(): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, 'aarch64-linux-gnu-g++')));
}

/** The prebuilds the packed tarball holds here. */
export function packedPrebuilds(): string[] {
  return canPackRelease() ? ['linux-x64', 'linux-arm64'] : ['linux-x64'];
}

/**
 * A hash of every source file that can reach the tarball (tracked and untracked, not ignored);
 * the tests and CI files cannot, so editing them does not pack again.
 */
function sourceHash(): string {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' })
    .split('\0').filter((f) => f && !/^(test\/|\.ci\/|vitest[^/]*\.config\.ts$)/.test(f)).sort();
  const h = createHash('sha256');
  for (const f of files) {
    const p = join(repoRoot, f);
    if (!existsSync(p) || !statSync(p).isFile()) continue; // deleted in the work tree
    h.update(f).update('\0').update(readFileSync(p)).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

export interface RunResult { status: number; stdout: string; stderr: string; seconds: number }

/**
 * Runs a command without blocking the test worker (a worker blocked for minutes in spawnSync
 * misses vitest's heartbeats). Never rejects: status -1 and the error in stderr when it cannot start.
 */
export function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => { err.push(Buffer.from(`\n(killed after ${opts.timeoutMs} ms)`)); child.kill('SIGKILL'); }, opts.timeoutMs ?? 300_000);
    const done = (status: number, extra = '') => {
      clearTimeout(timer);
      resolve({ status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() + extra, seconds: (Date.now() - started) / 1000 });
    };
    child.on('error', (e) => done(-1, `\n${e.message}`));
    child.on('close', (code) => done(code ?? -1));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs fn under a lock folder (another process packing the same sources waits for it). */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${dir}.lock`;
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      let holder = NaN;
      try { holder = Number(readFileSync(join(lock, 'pid'), 'utf8')); } catch { /* being written */ }
      let alive = true;
      try { if (holder) process.kill(holder, 0); } catch { alive = false; }
      if (!alive) { rmSync(lock, { recursive: true, force: true }); continue; }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock} (held by pid ${holder})`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** How long the last fresh pack took, in seconds (NaN when a cached tarball was reused). */
export let lastPackSeconds = NaN;

/** The packed tarball (packing it first unless these sources were packed). */
export async function packedTarball(kind: PackKind = canPackRelease() ? 'release' : 'host'): Promise<string> {
  const hash = sourceHash();
  const dir = join(cacheRoot, `${hash}-${kind}`);
  const tgz = join(dir, 'deltaprop.tgz');
  if (existsSync(tgz)) return tgz;
  mkdirSync(cacheRoot, { recursive: true });
  return withLock(dir, async () => {
    if (existsSync(tgz)) return tgz;
    const work = mkdtempSync(join(cacheRoot, 'pack-'));
    const env = { ...process.env };
    if (kind === 'host') env.DELTAPROP_PREBUILDS = 'linux-x64';
    else delete env.DELTAPROP_PREBUILDS;
    const r = await run('npm', ['pack', '--pack-destination', work], { cwd: repoRoot, env, timeoutMs: 12 * 60_000 });
    if (r.status !== 0) throw new Error(`npm pack (${kind}) failed with ${r.status}:\n${r.stderr.slice(-6000)}`);
    lastPackSeconds = r.seconds;
    const made = readdirSync(work).filter((f) => f.endsWith('.tgz'));
    if (made.length !== 1) throw new Error(`npm pack left ${made.join(', ') || 'no tarball'} in ${work}`);
    writeFileSync(join(work, 'pack.log'), `${r.stdout}\n${r.stderr}`); // what prepack and prepare printed
    renameSync(join(work, made[0]), join(work, 'deltaprop.tgz'));
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
    // tarballs of older sources are of no further use
    for (const old of readdirSync(cacheRoot)) {
      if (/^[0-9a-f]{16}-(host|release)$/.test(old) && !old.startsWith(hash)) rmSync(join(cacheRoot, old), { recursive: true, force: true });
    }
    return tgz;
  });
}

/** The packed tarball without prebuilds/ (as a platform without a prebuild gets it). */
export async function tarballWithoutPrebuilds(): Promise<string> {
  const host = await packedTarball();
  const tgz = join(host, '..', 'deltaprop-no-prebuilds.tgz');
  if (existsSync(tgz)) return tgz;
  const work = mkdtempSync(join(cacheRoot, 'strip-'));
  try {
    execFileSync('tar', ['-xzf', host, '-C', work]);
    rmSync(join(work, 'package', 'prebuilds'), { recursive: true, force: true });
    execFileSync('tar', ['-czf', `${tgz}.part`, '-C', work, 'package']);
    renameSync(`${tgz}.part`, tgz);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return tgz;
}

/** The files in a tarball, without the leading package/. */
export function tarballFiles(tgz: string): string[] {
  return execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).split('\n').filter((f) => f && !f.endsWith('/'))
    .map((f) => f.replace(/^package\//, '')).sort();
}
