// Snapshots (serialize / restore through the backup API) and the read side:
// Query on the read connection, GetVersion.
#include <sqlite3.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/sqlite_state_machine.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {

absl::StatusOr<std::string> SqliteStateMachine::CreateSnapshot() {
  // Debian's SQLite has no sqlite_dbpage, so sqlite3_serialize cannot read a
  // file database directly: copy it with the backup API into an in-memory
  // (memdb) database, whose bytes serialize as they are.
  sqlite3* image = nullptr;
  if (sqlite3_open_v2(":memory:", &image,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK) {
    sqlite3_close(image);
    return absl::ResourceExhaustedError("cannot open a scratch database");
  }
  int rc = sqlite3_deserialize(
      image, "main", nullptr, 0, 0,
      SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
  sqlite3_backup* backup = rc == SQLITE_OK
                               ? sqlite3_backup_init(image, "main", db_, "main")
                               : nullptr;
  if (backup == nullptr) {
    sqlite3_close(image);
    return absl::InternalError("cannot start a snapshot copy");
  }
  rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    absl::Status s = SqliteError(image, rc);
    sqlite3_close(image);
    return s;
  }
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(image, "main", &size, 0);
  if (bytes == nullptr) {
    sqlite3_close(image);
    return absl::ResourceExhaustedError("cannot serialize the database");
  }
  std::string out(reinterpret_cast<const char*>(bytes),
                  static_cast<size_t>(size));
  sqlite3_free(bytes);
  sqlite3_close(image);
  return out;
}

std::string SqliteStateMachine::SerializeForTest() {
  absl::StatusOr<std::string> s = CreateSnapshot();
  CHECK(s.ok());
  return *s;
}

namespace {

// A snapshot's image opened as an in-memory database of its own; closes it
// when it goes.
class ScratchImage {
 public:
  ScratchImage() = default;
  ScratchImage(const ScratchImage&) = delete;
  ScratchImage& operator=(const ScratchImage&) = delete;
  ~ScratchImage() { sqlite3_close(db_); }

  absl::Status Open(const std::string& data) {
    if (sqlite3_open_v2(":memory:", &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        nullptr) != SQLITE_OK) {
      return absl::ResourceExhaustedError("cannot open a scratch database");
    }
    const size_t n = data.size();
    if (n < kHeaderBytes || std::memcmp(data.data(), kMagic, 16) != 0) {
      return absl::DataLossError("snapshot is not a SQLite database");
    }
    auto* buf = static_cast<unsigned char*>(sqlite3_malloc64(n));
    if (buf == nullptr) {
      return absl::ResourceExhaustedError("snapshot too large for memory");
    }
    std::memcpy(buf, data.data(), n);
    // An image of a WAL-mode file says so in its header (bytes 18-19 = 2); an
    // in-memory database cannot open it that way ("unable to open database
    // file"), so read it as a rollback-journal image (1).
    buf[18] = buf[19] = 1;
    if (sqlite3_deserialize(db_, "main", buf, n, n,
                            SQLITE_DESERIALIZE_FREEONCLOSE |
                                SQLITE_DESERIALIZE_RESIZEABLE) != SQLITE_OK) {
      return absl::DataLossError("snapshot is not a SQLite database");
    }
    return absl::OkStatus();
  }

  // The image's B-trees are sound and it holds the state at `index`.
  absl::Status Check(uint64_t index) const {
    Stmt check;
    if (sqlite3_prepare_v2(db_, "PRAGMA quick_check(1)", -1, check.out(),
                           nullptr) != SQLITE_OK ||
        sqlite3_step(check.get()) != SQLITE_ROW) {
      return absl::DataLossError("snapshot is not a SQLite database");
    }
    const unsigned char* verdict = sqlite3_column_text(check.get(), 0);
    if (verdict == nullptr ||
        std::strcmp(reinterpret_cast<const char*>(verdict), "ok") != 0) {
      return absl::DataLossError("snapshot image is corrupt");
    }
    Stmt applied;
    if (sqlite3_prepare_v2(
            db_, "SELECT value FROM _raftsql_meta WHERE key = 'applied_index'",
            -1, applied.out(), nullptr) != SQLITE_OK ||
        sqlite3_step(applied.get()) != SQLITE_ROW) {
      return absl::DataLossError("snapshot holds no applied index");
    }
    const auto held =
        static_cast<uint64_t>(sqlite3_column_int64(applied.get(), 0));
    if (held != index) {
      return absl::DataLossError(absl::StrCat("snapshot holds applied index ",
                                              held, ", its metadata says ",
                                              index));
    }
    return absl::OkStatus();
  }

  sqlite3* db() const { return db_; }

 private:
  static constexpr size_t kHeaderBytes = 100;
  static constexpr char kMagic[] = "SQLite format 3";  // With its NUL: 16.
  sqlite3* db_ = nullptr;
};

}  // namespace

absl::Status SqliteStateMachine::ValidateSnapshot(
    const core::Snapshot& snapshot) const {
  ScratchImage image;
  absl::Status s = image.Open(snapshot.data);
  if (!s.ok()) return s;
  return image.Check(snapshot.metadata.index);
}

absl::Status SqliteStateMachine::Restore(const core::Snapshot& snapshot) {
  // Load the image into a scratch connection, check it, then copy it page by
  // page over ours: the backup API works for files and memory alike and is
  // atomic, so a refused image leaves our state as it was.
  ScratchImage image;
  absl::Status s = image.Open(snapshot.data);
  if (s.ok()) s = image.Check(snapshot.metadata.index);
  if (!s.ok()) return s;
  sqlite3_backup* backup = sqlite3_backup_init(db_, "main", image.db(), "main");
  if (backup == nullptr) return SqliteError(db_, sqlite3_errcode(db_));
  const int rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return SqliteError(db_, rc);
  s = LoadMeta();
  if (!s.ok()) return s;
  CHECK_EQ(applied_, snapshot.metadata.index);  // Image.Check saw it.
  return absl::OkStatus();
}

absl::StatusOr<QueryResult> SqliteStateMachine::Query(
    const Statement& statement) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Policy& policy = read_db_ == db_ ? write_policy_ : read_policy_;
  policy.refusal.clear();
  Stmt stmt;
  int rc = sqlite3_prepare_v2(read_db_, statement.sql.c_str(),
                              static_cast<int>(statement.sql.size()),
                              stmt.out(), nullptr);
  if (rc != SQLITE_OK) return SqliteError(read_db_, rc, policy.refusal);
  if (stmt.get() == nullptr)
    return absl::InvalidArgumentError("empty statement");
  if (!sqlite3_stmt_readonly(stmt.get())) {
    return absl::InvalidArgumentError(
        "Query runs read-only statements; send writes with Execute");
  }
  absl::Status bind = BindAll(stmt.get(), statement);
  if (!bind.ok()) return bind;
  QueryResult result;
  const int columns = sqlite3_column_count(stmt.get());
  for (int i = 0; i < columns; ++i) {
    result.columns.push_back(sqlite3_column_name(stmt.get(), i));
  }
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    if (result.rows.size() >= options_.max_query_rows) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "query returns more than ", options_.max_query_rows, " rows"));
    }
    std::vector<Value> row;
    row.reserve(columns);
    for (int i = 0; i < columns; ++i) row.push_back(ColumnValue(stmt.get(), i));
    result.rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return SqliteError(read_db_, rc, policy.refusal);
  return result;
}

absl::StatusOr<uint64_t> SqliteStateMachine::GetVersion(
    const std::string& table) {
  std::lock_guard<std::mutex> lock(read_mu_);
  Stmt exists;
  sqlite3_prepare_v2(read_db_,
                     "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND "
                     "name = ?1 COLLATE NOCASE",
                     -1, exists.out(), nullptr);
  sqlite3_bind_text(exists.get(), 1, table.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(exists.get()) != SQLITE_ROW ||
      absl::StartsWithIgnoreCase(table, "_raftsql")) {
    return absl::NotFoundError(absl::StrCat("no such table: ", table));
  }
  Stmt version;
  sqlite3_prepare_v2(read_db_, "SELECT value FROM _raftsql_meta WHERE key = ?1",
                     -1, version.out(), nullptr);
  const std::string key = VersionKey(table);
  sqlite3_bind_text(version.get(), 1, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(version.get()) == SQLITE_ROW) {
    return static_cast<uint64_t>(sqlite3_column_int64(version.get(), 0));
  }
  return 0;
}

}  // namespace raftsql::sm
