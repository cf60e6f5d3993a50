#include "sm/read_pool.h"

#include "absl/status/statusor.h"
#include "core/check.h"

namespace raftsql::sm {

bool ReadLimitReached(const ReadLimits& limits, absl::Status* why) {
  if (limits.cancelled && limits.cancelled()) {
    *why = absl::CancelledError("query cancelled: the client went away");
    return true;
  }
  if (std::chrono::steady_clock::now() >= limits.deadline) {
    *why = absl::DeadlineExceededError(
        "query interrupted: it ran past its deadline");
    return true;
  }
  return false;
}

ReadPool::ReadPool(std::vector<sqlite3*> connections) {
  CHECK(!connections.empty());
  for (sqlite3* db : connections) {
    CHECK(db != nullptr);
    auto slot = std::make_unique<Slot>();
    slot->db = db;
    sqlite3_progress_handler(db, kCheckEverySteps, &ReadPool::OnProgress,
                             slot.get());
    slots_.push_back(std::move(slot));
  }
}

ReadPool::~ReadPool() {
  for (const auto& slot : slots_) {
    CHECK(!slot->busy);  // Every lease ended before the pool.
    sqlite3_close(slot->db);
  }
}

int ReadPool::OnProgress(void* p) {
  Slot* slot = static_cast<Slot*>(p);
  // Only the lease's holder runs statements on the slot's connection.
  if (slot->limits == nullptr) return 0;
  return ReadLimitReached(*slot->limits, &slot->interruption) ? 1 : 0;
}

absl::StatusOr<ReadPool::Lease> ReadPool::Acquire(const ReadLimits& limits) {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = *slots_[i];
      if (slot.busy) continue;
      slot.busy = true;
      slot.limits = &limits;
      slot.interruption = absl::OkStatus();
      return Lease(this, i);
    }
    absl::Status why;
    if (ReadLimitReached(limits, &why)) return why;
    // Wake now and then to poll the cancellation.
    free_.wait_until(
        l, std::min(limits.deadline, std::chrono::steady_clock::now() +
                                         std::chrono::milliseconds(50)));
  }
}

void ReadPool::Release(size_t i) {
  {
    std::lock_guard<std::mutex> l(mu_);
    Slot& slot = *slots_[i];
    CHECK(slot.busy);
    slot.busy = false;
    slot.limits = nullptr;
  }
  free_.notify_one();
}

ReadPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->Release(slot_);
}

sqlite3* ReadPool::Lease::db() const { return pool_->slots_[slot_]->db; }

absl::Status ReadPool::Lease::Interruption() const {
  return pool_->slots_[slot_]->interruption;
}

}  // namespace raftsql::sm
