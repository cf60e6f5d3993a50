#include "sm/snapshot_image.h"

#include <sqlite3.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {

absl::StatusOr<std::string> SerializeDatabase(sqlite3* db) {
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
                               ? sqlite3_backup_init(image, "main", db, "main")
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

absl::StatusOr<uint64_t> StoredAppliedIndex(sqlite3* db) {
  Stmt applied;
  if (sqlite3_prepare_v2(
          db, "SELECT value FROM _raftsql_meta WHERE key = 'applied_index'", -1,
          applied.out(), nullptr) != SQLITE_OK ||
      sqlite3_step(applied.get()) != SQLITE_ROW) {
    return absl::DataLossError("the database holds no applied index");
  }
  return static_cast<uint64_t>(sqlite3_column_int64(applied.get(), 0));
}

SnapshotImage::~SnapshotImage() { sqlite3_close(db_); }

absl::Status SnapshotImage::Open(absl::string_view data) {
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

absl::Status SnapshotImage::OpenFile(const std::string& path, const char* vfs) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, vfs) !=
      SQLITE_OK) {
    return absl::DataLossError(absl::StrCat("cannot open the image ", path,
                                            ": ", sqlite3_errmsg(db_)));
  }
  return absl::OkStatus();
}

absl::Status SnapshotImage::Check(uint64_t index,
                                  const std::atomic<bool>* stop) const {
  const auto stopped = [stop] { return stop != nullptr && stop->load(); };
  const auto cancelled = [] {
    return absl::CancelledError("the image's check was cancelled");
  };
  // Every replica's text is UTF-8 (a database's encoding can be read, never
  // set): the divergence hash and the change log take text as its stored
  // bytes.
  Stmt encoding;
  if (sqlite3_prepare_v2(db_, "PRAGMA encoding", -1, encoding.out(), nullptr) !=
          SQLITE_OK ||
      sqlite3_step(encoding.get()) != SQLITE_ROW) {
    return absl::DataLossError("snapshot is not a SQLite database");
  }
  const unsigned char* text = sqlite3_column_text(encoding.get(), 0);
  if (text == nullptr ||
      std::strcmp(reinterpret_cast<const char*>(text), "UTF-8") != 0) {
    return absl::DataLossError(
        absl::StrCat("snapshot image's text is ",
                     text == nullptr ? "of no encoding"
                                     : reinterpret_cast<const char*>(text),
                     ", not UTF-8"));
  }
  if (stopped()) return cancelled();
  Stmt check;
  if (sqlite3_prepare_v2(db_, "PRAGMA quick_check(1)", -1, check.out(),
                         nullptr) != SQLITE_OK ||
      sqlite3_step(check.get()) != SQLITE_ROW) {
    if (stopped()) return cancelled();  // Interrupted.
    return absl::DataLossError("snapshot is not a SQLite database");
  }
  const unsigned char* verdict = sqlite3_column_text(check.get(), 0);
  if (verdict == nullptr ||
      std::strcmp(reinterpret_cast<const char*>(verdict), "ok") != 0) {
    return absl::DataLossError("snapshot image is corrupt");
  }
  absl::StatusOr<uint64_t> stored = StoredAppliedIndex(db_);
  if (!stored.ok()) return stored.status();
  const uint64_t held = *stored;
  if (held != index) {
    return absl::DataLossError(absl::StrCat(
        "snapshot holds applied index ", held, ", its metadata says ", index));
  }
  return absl::OkStatus();
}

}  // namespace raftsql::sm
