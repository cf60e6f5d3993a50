// Snapshot images: a database's bytes as one string (what a snapshot
// carries), and a received image opened on its own to be checked before it
// replaces anything.
#ifndef RAFTSQL_SM_SNAPSHOT_IMAGE_H_
#define RAFTSQL_SM_SNAPSHOT_IMAGE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;

namespace raftsql::sm {

// A consistent image of `db`'s main database (a file or memory).
absl::StatusOr<std::string> SerializeDatabase(sqlite3* db);

// The applied index a database holds in its meta table (in the caller's
// transaction, if one is open); DATA_LOSS if it holds none.
absl::StatusOr<uint64_t> StoredAppliedIndex(sqlite3* db);

// A snapshot's image opened as an in-memory database of its own; closed
// when it goes.
class SnapshotImage {
 public:
  SnapshotImage() = default;
  SnapshotImage(const SnapshotImage&) = delete;
  SnapshotImage& operator=(const SnapshotImage&) = delete;
  ~SnapshotImage();

  // DATA_LOSS if `data` is not a SQLite database; RESOURCE_EXHAUSTED if it
  // does not fit in memory.
  absl::Status Open(absl::string_view data);
  // The same for an image in a file (rollback-journal mode, bytes 18-19 =
  // 1) on `vfs` (null: the platform's), opened read-only.
  absl::Status OpenFile(const std::string& path, const char* vfs);
  // The image's B-trees are sound (quick_check) and it holds the state at
  // `index` (its stored applied index); DATA_LOSS otherwise. CANCELLED if
  // `*stop` is set before one of its statements (a statement under way is
  // ended by sqlite3_interrupt on db()).
  absl::Status Check(uint64_t index,
                     const std::atomic<bool>* stop = nullptr) const;
  sqlite3* db() const { return db_; }

 private:
  static constexpr size_t kHeaderBytes = 100;
  static constexpr char kMagic[] = "SQLite format 3";  // With its NUL: 16.
  sqlite3* db_ = nullptr;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_SNAPSHOT_IMAGE_H_
