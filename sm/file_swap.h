// FileSwap: how an image received from the leader becomes the database
// (issue 14), in O(1) whatever its size: renames, never a copy. Each step
// is atomic, so that a crash anywhere leaves the old database or the new
// one, never a mix:
//
//   1. Begin: `<db>.received` (complete, checked, and installed in the log
//      as the snapshot) becomes `<db>.incoming`. From here on the swap goes
//      ahead, after a crash too.
//   2. Finish: the old database's WAL and shared-memory files go (SQLite
//      would replay the old WAL onto the new file), then `<db>.incoming`
//      becomes `<db>`.
//
// Every connection to the database is closed (or, read-only, retired: see
// ReadPool) before Finish; Open calls Finish first, which completes a swap
// a crash interrupted after Begin.
#ifndef RAFTSQL_SM_FILE_SWAP_H_
#define RAFTSQL_SM_FILE_SWAP_H_

#include <functional>
#include <string>

#include "absl/status/status.h"

struct sqlite3_vfs;

namespace raftsql::sm {

// Renames a file atomically and durably (the platform's: rename(2), then
// its directory synced).
using RenameFile =
    std::function<absl::Status(const std::string& from, const std::string& to)>;
absl::Status RenamePlatformFile(const std::string& from, const std::string& to);
// Syncs the directory that holds `path`.
absl::Status SyncParentDirectory(const std::string& path);
// Syncs the data of the file at `path` through a descriptor of its own
// (any thread: a sync writes every page of the file, whoever wrote it).
// OK if there is no such file (nothing to make durable).
absl::Status SyncFileByName(const std::string& path);

class FileSwap {
 public:
  // `path`: the database file; `vfs`: its VFS (null: the platform's);
  // `rename`: null for RenamePlatformFile.
  FileSwap(std::string path, const char* vfs, RenameFile rename);

  const std::string& received() const { return received_; }
  const std::string& incoming() const { return incoming_; }

  absl::Status Begin() { return Begin(received_); }
  // The same from another complete file (a vacuumed copy, vacuum.h).
  absl::Status Begin(const std::string& from);
  // Nothing to do unless Begin ran. `sync_last` false: the last rename's
  // directory sync is left to SyncDirectory (platform renames; an injected
  // rename is durable by itself). Until then a crash may undo that rename,
  // which leaves `<db>.incoming` for Finish at the next open: the caller
  // syncs before anything relies on the swap (before compacting its log).
  absl::Status Finish(bool sync_last = true);
  // Syncs the directory if a Finish left its last rename unsynced.
  absl::Status SyncDirectory();

 private:
  bool Exists(const std::string& path) const;
  // `durably`: the directory is synced after.
  absl::Status Delete(const std::string& path, bool durably) const;

  const std::string path_;
  const std::string received_;
  const std::string incoming_;
  sqlite3_vfs* const vfs_;
  const RenameFile rename_;
  const bool platform_rename_;  // rename_ is RenamePlatformFile.
  bool directory_unsynced_ = false;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_FILE_SWAP_H_
