#include "sm/image_source.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "core/codec.h"
#include "obs/log.h"
#include "obs/loop_phases.h"
#include "sm/snapshot_image.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {
namespace {

constexpr char kImageSuffix[] = ".image-";

// Begins a read transaction on `db` and returns the applied index it sees.
absl::StatusOr<uint64_t> BeginRead(sqlite3* db) {
  const int rc = sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc);
  return StoredAppliedIndex(db);  // Its first read starts the transaction.
}

}  // namespace

struct ImageSource::Held {
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  explicit Held(sqlite3* r) : reader(r) {}
  ~Held() {
    view.reset();
    sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(reader);
  }
  sqlite3* const reader;
  std::unique_ptr<WalView> view;
};

ImageSource::ImageSource(std::string path, sqlite3* db, FileDeleter* deleter,
                         Framing framing)
    : path_(std::move(path)), framing_(framing), db_(db), deleter_(deleter) {}

std::unique_ptr<ImageSource> ImageSource::ForFile(std::string path,
                                                  FileDeleter* deleter,
                                                  Framing framing) {
  CHECK(deleter != nullptr);
  std::unique_ptr<ImageSource> source(
      new ImageSource(std::move(path), nullptr, deleter, framing));
  // Image files of the versions that copied the database.
  deleter->DeleteBeside(source->path_, [](const std::string& rest) {
    return absl::StartsWith(rest, kImageSuffix + 1);  // "image-"
  });
  return source;
}

std::unique_ptr<ImageSource> ImageSource::ForConnection(sqlite3* db) {
  return std::unique_ptr<ImageSource>(
      new ImageSource("", db, nullptr, Framing::kWithTrailer));
}

ImageSource::Ready ImageSource::MakeReady(core::SnapshotMetadata metadata,
                                          uint64_t data_size) const {
  Ready ready;
  const uint64_t trailer =
      framing_ == Framing::kWithTrailer ? kImageTrailerBytes : 0;
  ready.info = core::ImageInfo{std::move(metadata), data_size + trailer};
  ready.data_size = data_size;
  return ready;
}

ImageSource::~ImageSource() {
  StopWorker();
  std::lock_guard<std::mutex> l(mu_);
  ready_.reset();
}

void ImageSource::StopWorker() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::lock_guard<std::mutex> l(mu_);
  stop_ = false;
  preparing_ = false;
}

void ImageSource::Request(const core::SnapshotMetadata& metadata) {
  obs::PhaseTimer timer(obs::Phase::kSnapshot);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (ready_.has_value() && ready_->info.metadata.index >= metadata.index) {
      return;  // Nothing newer to show.
    }
  }
  if (db_ != nullptr) {  // The simulator: at once, and never on a clock.
    absl::StatusOr<std::string> bytes = SerializeDatabase(db_);
    if (!bytes.ok()) return Fail(std::string(bytes.status().message()));
    Ready ready = MakeReady(metadata, bytes->size());
    ready.bytes = std::move(*bytes);
    return Publish(std::move(ready));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (preparing_) return;
    if (failures_ > 0 && std::chrono::steady_clock::now() < retry_at_) return;
  }
  StopWorker();  // Reading ahead for the older image.
  sqlite3* reader = nullptr;
  if (sqlite3_open_v2(path_.c_str(), &reader,
                      SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    Fail(absl::StrCat("cannot open the database: ", sqlite3_errmsg(reader)));
    sqlite3_close(reader);
    return;
  }
  int off = 0;  // Read-only; and never the last connection to close.
  sqlite3_db_config(reader, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &off);
  auto held = std::make_unique<Held>(reader);
  // The transaction holds the state as it is now, at the applied index the
  // caller describes: the write connection has committed all of it, and
  // commits nothing until this returns (the same thread), so the
  // wal-index shows this transaction's last frame.
  absl::StatusOr<uint64_t> applied = BeginRead(reader);
  if (!applied.ok() || *applied != metadata.index) {
    return Fail(applied.ok() ? absl::StrCat("the database is at ", *applied,
                                            ", not at ", metadata.index)
                             : std::string(applied.status().message()));
  }
  absl::StatusOr<std::unique_ptr<WalView>> view = WalView::Begin(reader);
  if (!view.ok()) return Fail(std::string(view.status().message()));
  held->view = std::move(*view);
  {
    std::lock_guard<std::mutex> l(mu_);
    preparing_ = true;
  }
  worker_ = std::thread([this, h = held.release(), metadata]() mutable {
    Prepare(std::unique_ptr<Held>(h), std::move(metadata));
  });
}

void ImageSource::Prepare(std::unique_ptr<Held> held,
                          core::SnapshotMetadata metadata) {
  const auto began = std::chrono::steady_clock::now();
  const absl::Status s = held->view->Scan(stop_);
  if (!s.ok()) {
    Fail(std::string(s.message()));
    std::lock_guard<std::mutex> l(mu_);
    preparing_ = false;
    cv_.notify_all();
    return;
  }
  const WalView& view = *held->view;
  obs::Log(obs::Level::kInfo, "snapshot",
           absl::StrFormat(
               "snapshot image at %llu: %lld MB, read from a held transaction "
               "(%u WAL frames, %zu pages in the WAL), ready in %lld ms",
               static_cast<unsigned long long>(metadata.index),
               static_cast<long long>(view.size_bytes() >> 20), view.frames(),
               view.pages_in_wal(),
               static_cast<long long>(MillisecondsSince(began))));
  const Held* reading = held.get();
  const uint64_t data_size = view.size_bytes();
  Ready ready = MakeReady(std::move(metadata), data_size);
  ready.held = std::move(held);
  Publish(std::move(ready));
  ReadAhead(*reading, data_size);
}

void ImageSource::ReadAhead(const Held& held, uint64_t data_size) {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    const uint64_t next = AheadEnd();
    if (chunk_bytes_ == 0 || next >= data_size ||
        next + chunk_bytes_ > ahead_from_ + kReadAheadBytes) {
      cv_.wait(l);
      continue;
    }
    const uint64_t n = std::min(chunk_bytes_, data_size - next);
    l.unlock();
    absl::StatusOr<std::string> bytes = held.view->Read(next, n);
    // Here, not on the loop that serves the chunk: the chunk is in this
    // core's cache now (the loop's CRC of it ran at a quarter of the rate).
    const uint32_t crc = bytes.ok() ? core::Crc32c(*bytes) : 0;
    l.lock();
    if (!bytes.ok()) {
      // The Read that waits for it says why; none reads ahead until the
      // next Read elsewhere.
      ahead_error_ = bytes.status();
      chunk_bytes_ = 0;
      Progressed(l);
      continue;
    }
    // Read() may have moved on meanwhile: only a chunk that still follows
    // the others, or the last Read, is kept.
    if (AheadEnd() == next && n == std::min(chunk_bytes_, data_size - next)) {
      ahead_.push_back(Chunk{next, std::move(*bytes), crc});
      ++chunks_read_ahead_;
      cv_.notify_all();  // WaitUntilAhead.
      Progressed(l);
    }
  }
}

uint64_t ImageSource::AheadEnd() const {
  return ahead_.empty() ? ahead_from_
                        : ahead_.back().offset + ahead_.back().bytes.size();
}

void ImageSource::Progressed(std::unique_lock<std::mutex>& l) {
  if (!waited_ || !progressed_) return;
  waited_ = false;
  l.unlock();
  progressed_();
  l.lock();
}

void ImageSource::SetProgressCallback(std::function<void()> progressed) {
  std::lock_guard<std::mutex> l(mu_);
  progressed_ = std::move(progressed);
}

std::optional<absl::StatusOr<ImageBytes>> ImageSource::TakeAhead(
    uint64_t at, uint64_t len) const {
  while (!ahead_.empty() && ahead_.front().offset < at) ahead_.pop_front();
  if (!ahead_.empty() && ahead_.front().offset == at &&
      ahead_.front().bytes.size() == len) {
    ImageBytes out{std::move(ahead_.front().bytes), ahead_.front().crc};
    ahead_.pop_front();
    ++chunks_taken_;
    ahead_from_ = at + len;
    cv_.notify_all();
    return out;
  }
  if (progressed_ && ahead_.empty() && chunk_bytes_ == len &&
      ahead_from_ == at) {
    // The thread reads this chunk next (or is reading it), and says when.
    waited_ = true;
    return absl::UnavailableError("not read yet");
  }
  if (!ahead_error_.ok() && ahead_from_ == at) {
    absl::Status why = std::move(ahead_error_);
    ahead_error_ = absl::OkStatus();
    return why;
  }
  // Elsewhere: read on the caller's thread; the thread reads after it.
  ahead_.clear();
  ahead_error_ = absl::OkStatus();
  chunk_bytes_ = len;
  ahead_from_ = at + len;
  cv_.notify_all();
  return std::nullopt;
}

void ImageSource::Publish(Ready ready) {
  std::optional<Ready> old;
  {
    std::lock_guard<std::mutex> l(mu_);
    old = std::move(ready_);
    ready_ = std::move(ready);
    ahead_.clear();
    ahead_from_ = 0;
    chunk_bytes_ = 0;
    preparing_ = false;
    ++images_made_;
    last_error_.clear();
    failures_ = 0;
  }
  cv_.notify_all();
  // `old` ends its transaction here, off the lock.
}

void ImageSource::Release() {
  StopWorker();
  std::optional<Ready> old;
  std::lock_guard<std::mutex> l(mu_);
  old = std::move(ready_);
  ready_.reset();
  ahead_.clear();
}

void ImageSource::Fail(std::string why) {
  if (stop_) return;  // Shutting down.
  obs::Log(obs::Level::kWarn, "snapshot",
           absl::StrFormat("snapshot image failed: %s", why.c_str()));
  std::lock_guard<std::mutex> l(mu_);
  last_error_ = std::move(why);
  const auto delay = std::min<std::chrono::steady_clock::duration>(
      kFirstRetryDelay * (1 << std::min(failures_, 6)), kMaxRetryDelay);
  ++failures_;
  retry_at_ = std::chrono::steady_clock::now() + delay;
}

absl::StatusOr<core::ImageInfo> ImageSource::Latest() const {
  std::lock_guard<std::mutex> l(mu_);
  if (!ready_.has_value()) return absl::UnavailableError("no image yet");
  return ready_->info;
}

absl::StatusOr<std::string> ImageSource::Read(uint64_t index, uint64_t offset,
                                              uint64_t max_bytes) const {
  obs::PhaseTimer timer(obs::Phase::kSnapshot);
  std::lock_guard<std::mutex> l(mu_);
  if (!ready_.has_value() || ready_->info.metadata.index != index) {
    return absl::NotFoundError(
        absl::StrCat("image ", index, " was replaced by a newer one"));
  }
  const Ready& ready = *ready_;
  const uint64_t size = ready.info.size;
  if (offset > size) return absl::OutOfRangeError("beyond the image");
  const uint64_t n = std::min(max_bytes, size - offset);
  auto data = [&](uint64_t at, uint64_t len) -> absl::StatusOr<ImageBytes> {
    if (ready.held == nullptr) {
      return ImageBytes{ready.bytes.substr(at, len), std::nullopt};
    }
    // The thread reads the chunks that follow ahead, so that the loop
    // takes them read (reading 16 chunks took 20-50 ms of one loop
    // iteration from the page cache, hundreds from the disk).
    std::optional<absl::StatusOr<ImageBytes>> ahead = TakeAhead(at, len);
    if (ahead.has_value() && !ahead->ok() &&
        !absl::IsUnavailable(ahead->status())) {
      return absl::DataLossError(absl::StrCat("cannot read image ", index, ": ",
                                              ahead->status().message()));
    }
    if (ahead.has_value()) return std::move(*ahead);
    absl::StatusOr<std::string> out = ready.held->view->Read(at, len);
    if (!out.ok()) {
      return absl::DataLossError(absl::StrCat("cannot read image ", index, ": ",
                                              out.status().message()));
    }
    return ImageBytes{std::move(*out), std::nullopt};
  };
  if (framing_ == Framing::kRaw) {
    absl::StatusOr<ImageBytes> raw = data(offset, n);
    if (!raw.ok()) return raw.status();
    return std::move(raw->bytes);
  }
  return ReadFramedImage(ready.data_size, offset, n, ready.crc, data);
}

void ImageSource::Reset(sqlite3* db) {
  CHECK((db == nullptr) == !path_.empty());  // Files, or the simulator.
  Release();
  db_ = db;
}

void ImageSource::Wait() {
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return !preparing_; });
  }
  if (deleter_ != nullptr) deleter_->Wait();
}

bool ImageSource::ReadsDatabaseFileOnly() const {
  std::lock_guard<std::mutex> l(mu_);
  return ready_.has_value() && ready_->held != nullptr &&
         ready_->held->view->database_file_only();
}

void ImageSource::WaitUntilAhead(uint64_t bytes) const {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] {
    if (!ready_.has_value()) return true;
    const uint64_t next = AheadEnd();
    return next >= ahead_from_ + bytes || next >= ready_->data_size;
  });
}

uint64_t ImageSource::chunks_read_ahead() const {
  std::lock_guard<std::mutex> l(mu_);
  return chunks_read_ahead_;
}

uint64_t ImageSource::chunks_taken() const {
  std::lock_guard<std::mutex> l(mu_);
  return chunks_taken_;
}

uint64_t ImageSource::images_made() const {
  std::lock_guard<std::mutex> l(mu_);
  return images_made_;
}

std::string ImageSource::last_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_error_;
}

}  // namespace raftsql::sm
