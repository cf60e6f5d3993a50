#include "sm/image_source.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/snapshot_image.h"
#include "sm/sqlite_util.h"
#include "sm/writeback.h"

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

ImageSource::ImageSource(std::string path, sqlite3* db, FileDeleter* deleter)
    : path_(std::move(path)), db_(db), deleter_(deleter) {}

std::unique_ptr<ImageSource> ImageSource::ForFile(std::string path,
                                                  FileDeleter* deleter) {
  CHECK(deleter != nullptr);
  std::unique_ptr<ImageSource> source(
      new ImageSource(std::move(path), nullptr, deleter));
  deleter->DeleteBeside(source->path_, [](const std::string& rest) {
    return absl::StartsWith(rest, kImageSuffix + 1);  // "image-"
  });
  return source;
}

std::unique_ptr<ImageSource> ImageSource::ForConnection(sqlite3* db) {
  return std::unique_ptr<ImageSource>(new ImageSource("", db, nullptr));
}

ImageSource::~ImageSource() {
  stop_ = true;
  if (copier_.joinable()) copier_.join();
  if (ready_.has_value() && ready_->fd >= 0) {
    close(ready_->fd);
    deleter_->Discard(ready_->path);
  }
}

std::string ImageSource::ImagePath(uint64_t index) const {
  return absl::StrCat(path_, kImageSuffix, index);
}

void ImageSource::Request(const core::SnapshotMetadata& metadata) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (ready_.has_value() && ready_->info.metadata.index >= metadata.index) {
      return;  // Nothing newer to show.
    }
  }
  if (db_ != nullptr) {
    absl::StatusOr<std::string> bytes = SerializeDatabase(db_);
    if (!bytes.ok()) return Fail(std::string(bytes.status().message()));
    Ready ready;
    ready.info = core::ImageInfo{metadata, bytes->size()};
    ready.bytes = std::move(*bytes);
    return Publish(std::move(ready));
  }
  if (copying_) return;
  if (copier_.joinable()) copier_.join();  // The last one is done.
  {
    std::lock_guard<std::mutex> l(mu_);
    if (failures_ > 0 && std::chrono::steady_clock::now() < retry_at_) return;
  }
  sqlite3* reader = nullptr;
  if (sqlite3_open_v2(path_.c_str(), &reader,
                      SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    Fail(absl::StrCat("cannot open the database: ", sqlite3_errmsg(reader)));
    sqlite3_close(reader);
    return;
  }
  // The transaction holds the state as it is now, at the applied index the
  // caller describes: the write connection has committed all of it.
  absl::StatusOr<uint64_t> applied = BeginRead(reader);
  if (!applied.ok() || *applied != metadata.index) {
    Fail(applied.ok() ? absl::StrCat("the database is at ", *applied,
                                     ", not at ", metadata.index)
                      : std::string(applied.status().message()));
    sqlite3_close(reader);
    return;
  }
  copying_ = true;
  copier_ = std::thread([this, reader, metadata] {
    Copy(reader, metadata);
    copying_ = false;
  });
}

void ImageSource::Copy(sqlite3* reader, core::SnapshotMetadata metadata) {
  const auto began = std::chrono::steady_clock::now();
  const std::string path = ImagePath(metadata.index);
  const std::string partial = path + ".partial";
  std::remove(partial.c_str());
  sqlite3* dest = nullptr;
  int rc = sqlite3_open_v2(
      partial.c_str(), &dest,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  // Images are not durable (a restart deletes them): no journal, no fsync.
  if (rc == SQLITE_OK) {
    rc = sqlite3_exec(dest, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF",
                      nullptr, nullptr, nullptr);
  }
  sqlite3_backup* backup =
      rc == SQLITE_OK ? sqlite3_backup_init(dest, "main", reader, "main")
                      : nullptr;
  std::string error;
  if (backup == nullptr) {
    error = absl::StrCat("cannot start the copy: ", sqlite3_errmsg(dest));
  } else {
    // The reader's transaction stays open between steps: every step sees
    // the same state.
    // Written pages go to the disk as the copy goes: gigabytes of them
    // waiting in the page cache made every fsync on the machine (the Raft
    // log's) wait behind them, for seconds.
    const int fd = open(partial.c_str(), O_RDONLY | O_CLOEXEC);
    WritebackPacer pacer(fd);
    do {
      rc = sqlite3_backup_step(backup, kPagesPerStep);
      struct stat grown {};
      if (fd >= 0 && fstat(fd, &grown) == 0) {
        pacer.Wrote(static_cast<uint64_t>(grown.st_size));
      }
    } while ((rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) &&
             !stop_);
    sqlite3_backup_finish(backup);
    if (fd >= 0) close(fd);
    if (rc != SQLITE_DONE) {
      error = stop_ ? "stopped"
                    : absl::StrCat("the copy failed: ", sqlite3_errstr(rc));
    }
  }
  sqlite3_close(dest);
  sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(reader);
  int fd = -1;
  struct stat st {};
  if (error.empty() && std::rename(partial.c_str(), path.c_str()) != 0) {
    error = absl::StrCat("cannot rename the image: ", std::strerror(errno));
  }
  if (error.empty()) {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
      error = absl::StrCat("cannot open the image: ", std::strerror(errno));
    }
  }
  if (!error.empty()) {
    if (fd >= 0) close(fd);
    std::remove(partial.c_str());
    std::remove(path.c_str());
    return Fail(error);
  }
  std::fprintf(stderr, "raftsql: snapshot image at %llu: %lld MB in %lld ms\n",
               static_cast<unsigned long long>(metadata.index),
               static_cast<long long>(st.st_size >> 20),
               static_cast<long long>(MillisecondsSince(began)));
  Ready ready;
  ready.info =
      core::ImageInfo{std::move(metadata), static_cast<uint64_t>(st.st_size)};
  ready.fd = fd;
  ready.path = path;
  Publish(std::move(ready));
}

void ImageSource::Publish(Ready ready) {
  std::optional<Ready> old;
  {
    std::lock_guard<std::mutex> l(mu_);
    old = std::move(ready_);
    ready_ = std::move(ready);
    ++images_made_;
    last_error_.clear();
    failures_ = 0;
  }
  if (old.has_value() && old->fd >= 0) {
    close(old->fd);
    deleter_->Delete(old->path);  // Another index: another name.
  }
}

void ImageSource::Release() {
  std::optional<Ready> old;
  {
    std::lock_guard<std::mutex> l(mu_);
    old = std::move(ready_);
    ready_.reset();
  }
  if (old.has_value() && old->fd >= 0) {
    close(old->fd);
    deleter_->Discard(old->path);  // On the Raft loop: never the unlink.
  }
}

void ImageSource::Fail(std::string why) {
  if (stop_) return;  // Shutting down.
  std::fprintf(stderr, "raftsql: snapshot image failed: %s\n", why.c_str());
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
  std::lock_guard<std::mutex> l(mu_);
  if (!ready_.has_value() || ready_->info.metadata.index != index) {
    return absl::NotFoundError(
        absl::StrCat("image ", index, " was replaced by a newer one"));
  }
  const uint64_t size = ready_->info.size;
  if (offset > size) return absl::OutOfRangeError("beyond the image");
  const uint64_t n = std::min(max_bytes, size - offset);
  if (ready_->fd < 0) return ready_->bytes.substr(offset, n);
  std::string out(n, '\0');
  uint64_t done = 0;
  while (done < n) {
    const ssize_t got = pread(ready_->fd, out.data() + done, n - done,
                              static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      return absl::DataLossError(absl::StrCat(
          "cannot read image ", index, ": ",
          got < 0 ? std::strerror(errno) : "it is shorter than it was"));
    }
    done += static_cast<uint64_t>(got);
  }
  // The next chunks are asked of the disk now, so that the loop's next
  // reads find them in memory (an image larger than the page cache holds
  // is read from the disk: 16 chunks read on one loop iteration took
  // hundreds of milliseconds).
  posix_fadvise(ready_->fd, static_cast<off_t>(offset + n), kReadAheadBytes,
                POSIX_FADV_WILLNEED);
  return out;
}

void ImageSource::Reset(sqlite3* db) {
  CHECK((db == nullptr) == !path_.empty());  // Files, or the simulator.
  stop_ = true;
  if (copier_.joinable()) copier_.join();
  stop_ = false;
  Release();
  db_ = db;
}

void ImageSource::Wait() {
  if (copier_.joinable()) copier_.join();
  if (deleter_ != nullptr) deleter_->Wait();
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
