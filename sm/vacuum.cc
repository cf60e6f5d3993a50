#include "sm/vacuum.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sm/file_deleter.h"
#include "sm/sqlite_util.h"
#include "sm/writeback.h"

namespace raftsql::sm {
namespace {

absl::Status SyncFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  const bool synced = fd >= 0 && fdatasync(fd) == 0;
  if (fd >= 0) close(fd);
  if (!synced) {
    return absl::DataLossError(absl::StrCat("cannot sync ", path));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Vacuum::CopyPath(const std::string& path) {
  return path + ".vacuum";
}

void Vacuum::Sweep(const std::string& path, FileDeleter* deleter) {
  deleter->DeleteBeside(path, [](const std::string& rest) {
    return rest == "vacuum" || absl::StartsWith(rest, "vacuum-") ||
           absl::StartsWith(rest, "vacuum.");
  });
}

Vacuum::Vacuum(std::string path, SqliteOptions copy_options)
    : path_(std::move(path)),
      copy_path_(CopyPath(path_)),
      copy_options_(std::move(copy_options)),
      backlog_(copy_path_ + "-backlog") {
  copy_options_.path = copy_path_;
  thread_ = std::thread([this] { Run(); });
}

Vacuum::~Vacuum() {
  Stop();
  if (finished_) return;  // The copy is the caller's now.
  copy_.reset();
  RemoveCopy();
}

void Vacuum::RemoveCopy() const {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::remove((copy_path_ + suffix).c_str());
  }
}

void Vacuum::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;  // A copy under way (seconds for gigabytes) ends too.
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status Vacuum::status() const {
  std::lock_guard<std::mutex> l(mu_);
  return status_;
}

uint64_t Vacuum::copied_at() const {
  std::lock_guard<std::mutex> l(mu_);
  return copied_at_;
}

void Vacuum::Fail(absl::Status s) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (status_.ok()) status_ = std::move(s);
  }
  cv_.notify_all();
}

bool Vacuum::WaitUntilIdle(std::chrono::milliseconds bound) {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, bound, [this] {
    return !status_.ok() || (idle_ && backlog_.empty());
  });
}

bool Vacuum::Add(std::span<const core::Entry> entries) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!status_.ok()) return false;
    absl::Status s = backlog_.Push(entries);
    if (!s.ok()) {
      status_ = std::move(s);
      return false;
    }
  }
  cv_.notify_all();
  return true;
}

bool Vacuum::CaughtUp() const {
  std::lock_guard<std::mutex> l(mu_);
  return status_.ok() && copied_at_ > 0 && idle_ && backlog_.empty();
}

absl::Status Vacuum::Finish(std::span<const core::Entry> last, uint64_t index) {
  Stop();
  absl::Status s = status();
  if (!s.ok()) return s;
  if (copy_ == nullptr) return absl::InternalError("the copy is not open");
  // Caught up: nothing waits in the backlog, but take whatever does.
  absl::StatusOr<std::vector<core::Entry>> waiting =
      backlog_.Pop(std::numeric_limits<size_t>::max());
  if (!waiting.ok()) return waiting.status();
  std::vector<core::Entry> rest = *std::move(waiting);
  rest.insert(rest.end(), last.begin(), last.end());
  s = ApplyToCopy(std::move(rest));
  if (!s.ok()) return s;
  if (copy_->AppliedIndex() != index) {
    return absl::InternalError(absl::StrCat(
        "the copy holds index ", copy_->AppliedIndex(), ", not ", index));
  }
  return absl::OkStatus();
}

absl::Status Vacuum::Close() {
  if (copy_ == nullptr) return absl::InternalError("the copy is not open");
  copy_.reset();  // Its last close copies its WAL into the file.
  for (const char* suffix : {"-wal", "-journal"}) {
    if (access((copy_path_ + suffix).c_str(), F_OK) == 0) {
      return absl::DataLossError(
          absl::StrCat("the copy kept its ", suffix, " file at close"));
    }
  }
  absl::Status s = SyncFile(copy_path_);
  if (!s.ok()) return s;
  finished_ = true;
  return absl::OkStatus();
}

// VACUUM INTO's progress: its file's pages go to the disk as it grows
// (writeback.h; otherwise hundreds of megabytes wait in the page cache and
// every fsync on the machine, the Raft log's, waits behind them), and a
// Stop interrupts it.
struct Vacuum::CopyProgress {
  const std::string* path;
  const std::atomic<bool>* stop;
  uint64_t bytes_per_second = 0;
  std::chrono::steady_clock::time_point began =
      std::chrono::steady_clock::now();
  int fd = -1;
  std::optional<WritebackPacer> pacer;

  ~CopyProgress() {
    if (fd >= 0) close(fd);
  }
  static int Call(void* self) {
    return static_cast<CopyProgress*>(self)->Step() ? 0 : 1;
  }
  bool Step() {
    if (stop->load()) return false;
    if (fd < 0) {
      fd = open(path->c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return true;  // Not created yet.
      pacer.emplace(fd, kWritebackWindowBytes);
    }
    struct stat grown {};
    if (fstat(fd, &grown) != 0) return true;
    const auto size = static_cast<uint64_t>(grown.st_size);
    pacer->Wrote(size);
    if (bytes_per_second > 0) {
      // Ahead of the rate: wait (in slices, so that a Stop is seen).
      const auto due = began + std::chrono::microseconds(static_cast<int64_t>(
                                   static_cast<double>(size) * 1e6 /
                                   static_cast<double>(bytes_per_second)));
      const auto now = std::chrono::steady_clock::now();
      if (due > now) {
        std::this_thread::sleep_for(
            std::min<std::chrono::steady_clock::duration>(
                due - now, std::chrono::milliseconds(50)));
      }
    }
    return true;
  }
};

absl::Status Vacuum::Copy() {
  RemoveCopy();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path_.c_str(), &db,
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  absl::Status s;
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* stmt = nullptr;
    rc = sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &stmt, nullptr);
    CopyProgress progress{&copy_path_, &stop_,
                          copy_options_.vacuum_bytes_per_second};
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(stmt, 1, copy_path_.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_progress_handler(db, kProgressSteps, &CopyProgress::Call,
                               &progress);
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    sqlite3_progress_handler(db, 0, nullptr, nullptr);
  }
  if (rc != SQLITE_OK) s = SqliteError(db, rc);
  sqlite3_close(db);
  // Its last pages reach the disk here, not in Finish on the apply loop.
  if (s.ok()) s = SyncFile(copy_path_);
  if (!s.ok()) return s;
  absl::StatusOr<std::unique_ptr<SqliteStateMachine>> copy =
      SqliteStateMachine::Open(copy_options_);
  if (!copy.ok()) return copy.status();
  copy_ = std::move(*copy);
  std::lock_guard<std::mutex> l(mu_);
  copied_at_ = copy_->AppliedIndex();
  return absl::OkStatus();
}

absl::Status Vacuum::ApplyToCopy(std::vector<core::Entry> entries) {
  const uint64_t applied = copy_->AppliedIndex();
  std::erase_if(entries,
                [applied](const core::Entry& e) { return e.index <= applied; });
  if (entries.empty()) return absl::OkStatus();
  if (entries.front().index != applied + 1) {
    return absl::InternalError(absl::StrCat("the copy holds index ", applied,
                                            " and the next entry queued is ",
                                            entries.front().index));
  }
  copy_->ApplyBatch(entries, &results_);
  results_.clear();
  if (!copy_->copy_failure().empty()) {
    return absl::DataLossError("the copy failed: " + copy_->copy_failure());
  }
  if (copy_->AppliedIndex() != entries.back().index) {
    return absl::InternalError("the copy did not apply its entries");
  }
  return absl::OkStatus();
}

void Vacuum::Run() {
  // Background work: the apply loop's thread (and the Raft loop's) come
  // first for the CPU (on Linux, nice applies to the calling thread).
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kNice);
  absl::Status s = Copy();
  if (!s.ok()) return Fail(s);
  while (true) {
    std::vector<core::Entry> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      idle_ = true;
      cv_.notify_all();  // For WaitUntilIdle.
      cv_.wait(l, [this] { return stop_ || !backlog_.empty(); });
      idle_ = false;
      if (stop_) return;
      absl::StatusOr<std::vector<core::Entry>> next =
          backlog_.Pop(kBatchEntries);
      if (!next.ok()) {
        l.unlock();
        return Fail(next.status());
      }
      batch = *std::move(next);
    }
    s = ApplyToCopy(std::move(batch));
    if (!s.ok()) return Fail(s);
  }
}

}  // namespace raftsql::sm
