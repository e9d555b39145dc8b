// The threads build's worker side: each worker of src/backends/wasm/pool.ts instantiates this
// module on the shared memory, calls workerStart(tid) once and then workerLoop(tid), which returns
// only when the pool quits. Workers never allocate: their scratch is thread tid's region.
import { runGemmBlocks, useScratch } from './gemm';
import { awaitTask, leaveTask, TASK_GEMM, taskKind, taskTakesPart } from './threads';

/** Binds this instance to thread `tid`'s scratch. */
export function workerStart(tid: i32): void {
  useScratch(tid);
}

/** Runs the pool's tasks from generation `seen` on until the pool quits. */
export function workerLoop(tid: i32, seen: i32): void {
  if (!ASC_FEATURE_THREADS) return;
  for (;;) {
    const gen = awaitTask(seen);
    if (gen < 0) return;
    seen = gen;
    if (taskTakesPart(tid) && taskKind() == TASK_GEMM) runGemmBlocks();
    leaveTask();
  }
}
