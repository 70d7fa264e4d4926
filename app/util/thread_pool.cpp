#include "app/util/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace metaplast::util {

namespace {

std::atomic<int> g_compute_threads{1};

// Workers wait for a new generation of work, spinning for a short while first (the next job of
// a training step usually follows within microseconds), then sleeping on a condition variable.
class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  void run(std::size_t count, std::size_t parts,
           const std::function<void(std::size_t, std::size_t)>& body) {
    std::lock_guard serial(run_mutex_);
    ensure_workers(parts - 1);
    {
      std::lock_guard lock(mutex_);
      body_ = &body;
      count_ = count;
      parts_ = parts;
      pending_.store(parts - 1);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    body(0, count / parts);
    // The caller spins too: the other ranges are about as long as its own.
    while (pending_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

 private:
  void ensure_workers(std::size_t n) {
    while (workers_.size() < n) {
      const std::size_t index = workers_.size() + 1;  // range index; 0 is the caller's
      // The generation before this job's: a worker that starts late must still see the job.
      const std::uint64_t seen = generation_.load();
      workers_.emplace_back([this, index, seen] { work(index, seen); });
    }
  }

  void work(std::size_t index, std::uint64_t seen) {
    for (;;) {
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      while (generation_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < spin_until) {
      }
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      seen = generation_.load();
      if (stop_) return;
      const std::size_t parts = parts_, count = count_;
      const auto* body = body_;
      lock.unlock();
      if (index < parts) {
        (*body)(count * index / parts, count * (index + 1) / parts);
        pending_.fetch_sub(1, std::memory_order_release);
      }
    }
  }

  std::mutex run_mutex_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::size_t> pending_{0};
  const std::function<void(std::size_t, std::size_t)>* body_ = nullptr;
  std::size_t count_ = 0, parts_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  static Pool instance;
  return instance;
}

}  // namespace

void set_compute_threads(int threads) { g_compute_threads.store(std::max(1, threads)); }

int compute_threads() { return g_compute_threads.load(); }

void parallel_ranges(std::size_t count, int threads,
                     const std::function<void(std::size_t, std::size_t)>& body) {
  const std::size_t parts =
      std::min<std::size_t>(static_cast<std::size_t>(std::max(1, threads)), count);
  if (parts <= 1) {
    body(0, count);
    return;
  }
  pool().run(count, parts, body);
}

}  // namespace metaplast::util
