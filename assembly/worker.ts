// The threads build's worker side: each worker of src/backends/wasm/pool.ts instantiates this
// module on the shared memory, calls workerStart(tid) once and then workerLoop(tid), which returns
// only when the pool quits. Workers never allocate: their scratch is thread tid's region.
import { runBiasGradBlocks, runSoftmaxBlocks } from './dense';
import { runDropoutBlocks } from './dropout';
import { runGemmBlocks, runGemvBlocks, useScratch } from './gemm';
import { runOptimBlocks } from './optim';
import {
  awaitTask, leaveTask, TASK_BIAS_GRAD, TASK_DROPOUT, TASK_GEMM, TASK_GEMV, TASK_OPTIM, TASK_SOFTMAX, taskKind, taskTakesPart,
} from './threads';

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
    if (taskTakesPart(tid)) {
      const kind = taskKind();
      if (kind == TASK_GEMM) runGemmBlocks();
      else if (kind == TASK_GEMV) runGemvBlocks();
      else if (kind == TASK_OPTIM) runOptimBlocks();
      else if (kind == TASK_BIAS_GRAD) runBiasGradBlocks();
      else if (kind == TASK_SOFTMAX) runSoftmaxBlocks();
      else if (kind == TASK_DROPOUT) runDropoutBlocks();
    }
    leaveTask();
  }
}
