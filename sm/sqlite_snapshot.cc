// Snapshots: serialize and restore through the backup API, and the check of
// a received image.
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

}  // namespace raftsql::sm
