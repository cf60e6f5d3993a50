// Deterministic limits on what one write may do (DESIGN.md §3): every
// replica applies the same entry against the same state and must reach the
// same verdict, so the limits count what the entry does (SQLite VM steps,
// bytes of the rows it writes, the size of any one value), never time or
// memory. They are a replicated cluster setting (SettingChange entries),
// kept in _raftsql_meta.
#ifndef RAFTSQL_SM_WRITE_BUDGET_H_
#define RAFTSQL_SM_WRITE_BUDGET_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3_stmt;

namespace raftsql::sm {

struct WriteLimits {
  // SQLite VM steps one command may take over all its statements. The
  // default stops an endless statement after about a second of apply on
  // every replica (bench:sm_benchmark, BM_EndlessWriteAtDefaultBudget).
  uint64_t vm_steps_max = 50'000'000;
  // Bytes of the new rows one command writes (values of inserted and
  // updated rows).
  uint64_t row_bytes_max = uint64_t{64} << 20;
  // The largest string, blob or row SQLite builds while writing
  // (SQLITE_LIMIT_LENGTH on the write connection).
  uint64_t value_bytes_max = uint64_t{16} << 20;
  // Not a limit on a write but replicated alike: a client session unused
  // for this long (by the entries' leader-fixed clock) is deleted.
  uint64_t session_idle_ms_max = uint64_t{7} * 24 * 3600 * 1000;

  bool operator==(const WriteLimits&) const = default;
};

// The names under which the limits are set, and stored in _raftsql_meta
// under kSettingPrefix + name.
inline constexpr absl::string_view kSettingPrefix = "setting:";
inline constexpr absl::string_view kSettingVmSteps = "write_vm_steps_max";
inline constexpr absl::string_view kSettingRowBytes = "write_row_bytes_max";
inline constexpr absl::string_view kSettingValueBytes = "write_value_bytes_max";
inline constexpr absl::string_view kSettingSessionIdle = "session_idle_ms_max";

// A replicated change of one cluster setting: an entry of its own in the
// log (not a Command), proposed by an administrator.
struct SettingChange {
  std::string name;
  uint64_t value = 0;
  // As Command::request_id: finds the waiting client on the proposing node.
  uint64_t request_id = 0;

  std::string Encode() const;
  // request_id of an encoded setting change (0 if `data` is not one).
  static uint64_t PeekRequestId(absl::string_view data);
  // nullopt if `data` is not a setting change (another kind of entry);
  // INVALID_ARGUMENT if it is one but malformed.
  static std::optional<absl::StatusOr<SettingChange>> Decode(
      absl::string_view data);
  bool operator==(const SettingChange&) const = default;
};

// Sets `name` in `limits` if the name is known and the value in its range;
// INVALID_ARGUMENT (naming the range) otherwise, `limits` unchanged.
absl::Status ApplySetting(absl::string_view name, uint64_t value,
                          WriteLimits* limits);

// Counts one command's VM steps and row bytes against the limits.
// Single-threaded: the apply loop owns it.
class WriteBudget {
 public:
  // How often (in VM steps) SQLite's progress handler asks OnProgress.
  static constexpr int kCheckEverySteps = 1000;

  void set_limits(const WriteLimits& limits) { limits_ = limits; }
  const WriteLimits& limits() const { return limits_; }

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

  WriteLimits limits_;
  sqlite3_stmt* running_ = nullptr;
  uint64_t steps_ = 0;           // Of the command's finished statements.
  uint64_t progress_calls_ = 0;  // During the running statement.
  uint64_t row_bytes_ = 0;       // Of the whole command.
  bool exceeded_ = false;
  bool steps_exceeded_ = false;  // Which limit, for Error().
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_WRITE_BUDGET_H_
