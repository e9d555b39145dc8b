// Soak: 1,000,000 compiled training steps of a tiny-xor-sized net (2-8-1, Adam, batch 4) on each
// compiled backend, then 12,000 models created (each on a backend of its own, as createModel()
// does), fitted for an epoch and dropped; memory sampled along the way in a process of its own
// (test/programs/soak.ts), so that nothing of the test runner's is counted and a hang is seen.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from './backends.js';
import { buildPrograms, runChild } from './fuzz/driver.js';

const STEPS = 1_000_000, CYCLES = 12_000;
/**
 * Steps: a compiled step allocates nothing (steady-state.test.ts holds it to ~0 bytes a step), so
 * after a warm-up of 10% RSS must stay within 4 MB for the other 900,000 steps (a leak of 5 bytes a
 * step would fail), and the JS heap (after gc) within 1 MB.
 */
const STEP_RSS = 4 * 1024 * 1024, STEP_HEAP = 1024 * 1024;
/**
 * Cycles: a dropped 2-8-1 model holds about 10 KB with its backend (six arenas of 33 floats, batch
 * buffers, a compiled step, a native kernel object or a wasm instance). The process's RSS climbs
 * to a plateau over the first few thousand cycles whatever the backend (the JS heap grows its
 * spaces, malloc keeps freed pages: measured 10 → 40 MB of heap and about 75 MB more RSS on native
 * by 6,000 cycles), and on native it then wanders by up to about 12 MB (120–133 MB) as malloc
 * reuses and returns pages. So growth is measured over the second half: at most 4 KB a cycle of
 * RSS (24 MB) and 1 KB of heap on average. Models (or their backends) that kept their memory would
 * add about 10 KB a cycle, 60 MB.
 */
const CYCLE_RSS = 4 * 1024, CYCLE_HEAP = 1024;

interface Sample { at: number; rss: number; heapUsed: number; external: number }
interface Soak { stepMs: number; firstLoss: number; lastLoss: number; stepSamples: Sample[]; cycleMs: number; cycleSamples: Sample[] }

const mb = (b: number): string => `${(b / 1048576).toFixed(1)} MB`;
/** Growth from the sample at `warmUp` of the run to the largest after it. */
function growth(samples: Sample[], key: 'rss' | 'heapUsed', warmUp: number): number {
  const from = samples.findIndex((s) => s.at >= samples[samples.length - 1].at * warmUp);
  return Math.max(...samples.slice(from).map((s) => s[key])) - samples[from][key];
}

let program = '';
let remove = (): void => {};
beforeAll(async () => {
  const built = await buildPrograms({ soak: 'test/programs/soak.ts' });
  program = `${built.dir}/soak.js`;
  remove = built.remove;
}, 60_000);
afterAll(() => remove());

const COMPILED = BACKENDS.filter((b) => b.compileStep).map((b) => [b.name] as const);
// (none when the test backends are narrowed to js)
describe.skipIf(COMPILED.length === 0)('soak', () => {
  it.each(COMPILED)(`%s: ${STEPS.toLocaleString('en-US')} compiled steps and ${CYCLES.toLocaleString('en-US')} model create-fit-drop cycles: memory stays flat, nothing hangs`, async (name) => {
    // about 5 s on a quiet machine; 20 s without a new sample is a hang
    const r = await runChild(program, [name, String(STEPS), String(CYCLES)], 150_000, 20_000, ['--expose-gc']);
    const progress = r.stdout.split('\n').filter((l) => l.startsWith('P ')).pop() ?? 'before the first sample';
    expect(r.timedOut, `hung after "${progress.slice(2)}" (no progress for 20 s)`).toBe(false);
    expect(r.signal ?? r.code, `died after "${progress.slice(2)}": ${r.stderr.slice(-800)}`).toBe(0);
    const s = JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('R '))!.slice(2)) as Soak;
    const rssMb = (ss: Sample[]) => ss.map((x) => (x.rss / 1048576).toFixed(1)).join(' ');
    console.log(`soak ${name}: ${STEPS} steps in ${(s.stepMs / 1000).toFixed(1)} s, RSS MB ${rssMb(s.stepSamples)}; ` +
      `${CYCLES} cycles in ${(s.cycleMs / 1000).toFixed(1)} s, RSS MB ${rssMb(s.cycleSamples)}`);
    expect(Number.isFinite(s.lastLoss) && s.lastLoss < s.firstLoss, `loss ${s.firstLoss} → ${s.lastLoss}`).toBe(true);
    expect(s.stepSamples).toHaveLength(21);
    const stepRss = growth(s.stepSamples, 'rss', 0.1), stepHeap = growth(s.stepSamples, 'heapUsed', 0.1);
    expect(stepRss, `RSS grew ${mb(stepRss)} over the last 900,000 steps (bound ${mb(STEP_RSS)}): ${rssMb(s.stepSamples)}`).toBeLessThanOrEqual(STEP_RSS);
    expect(stepHeap, `heap grew ${mb(stepHeap)} over the last 900,000 steps (bound ${mb(STEP_HEAP)})`).toBeLessThanOrEqual(STEP_HEAP);
    const cycles = CYCLES * 0.5;
    const cycleRss = growth(s.cycleSamples, 'rss', 0.5), cycleHeap = growth(s.cycleSamples, 'heapUsed', 0.5);
    expect(cycleRss, `RSS grew ${mb(cycleRss)} over the last ${cycles} cycles, ${(cycleRss / cycles / 1024).toFixed(1)} KB a cycle (bound ${CYCLE_RSS / 1024} KB): ${rssMb(s.cycleSamples)}`)
      .toBeLessThanOrEqual(CYCLE_RSS * cycles);
    expect(cycleHeap, `heap grew ${mb(cycleHeap)} over the last ${cycles} cycles (bound ${CYCLE_HEAP} B a cycle)`).toBeLessThanOrEqual(CYCLE_HEAP * cycles);
  }, 180_000);
});
