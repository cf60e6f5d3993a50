#include "sm/read_pool.h"

#include <algorithm>

#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "core/check.h"

namespace raftsql::sm {

namespace {

constexpr char kTryElsewhere[] = "raftsql.dev/try-elsewhere";

absl::Status TryElsewhere(absl::string_view why) {
  absl::Status s = absl::UnavailableError(why);
  s.SetPayload(kTryElsewhere, absl::Cord("1"));
  return s;
}

}  // namespace

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

bool IsTryElsewhere(const absl::Status& s) {
  return s.GetPayload(kTryElsewhere).has_value();
}

ReadPool::ReadPool(std::vector<Connection> connections) {
  CHECK(!connections.empty());
  Refill(std::move(connections));
}

ReadPool::~ReadPool() {
  CHECK(retired_.empty());  // Every lease ended before the pool.
  for (const auto& slot : slots_) {
    CHECK(!slot->busy);
    Close(*slot);
  }
}

void ReadPool::Close(Slot& slot) {
  slot.statements.reset();  // Finalized first, or the close fails.
  sqlite3_close(slot.connection.db);
  slot.connection.db = nullptr;
}

int ReadPool::OnProgress(void* p) {
  Slot* slot = static_cast<Slot*>(p);
  if (slot->retired) return 1;
  // Only the lease's holder runs statements on the slot's connection.
  if (slot->limits == nullptr) return 0;
  slot->steps += kCheckEverySteps;
  if (slot->limits->max_steps != 0 && slot->steps > slot->limits->max_steps) {
    slot->interruption = TryElsewhere("the read ran past its step budget");
    return 1;
  }
  return ReadLimitReached(*slot->limits, &slot->interruption) ? 1 : 0;
}

absl::StatusOr<ReadPool::Lease> ReadPool::Acquire(const ReadLimits& limits) {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    for (const auto& slot : slots_) {
      if (slot->busy) continue;
      slot->busy = true;
      slot->limits = &limits;
      slot->steps = 0;
      slot->interruption = absl::OkStatus();
      return Lease(this, slot.get());
    }
    if (!limits.wait_for_connection) {
      return TryElsewhere("no read connection is free");
    }
    absl::Status why;
    if (ReadLimitReached(limits, &why)) return why;
    // Wake now and then to poll the cancellation.
    free_.wait_until(
        l, std::min(limits.deadline, std::chrono::steady_clock::now() +
                                         std::chrono::milliseconds(50)));
  }
}

void ReadPool::Retire(absl::Status why) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& slot : slots_) {
    if (!slot->busy) {
      Close(*slot);
      continue;
    }
    slot->retired_why = why;
    slot->retired = true;
    // Thread-safe, and at once even in a busy wait; the progress handler
    // keeps it interrupted.
    sqlite3_interrupt(slot->connection.db);
    retired_.push_back(std::move(slot));
  }
  slots_.clear();
  CheckInvariantsLocked();
}

void ReadPool::Refill(std::vector<Connection> connections) {
  {
    std::lock_guard<std::mutex> l(mu_);
    CHECK(slots_.empty());
    for (Connection& c : connections) {
      CHECK(c.db != nullptr && c.policy != nullptr);
      auto slot = std::make_unique<Slot>();
      slot->connection = std::move(c);
      slot->statements = std::make_unique<StatementCache>(
          slot->connection.db, slot->connection.policy.get(), kStatementLimits);
      sqlite3_progress_handler(slot->connection.db, kCheckEverySteps,
                               &ReadPool::OnProgress, slot.get());
      slots_.push_back(std::move(slot));
    }
    CheckInvariantsLocked();
  }
  free_.notify_all();
}

void ReadPool::CheckInvariants() const {
  std::lock_guard<std::mutex> l(mu_);
  CheckInvariantsLocked();
}

void ReadPool::CheckInvariantsLocked() const {
  for (const auto& slot : slots_) {
    CHECK(slot->connection.db != nullptr && slot->connection.policy != nullptr);
    CHECK(!slot->retired.load());
    CHECK_EQ(slot->busy, slot->limits != nullptr);
  }
  for (const auto& slot : retired_) {
    CHECK(slot->retired.load() && slot->busy);
    CHECK(slot->connection.db != nullptr);
  }
}

size_t ReadPool::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return slots_.size();
}

size_t ReadPool::kept_statements() const {
  std::lock_guard<std::mutex> l(mu_);
  size_t kept = 0;
  for (const auto& slot : slots_) {
    if (!slot->busy) kept += slot->statements->size();
  }
  return kept;
}

size_t ReadPool::retired() const {
  std::lock_guard<std::mutex> l(mu_);
  return retired_.size();
}

void ReadPool::Release(Slot* slot) {
  {
    std::lock_guard<std::mutex> l(mu_);
    CHECK(slot->busy);
    slot->busy = false;
    slot->limits = nullptr;
    if (slot->retired) {
      Close(*slot);
      auto it = std::find_if(
          retired_.begin(), retired_.end(),
          [slot](const std::unique_ptr<Slot>& r) { return r.get() == slot; });
      CHECK(it != retired_.end());
      retired_.erase(it);
      return;
    }
  }
  free_.notify_one();
}

ReadPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->Release(slot_);
}

sqlite3* ReadPool::Lease::db() const { return slot_->connection.db; }

StatementPolicy& ReadPool::Lease::policy() const {
  return *slot_->connection.policy;
}

StatementCache& ReadPool::Lease::statements() const {
  return *slot_->statements;
}

absl::Status ReadPool::Lease::Interruption() const {
  if (slot_->retired) return slot_->retired_why;
  return slot_->interruption;
}

}  // namespace raftsql::sm
