// Lifetimes of the native addon's state, each in a process of its own (a use-after-free shows as
// a signal, not as a vitest failure; RSS is the program's alone):
// - a kernel function kept after its kernel object was collected still runs on its own context;
// - worker threads that trained on native give their memory back when they are terminated;
// - models created and dropped one after another: their native memory comes back promptly.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programBuild } from '../tsup.config.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const execFileP = promisify(execFile);

interface Outcome { code: number | null; signal: string | null; out: Record<string, number> | null; stderr: string }

describe('native lifetimes (child processes)', () => {
  const out = join(ROOT, '.tmp', `native-lifetime-${process.pid}`);
  const program = join(out, 'native-lifetime.js');
  beforeAll(async () => {
    await build({ ...programBuild, config: false, entry: { 'native-lifetime': 'test/programs/native-lifetime.ts' }, outDir: out, silent: true });
  }, 60_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  async function runChild(flags: string[], args: string[]): Promise<Outcome> {
    try {
      const { stdout, stderr } = await execFileP(process.execPath, [...flags, program, ...args], { cwd: ROOT, maxBuffer: 1 << 20 });
      return { code: 0, signal: null, out: JSON.parse(stdout.trim().split('\n').pop()!), stderr };
    } catch (e) {
      const err = e as { code?: number; signal?: string; stderr?: string };
      return { code: err.code ?? null, signal: err.signal ?? null, out: null, stderr: err.stderr ?? String(e) };
    }
  }

  it.each([[['--expose-gc']], [[]]])('a kernel function outlives its kernel object (node %j)', async (flags) => {
    // Before the fix the functions' context was freed with the object: the calls read freed
    // memory (a segfault, exit 139, or another object's thread count).
    const r = await runChild(flags, ['kernel-after-gc']);
    expect(r.signal, `killed by ${r.signal}: ${r.stderr}`).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.out).toEqual({ calls: 300, wrong: 0 });
  }, 120_000);

  it('40 terminated worker threads that trained on native leave RSS flat (< 0.25 MB each)', async () => {
    // Before: each worker left its GEMM packing buffers behind (thread_local, never freed):
    // 0.3 MB per worker for this net here, about 1 MB for larger ones.
    const r = await runChild(['--expose-gc'], ['workers', '40']);
    expect(r.code, r.stderr).toBe(0);
    const { workers, before, after } = r.out!;
    const perWorker = (after - before) / workers;
    expect(perWorker, `RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MB over ${workers} workers`).toBeLessThan(0.25);
  }, 180_000);

  it('9,000 models created and dropped on native: their memory comes back, RSS does not grow with the count', async () => {
    // A model's native buffers (about 40 KB here) are freed by their finalizers once collected; V8
    // is told their size (napi_adjust_external_memory), so it collects them promptly. Those
    // finalizers run on the event loop, so the peak depends on how often the loop turns. Before:
    // each model's kernel object was also held from its compiled step's plan by a reference, and
    // took several collections to go (peak 306 MB above the start for 10,000 models, here).
    const r = await runChild(['--expose-gc'], ['cycles', '3000']);
    expect(r.code, r.stderr).toBe(0);
    const { cycles, start, peak, round1, round3 } = r.out!;
    expect(cycles).toBe(9000);
    const mb = (v: number) => v.toFixed(1);
    // a model's buffers kept would add 6,000 × 40 KB = 240 MB from round 1 to round 3; the heap's
    // own settling varies by tens of MB from run to run (5.6 and 40.5 MB in two quiet runs, 80.4
    // under the full suite's load), so the bound is half of what a leak would add
    expect(round3 - round1, `RSS after collection: ${mb(round1)} MB after 3,000 models, ${mb(round3)} MB after 9,000`).toBeLessThan(120);
    expect(peak - start, `RSS ${mb(start)} -> peak ${mb(peak)} MB`).toBeLessThan(300);
  }, 180_000);
});
