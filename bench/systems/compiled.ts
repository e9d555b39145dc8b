// The bench's small C++ programs (bench/peers/*.cc: the oneDNN peer, the FMA peak), compiled at
// bench time with the system g++ and cached in the temp folder under a name that hashes the source,
// the flags and the compiler, so that an edit or a new compiler rebuilds and nothing stale runs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

export interface Compiled {
  path: string;
  /** True when this call compiled it (false: the cache had it). */
  built: boolean;
}

/** Where compiled programs are cached (one folder per user, under the temp folder). */
export function cacheDir(): string {
  const user = typeof process.getuid === 'function' ? String(process.getuid()) : 'user';
  return join(tmpdir(), `deltaprop-bench-${user}`);
}

/**
 * Compiles `source` with `g++ flags… source -o out libs…` unless the cache has it. Throws an
 * error whose message says what is missing and how to install it (`install`).
 */
export function compileProgram(source: string, flags: string[], libs: string[], install: string): Compiled {
  const cxx = process.env.CXX || 'g++';
  const version = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(`not installed: no C++ compiler (${cxx}: ${version.error?.message ?? `exit ${version.status}`}); ${install}`);
  }
  const key = createHash('sha256').update(readFileSync(source)).update(JSON.stringify([cxx, flags, libs]))
    .update(version.stdout).digest('hex').slice(0, 16);
  const dir = cacheDir();
  const path = join(dir, `${basename(source).replace(/\.\w+$/, '')}-${key}`);
  if (existsSync(path)) return { path, built: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // compile to a private name and rename: a concurrent bench never runs a half-written binary
  const partial = `${path}.${process.pid}.tmp`;
  const r = spawnSync(cxx, [...flags, source, '-o', partial, ...libs], { encoding: 'utf8', timeout: 180_000 });
  if (r.error || r.status !== 0) {
    rmSync(partial, { force: true });
    const out = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n');
    const missing = out.find((l) => /fatal error: .*: No such file|cannot find -l/.test(l));
    throw new Error(missing
      ? `not installed: ${missing.replace(/^.*?(fatal error|error): /, '').trim()}; ${install}`
      : `${basename(source)} did not compile (${r.error?.message ?? `${cxx} exited ${r.status}`}): ${out.slice(-3).join(' | ')}`);
  }
  renameSync(partial, path);
  return { path, built: true };
}
