#include "sm/wal_checkpointer.h"

#include <algorithm>
#include <string>

#include "obs/loop_phases.h"

namespace raftsql::sm {

CheckpointSchedule::CheckpointSchedule(int frames)
    : frames_(std::max(frames, 1)),
      slack_(std::max(frames / 8, 1)),
      writer_copy_max_(4 * frames_) {}

CheckpointSchedule::Action CheckpointSchedule::AfterCommit(
    int frames, bool thread_busy, const Pass& thread_last) {
  if (frames < last_frames_) {  // The WAL started over.
    ++generation_;
    next_attempt_ = 0;
    writer_copied_ = 0;
  }
  last_frames_ = frames;
  if (frames < frames_ || frames < next_attempt_) return Action::kNothing;
  int copied = writer_copied_;
  if (!thread_busy && thread_last.generation == generation_) {
    copied = std::max(copied, thread_last.copied);
  }
  const int left = frames - copied;
  const bool over = frames >= 4 * frames_;
  const bool held_back =
      thread_last.generation == generation_ && thread_last.held_back;
  if ((over && (left <= writer_copy_max_ || !held_back)) ||
      (!thread_busy && left <= slack_)) {
    // Had the pass copied everything, the next commit starts the WAL over
    // and this no longer applies; otherwise a reader or the thread held it
    // back, and the next try waits for the WAL to grow.
    next_attempt_ = frames + slack_;
    return Action::kWriterPass;
  }
  if (thread_busy) return Action::kNothing;
  // More than the writer may copy, held back by a reader: the thread
  // copies it once the reader lets go. Until then a pass gains nothing,
  // and the next waits for the WAL to grow.
  if (over) next_attempt_ = frames + slack_;
  return Action::kKickThread;
}

void CheckpointSchedule::AfterWriterPass(int copied) {
  if (copied >= 0) writer_copied_ = copied;
}

namespace {

// Syncs `db`'s database file (SQLITE_FCNTL_FILE_POINTER) or its WAL
// (SQLITE_FCNTL_JOURNAL_POINTER) through the connection's own handle: a
// descriptor of ours, once closed, would drop every POSIX lock this
// process holds on the file, SQLite's included.
void SyncThrough(sqlite3* db, int op) {
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db, "main", op, &file) != SQLITE_OK ||
      file == nullptr || file->pMethods == nullptr) {
    return;  // Not open (yet): nothing of it to sync.
  }
  file->pMethods->xSync(file, SQLITE_SYNC_NORMAL | SQLITE_SYNC_DATAONLY);
}

}  // namespace

WalCheckpointer::WalCheckpointer(sqlite3* db, int frames)
    : db_(db), schedule_(frames), thread_([this] { Run(); }) {
  // A connection that has not read the database yet does not know it is in
  // WAL mode: its checkpoints then did nothing (and said so only by a log
  // size of -1), and the WAL grew without bound.
  sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  sqlite3_close(db_);
}

void WalCheckpointer::Attach(sqlite3* writer) {
  sqlite3_wal_hook(writer, &WalCheckpointer::OnCommit, this);
}

WalCheckpointer::Counts WalCheckpointer::counts() const {
  std::lock_guard<std::mutex> l(mu_);
  return Counts{schedule_.generation(), thread_passes_, writer_passes_};
}

bool WalCheckpointer::ThreadIdleForTest() const {
  std::lock_guard<std::mutex> l(mu_);
  return !pending_;
}

int WalCheckpointer::OnCommit(void* self, sqlite3* writer, const char*,
                              int frames) {
  static_cast<WalCheckpointer*>(self)->AfterCommit(writer, frames);
  return SQLITE_OK;
}

void WalCheckpointer::AfterCommit(sqlite3* writer, int frames) {
  std::unique_lock<std::mutex> l(mu_);
  switch (schedule_.AfterCommit(frames, pending_, thread_last_)) {
    case CheckpointSchedule::Action::kNothing:
      return;
    case CheckpointSchedule::Action::kKickThread:
      pending_ = true;
      kicked_generation_ = schedule_.generation();
      l.unlock();
      cv_.notify_one();
      return;
    case CheckpointSchedule::Action::kWriterPass: {
      ++writer_passes_;
      l.unlock();
      obs::PhaseTimer timer(obs::Phase::kCheckpoint);
      int log = 0;
      int copied = 0;
      // PASSIVE: copies what no reader still needs; busy (and nothing
      // done) if the thread is at it.
      const int rc = sqlite3_wal_checkpoint_v2(
          writer, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
      l.lock();
      schedule_.AfterWriterPass(rc == SQLITE_OK ? copied : -1);
      return;
    }
  }
}

void WalCheckpointer::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [this] { return stop_ || pending_; });
    if (stop_) return;
    const uint64_t generation = kicked_generation_;
    l.unlock();
    int log = 0;
    int copied = 0;
    // PASSIVE: never blocks the writer.
    const int rc = sqlite3_wal_checkpoint_v2(
        db_, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    // SQLite syncs the database file only after a pass that copied the
    // whole WAL, which under steady commits is the writer's: that fsync then
    // wrote back every page this thread copied, on the writer's time. Write
    // them back here instead, and the frames committed during this pass
    // (the writer's pass syncs the WAL first). An extra fsync is never wrong.
    if (rc == SQLITE_OK && copied > 0) {
      SyncThrough(db_, SQLITE_FCNTL_FILE_POINTER);
      SyncThrough(db_, SQLITE_FCNTL_JOURNAL_POINTER);
    }
    l.lock();
    ++thread_passes_;
    if (rc == SQLITE_OK) thread_last_ = {generation, copied, copied < log};
    pending_ = false;
  }
}

}  // namespace raftsql::sm
