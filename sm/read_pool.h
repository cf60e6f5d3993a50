// ReadPool: the state machine's read connections (Query, GetVersion), each
// used by one reader at a time, so that a slow read holds one connection and
// the others keep serving. A read runs under a deadline and a cancellation
// check, polled by SQLite's progress handler, which interrupts it.
//
// Each connection keeps its own prepared statements (StatementCache, with
// kStatementLimits): a read whose text came before is not parsed again.
// They re-prepare themselves when the writer changed the schema.
//
// A snapshot's file swap replaces every connection (Retire, then Refill):
// reads that hold one are interrupted, and their connections close when
// they let go; reads that wait meanwhile get the new ones.
//
// Thread-safe.
#ifndef RAFTSQL_SM_READ_POOL_H_
#define RAFTSQL_SM_READ_POOL_H_

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sm/statement_cache.h"
#include "sm/statement_policy.h"

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
  // A read tried on its caller's thread (issue 17): at most this many VM
  // steps (0: no bound), and no wait for a connection. Either refusal is
  // an error for which IsTryElsewhere() holds: run the read elsewhere.
  uint64_t max_steps = 0;
  bool wait_for_connection = true;
};

// Whether `s` says a read bounded by max_steps or wait_for_connection
// was not done here (nothing was returned) and should run elsewhere.
bool IsTryElsewhere(const absl::Status& s);

class ReadPool {
  struct Slot;

 public:
  // How often (in VM steps) a running read checks its limits.
  static constexpr int kCheckEverySteps = 1000;
  // A connection's kept statements: a point read's takes 1.8 KB as SQLite
  // 3.40.1 counts it (SQLITE_STMTSTATUS_MEMUSED), a range count 1.7 KB.
  static constexpr StatementCache::Limits kStatementLimits{64, size_t{2} << 20};

  // A read-only connection and the policy installed on it.
  struct Connection {
    sqlite3* db = nullptr;
    std::unique_ptr<StatementPolicy> policy;
  };

  // Takes ownership of `connections` (configured; none null).
  explicit ReadPool(std::vector<Connection> connections);
  ~ReadPool();

  // A connection held for one read; released when it goes.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : pool_(other.pool_), slot_(other.slot_) {
      other.pool_ = nullptr;
      other.slot_ = nullptr;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    sqlite3* db() const;
    StatementPolicy& policy() const;
    StatementCache& statements() const;
    // Why the running read was interrupted: DEADLINE_EXCEEDED, CANCELLED,
    // or UNAVAILABLE (its connection was retired); OK if it was not.
    absl::Status Interruption() const;

   private:
    friend class ReadPool;
    Lease(ReadPool* pool, ReadPool::Slot* slot) : pool_(pool), slot_(slot) {}
    ReadPool* pool_;
    ReadPool::Slot* slot_;
  };

  // Waits for a free connection until `limits.deadline`; DEADLINE_EXCEEDED
  // if none came free, CANCELLED if the read was cancelled meanwhile.
  // `limits` must outlive the lease.
  absl::StatusOr<Lease> Acquire(const ReadLimits& limits);

  // Takes every connection out of service: idle ones close now; a running
  // read is interrupted (its Interruption() is `why`) and its connection
  // closes when its lease ends. Acquire waits until Refill.
  void Retire(absl::Status why);
  // The connections that serve from now on.
  void Refill(std::vector<Connection> connections);
  // Connections in service, and retired ones still leased.
  size_t size() const;
  size_t retired() const;
  // Statements kept by the idle connections in service.
  size_t kept_statements() const;
  // In service: open, not retired, leased exactly when a read's limits are
  // set. Retired: leased (an idle one closes at once) and still open.
  void CheckInvariants() const;

 private:
  struct Slot {
    Connection connection;
    std::unique_ptr<StatementCache> statements;  // On connection.db.
    const ReadLimits* limits = nullptr;          // Set while leased.
    uint64_t steps = 0;                          // While leased, about.
    absl::Status interruption;
    bool busy = false;
    std::atomic<bool> retired{false};
    absl::Status retired_why;  // Written before `retired` is set.
  };
  static int OnProgress(void* slot);
  void Release(Slot* slot);
  static void Close(Slot& slot);
  void CheckInvariantsLocked() const;

  mutable std::mutex mu_;
  std::condition_variable free_;
  std::vector<std::unique_ptr<Slot>> slots_;    // Stable addresses.
  std::vector<std::unique_ptr<Slot>> retired_;  // Leased, then closed.
};

// True if the read bounded by `limits` must stop now; sets `*why`.
bool ReadLimitReached(const ReadLimits& limits, absl::Status* why);

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_READ_POOL_H_
