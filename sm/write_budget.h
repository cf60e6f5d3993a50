// Deterministic limits on what one write may do (DESIGN.md §3): every
// replica applies the same entry against the same state and must reach the
// same verdict, so the limits count what the entry does (SQLite VM steps,
// bytes of the rows it writes), never time or memory. The limits are
// replicated cluster settings (settings.h).
#ifndef RAFTSQL_SM_WRITE_BUDGET_H_
#define RAFTSQL_SM_WRITE_BUDGET_H_

#include <cstdint>

#include "absl/status/status.h"
#include "sm/settings.h"

struct sqlite3_stmt;

namespace raftsql::sm {

// Counts one command's VM steps and row bytes against the limits.
// Single-threaded: the apply loop owns it.
class WriteBudget {
 public:
  // How often (in VM steps) SQLite's progress handler asks OnProgress.
  static constexpr int kCheckEverySteps = 1000;

  void set_limits(const WriteSettings& settings) { limits_ = settings; }
  const WriteSettings& limits() const { return limits_; }

  // A new command: nothing counted yet.
  void BeginCommand();
  // `stmt` runs now (its VM step counter is reset).
  void BeginStatement(sqlite3_stmt* stmt);
  // The running statement ended: its steps join the command's.
  void EndStatement();
  // Bytes of a row the command writes (the preupdate hook).
  void AddRowBytes(uint64_t bytes) { row_bytes_ += bytes; }
  // SQLite's progress handler: true to interrupt the running statement.
  // Outside a statement of ours (internal statements) it never interrupts.
  bool OnProgress();
  // The command went over a limit (it stays so until BeginCommand).
  bool exceeded() const { return exceeded_; }
  // RESOURCE_EXHAUSTED saying which limit; the same text on every replica.
  absl::Status Error() const;

 private:
  uint64_t StepsSoFar() const;
  bool Over();

  WriteSettings limits_;
  sqlite3_stmt* running_ = nullptr;
  uint64_t steps_ = 0;           // Of the command's finished statements.
  uint64_t progress_calls_ = 0;  // During the running statement.
  uint64_t row_bytes_ = 0;       // Of the whole command.
  bool exceeded_ = false;
  bool steps_exceeded_ = false;  // Which limit, for Error().
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_WRITE_BUDGET_H_
