// The threads build's pool (src/backends/wasm/pool.ts starts it): every worker runs this same
// module on the same shared memory, blocked in workerLoop on a futex word of the control block
// below. The main thread, inside a kernel, publishes a task there (its parameters, a block count),
// wakes the workers, claims blocks like them, and waits until every worker has left the task.
// Blocks are claimed from an atomic counter, so a thread the OS holds back does not hold the run
// back; what a block computes never depends on who computes it, so neither do the bits.
//
// In the single-threaded build (no `threads` feature) none of this is compiled: threadsActive() is
// a constant 1 and the control block takes no memory.

/** Bytes of the control block, at the start of the scratch area (after the static data). */
export const CONTROL_BYTES: usize = ASC_FEATURE_THREADS ? 256 : 0;
export const control: usize = (__heap_base + 63) & ~<usize>63;

// Control words (byte offsets). The layout is read by pool.ts too (CONTROL in pool.ts).
const GEN: usize = 0; // task generation: bumped to publish, the futex word workers wait on
const PENDING: usize = 4; // workers still in the current task; the futex word the main thread waits on
const NEXT: usize = 8; // the next unclaimed block of the current task
const QUIT: usize = 12; // 1: workers return from workerLoop
const FAILED: usize = 16; // a worker's thread id + 1 when it stopped on an error (set by pool.ts)
const ACTIVE: usize = 20; // threads taking part in tasks (main included), at most POOL
const MAIN_WAITS: usize = 24; // 1 where the main thread may block (not a browser's main thread)
const POOL: usize = 28; // threads in the pool, main included
const KIND: usize = 32; // what the current task is (TASK_*)
// 1 once every worker is in its loop (set by pool.ts between calls). Until then a published task
// is the caller's alone (see publishTask), and WANTED tells pool.ts that one was: the workers are
// started lazily, so that a backend whose kernels never split never starts any.
const STARTED: usize = 56;
const WANTED: usize = 60;
/** Where a task's parameters start (TASK_PARAMS bytes, laid out by the task's owner). */
export const TASK_PARAMS: usize = 64;
export const TASK_PARAMS_BYTES: usize = 128;
// 192..256: a worker's error message (UTF-8, written by pool.ts)

export const TASK_GEMM: i32 = 1;
export const TASK_OPTIM: i32 = 2; // an optimizer update over element blocks (optim.ts)
export const TASK_BIAS_GRAD: i32 = 3; // bias-gradient column blocks (dense.ts)
export const TASK_SOFTMAX: i32 = 4; // softmax row blocks (dense.ts)
export const TASK_DROPOUT: i32 = 5; // dropout element blocks (dropout.ts)
export const TASK_GEMV: i32 = 6; // GEMV column ranges (gemm.ts gemvParallel)

/** Threads build: below this much work (in elements) an elementwise op runs on the calling thread. */
export const PARALLEL_ELEMENTS: i32 = 1 << 16;

// Tens of microseconds of polling before a futex wait (native/threadpool.cc spins as long): the
// kernels of a step, and the calls of a batch-1 predict, follow each other by less than a wake-up
// takes. With 4,000 polls (a few µs) each split GEMV paid a futex wake: a 1×512×784 GEMV took
// 68 µs on 2 threads against 56 µs on one; with 50,000, 35 µs.
const SPIN: i32 = 50000;

/** The control block's address (pool.ts reads a worker's failure there). */
export function poolControl(): usize {
  return control;
}

/** Threads a task may use now (1: run on the calling thread). */
// @ts-ignore: decorator
@inline export function threadsActive(): i32 {
  if (!ASC_FEATURE_THREADS) return 1;
  return atomic.load<i32>(control + ACTIVE);
}

/** Sets up the control block for `pool` threads (main included); called once, before any worker starts. */
export function poolInit(pool: i32, mainWaits: bool): void {
  if (!ASC_FEATURE_THREADS) return;
  memory.fill(control, 0, CONTROL_BYTES);
  store<i32>(control + POOL, pool);
  store<i32>(control + MAIN_WAITS, mainWaits ? 1 : 0);
  atomic.store<i32>(control + ACTIVE, pool);
}

/** Threads taking part from now on: clamped to [1, pool]; returns the value set. */
export function poolSetActive(n: i32): i32 {
  if (!ASC_FEATURE_THREADS) return 1;
  const pool = load<i32>(control + POOL);
  const v = n < 1 ? 1 : n > pool ? pool : n;
  atomic.store<i32>(control + ACTIVE, v);
  return v;
}

/** Asks every worker to return from workerLoop. */
export function poolQuit(): void {
  if (!ASC_FEATURE_THREADS) return;
  atomic.store<i32>(control + QUIT, 1);
  atomic.add<i32>(control + GEN, 1);
  atomic.notify(control + GEN, -1);
}

/** 0, or the thread id + 1 of a worker that stopped on an error (the pool is then unusable). */
export function poolFailed(): i32 {
  if (!ASC_FEATURE_THREADS) return 0;
  return atomic.load<i32>(control + FAILED);
}

/** Threads for an elementwise op over `work` elements: threadsActive(), or 1 below PARALLEL_ELEMENTS. */
// @ts-ignore: decorator
@inline export function threadsFor(work: i64): i32 {
  if (!ASC_FEATURE_THREADS) return 1;
  return work >= <i64>PARALLEL_ELEMENTS ? threadsActive() : 1;
}

/** Claims the next block of the current task: its index, or `count` and above when none is left. */
// @ts-ignore: decorator
@inline export function claim(): i32 {
  return atomic.add<i32>(control + NEXT, 1);
}

/**
 * Publishes the task whose parameters the caller has written at TASK_PARAMS and wakes the workers.
 * The caller then claims blocks itself (all of them while the workers are not started: every
 * split must claim its blocks, never assume a thread's share) and calls joinTask.
 */
export function publishTask(kind: i32): void {
  const workers = load<i32>(control + POOL) - 1;
  store<i32>(control + KIND, kind);
  atomic.store<i32>(control + NEXT, 0);
  if (atomic.load<i32>(control + STARTED) == 0) {
    // no worker is running yet: nobody is woken, the caller claims every block itself (the bits
    // of a split do not depend on who computes a block) and pool.ts starts the workers
    atomic.store<i32>(control + PENDING, 0);
    atomic.store<i32>(control + WANTED, 1);
    return;
  }
  atomic.store<i32>(control + PENDING, workers);
  // the seq-cst add orders every plain store above before a worker's load that sees the new gen
  atomic.add<i32>(control + GEN, 1);
  atomic.notify(control + GEN, workers);
}

/** Waits until every worker has left the current task (its blocks are then all written). */
export function joinTask(): void {
  const at = control + PENDING;
  for (let s = 0; s < SPIN; s++) if (atomic.load<i32>(at) == 0) return;
  const waits = load<i32>(control + MAIN_WAITS) != 0;
  for (;;) {
    const left = atomic.load<i32>(at);
    // a worker that stopped on an error has left too (pool.ts): the caller's backend refuses
    // every later call with its message
    if (left == 0 || atomic.load<i32>(control + FAILED) != 0) return;
    if (waits) memory.atomic.wait32(at, left, -1);
  }
}

/** A worker has run out of blocks of the current task (or stopped on an error: pool.ts calls it too). */
export function leaveTask(): void {
  if (atomic.sub<i32>(control + PENDING, 1) == 1) atomic.notify(control + PENDING, 1);
}

/**
 * Waits for the generation after `seen` (a task or the quit signal); returns it, or -1 to quit.
 * A worker whose thread id is not among the active threads leaves the task at once.
 */
export function awaitTask(seen: i32): i32 {
  const at = control + GEN;
  let gen = atomic.load<i32>(at);
  for (let s = 0; s < SPIN && gen == seen; s++) gen = atomic.load<i32>(at);
  // waits of at most 50 ms, so that an idle worker returns to code that a termination interrupts
  // (Node stops every worker at process exit and waits for it: one blocked for good would hang
  // the exit); the generation is checked again after each, so the bits are not affected
  while (gen == seen) {
    memory.atomic.wait32(at, seen, 50_000_000);
    gen = atomic.load<i32>(at);
  }
  if (atomic.load<i32>(control + QUIT) != 0) return -1;
  return gen;
}

/** The current task's kind (TASK_*). */
export function taskKind(): i32 {
  return load<i32>(control + KIND);
}

/** Whether thread `tid` takes part in tasks now. */
export function taskTakesPart(tid: i32): bool {
  return tid < atomic.load<i32>(control + ACTIVE);
}
