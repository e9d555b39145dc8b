// Several off-thread training steps per hand-off: a program of k copies of a plan's gathering
// step (gather the batch from the resident rows, train, copy its outputs aside), which the backend
// runs in one async call (CompiledStep.runStepsAsync). The event loop then wakes once per k
// batches instead of once per batch, and writes the k batches' row numbers at once.
import type { Backend, Buf, CompiledStep } from '../backends/backend.js';
import type { Op, Program } from '../backends/program.js';
import type { Plan, ResidentRows, StepChunk } from './plan.js';

/** The most steps per hand-off. */
export const CHUNK_MAX_STEPS = 64;
/** The most floats a chunk's copies (row numbers, outputs, targets, weights) may take: 16 MB. */
const CHUNK_MAX_FLOATS = 1 << 22;

/**
 * How many batches of p's m rows one hand-off may train: at most `wanted`, CHUNK_MAX_STEPS, and
 * as many as the chunk's copies fit in CHUNK_MAX_FLOATS; 1 where the backend runs one step a call.
 */
export function chunkSteps(backend: Backend, p: Plan, outputs: number, wanted: number): number {
  if (!backend.asyncSteps || wanted <= 1) return 1;
  const perStep = p.m * (2 * outputs + 2);
  return Math.max(1, Math.min(wanted, CHUNK_MAX_STEPS, Math.floor(CHUNK_MAX_FLOATS / perStep)));
}

/**
 * The chunk program of `steps` steps of plan p gathering from `rows`: each step's gathers read its
 * own slice of the row numbers and its copies write their own slices, so that the fit reads every
 * step's outputs after the hand-off. `train`: the plan's training program (as the single step's); `outputOf`: its last activations.
 */
export function compileChunk(backend: Backend, p: Plan, rows: ResidentRows, steps: number, train: Program, outputOf: Buf,
  inputs: number, outputs: number): StepChunk {
  const m = p.m, n = m * outputs, count = rows.rows;
  const idx = backend.alloc(steps * m), out = backend.alloc(steps * n), y = backend.alloc(steps * n);
  const w = rows.w ? backend.alloc(steps * m) : null;
  const ops: Op[] = [];
  for (let s = 0; s < steps; s++) {
    const at = idx.view(s * m, m);
    // a gather first: no step starts inside a run of elementwise ops (the addon checks it)
    ops.push({ op: 'gatherRows', dst: p.x, src: rows.x, idx: at, m, rows: count, cols: inputs },
      { op: 'gatherRows', dst: p.y, src: rows.y, idx: at, m, rows: count, cols: outputs });
    if (rows.w) ops.push({ op: 'gatherRows', dst: p.w, src: rows.w, idx: at, m, rows: count, cols: 1 });
    ops.push(...train, { op: 'copy', dst: out.view(s * n, n), src: outputOf, n }, { op: 'copy', dst: y.view(s * n, n), src: p.y, n });
    if (w) ops.push({ op: 'copy', dst: w.view(s * m, m), src: p.w, n: m });
  }
  const compiled = backend.compileProgram!(ops) as CompiledStep;
  if (!compiled.runStepsAsync) throw new Error(`backend ${backend.name}: asyncSteps is set, but its compiled programs have no runStepsAsync`);
  return {
    from: rows, steps, opsPerStep: ops.length / steps, compiled, idx, out, y, w,
    bc: new Float64Array(2 * steps), losses: new Float64Array(steps),
  };
}

/**
 * The row numbers of `steps` batches of c's m rows from batch position `start` into c.idx:
 * order[start + i] (start + i without an order), i < steps·m.
 */
export function stageChunkIndices(c: StepChunk, m: number, start: number, steps: number, order?: Uint32Array): void {
  const idx = c.idx.data, n = steps * m;
  if (order) for (let i = 0; i < n; i++) idx[i] = order[start + i];
  else for (let i = 0; i < n; i++) idx[i] = start + i;
}
