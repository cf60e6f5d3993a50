#include "sm/arriving_file.h"

#include <algorithm>

namespace raftsql::sm {

void ArrivingFile::Stored(uint64_t stream_bytes) {
  {
    std::lock_guard<std::mutex> l(mu_);
    stored_ = std::max(stored_, stream_bytes);
  }
  cv_.notify_all();
}

void ArrivingFile::Cancel() {
  {
    std::lock_guard<std::mutex> l(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
}

uint64_t ArrivingFile::Needed(uint64_t at, uint64_t bytes) const {
  if (at >= size() || bytes == 0) return 0;
  return layout_.StreamNeededFor(at, std::min(bytes, size() - at));
}

bool ArrivingFile::WaitFor(uint64_t at, uint64_t bytes) {
  const uint64_t needed = Needed(at, bytes);
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return cancelled_ || stored_ >= needed; });
  return !cancelled_;
}

bool ArrivingFile::IsStored(uint64_t at, uint64_t bytes) const {
  const uint64_t needed = Needed(at, bytes);
  std::lock_guard<std::mutex> l(mu_);
  return !cancelled_ && stored_ >= needed;
}

}  // namespace raftsql::sm
