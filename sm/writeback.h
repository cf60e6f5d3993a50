// WritebackPacer: writes a growing file's pages back to the disk as it
// grows, as RocksDB's bytes_per_sync does. When a window of the file is
// full its writeback starts (SYNC_FILE_RANGE_WRITE, which does not wait),
// and the window before it is waited for: at most two windows of the
// file's pages are dirty, and the writing overlaps the disk's work.
// (A 4.3 GB image copied into the page cache unsynced made every fsync on
// the machine wait; an fdatasync every 64 MiB halved the copy's rate.)
//
// Not thread-safe: one per file, used by its writer.
#ifndef RAFTSQL_SM_WRITEBACK_H_
#define RAFTSQL_SM_WRITEBACK_H_

#include <cstdint>

namespace raftsql::sm {

class WritebackPacer {
 public:
  static constexpr uint64_t kWindowBytes = 32 << 20;

  // `fd`: the file (not owned); `window`: bytes per window.
  explicit WritebackPacer(int fd, uint64_t window = kWindowBytes)
      : fd_(fd), window_(window) {}
  // The file now holds `end` bytes.
  void Wrote(uint64_t end);

 private:
  const int fd_;
  const uint64_t window_;
  uint64_t started_ = 0;  // Writeback was started for [0, started_).
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_WRITEBACK_H_
