// Replicated cluster settings (DESIGN.md §3): what decides how a write
// applies must be the same on every replica, so it is set through the log
// (a SettingChange entry, proposed by an administrator), kept in
// _raftsql_meta under kSettingPrefix + name, and travels in snapshots.
// Two kinds: the write budget's limits (write_budget.h), and SQLite's
// per-connection switches that change what a statement does (foreign keys,
// recursive triggers, LIKE's case), applied on the write connection.
#ifndef RAFTSQL_SM_SETTINGS_H_
#define RAFTSQL_SM_SETTINGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace raftsql::sm {

struct WriteSettings {
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
  // ... and only once it has also been unused for this many entries: the
  // time is the proposing nodes' wall clocks, which may jump, and a
  // retry reaches the log well within this many entries of its first
  // attempt (100 s at 10,000 entries a second). Sessions idle by the clock
  // stay until then: at most this many more rows.
  uint64_t session_idle_entries_min = 1'000'000;
  // SQLite's switches on the write connection (0 or 1): PRAGMA
  // foreign_keys, recursive_triggers, case_sensitive_like. The defaults are
  // Debian's SQLite's, which databases written before these settings were
  // applied under (it is built with SQLITE_DEFAULT_RECURSIVE_TRIGGERS).
  uint64_t foreign_keys = 0;
  uint64_t recursive_triggers = 1;
  uint64_t case_sensitive_like = 0;

  // Whether the switches (not the limits) are the same: if not, the write
  // connection must be set anew.
  bool SameConnectionSwitches(const WriteSettings& other) const {
    return foreign_keys == other.foreign_keys &&
           recursive_triggers == other.recursive_triggers &&
           case_sensitive_like == other.case_sensitive_like;
  }
  bool operator==(const WriteSettings&) const = default;
};

// The names under which the settings are set, and stored in _raftsql_meta
// under kSettingPrefix + name.
inline constexpr absl::string_view kSettingPrefix = "setting:";
inline constexpr absl::string_view kSettingVmSteps = "write_vm_steps_max";
inline constexpr absl::string_view kSettingRowBytes = "write_row_bytes_max";
inline constexpr absl::string_view kSettingValueBytes = "write_value_bytes_max";
inline constexpr absl::string_view kSettingSessionIdle = "session_idle_ms_max";
inline constexpr absl::string_view kSettingSessionIdleEntries =
    "session_idle_entries_min";
inline constexpr absl::string_view kSettingForeignKeys = "foreign_keys";
inline constexpr absl::string_view kSettingRecursiveTriggers =
    "recursive_triggers";
inline constexpr absl::string_view kSettingCaseSensitiveLike =
    "case_sensitive_like";

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

// Sets `name` in `settings` if the name is known and the value in its
// range; INVALID_ARGUMENT (naming the range) otherwise, `settings`
// unchanged.
absl::Status ApplySetting(absl::string_view name, uint64_t value,
                          WriteSettings* settings);
// Every setting by name, in a fixed order.
std::vector<std::pair<absl::string_view, uint64_t>> SettingValues(
    const WriteSettings& settings);

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_SETTINGS_H_
