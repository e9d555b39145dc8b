#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax() { asm volatile("yield" ::: "memory"); }
#else
static inline void cpu_relax() {}
#endif

namespace deltaprop {

namespace {
constexpr int kSpinBeforeSleep = 4000;  // ~50-100 µs of pause instructions
}

ThreadPool& ThreadPool::instance() {
  // Never destroyed: workers may still be parked on the condition variable at process exit.
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

int ThreadPool::hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : (int)n;
}

void ThreadPool::ensure_workers(int n) {
  std::lock_guard<std::mutex> lk(mu_);
  while ((int)workers_.size() < n) {
    int id = (int)workers_.size();
    // The generation before the run that needs this worker: the worker treats the next one as new
    // even if it starts only after run() has bumped gen_.
    unsigned long long start = gen_.load(std::memory_order_acquire);
    workers_.emplace_back([this, id, start] { worker_loop(id, start); });
    workers_.back().detach();
  }
}

void ThreadPool::claim_tasks() {
  for (;;) {
    int i = next_.fetch_add(1);
    if (i >= ntasks_) return;
    (*fn_)(i);
  }
}

void ThreadPool::worker_loop(int id, unsigned long long seen) {
  for (;;) {
    unsigned long long g = gen_.load(std::memory_order_acquire);
    for (int s = 0; g == seen && s < kSpinBeforeSleep; s++) {
      cpu_relax();
      g = gen_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      wake_cv_.wait(lk, [&] { return gen_.load(std::memory_order_acquire) != seen; });
      g = gen_.load(std::memory_order_acquire);
    }
    seen = g;
    if (id >= want_.load(std::memory_order_relaxed)) continue;
    claim_tasks();
    finished_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::run(int ntasks, int threads, const std::function<void(int)>& fn) {
  int p = threads < ntasks ? threads : ntasks;
  if (p <= 1 || !run_mu_.try_lock()) {
    for (int i = 0; i < ntasks; i++) fn(i);
    return;
  }
  ensure_workers(p - 1);
  fn_ = &fn;
  ntasks_ = ntasks;
  next_.store(0, std::memory_order_relaxed);
  want_.store(p - 1, std::memory_order_relaxed);
  finished_.store(0, std::memory_order_relaxed);
  gen_.fetch_add(1, std::memory_order_release);
  {
    // Taking the lock orders this wake-up after any worker's predicate check: none is lost.
    std::lock_guard<std::mutex> lk(mu_);
  }
  wake_cv_.notify_all();
  claim_tasks();
  // Wait for every participating worker to leave claim_tasks(), so that none can touch fn_ or
  // ntasks_ of the next generation.
  for (int s = 0; finished_.load(std::memory_order_acquire) != p - 1; s++) {
    if (s < kSpinBeforeSleep) cpu_relax();
    else std::this_thread::yield();
  }
  fn_ = nullptr;
  run_mu_.unlock();
}

}  // namespace deltaprop
