// Sessions: exactly-once client sessions (Raft thesis §6.3) in
// _raftsql_sessions, written in the same transaction as the command they
// answer. A session belongs to the user who opened it; one idle longer than
// the replicated session_idle_ms_max (by the clock of the nodes that
// proposed the entries) and for session_idle_entries_min entries is
// deleted.
//
// Thread-safety: the apply thread only (ReadSequence: any read connection).
#ifndef RAFTSQL_SM_SESSIONS_H_
#define RAFTSQL_SM_SESSIONS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "sm/command.h"
#include "sm/internal_statements.h"

namespace raftsql::sm {

class Sessions {
 public:
  // A sweep for idle sessions runs at most once a period.
  static constexpr uint64_t kSweepMs = 60'000;

  // `internal` (the write connection's) must outlive this.
  explicit Sessions(InternalStatements* internal) : internal_(*internal) {}

  // Adds the owner and last-use columns to a table written by an older
  // build (owner '' and time 0: the first sweep ends those sessions).
  absl::Status Migrate();
  // The last sweep's period, as _raftsql_meta holds it (LoadMeta).
  void set_sweep_period(uint64_t period) { sweep_period_ = period; }
  uint64_t sweep_period() const { return sweep_period_; }

  // True if the session answers `cmd` into `*result`: a retry gets its
  // stored result, a stale sequence or another user's session an error.
  // False: `cmd` is new and must run.
  bool Answer(const CommandView& cmd, CommandResult* result);
  // Stores `result` as the session's answer to `cmd`.
  void Write(const CommandView& cmd, const CommandResult& result);
  // Deletes sessions idle longer than `idle_ms_max` at `now_ms` and unused
  // in the `idle_entries_min` entries before entry `index`, once a period.
  void MaybeExpire(int64_t now_ms, uint64_t index, uint64_t idle_ms_max,
                   uint64_t idle_entries_min);

  // The last sequence applied for `session_id` (0 if none), read on `db`
  // (a read connection, inside its policy's InternalScope).
  static absl::StatusOr<uint64_t> ReadSequence(sqlite3* db,
                                               uint64_t session_id);

 private:
  InternalStatements& internal_;
  // Invariant: mirrors _raftsql_meta's session_sweep_period (the caller
  // restores it when a batch rolls back).
  uint64_t sweep_period_ = 0;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_SESSIONS_H_
