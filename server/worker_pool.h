// WorkerPool: a few threads running queued tasks in order of arrival (the
// server's linearizable reads run here once their read index is applied, so
// that neither the Raft loop nor gRPC's callback threads block on SQLite).
#ifndef RAFTSQL_SERVER_WORKER_POOL_H_
#define RAFTSQL_SERVER_WORKER_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace raftsql::server {

class WorkerPool {
 public:
  // At most `max_queued` tasks wait for a thread; Run refuses more.
  WorkerPool(int threads, size_t max_queued) : max_queued_(max_queued) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  // Runs every task already queued, then joins.
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  // Queues `task`; false (task dropped) if max_queued tasks wait already.
  [[nodiscard]] bool Run(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (tasks_.size() >= max_queued_) return false;
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
  }

 private:
  void Run() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stop_
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_WORKER_POOL_H_
