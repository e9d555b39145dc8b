// A persistent pool of worker threads shared by every backend instance in the process. run()
// hands out task indices; the caller works too. Workers spin briefly after a run before sleeping,
// because a training step issues parallel GEMMs back to back (tens of microseconds apart) and a
// condition-variable wake-up costs about as much as one of them. A run that finds the pool busy
// (another JS thread is inside one) runs its tasks serially: results never depend on which thread
// ran a task.
#pragma once
#include <atomic>
#include <condition_variable>
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
  void worker_loop(int id, unsigned long long seen);
  void claim_tasks();

  std::mutex run_mu_;  // one parallel region at a time
  std::mutex mu_;      // guards workers_ and the sleep/wake hand-off
  std::condition_variable wake_cv_;
  std::vector<std::thread> workers_;
  // Published by run() before gen_ is bumped (release), read by workers after (acquire).
  const std::function<void(int)>* fn_ = nullptr;
  int ntasks_ = 0;
  std::atomic<int> want_{0};      // workers taking part in the current generation
  std::atomic<int> finished_{0};  // of those, how many have left claim_tasks()
  std::atomic<unsigned long long> gen_{0};
  std::atomic<int> next_{0};
};

}  // namespace deltaprop
