// The parent side of a fuzz run: builds the child program once, runs the cases in batches, each
// batch in a child process of its own, and turns a child that dies (a signal, an exit code, a
// timeout) into a verdict on the case it was running. After a crash the batch goes on from the
// next case in a new child, and the crashing case is run once more alone, to tell a case that
// crashes by itself from one that crashes only after the cases before it.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { afterAll, beforeAll } from 'vitest';
import { programBuild } from '../../tsup.config.js';
import type { Verdict } from './protocol.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The seed of every fuzz suite: fixed, so that CI runs the same cases; DELTAPROP_FUZZ_SEED picks another. */
export const FUZZ_SEED = Number(process.env.DELTAPROP_FUZZ_SEED ?? 20261201);

/** Builds test/fuzz/child.ts (and test/programs/*.ts entries given) into a folder under .tmp. */
export async function buildPrograms(entries: Record<string, string>): Promise<{ dir: string; remove(): void }> {
  const dir = join(ROOT, '.tmp', `fuzz-${process.pid}-${Object.keys(entries).join('-')}`);
  mkdirSync(dir, { recursive: true });
  // config: false, or tsup also builds every config of tsup.config.ts into the same folder
  await build({ ...programBuild, config: false, sourcemap: false, entry: entries, outDir: dir, silent: true });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs a program in a fresh Node. A run longer than timeoutMs, or silent on stdout for longer than
 * stallMs (a fuzz child writes a line as each case starts), is killed (SIGKILL) and marked.
 */
export function runChild(program: string, args: string[], timeoutMs: number, stallMs = timeoutMs, nodeArgs: string[] = []): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...nodeArgs, program, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', timedOut = false;
    const kill = () => {
      timedOut = true;
      child.kill('SIGKILL');
    };
    // armed by the first line: loading a backend before the first case may take a while
    let stall: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      clearTimeout(stall);
      stall = setTimeout(kill, stallMs);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(kill, timeoutMs);
    const stop = () => {
      clearTimeout(timer);
      clearTimeout(stall);
    };
    child.on('error', (e) => {
      stop();
      reject(e);
    });
    child.on('close', (code, signal) => {
      stop();
      resolve({ code, signal, timedOut, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

export interface FuzzOptions {
  program: string;
  suite: string;
  backend: string;
  seed: number;
  /** Cases [from, from + cases) of the seed's sequence (from defaults to 0). */
  from?: number;
  cases: number;
  /** Cases per child. */
  batch: number;
  /** A child that runs longer than this is a hang, of the case it was running. */
  timeoutMs: number;
  /** A case that runs longer than this (no next case started) is a hang. */
  caseMs: number;
  /** Stop after this many dead children (each costs a restart and a rerun). */
  maxDeaths?: number;
}

export interface FuzzReport {
  failures: Verdict[];
  tally: Record<string, number>;
  /** Cases whose verdict is known (passed or failed). */
  casesRun: number;
  children: number;
  ms: number;
  /** Set when the run gave up early (too many crashes). */
  stoppedEarly: string | null;
}

interface Parsed {
  started: number[];
  /** The description the child wrote beside each start. */
  described: string[];
  failures: Verdict[];
  /** Outcome buckets of the cases that ended (a dead child's too). */
  buckets: Record<string, number>;
  tally: Record<string, number> | null;
}

function parse(stdout: string): Parsed {
  const out: Parsed = { started: [], described: [], failures: [], buckets: {}, tally: null };
  for (const l of stdout.split('\n')) {
    if (l.startsWith('S ')) {
      const sp = l.indexOf(' ', 2);
      out.started.push(Number(l.slice(2, sp < 0 ? undefined : sp)));
      out.described.push(sp < 0 ? '' : l.slice(sp + 1));
    }
    else if (l.startsWith('F ')) out.failures.push(JSON.parse(l.slice(2)) as Verdict);
    else if (l.startsWith('O ')) out.buckets[l.slice(2)] = (out.buckets[l.slice(2)] ?? 0) + 1;
    else if (l.startsWith('T ')) out.tally = JSON.parse(l.slice(2)) as Record<string, number>;
  }
  return out;
}

const tail = (s: string, n = 600): string => (s.length > n ? `…${s.slice(-n)}` : s).trim();

export function replayCommand(o: Pick<FuzzOptions, 'suite' | 'backend' | 'seed'>, index: number): string {
  return `npx vite-node test/fuzz/child.ts -- ${o.suite} ${o.backend} ${o.seed} ${index} 1 --verbose`;
}

export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const t0 = performance.now();
  const report: FuzzReport = { failures: [], tally: {}, casesRun: 0, children: 0, ms: 0, stoppedEarly: null };
  const add = (t: Record<string, number>) => {
    for (const [k, v] of Object.entries(t)) report.tally[k] = (report.tally[k] ?? 0) + v;
  };
  const maxDeaths = o.maxDeaths ?? 8;
  let deaths = 0;
  const argsFor = (from: number, count: number) => [o.suite, o.backend, String(o.seed), String(from), String(count)];
  const last = (o.from ?? 0) + o.cases;
  for (let from = o.from ?? 0; from < last;) {
    const end = Math.min(from + o.batch, last);
    // a batch's timeout covers the whole batch; a hang is any case that outlasts it
    const r = await runChild(o.program, argsFor(from, end - from), o.timeoutMs, o.caseMs);
    report.children++;
    const p = parse(r.stdout);
    report.failures.push(...p.failures);
    add(p.buckets);
    if (p.tally && r.code === 0) {
      report.casesRun += end - from;
      from = end;
      continue;
    }
    // the child died: its last started case is the culprit
    const culprit = p.started.length ? p.started[p.started.length - 1] : from;
    add({ [r.timedOut ? 'hang' : 'crash']: 1 });
    report.casesRun += culprit - from + 1;
    const how = r.timedOut ? `hang (no progress for ${o.caseMs} ms, killed)` : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
    // a crash may need the cases before it (a freed buffer, a grown memory): the case alone tells.
    // A hang is not rerun: it would cost another caseMs, and a loop that never ends does so alone.
    let aloneHow = 'was not rerun alone';
    const described = p.started.length ? p.described[p.described.length - 1] : '(the child died before its first case)';
    if (!r.timedOut) {
      const alone = await runChild(o.program, argsFor(culprit, 1), o.timeoutMs, o.caseMs);
      report.children++;
      aloneHow = alone.timedOut ? 'hangs' : alone.signal ? `dies by ${alone.signal} too` : alone.code !== 0 ? `exits with code ${alone.code}` : 'does not die';
    }
    report.failures.push({
      index: culprit,
      category: r.timedOut ? 'hang' : 'crash',
      signature: `${r.timedOut ? 'hang' : how} in ${described.replace(/\d+(\.\d+)?(e[+-]?\d+)?/g, '#').slice(0, 160)}`,
      what: described,
      detail: `child ran cases ${from}..${end - 1} and ${how} in case ${culprit}; alone, the case ${aloneHow}. ` +
        `stderr: ${tail(r.stderr) || '(empty)'}. replay: ${replayCommand(o, culprit)}`,
    });
    if (++deaths >= maxDeaths) {
      report.stoppedEarly = `stopped after ${deaths} dead children, at case ${culprit + 1} (the run ends at ${last})`;
      break;
    }
    from = culprit + 1;
  }
  report.ms = performance.now() - t0;
  return report;
}

/**
 * The failures grouped by signature, for a test's failure message: each group with its count and
 * its first case (description, detail, the command that replays it).
 */
/** Writes the whole report (every failure) where DELTAPROP_FUZZ_REPORT names a folder; returns the path. */
export function saveReport(o: Pick<FuzzOptions, 'suite' | 'backend' | 'seed'>, r: FuzzReport): string | null {
  const dir = process.env.DELTAPROP_FUZZ_REPORT;
  if (!dir) return null;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${o.suite}-${o.backend}-${o.seed}.json`);
  writeFileSync(path, JSON.stringify({ ...o, ...r }, null, 1));
  return path;
}

export function summarize(o: Pick<FuzzOptions, 'suite' | 'backend' | 'seed'>, r: FuzzReport, maxGroups = 40): string {
  const groups = new Map<string, Verdict[]>();
  for (const f of r.failures) {
    const g = groups.get(f.signature);
    if (g) g.push(f);
    else groups.set(f.signature, [f]);
  }
  const lines = [`${r.failures.length} failing cases of ${r.casesRun} (${groups.size} distinct; seed ${o.seed})` +
    (r.stoppedEarly ? `; ${r.stoppedEarly}` : '')];
  let shown = 0;
  // the worst first: a dead process, then wrong results, then bad input taken, then messages
  const rank = (c: string) => ['harness', 'crash', 'hang', 'memory', 'slow', 'wrong', 'wrote', 'refused', 'accepted', 'unclear'].indexOf(c);
  for (const [sig, fs] of [...groups].sort((a, b) => rank(a[1][0].category) - rank(b[1][0].category) || b[1].length - a[1].length)) {
    if (shown++ >= maxGroups) {
      lines.push(`… and ${groups.size - maxGroups} more groups`);
      break;
    }
    const f = fs[0];
    lines.push(`- [${f.category}] ${sig} ×${fs.length}\n    case ${f.index}: ${f.what}\n    ${f.detail}\n    replay: ${replayCommand(o, f.index)}`);
  }
  return lines.join('\n');
}

/**
 * Builds the fuzz child program once for a test file (in its beforeAll, removed in its afterAll)
 * and returns a function that gives its path.
 */
export function useFuzzChild(): () => string {
  let program = '';
  let remove = (): void => {};
  beforeAll(async () => {
    const built = await buildPrograms({ 'fuzz-child': 'test/fuzz/child.ts' });
    program = `${built.dir}/fuzz-child.js`;
    remove = built.remove;
  }, 60_000);
  afterAll(() => remove());
  return () => program;
}
