#include "sm/image_layout.h"

#include <algorithm>

#include "core/check.h"

namespace raftsql::sm {

uint64_t ImageLayout::head() const {
  return end_first_ ? std::min(kBlockBytes, size_) : size_;
}

uint64_t ImageLayout::BlockStart(uint64_t k) const {
  const uint64_t below = (k + 1) * kBlockBytes;
  return below >= size_ ? head() : std::max(head(), size_ - below);
}

uint64_t ImageLayout::FileOffset(uint64_t stream) const {
  CHECK_LT(stream, size_);
  if (stream < head()) return stream;
  const uint64_t k = (stream - head()) / kBlockBytes;
  return BlockStart(k) + (stream - head()) % kBlockBytes;
}

uint64_t ImageLayout::RunBytes(uint64_t stream) const {
  CHECK_LT(stream, size_);
  if (stream < head()) return head() - stream;
  const uint64_t k = (stream - head()) / kBlockBytes;
  const uint64_t block = size_ - k * kBlockBytes - BlockStart(k);
  return block - (stream - head()) % kBlockBytes;
}

uint64_t ImageLayout::StreamNeededFor(uint64_t file, uint64_t bytes) const {
  CHECK(bytes > 0 && file + bytes <= size_);
  const uint64_t end = file + bytes;
  if (end <= head()) return end;
  // The range's lowest tail block comes last; its last byte in the range
  // last of all.
  const uint64_t low = std::max(file, head());
  const uint64_t k = (size_ - 1 - low) / kBlockBytes;
  const uint64_t last = std::min(end, size_ - k * kBlockBytes) - 1;
  return head() + k * kBlockBytes + (last - BlockStart(k)) + 1;
}

std::string ImageLayout::StreamBytes(absl::string_view file, uint64_t stream,
                                     uint64_t bytes) const {
  CHECK_EQ(file.size(), size_);
  CHECK_LE(stream + bytes, size_);
  std::string out;
  out.reserve(bytes);
  while (bytes > 0) {
    const uint64_t n = std::min(bytes, RunBytes(stream));
    out.append(file.data() + FileOffset(stream), n);
    stream += n;
    bytes -= n;
  }
  return out;
}

std::string ImageLayout::FileBytes(absl::string_view stream) const {
  CHECK_EQ(stream.size(), size_);
  std::string out(size_, '\0');
  for (uint64_t at = 0; at < size_;) {
    const uint64_t n = RunBytes(at);
    stream.substr(at, n).copy(out.data() + FileOffset(at), n);
    at += n;
  }
  return out;
}

}  // namespace raftsql::sm
