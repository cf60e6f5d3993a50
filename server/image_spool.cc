#include "server/image_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"

namespace raftsql::server {

SpooledImage::~SpooledImage() {
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
    unlink((path_ + suffix).c_str());
  }
}

absl::StatusOr<std::shared_ptr<SpooledImage>> SpoolImage(
    sm::ImageSource& source, uint64_t index, uint64_t size,
    const std::string& dir, size_t chunk_bytes) {
  std::string path = dir + "/backup-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot make a file for the backup in ", dir));
  }
  auto spooled = std::make_shared<SpooledImage>(path);
  absl::Status status;
  for (uint64_t offset = 0; offset < size && status.ok();) {
    absl::StatusOr<std::string> chunk = source.Read(
        index, offset, std::min<uint64_t>(size - offset, chunk_bytes));
    if (!chunk.ok()) {
      status = chunk.status();
    } else if (chunk->empty()) {
      status = absl::UnavailableError("the backup's image ended early");
    } else if (pwrite(fd, chunk->data(), chunk->size(),
                      static_cast<off_t>(offset)) !=
               static_cast<ssize_t>(chunk->size())) {
      status = absl::InternalError(
          absl::StrCat("cannot write the backup's copy in ", dir));
    } else {
      offset += chunk->size();
    }
  }
  // Header bytes 18 and 19: the file format's write and read versions, 2
  // for WAL, 1 for a rollback journal.
  if (status.ok() && size >= 20 && pwrite(fd, "\1\1", 2, 18) != 2) {
    status = absl::InternalError("cannot write the backup's copy");
  }
  close(fd);
  if (!status.ok()) return status;
  return spooled;
}

}  // namespace raftsql::server
