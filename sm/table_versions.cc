#include "sm/table_versions.h"

#include <sqlite3.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {

absl::Status TableVersions::Migrate() {
  // Databases (and snapshots) written before the versions moved into
  // _raftsql_meta keep them in _raftsql_versions: move them over in one
  // transaction, then drop that table.
  StatementPolicy::InternalScope scope(internal_.policy());
  {
    Stmt exists;
    sqlite3_prepare_v2(internal_.db(),
                       "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND "
                       "name = '_raftsql_versions'",
                       -1, exists.out(), nullptr);
    if (sqlite3_step(exists.get()) != SQLITE_ROW) return absl::OkStatus();
  }
  absl::Status s = internal_.Exec("BEGIN IMMEDIATE");
  if (s.ok()) s = CopyOldVersions();
  if (s.ok()) s = internal_.Exec("DROP TABLE _raftsql_versions");
  if (s.ok()) s = internal_.Exec("COMMIT");
  if (!s.ok()) internal_.Exec("ROLLBACK").IgnoreError();
  return s;
}

absl::Status TableVersions::CopyOldVersions() {
  sqlite3* db = internal_.db();
  Stmt rows;
  Stmt insert;
  if (sqlite3_prepare_v2(db, "SELECT name, version FROM _raftsql_versions", -1,
                         rows.out(), nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(
          db, "INSERT OR REPLACE INTO _raftsql_meta(key, value) VALUES(?, ?)",
          -1, insert.out(), nullptr) != SQLITE_OK) {
    return SqliteError(db, sqlite3_errcode(db));
  }
  while (sqlite3_step(rows.get()) == SQLITE_ROW) {
    const auto* name =
        reinterpret_cast<const char*>(sqlite3_column_text(rows.get(), 0));
    const std::string key = VersionKey(name != nullptr ? name : "");
    sqlite3_bind_text(insert.get(), 1, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert.get(), 2, sqlite3_column_int64(rows.get(), 1));
    const int rc = sqlite3_step(insert.get());
    sqlite3_reset(insert.get());
    if (rc != SQLITE_DONE) return SqliteError(db, rc);
  }
  return absl::OkStatus();
}

void TableVersions::Record(
    const std::vector<std::pair<std::string, uint64_t>>& versions) {
  for (const auto& [name, version] : versions) {
    const std::string& table = name;  // (clang 14 captures no bindings)
    // A batch mostly changes a few tables: a scan, no key built per entry.
    auto it =
        std::find_if(batch_.begin(), batch_.end(), [&table](const auto& kept) {
          return IsVersionKeyOf(kept.first, table);
        });
    if (it != batch_.end()) {
      CHECK_LE(it->second, version);  // Entries apply in index order.
      it->second = version;           // "T" and "t" are one table.
    } else {
      batch_.emplace_back(VersionKey(table), version);
    }
  }
}

void TableVersions::Write() {
  for (const auto& [key, version] : batch_) {
    sqlite3_stmt* v = internal_.Get(
        "INSERT OR REPLACE INTO _raftsql_meta(key, value) VALUES(?, ?)");
    sqlite3_bind_text(v, 1, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(v, 2, static_cast<int64_t>(version));
    internal_.Step(v);
  }
  batch_.clear();
}

absl::StatusOr<uint64_t> TableVersions::Lookup(sqlite3* db,
                                               const std::string& table) {
  Stmt exists;
  sqlite3_prepare_v2(db,
                     "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND "
                     "name = ?1 COLLATE NOCASE",
                     -1, exists.out(), nullptr);
  sqlite3_bind_text(exists.get(), 1, table.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(exists.get()) != SQLITE_ROW ||
      absl::StartsWithIgnoreCase(table, "_raftsql")) {
    return absl::NotFoundError(
        TruncatedMessage(absl::StrCat("no such table: ", table)));
  }
  Stmt version;
  sqlite3_prepare_v2(db, "SELECT value FROM _raftsql_meta WHERE key = ?1", -1,
                     version.out(), nullptr);
  const std::string key = VersionKey(table);
  sqlite3_bind_text(version.get(), 1, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(version.get()) == SQLITE_ROW) {
    return static_cast<uint64_t>(sqlite3_column_int64(version.get(), 0));
  }
  return 0;
}

void TableVersions::CheckInvariants() const {
  for (size_t i = 0; i < batch_.size(); ++i) {
    CHECK(batch_[i].first.starts_with(kVersionKeyPrefix));
    for (size_t j = i + 1; j < batch_.size(); ++j) {
      CHECK(batch_[i].first != batch_[j].first);
    }
  }
}

}  // namespace raftsql::sm
