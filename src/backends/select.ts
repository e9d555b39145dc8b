// Backend selection: an explicit choice wins and fails loudly; otherwise the fastest backend that
// loads (native, then wasm, then js). Every failed attempt keeps its reason, so one call can say
// which backend runs and why the faster ones did not.
import type { Backend, BackendName } from './backend.js';

export interface BackendOptions {
  /** 'auto' (default) or a backend name; the DELTAPROP_BACKEND environment variable is read when absent. */
  backend?: BackendName | 'auto';
  /** Thread count for backends with threads (DELTAPROP_THREADS when absent). */
  threads?: number;
  /** Force a lower instruction set on the native backend, e.g. 'avx2-fma' (DELTAPROP_ISA). */
  isa?: string;
}

export interface BackendStatus {
  ok: boolean;
  isa?: string;
  threads?: number;
  /** Why it runs on one thread (wasm without shared memory or workers, or one thread asked). */
  threadsReason?: string;
  /** Why it did not load, and how to fix it. */
  reason?: string;
}

export interface BackendReport {
  backend: BackendName;
  isa: string;
  threads: number;
  /** Why it runs on one thread, when it says (the wasm backend). */
  threadsReason?: string;
  /** Why this backend was chosen. */
  why: string;
  backends: Record<BackendName, BackendStatus>;
}

export type BackendLoader = (opts: BackendOptions) => Backend | Promise<Backend>;

export const BACKEND_NAMES: BackendName[] = ['native', 'wasm', 'js'];

export class BackendError extends Error {
  override name = 'BackendError';
}

/** Reads an environment variable where the runtime has one (Node, Bun, Deno with --allow-env). */
export function env(name: string): string | undefined {
  try {
    const g = globalThis as { process?: { env?: Record<string, string | undefined> }; Deno?: { env: { get(k: string): string | undefined } } };
    return g.process?.env?.[name] ?? g.Deno?.env.get(name);
  } catch {
    return undefined;
  }
}

function resolveOptions(opts: BackendOptions): BackendOptions & { backend: BackendName | 'auto' } {
  const requested = opts.backend ?? (env('DELTAPROP_BACKEND') as BackendName | 'auto' | undefined) ?? 'auto';
  if (requested !== 'auto' && !BACKEND_NAMES.includes(requested)) {
    throw new BackendError(`unknown backend '${String(requested)}' (known: auto, ${BACKEND_NAMES.join(', ')})`);
  }
  const threadsEnv = env('DELTAPROP_THREADS');
  const threads = opts.threads ?? (threadsEnv ? Number(threadsEnv) : undefined);
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new BackendError(`threads: must be a positive integer, got ${String(threadsEnv ?? opts.threads)}`);
  }
  return { ...opts, backend: requested, threads, isa: opts.isa ?? env('DELTAPROP_ISA') };
}

/**
 * Picks and loads a backend from `loaders` (in order of preference). Returns it with the report
 * of every attempt.
 */
export async function selectBackend(loaders: Partial<Record<BackendName, BackendLoader>>, opts: BackendOptions = {},
  unavailable: Partial<Record<BackendName, string>> = {}): Promise<{ backend: Backend; report: BackendReport }> {
  const o = resolveOptions(opts);
  const statuses = {} as Record<BackendName, BackendStatus>;
  const names = o.backend === 'auto' ? BACKEND_NAMES : [o.backend];
  let chosen: Backend | null = null;
  for (const name of BACKEND_NAMES) statuses[name] = { ok: false, reason: unavailable[name] ?? 'not tried' };
  for (const name of names) {
    const load = loaders[name];
    if (!load) {
      statuses[name] = { ok: false, reason: unavailable[name] ?? `the ${name} backend is not available in this runtime` };
      continue;
    }
    try {
      const b = await load(o);
      if (o.threads !== undefined) b.setThreads(o.threads);
      statuses[name] = status(b);
      if (!chosen) chosen = b;
      break;
    } catch (e) {
      statuses[name] = { ok: false, reason: (e as Error).message };
    }
  }
  if (!chosen) {
    const why = names.map((n) => `${n}: ${statuses[n].reason}`).join('; ');
    throw new BackendError(o.backend === 'auto'
      ? `no backend could be loaded (${why})`
      : `the ${o.backend} backend was requested${opts.backend ? '' : ' by DELTAPROP_BACKEND'} but cannot load: ${statuses[o.backend].reason}`);
  }
  const skipped = names.filter((n) => n !== chosen!.name).filter((n) => BACKEND_NAMES.indexOf(n) < BACKEND_NAMES.indexOf(chosen!.name));
  const why = o.backend !== 'auto'
    ? `requested${opts.backend ? '' : ' by DELTAPROP_BACKEND'}`
    : skipped.length === 0 ? 'fastest available' : `fastest that loaded (${skipped.map((n) => `${n}: ${statuses[n].reason}`).join('; ')})`;
  const threadsReason = chosen.threadsReason === undefined ? {} : { threadsReason: chosen.threadsReason };
  return { backend: chosen, report: { backend: chosen.name, isa: chosen.isa, threads: chosen.threads, ...threadsReason, why, backends: statuses } };
}

function status(b: Backend): BackendStatus {
  return b.threadsReason === undefined ? { ok: true, isa: b.isa, threads: b.threads }
    : { ok: true, isa: b.isa, threads: b.threads, threadsReason: b.threadsReason };
}

let fallbackWarned = false;

/**
 * Where the automatic choice fell from wasm to js (a browser bundle whose .wasm did not load),
 * says so once per program on the console, with the reason: js is several times slower, and
 * nothing else would tell. An explicit { backend: 'js' } is not a fallback.
 */
export function warnJsFallbackOnce(report: BackendReport): void {
  if (fallbackWarned || report.backend !== 'js' || report.why.startsWith('requested') || report.backends.wasm.ok) return;
  fallbackWarned = true;
  console.warn(`deltaprop: the wasm backend did not load, running on the much slower js backend: ${report.backends.wasm.reason}`);
}

/** Loads every backend independently (for `deltaprop info`): status of each, and the auto choice. */
export async function probeBackends(loaders: Partial<Record<BackendName, BackendLoader>>, opts: BackendOptions = {},
  unavailable: Partial<Record<BackendName, string>> = {}): Promise<BackendReport> {
  const { report } = await selectBackend(loaders, opts, unavailable);
  for (const name of BACKEND_NAMES) {
    if (report.backends[name].ok || report.backends[name].reason !== 'not tried') continue;
    const load = loaders[name];
    if (!load) {
      report.backends[name] = { ok: false, reason: unavailable[name] ?? `the ${name} backend is not available in this runtime` };
      continue;
    }
    try {
      const b = await load({ ...opts, backend: name });
      report.backends[name] = status(b);
    } catch (e) {
      report.backends[name] = { ok: false, reason: (e as Error).message };
    }
  }
  return report;
}
