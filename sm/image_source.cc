#include "sm/image_source.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
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
  Ready ready = MakeReady(std::move(metadata), view.size_bytes());
  ready.held = std::move(held);
  Publish(std::move(ready));
  ReadAhead(*reading);
}

void ImageSource::ReadAhead(const Held& held) {
  uint64_t done = 0;
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    if (wanted_until_ <= done) {
      cv_.wait(l);
      continue;
    }
    // Whatever was asked before this Read is behind the follower now.
    done = std::max(done, wanted_until_ > kReadAheadBytes
                              ? wanted_until_ - kReadAheadBytes
                              : 0);
    const uint64_t n = std::min(kReadAheadPieceBytes, wanted_until_ - done);
    l.unlock();
    held.view->Touch(done, n);
    done += n;
    l.lock();
  }
}

void ImageSource::Publish(Ready ready) {
  std::optional<Ready> old;
  {
    std::lock_guard<std::mutex> l(mu_);
    old = std::move(ready_);
    ready_ = std::move(ready);
    wanted_until_ = 0;
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
  auto data = [&](uint64_t at, uint64_t len) -> absl::StatusOr<std::string> {
    if (ready.held == nullptr) return ready.bytes.substr(at, len);
    // The next chunks are read ahead on the thread, so that the loop's
    // next reads find them in memory (a database larger than the page
    // cache holds is read from the disk: 16 chunks read on one loop
    // iteration took hundreds of milliseconds).
    wanted_until_ = std::max(wanted_until_, at + len + kReadAheadBytes);
    cv_.notify_all();
    absl::StatusOr<std::string> out = ready.held->view->Read(at, len);
    if (!out.ok()) {
      return absl::DataLossError(absl::StrCat("cannot read image ", index, ": ",
                                              out.status().message()));
    }
    return out;
  };
  if (framing_ == Framing::kRaw) return data(offset, n);
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

uint64_t ImageSource::images_made() const {
  std::lock_guard<std::mutex> l(mu_);
  return images_made_;
}

std::string ImageSource::last_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_error_;
}

}  // namespace raftsql::sm
