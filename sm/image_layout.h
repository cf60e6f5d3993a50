// The order in which a follower receives an image's database bytes (issue
// 14): its first block (the header, the schema, the first tables' roots),
// then the rest one block at a time from the file's end backwards, each
// block's bytes in order. quick_check walks each B-tree from its last child
// to its first, and a table filled in order lies in the file in key order:
// in this order the walk can trail the transfer (the follower checks the
// image while it arrives) instead of waiting for its last byte. In file
// order the walk's first leaf is the file's last page.
//
// A stream offset (where a byte comes in the transfer) and a file offset
// (where it lies in the database) map one to one; a run is a stretch of
// stream that is one stretch of file. Backups are read in file order; the
// trailer says which order a framed image was sent in (image_trailer.h).
#ifndef RAFTSQL_SM_IMAGE_LAYOUT_H_
#define RAFTSQL_SM_IMAGE_LAYOUT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace raftsql::sm {

class ImageLayout {
 public:
  static constexpr uint64_t kBlockBytes = 1 << 20;

  // File order (a backup's, an older version's image).
  static ImageLayout FileOrder(uint64_t size) {
    return ImageLayout(size, false);
  }
  // The first block, then the others from the end backwards.
  static ImageLayout EndFirst(uint64_t size) { return ImageLayout(size, true); }

  uint64_t size() const { return size_; }
  bool end_first() const { return end_first_; }
  // Where the byte at `stream` offset lies in the file (stream < size()).
  uint64_t FileOffset(uint64_t stream) const;
  // Bytes from `stream` on that lie in the file in one stretch.
  uint64_t RunBytes(uint64_t stream) const;
  // How much of the stream must have come for every byte of the file's
  // [file, file + bytes) to have come (bytes > 0, within size()).
  uint64_t StreamNeededFor(uint64_t file, uint64_t bytes) const;

  // The stream's [stream, stream + bytes) from the file's bytes (`file`
  // holds the whole database), and the file back from the whole stream.
  std::string StreamBytes(absl::string_view file, uint64_t stream,
                          uint64_t bytes) const;
  std::string FileBytes(absl::string_view stream) const;

 private:
  ImageLayout(uint64_t size, bool end_first)
      : size_(size), end_first_(end_first) {}
  uint64_t head() const;
  // The tail block `k` (0: the file's last): its start in the file.
  uint64_t BlockStart(uint64_t k) const;

  uint64_t size_;
  bool end_first_;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_IMAGE_LAYOUT_H_
