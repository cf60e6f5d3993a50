// A backup's image written to a file of its own, for what must open it as
// a database (the SQL text of /db/backup?fmt=sql): read from the backup's
// read transaction, which the caller may then let go. The file is removed
// when its last holder goes.
#ifndef RAFTSQL_SERVER_IMAGE_SPOOL_H_
#define RAFTSQL_SERVER_IMAGE_SPOOL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sm/image_source.h"

namespace raftsql::server {

class SpooledImage {
 public:
  explicit SpooledImage(std::string path) : path_(std::move(path)) {}
  ~SpooledImage();
  SpooledImage(const SpooledImage&) = delete;
  SpooledImage& operator=(const SpooledImage&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The `size` bytes of image `index` that `source` holds (unframed), in a
// new file in `dir`, read `chunk_bytes` at a time, marked as a rollback-
// journal database so that opening it makes no WAL files beside it.
absl::StatusOr<std::shared_ptr<SpooledImage>> SpoolImage(
    sm::ImageSource& source, uint64_t index, uint64_t size,
    const std::string& dir, size_t chunk_bytes);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_IMAGE_SPOOL_H_
