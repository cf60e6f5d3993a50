// ReadPool: the state machine's read connections (Query, GetVersion), each
// used by one reader at a time, so that a slow read holds one connection and
// the others keep serving. A read runs under a deadline and a cancellation
// check, polled by SQLite's progress handler, which interrupts it.
// Thread-safe.
#ifndef RAFTSQL_SM_READ_POOL_H_
#define RAFTSQL_SM_READ_POOL_H_

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace raftsql::sm {

// What bounds one read. Wall-clock limits are fine here: reads are local and
// change nothing (unlike writes, DESIGN.md §3).
struct ReadLimits {
  std::chrono::steady_clock::time_point deadline =
      std::chrono::steady_clock::time_point::max();
  // Polled while the read runs (the client went away); may be empty.
  std::function<bool()> cancelled;
  // Bytes of the result (values, column names), checked as rows arrive.
  size_t max_result_bytes = size_t{64} << 20;
};

class ReadPool {
 public:
  // How often (in VM steps) a running read checks its limits.
  static constexpr int kCheckEverySteps = 1000;

  // Takes ownership of `connections` (configured, read-only; none null).
  explicit ReadPool(std::vector<sqlite3*> connections);
  ~ReadPool();

  // A connection held for one read; released when it goes.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : pool_(other.pool_), slot_(other.slot_) {
      other.pool_ = nullptr;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    sqlite3* db() const;
    size_t slot() const { return slot_; }
    // Why the running read was interrupted: DEADLINE_EXCEEDED or CANCELLED;
    // OK if it was not.
    absl::Status Interruption() const;

   private:
    friend class ReadPool;
    Lease(ReadPool* pool, size_t slot) : pool_(pool), slot_(slot) {}
    ReadPool* pool_;
    size_t slot_;
  };

  // Waits for a free connection until `limits.deadline`; DEADLINE_EXCEEDED
  // if none came free, CANCELLED if the read was cancelled meanwhile.
  // `limits` must outlive the lease.
  absl::StatusOr<Lease> Acquire(const ReadLimits& limits);
  size_t size() const { return slots_.size(); }

 private:
  struct Slot {
    sqlite3* db = nullptr;
    const ReadLimits* limits = nullptr;  // Set while leased.
    absl::Status interruption;
    bool busy = false;
  };
  static int OnProgress(void* slot);
  void Release(size_t slot);

  std::mutex mu_;
  std::condition_variable free_;
  std::vector<std::unique_ptr<Slot>> slots_;  // Stable addresses.
};

// True if the read bounded by `limits` must stop now; sets `*why`.
bool ReadLimitReached(const ReadLimits& limits, absl::Status* why);

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_READ_POOL_H_
