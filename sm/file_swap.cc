#include "sm/file_swap.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace raftsql::sm {

namespace {

// rename(2) alone: durable once the directory is synced.
absl::Status RenameUnsynced(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    return absl::DataLossError(absl::StrCat("cannot rename ", from, " to ", to,
                                            ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RenamePlatformFile(const std::string& from,
                                const std::string& to) {
  absl::Status s = RenameUnsynced(from, to);
  return s.ok() ? SyncParentDirectory(to) : s;
}

absl::Status SyncParentDirectory(const std::string& path) {
  const std::filesystem::path parent =
      std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = fd >= 0 && fsync(fd) == 0;
  if (fd >= 0) close(fd);
  if (!synced) {
    return absl::DataLossError(absl::StrCat("cannot sync directory ", dir, ": ",
                                            std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status SyncFileByName(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return absl::OkStatus();
  if (fd < 0) {
    return absl::DataLossError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  const int rc = fdatasync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) {
    return absl::DataLossError(
        absl::StrCat("cannot sync ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

FileSwap::FileSwap(std::string path, const char* vfs, RenameFile rename)
    : path_(std::move(path)),
      received_(path_ + ".received"),
      incoming_(path_ + ".incoming"),
      vfs_(sqlite3_vfs_find(vfs)),
      rename_(rename != nullptr ? rename : RenamePlatformFile),
      platform_rename_(rename == nullptr) {
  CHECK(vfs_ != nullptr);
}

bool FileSwap::Exists(const std::string& path) const {
  int exists = 0;
  return vfs_->xAccess(vfs_, path.c_str(), SQLITE_ACCESS_EXISTS, &exists) ==
             SQLITE_OK &&
         exists != 0;
}

absl::Status FileSwap::Delete(const std::string& path, bool durably) const {
  if (!Exists(path)) return absl::OkStatus();
  const int rc = vfs_->xDelete(vfs_, path.c_str(), durably ? 1 : 0);
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_DELETE_NOENT) {
    return absl::DataLossError(
        absl::StrCat("cannot delete ", path, ": ", sqlite3_errstr(rc)));
  }
  return absl::OkStatus();
}

absl::Status FileSwap::Begin(const std::string& from) {
  if (!Exists(from)) {
    return absl::DataLossError(absl::StrCat("no file to swap in: ", from));
  }
  return rename_(from, incoming_);
}

absl::Status FileSwap::SyncDirectory() {
  if (!directory_unsynced_) return absl::OkStatus();
  absl::Status s = SyncParentDirectory(path_);
  if (s.ok()) directory_unsynced_ = false;
  return s;
}

absl::Status FileSwap::Finish(bool sync_last) {
  if (!Exists(incoming_)) return absl::OkStatus();
  // The old WAL or journal must never meet the new file (SQLite would
  // replay it into it): their deletes are durable before the rename. A
  // shared-memory file that comes back after a crash is harmless: the
  // first connection to open the database truncates it.
  for (const char* suffix : {"-wal", "-journal"}) {
    absl::Status s = Delete(path_ + suffix, /*durably=*/true);
    if (!s.ok()) return s;
  }
  absl::Status s = Delete(path_ + "-shm", /*durably=*/false);
  if (!s.ok()) return s;
  if (sync_last || !platform_rename_) return rename_(incoming_, path_);
  s = RenameUnsynced(incoming_, path_);
  if (s.ok()) directory_unsynced_ = true;
  return s;
}

}  // namespace raftsql::sm
