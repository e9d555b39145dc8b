// A persistent pool of worker threads shared by every backend instance in the process. run()
// hands out task indices; the caller works too and returns as soon as every task is done: it never
// waits for a worker that was not scheduled (on a busy machine the caller may run every task).
// Tasks are claimed from one atomic word that also holds the generation, so a late worker cannot
// claim a task of a finished run. Workers spin briefly after a run before sleeping, because a
// training step issues parallel GEMMs back to back. A run that finds the pool busy (another JS
// thread is inside one) runs its tasks serially: results never depend on which thread ran a task.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace deltaprop {

class ThreadPool {
 public:
  static ThreadPool& instance();
  // Runs fn(0) … fn(ntasks-1) on at most `threads` threads, returns when all are done.
  void run(int ntasks, int threads, const std::function<void(int)>& fn);
  static int hardware_threads();

 private:
  void ensure_workers(int n);
  void worker_loop(int id, uint32_t seen);
  int claim(uint32_t gen);  // a task index of generation gen, or -1
  void work(uint32_t gen);

  std::mutex run_mu_;  // one parallel region at a time
  std::mutex mu_;      // guards workers_ and the sleep/wake hand-off
  std::condition_variable wake_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* fn_ = nullptr;  // valid while a task of the run is unclaimed
  std::atomic<uint64_t> work_{0};     // generation (32 bits) | task count (16) | next task (16)
  std::atomic<int> done_{0};          // tasks finished in the current run
  std::atomic<int> want_{0};          // workers taking part in the current run
  std::atomic<uint32_t> gen_{0};      // bumped per run, to wake workers
};

}  // namespace deltaprop
