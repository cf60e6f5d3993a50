#include "sm/image_sink.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/codec.h"
#include "obs/loop_phases.h"
#include "sm/read_ahead_vfs.h"
#include "sm/snapshot_image.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {
namespace {

constexpr char kReference[] = "raftsql-received-image:";

// `path` opened on `vfs` as a main database file; null if it cannot be
// (`*rc` says why).
sqlite3_file* OpenVfsFile(sqlite3_vfs* vfs, const std::string& path, int flags,
                          int* rc) {
  auto* file = static_cast<sqlite3_file*>(std::calloc(1, vfs->szOsFile));
  int out = 0;
  *rc = vfs->xOpen(vfs, path.c_str(), file, flags | SQLITE_OPEN_MAIN_DB, &out);
  if (*rc == SQLITE_OK) return file;
  if (file->pMethods != nullptr) file->pMethods->xClose(file);
  std::free(file);
  return nullptr;
}

void CloseVfsFile(sqlite3_file* file) {
  if (file == nullptr) return;
  if (file->pMethods != nullptr) file->pMethods->xClose(file);
  std::free(file);
}

}  // namespace

BackgroundSyncer::BackgroundSyncer(sqlite3_vfs* vfs, std::string path)
    : vfs_(vfs), path_(std::move(path)), thread_([this] { Run(); }) {}

BackgroundSyncer::~BackgroundSyncer() { Stop(); }

void BackgroundSyncer::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BackgroundSyncer::Kick(uint64_t stored) {
  {
    std::lock_guard<std::mutex> l(mu_);
    wanted_ = std::max(wanted_, stored);
  }
  cv_.notify_all();
}

void BackgroundSyncer::Run() {
  // A handle of its own: a sync of any descriptor of the file writes all
  // of its pages.
  int rc = SQLITE_OK;
  sqlite3_file* file = OpenVfsFile(vfs_, path_, SQLITE_OPEN_READWRITE, &rc);
  uint64_t synced = 0;  // Bytes synced (or tried).
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [&] { return stop_ || wanted_ > synced; });
    if (stop_) break;
    synced = wanted_;
    l.unlock();
    // A failure shows in the final sync, which the check makes.
    if (file != nullptr) (void)file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
    l.lock();
  }
  l.unlock();
  CloseVfsFile(file);
}

ImageSink::ImageSink(std::string path, const char* vfs, FileDeleter* deleter)
    : received_(path + ".received"),
      vfs_name_(vfs),
      vfs_(sqlite3_vfs_find(vfs)),
      deleter_(deleter),
      background_(deleter != nullptr) {
  CHECK(vfs_ != nullptr);
}

const char* ImageSink::check_vfs_name() const {
  return background_ ? ReadAheadVfsName() : vfs_name_;
}

ImageSink::~ImageSink() {
  CancelCheck();
  CloseFile();
}

std::optional<uint64_t> ImageSink::Held(const core::SnapshotMetadata& metadata,
                                        uint64_t from, uint64_t size) const {
  const bool same = state_ != State::kIdle && state_ != State::kInstalled &&
                    metadata == metadata_ && from == from_ && size == size_;
  if (!same || StoreFailed()) return std::nullopt;
  if (state_ != State::kReceiving) return held_;
  return writer_->taken() + trailer_.size();
}

uint64_t ImageSink::held() const {
  if (state_ == State::kIdle || state_ == State::kInstalled) return 0;
  if (state_ != State::kReceiving) return held_;
  if (StoreFailed()) return 0;
  // The trailer's bytes are kept as they come; they count once the
  // database's part is stored.
  const uint64_t stored = writer_->stored();
  return stored == data_size_ ? stored + trailer_.size() : stored;
}

bool ImageSink::StoreFailed() const {
  return state_ == State::kReceiving && !writer_->error().ok();
}

void ImageSink::SetProgressCallback(std::function<void()> progressed) {
  std::lock_guard<std::mutex> l(progress_mu_);
  progressed_ = std::move(progressed);
}

void ImageSink::Progressed() const {
  std::lock_guard<std::mutex> l(progress_mu_);
  if (progressed_) progressed_();
}

void ImageSink::StoreTaken() {
  if (state_ == State::kReceiving && !background_) writer_->StoreTaken();
}

absl::Status ImageSink::Begin(const core::SnapshotMetadata& metadata,
                              uint64_t from, uint64_t size) {
  obs::PhaseTimer timer(obs::Phase::kSnapshot);
  if (state_ == State::kInstalled) {
    return absl::UnavailableError("an installed image waits for its restore");
  }
  if (size < kImageTrailerBytes) {
    return absl::InvalidArgumentError("an image too small for its trailer");
  }
  Drop();
  DeleteReceived();  // One a crash left.
  int rc = SQLITE_OK;
  sqlite3_file* file = OpenVfsFile(
      vfs_, received_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &rc);
  if (file == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", received_, ": ", sqlite3_errstr(rc)));
  }
  file_ = file;
  if (background_) {
    syncer_ = std::make_unique<BackgroundSyncer>(vfs_, received_);
    // The platform's file: stored with O_DIRECT where the file system
    // allows it (not tmpfs: then through the VFS alone).
    direct_fd_ = open(received_.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  }
  next_sync_ = kBytesPerSync;
  writer_ = std::make_unique<ImageWriter>(
      file_, background_, [this] { Progressed(); },
      [this](uint64_t stored) {
        if (syncer_ != nullptr && stored >= next_sync_) {
          syncer_->Kick(stored);
          next_sync_ = stored + kBytesPerSync;
        }
      },
      direct_fd_);
  began_ = std::chrono::steady_clock::now();
  state_ = State::kReceiving;
  metadata_ = metadata;
  from_ = from;
  size_ = size;
  data_size_ = size - kImageTrailerBytes;
  held_ = 0;
  crc_ = 0;
  trailer_.clear();
  return absl::OkStatus();
}

absl::Status ImageSink::Append(absl::string_view bytes) {
  obs::PhaseTimer timer(obs::Phase::kSnapshot);
  if (state_ != State::kReceiving) {
    return absl::FailedPreconditionError("no image is being received");
  }
  const uint64_t taken = writer_->taken();
  if (taken + trailer_.size() + bytes.size() > size_) {
    return absl::InvalidArgumentError("more bytes than the image holds");
  }
  // The database's part goes to the writer; the trailer's bytes are kept.
  const uint64_t data_left = data_size_ - taken;
  const absl::string_view trailer =
      bytes.size() > data_left ? bytes.substr(data_left) : absl::string_view();
  bytes = bytes.substr(0, std::min<uint64_t>(bytes.size(), data_left));
  absl::Status s = writer_->Take(bytes);
  if (!s.ok()) return s;
  trailer_.append(trailer.data(), trailer.size());
  return absl::OkStatus();
}

absl::Status ImageSink::Finish() {
  obs::PhaseTimer timer(obs::Phase::kSnapshot);
  if (state_ == State::kReceiving) {
    if (writer_->taken() + trailer_.size() != size_) {
      return absl::FailedPreconditionError("incomplete");
    }
    const absl::Status stored = writer_->error();
    if (!stored.ok()) return absl::AbortedError(stored.message());
    if (writer_->stored() != data_size_) {
      return absl::UnavailableError("storing the image");
    }
    crc_ = writer_->crc();
    held_ = size_;
    absl::Status intact = CheckImageTrailer(trailer_, crc_);
    if (!intact.ok()) return intact;  // The core drops it: sent again.
    writer_timing_ = writer_->timing();
    writer_.reset();
    std::unique_ptr<BackgroundSyncer> syncer = std::move(syncer_);
    CloseFile();
    state_ = State::kChecking;
    received_at_ = std::chrono::steady_clock::now();
    checked_ = false;
    cancel_check_ = false;
    if (!background_) {
      Check();
    } else {
      // The syncer's end and the last sync too: written pages may wait
      // for the disk.
      checker_ = std::thread([this, syncer = std::move(syncer)]() mutable {
        syncer.reset();
        Check();
      });
    }
  }
  if (state_ == State::kChecking) {
    if (!checked_) return absl::UnavailableError("checking the image");
    if (checker_.joinable()) checker_.join();
    state_ = State::kChecked;
    if (background_) {
      std::fprintf(
          stderr,
          "raftsql: received snapshot image %llu (%llu MB) from node %llu "
          "in %lld ms (its writer stored for %llu ms, waited for chunks "
          "%llu ms, found its ring full %llu times), synced and checked "
          "in %lld ms\n",
          static_cast<unsigned long long>(metadata_.index),
          static_cast<unsigned long long>(size_ >> 20),
          static_cast<unsigned long long>(from_),
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  received_at_ - began_)
                  .count()),
          static_cast<unsigned long long>(writer_timing_.storing_ms),
          static_cast<unsigned long long>(writer_timing_.waiting_ms),
          static_cast<unsigned long long>(writer_timing_.ring_full),
          MillisecondsSince(received_at_));
    }
  }
  if (state_ != State::kChecked) {
    return absl::FailedPreconditionError("no image is being received");
  }
  std::lock_guard<std::mutex> l(mu_);
  return verdict_;
}

absl::Status ImageSink::Sync() const {
  int rc = SQLITE_OK;
  sqlite3_file* file = OpenVfsFile(vfs_, received_, SQLITE_OPEN_READWRITE, &rc);
  if (file != nullptr) rc = file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
  CloseVfsFile(file);
  if (rc != SQLITE_OK) {
    return absl::DataLossError(
        absl::StrCat("cannot sync ", received_, ": ", sqlite3_errstr(rc)));
  }
  return absl::OkStatus();
}

void ImageSink::Check() {
  SnapshotImage image;
  absl::Status s = Sync();
  if (s.ok()) s = image.OpenFile(received_, check_vfs_name());
  if (s.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    checking_db_ = image.db();  // CancelCheck may interrupt it from now.
  }
  if (s.ok() && check_hook_) check_hook_(cancel_check_);
  if (s.ok()) s = image.Check(metadata_.index, &cancel_check_);
  {
    std::lock_guard<std::mutex> l(mu_);
    checking_db_ = nullptr;  // Before the image closes it.
    verdict_ = s;
    checked_ = true;
  }
  check_ended_.notify_all();
  if (background_) Progressed();
}

void ImageSink::CancelCheck() {
  if (!checker_.joinable()) return;
  {
    std::unique_lock<std::mutex> l(mu_);
    cancel_check_ = true;
    // An interrupt before a statement's first step is forgotten by SQLite
    // (the check looks at cancel_check_ there); one during a step ends it.
    // Sent again each millisecond until the check ends.
    while (!checked_) {
      if (checking_db_ != nullptr) sqlite3_interrupt(checking_db_);
      check_ended_.wait_for(l, std::chrono::milliseconds(1));
    }
  }
  checker_.join();
}

void ImageSink::Drop() {
  obs::PhaseTimer timer(obs::Phase::kSnapshot);
  if (state_ == State::kInstalled) return;  // Restore owns it.
  CancelCheck();
  CloseFile();
  if (state_ != State::kIdle) DeleteReceived();
  state_ = State::kIdle;
}

std::string ImageSink::Reference() const {
  return absl::StrCat(kReference, metadata_.index);
}

void ImageSink::Installed() {
  CHECK(state_ == State::kChecked);
  state_ = State::kInstalled;
}

std::optional<uint64_t> ImageSink::ReferencedIndex(const std::string& data) {
  uint64_t index = 0;
  if (!absl::StartsWith(data, kReference) ||
      !absl::SimpleAtoi(absl::string_view(data).substr(strlen(kReference)),
                        &index)) {
    return std::nullopt;
  }
  return index;
}

void ImageSink::Restored() {
  vfs_->xDelete(vfs_, received_.c_str(), 0);  // If Restore left it.
  state_ = State::kIdle;
}

void ImageSink::DeleteReceived() {
  if (deleter_ != nullptr) {
    int exists = 0;
    vfs_->xAccess(vfs_, received_.c_str(), SQLITE_ACCESS_EXISTS, &exists);
    if (exists != 0) deleter_->Discard(received_);  // Gigabytes, maybe.
    return;
  }
  vfs_->xDelete(vfs_, received_.c_str(), 0);
}

void ImageSink::CloseFile() {
  if (file_ == nullptr) return;
  // Waits for the piece the writer stores, then for a sync under way
  // (Finish hands the syncer to its thread first): at most kBytesPerSync
  // of pages.
  writer_.reset();
  if (direct_fd_ >= 0) close(direct_fd_);
  direct_fd_ = -1;
  syncer_.reset();
  CloseVfsFile(file_);
  file_ = nullptr;
}

}  // namespace raftsql::sm
