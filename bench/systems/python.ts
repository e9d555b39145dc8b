// The peers that run as child processes (PyTorch and OpenBLAS through Python, oneDNN and the FMA
// peak as small compiled programs), each printing one JSON object per line. Debian's python3-torch
// and python3-numpy live under /usr/bin/python3, which may not be the python3 first on PATH
// (pyenv), so that one is tried first.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

const CANDIDATES = ['/usr/bin/python3', 'python3'];

/**
 * Variables that hold a peer below its best here: machines of this kind set OPENBLAS_CORETYPE
 * (pinning OpenBLAS to its AVX2 "Haswell" kernel) and OPENBLAS_L2_SIZE for the sake of older
 * OpenBLAS builds, and DNNL_MAX_CPU_ISA / ONEDNN_MAX_CPU_ISA cap oneDNN's JIT. They are removed
 * from a peer's own process only, never from this one.
 */
export const OPENBLAS_HANDICAPS = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const;
export const ONEDNN_HANDICAPS = ['DNNL_MAX_CPU_ISA', 'ONEDNN_MAX_CPU_ISA'] as const;

/** What a peer's process gets: variables to set and variables to remove, on top of this process's. */
export interface ChildEnv {
  set?: Record<string, string>;
  remove?: readonly string[];
}

/** The environment of a peer's process; `base` (this process's environment) is left as it was. */
export function childEnv(base: NodeJS.ProcessEnv, env: ChildEnv = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...base, ...(env.set ?? {}) };
  for (const k of env.remove ?? []) delete out[k];
  return out;
}

/** The removed variables that this process has set, as `NAME=value` (for "ran without …" notes). */
export function removedSettings(base: NodeJS.ProcessEnv, remove: readonly string[]): string[] {
  return remove.filter((k) => base[k] !== undefined).map((k) => `${k}=${base[k]}`);
}

/** The first python that imports `module`, or why none does. */
export function findPython(module: string): { python: string } | { reason: string } {
  const tried: string[] = [];
  for (const py of CANDIDATES) {
    if (py.startsWith('/') && !existsSync(py)) {
      tried.push(`${py}: not found`);
      continue;
    }
    const r = spawnSync(py, ['-c', `import ${module}`], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
    if (r.status === 0) return { python: py };
    const why = r.error ? r.error.message : (r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`);
    tried.push(`${py}: ${why}`);
  }
  return { reason: `python3 -c 'import ${module}' failed (${tried.join('; ')})` };
}

export interface PyLine {
  [k: string]: unknown;
  info?: boolean;
  workload?: string;
  system?: string;
  error?: string;
}

/**
 * Runs `command args` and collects its JSON lines; `onLine` sees each as it comes (for progress).
 * Stderr is kept for the error message when the process fails.
 */
export function runPython(command: string, args: string[], env: ChildEnv,
  onLine: (l: PyLine) => void, timeoutMs: number): Promise<PyLine[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: childEnv(process.env, env), stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: PyLine[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const text = line.trim();
      if (!text) return;
      try {
        const l = JSON.parse(text) as PyLine;
        lines.push(l);
        onLine(l);
      } catch {
        err += `unparsed output: ${text}\n`;
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      err += d;
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const name = args[0]?.endsWith('.py') ? args[0] : command;
      if (code === 0) resolve(lines);
      else reject(new Error(`${name} ${signal ? `killed by ${signal} (timeout ${timeoutMs / 1000} s)` : `exited ${code}`}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/**
 * A peer that times on request (openblas.py with "serve": true, the oneDNN program): it prints
 * lines about itself (its checks), then one with "ready": true. `time(i, units)` resolves to the
 * seconds its process took for `units` products of its i-th shape.
 */
export interface PeerTimer {
  /** The "ready" line: kernel, version, threads. */
  ready: PyLine;
  /** The lines before it (one check per shape). */
  before: PyLine[];
  time(shape: number, units: number): Promise<number>;
  close(): void;
}

const REQUEST_TIMEOUT_MS = 300_000;

export function startPeerTimer(command: string, args: string[], env: ChildEnv, timeoutMs = 120_000): Promise<PeerTimer> {
  const child = spawn(command, args, { env: childEnv(process.env, env), stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '', closed: Error | null = null;
  const before: PyLine[] = [];
  const pending: { resolve: (l: PyLine) => void; reject: (e: Error) => void }[] = [];
  let onReady: { resolve: (l: PyLine) => void; reject: (e: Error) => void } | null = null;
  const name = args[0]?.endsWith('.py') ? args[0] : command;
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.trim()) return;
    let l: PyLine;
    try {
      l = JSON.parse(line) as PyLine;
    } catch {
      err += `unparsed output: ${line}\n`;
      return;
    }
    if (onReady) {
      if (l.ready) {
        onReady.resolve(l);
        onReady = null;
      } else before.push(l);
    } else pending.shift()?.resolve(l);
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (err += d));
  const fail = (e: Error): void => {
    closed = e;
    onReady?.reject(e);
    onReady = null;
    for (const p of pending.splice(0)) p.reject(e);
  };
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  child.on('error', fail);
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    fail(new Error(`${name} ${signal ? `killed by ${signal}` : `exited ${code}`}: ${err.trim().split('\n').slice(-2).join(' | ')}`));
  });
  const ready = new Promise<PyLine>((resolve, reject) => (onReady = { resolve, reject }));
  return ready.then((r) => {
    clearTimeout(timer); // the checks are done; timing requests have no deadline of their own
    return {
      ready: r,
      before,
      async time(shape, units) {
        const reply = new Promise<PyLine>((resolve, reject) => {
          if (closed) reject(closed);
          else pending.push({ resolve, reject });
        });
        child.stdin.write(`${shape} ${units}\n`);
        // a request is sized to a fraction of a second: minutes mean the peer is stuck
        const stuck = setTimeout(() => child.kill('SIGKILL'), REQUEST_TIMEOUT_MS);
        const l = await reply.finally(() => clearTimeout(stuck));
        if (typeof l.seconds !== 'number') throw new Error(`${name}: ${String(l.error ?? `unexpected reply ${JSON.stringify(l)}`)}`);
        return l.seconds;
      },
      close: () => child.stdin.end(),
    };
  });
}
