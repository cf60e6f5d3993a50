#include "sm/writeback.h"

#include <fcntl.h>

namespace raftsql::sm {

void WritebackPacer::Wrote(uint64_t end) {
  while (fd_ >= 0 && end >= started_ + window_) {
    // Failures only cost the pacing: the file's own sync reports errors.
    (void)sync_file_range(fd_, static_cast<off64_t>(started_), window_,
                          SYNC_FILE_RANGE_WRITE);
    if (started_ >= window_) {
      (void)sync_file_range(
          fd_, static_cast<off64_t>(started_ - window_), window_,
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
              SYNC_FILE_RANGE_WAIT_AFTER);
    }
    started_ += window_;
  }
}

}  // namespace raftsql::sm
