#include "threadpool.h"

#include "flush_subnormals.h"

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
    uint32_t start = gen_.load(std::memory_order_acquire);
    workers_.emplace_back([this, id, start] {
      flush_subnormals_on_this_thread();  // workers run only kernels (flush_subnormals.h)
      worker_loop(id, start);
    });
    workers_.back().detach();
  }
}

int ThreadPool::claim(uint32_t gen) {
  uint64_t v = work_.load(std::memory_order_acquire);
  for (;;) {
    if ((uint32_t)(v >> 32) != gen) return -1;
    const uint32_t n = (uint32_t)(v >> 16) & 0xffff, i = (uint32_t)v & 0xffff;
    if (i >= n) return -1;
    if (work_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_acquire)) return (int)i;
  }
}

void ThreadPool::work(uint32_t gen) {
  for (int i; (i = claim(gen)) >= 0;) {
    (*fn_)(i);  // the run cannot end before this task is done: fn_ is still this run's
    done_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::worker_loop(int id, uint32_t seen) {
  for (;;) {
    uint32_t g = gen_.load(std::memory_order_acquire);
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
    if (id < want_.load(std::memory_order_relaxed)) work(g);
  }
}

void ThreadPool::run(int ntasks, int threads, const std::function<void(int)>& fn) {
  int p = threads < ntasks ? threads : ntasks;
  if (p <= 1 || ntasks > 0xffff || !run_mu_.try_lock()) {
    for (int i = 0; i < ntasks; i++) fn(i);
    return;
  }
  ensure_workers(p - 1);
  fn_ = &fn;
  done_.store(0, std::memory_order_relaxed);
  want_.store(p - 1, std::memory_order_relaxed);
  const uint32_t g = gen_.load(std::memory_order_relaxed) + 1;
  work_.store(((uint64_t)g << 32) | ((uint64_t)ntasks << 16), std::memory_order_release);
  gen_.store(g, std::memory_order_release);
  {
    // Taking the lock orders this wake-up after any worker's predicate check: none is lost.
    std::lock_guard<std::mutex> lk(mu_);
  }
  wake_cv_.notify_all();
  work(g);
  for (int s = 0; done_.load(std::memory_order_acquire) != ntasks; s++) {
    if (s < kSpinBeforeSleep) cpu_relax();
    else std::this_thread::yield();
  }
  fn_ = nullptr;
  run_mu_.unlock();
}

}  // namespace deltaprop
