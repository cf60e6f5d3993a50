// TableVersions: each table's version, the log index of the last committed
// entry that changed it (DESIGN.md §3), kept in _raftsql_meta under
// VersionKey(table) and written in the same transaction as the changes.
// The versions a batch changes are gathered here and written once, at the
// batch's commit.
//
// Thread-safety: the apply thread only (Lookup: any connection).
#ifndef RAFTSQL_SM_TABLE_VERSIONS_H_
#define RAFTSQL_SM_TABLE_VERSIONS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sm/internal_statements.h"

namespace raftsql::sm {

class TableVersions {
 public:
  // `internal` (the write connection's) must outlive this.
  explicit TableVersions(InternalStatements* internal) : internal_(*internal) {}

  // Moves versions kept by older databases in _raftsql_versions into
  // _raftsql_meta, in one transaction of its own.
  absl::Status Migrate();

  // An entry of the running batch changed these tables (name, version).
  void Record(const std::vector<std::pair<std::string, uint64_t>>& versions);
  // Writes the batch's versions inside the open transaction; forgets them.
  void Write();
  // The batch rolled back: forget what it recorded.
  void Clear() { batch_.clear(); }
  size_t pending() const { return batch_.size(); }

  // The version of `table` read on `db` (inside its policy's InternalScope):
  // 0 if never written; NotFound if there is no such table (internal ones
  // included).
  static absl::StatusOr<uint64_t> Lookup(sqlite3* db, const std::string& table);

  void CheckInvariants() const;

 private:
  absl::Status CopyOldVersions();

  InternalStatements& internal_;
  // By VersionKey, each key once (so "T" and "t" are one table, and the
  // later entry wins).
  std::vector<std::pair<std::string, uint64_t>> batch_;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_TABLE_VERSIONS_H_
