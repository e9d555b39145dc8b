// The Python peers (PyTorch, OpenBLAS via numpy), run as child processes that print one JSON
// object per line. Debian's python3-torch and python3-numpy live under /usr/bin/python3, which may
// not be the python3 first on PATH (pyenv), so that one is tried first.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';

const CANDIDATES = ['/usr/bin/python3', 'python3'];

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
 * Runs `script` with a JSON config and collects its JSON lines; `onLine` sees each as it comes
 * (for progress). Stderr is kept for the error message when the process fails.
 */
export function runPython(python: string, script: string, config: unknown, env: Record<string, string>,
  onLine: (l: PyLine) => void, timeoutMs: number): Promise<PyLine[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script, JSON.stringify(config)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
      if (code === 0) resolve(lines);
      else reject(new Error(`${script} ${signal ? `killed by ${signal} (timeout ${timeoutMs / 1000} s)` : `exited ${code}`}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/**
 * A Python peer that times on request (openblas.py with "serve": true): `time(shape, units)`
 * resolves to the seconds its process took for `units` products of that shape.
 */
export interface PeerTimer {
  time(shape: string, units: number): Promise<number>;
  close(): void;
}

export function startPeerTimer(python: string, script: string, config: unknown, env: Record<string, string>): Promise<PeerTimer> {
  const child = spawn(python, [script, JSON.stringify({ ...(config as object), serve: true })],
    { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '', closed: Error | null = null;
  const pending: { resolve: (l: Record<string, number>) => void; reject: (e: Error) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.trim()) pending.shift()?.resolve(JSON.parse(line));
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (err += d));
  const fail = (e: Error): void => {
    closed = e;
    for (const p of pending.splice(0)) p.reject(e);
  };
  child.on('error', fail);
  child.on('close', (code) => fail(new Error(`${script} exited ${code}: ${err.trim().split('\n').slice(-2).join(' | ')}`)));
  const next = (): Promise<Record<string, number>> => new Promise((resolve, reject) => {
    if (closed) reject(closed);
    else pending.push({ resolve, reject });
  });
  const timer: PeerTimer = {
    async time(shape, units) {
      const reply = next();
      child.stdin.write(`${JSON.stringify({ shape, units })}\n`);
      return (await reply).seconds;
    },
    close: () => child.stdin.end(),
  };
  return next().then(() => timer); // {"ready": true} once its arrays exist
}
