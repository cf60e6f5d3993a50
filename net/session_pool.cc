#include "net/session_pool.h"

namespace raftsql::net {

SessionPool::SessionPool(uint64_t fixed, uint64_t seed)
    : fixed_(fixed != 0), rng_(seed) {
  if (fixed_) {
    idle_.push_back(Session{fixed, 0});
    made_ = 1;
  }
}

SessionPool::Lease SessionPool::Acquire() {
  std::unique_lock<std::mutex> l(mu_);
  if (fixed_) idle_cv_.wait(l, [this] { return !idle_.empty(); });
  if (idle_.empty()) {
    uint64_t id = 0;
    while (id == 0) id = rng_();
    ++made_;
    return Lease(this, id, 0);
  }
  const Session s = idle_.back();
  idle_.pop_back();
  return Lease(this, s.id, s.sequence);
}

void SessionPool::Release(Session s) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (idle_.size() >= kMaxIdleSessions) return;
    idle_.push_back(s);
  }
  idle_cv_.notify_one();
}

size_t SessionPool::made() const {
  std::lock_guard<std::mutex> l(mu_);
  return made_;
}

SessionPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->Release(Session{id_, sequence_});
}

}  // namespace raftsql::net
