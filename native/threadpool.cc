#include "threadpool.h"

namespace deltaprop {

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
    workers_.emplace_back([this, id] { worker_loop(id); });
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

void ThreadPool::worker_loop(int id) {
  unsigned long long seen = 0;
  for (;;) {
    std::unique_lock<std::mutex> lk(mu_);
    wake_cv_.wait(lk, [&] { return gen_ != seen; });
    seen = gen_;
    if (id >= want_) continue;
    lk.unlock();
    claim_tasks();
    lk.lock();
    if (++finished_ == want_) done_cv_.notify_one();
  }
}

void ThreadPool::run(int ntasks, int threads, const std::function<void(int)>& fn) {
  int p = threads < ntasks ? threads : ntasks;
  if (p <= 1 || !run_mu_.try_lock()) {
    for (int i = 0; i < ntasks; i++) fn(i);
    return;
  }
  ensure_workers(p - 1);
  {
    std::lock_guard<std::mutex> lk(mu_);
    fn_ = &fn;
    ntasks_ = ntasks;
    next_.store(0);
    want_ = p - 1;
    finished_ = 0;
    ++gen_;
  }
  wake_cv_.notify_all();
  claim_tasks();
  {
    // Wait for every participating worker to leave claim_tasks(), so that none can touch
    // fn_/ntasks_ of the next generation.
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return finished_ == want_; });
    fn_ = nullptr;
  }
  run_mu_.unlock();
}

}  // namespace deltaprop
