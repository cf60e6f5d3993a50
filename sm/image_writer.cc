#include "sm/image_writer.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/codec.h"

namespace raftsql::sm {
namespace {

// An image of a WAL-mode file says so in bytes 18-19 (2); written as 1.
constexpr uint64_t kVersionBytes = 18;
// A page at a time at most: SQLite never writes more in one call, and its
// platform VFS takes the size modulo 128 KiB (1 MiB wrote nothing).
constexpr uint64_t kMaxWriteBytes = 64 << 10;

}  // namespace

ImageWriter::ImageWriter(sqlite3_file* file, bool threaded,
                         std::function<void()> stored_more,
                         std::function<void(uint64_t)> stored_bytes,
                         int direct_fd)
    : file_(file),
      stored_more_(std::move(stored_more)),
      stored_bytes_(std::move(stored_bytes)),
      direct_fd_(direct_fd),
      // Not zeroed: only what Take copies in is read. Aligned for
      // O_DIRECT.
      ring_(static_cast<char*>(
          std::aligned_alloc(kDirectAlignment, kMaxUnstoredBytes))) {
  CHECK(ring_ != nullptr);
  if (threaded) thread_ = std::thread([this] { Run(); });
}

ImageWriter::~ImageWriter() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status ImageWriter::Take(absl::string_view bytes) {
  if (bytes.empty()) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!error_.ok()) return error_;
    if (taken_ - stored_ + bytes.size() > kMaxUnstoredBytes) {
      ++ring_full_;
      return absl::ResourceExhaustedError(
          absl::StrCat(taken_ - stored_,
                       " bytes of the image wait to be "
                       "stored"));
    }
  }
  // The ring's bytes from taken_ on are the writer's only once counted.
  const uint64_t at = taken_ % kMaxUnstoredBytes;
  const uint64_t first =
      std::min<uint64_t>(bytes.size(), kMaxUnstoredBytes - at);
  std::memcpy(ring_.get() + at, bytes.data(), first);
  std::memcpy(ring_.get(), bytes.data() + first, bytes.size() - first);
  {
    std::lock_guard<std::mutex> l(mu_);
    taken_ += bytes.size();
    taken_shared_ = taken_;
  }
  cv_.notify_all();
  return absl::OkStatus();
}

void ImageWriter::StoreTaken() {
  while (true) {
    uint64_t at = 0;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!error_.ok() || stored_ == taken_shared_) return;
      at = stored_;
    }
    if (!StorePiece(at, PieceBytes(at, taken_))) return;
  }
}

void ImageWriter::Run() {
  using Clock = std::chrono::steady_clock;
  const auto us = [](Clock::duration d) {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  };
  std::unique_lock<std::mutex> l(mu_);
  bool started = false;  // Waiting for the first bytes is not counted.
  while (true) {
    const Clock::time_point waits = Clock::now();
    cv_.wait(l, [this] {
      return stop_ || (error_.ok() && taken_shared_ > stored_);
    });
    if (stop_) return;
    if (started) waiting_us_ += us(Clock::now() - waits);
    started = true;
    const uint64_t at = stored_;
    const uint64_t n = PieceBytes(at, taken_shared_);
    l.unlock();
    const Clock::time_point stores = Clock::now();
    (void)StorePiece(at, n);
    const uint64_t storing = us(Clock::now() - stores);
    stored_more_();
    l.lock();
    storing_us_ += storing;
  }
}

ImageWriter::Timing ImageWriter::timing() const {
  std::lock_guard<std::mutex> l(mu_);
  return Timing{storing_us_ / 1000, waiting_us_ / 1000, ring_full_};
}

uint64_t ImageWriter::PieceBytes(uint64_t at, uint64_t taken) {
  // At most kStoreBytes, and never across the ring's end.
  return std::min(
      {taken - at, kStoreBytes, kMaxUnstoredBytes - at % kMaxUnstoredBytes});
}

bool ImageWriter::StorePiece(uint64_t at, uint64_t n) {
  char* const piece = ring_.get() + at % kMaxUnstoredBytes;
  // Only this thread changes crc_.
  const uint32_t crc = core::Crc32cExtend(crc_, std::string_view(piece, n));
  for (uint64_t b = kVersionBytes; b <= kVersionBytes + 1; ++b) {
    if (b >= at && b < at + n) piece[b - at] = 1;
  }
  uint64_t done = 0;  // Bytes of the piece written.
  if (direct_fd_ >= 0 && at % kDirectAlignment == 0 &&
      n % kDirectAlignment == 0) {
    while (done < n) {
      const ssize_t w = pwrite(direct_fd_, piece + done, n - done,
                               static_cast<off_t>(at + done));
      if (w <= 0) break;  // The VFS below writes the rest, or says why not.
      done += static_cast<uint64_t>(w);
    }
  }
  for (; done < n; done += kMaxWriteBytes) {
    const uint64_t w = std::min(kMaxWriteBytes, n - done);
    const int rc =
        file_->pMethods->xWrite(file_, piece + done, static_cast<int>(w),
                                static_cast<sqlite3_int64>(at + done));
    if (rc != SQLITE_OK) {
      std::lock_guard<std::mutex> l(mu_);
      error_ = absl::UnavailableError(
          absl::StrCat("cannot store the image: ", sqlite3_errstr(rc)));
      return false;
    }
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    crc_ = crc;
    stored_ = at + n;
  }
  stored_bytes_(at + n);
  return true;
}

uint64_t ImageWriter::stored() const {
  std::lock_guard<std::mutex> l(mu_);
  return stored_;
}

absl::Status ImageWriter::error() const {
  std::lock_guard<std::mutex> l(mu_);
  return error_;
}

uint32_t ImageWriter::crc() const {
  std::lock_guard<std::mutex> l(mu_);
  return crc_;
}

}  // namespace raftsql::sm
