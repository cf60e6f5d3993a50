// Vacuum: SQL VACUUM through the log, in time the apply loop never waits
// for (issue 13). SQLite's VACUUM rebuilds the whole file; on the apply
// loop it would stall the replica for time proportional to its database.
// It keeps rowids (its copy is an xfer with DBFLAG_Vacuum): it moves
// pages, never the replicated state, so each replica does it at its own
// pace. Once the VACUUM entry has applied:
//
//   1. a thread copies the database into `<db>.vacuum` with VACUUM INTO,
//      in one read transaction: the copy holds some applied index a;
//   2. the same thread applies to the copy, through a state machine of its
//      own, every entry the database applied since the start (Add queues
//      them; those at or below a are already in it);
//   3. once the thread has caught up, the apply loop applies its latest
//      batch to the copy too (it pays that batch twice) and closes the
//      copy, which then holds exactly the database's state; the state
//      machine swaps it in by renames (file_swap.h).
//
// A crash before the swap leaves `<db>.vacuum*` files that Sweep deletes at
// the next start; one inside the swap completes at the next open. The
// queue (vacuum_backlog.h: memory, then a file) is bounded: a vacuum that
// falls VacuumBacklog::kMaxBytes behind is abandoned and the database
// stays as it was.
//
// Thread-safety: one caller (the apply loop) drives Add/CaughtUp/Finish.
#ifndef RAFTSQL_SM_VACUUM_H_
#define RAFTSQL_SM_VACUUM_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "core/types.h"
#include "sm/sqlite_state_machine.h"
#include "sm/vacuum_backlog.h"

namespace raftsql::sm {

class FileDeleter;

class Vacuum {
 public:
  // Entries the thread applies to the copy per transaction, at most.
  static constexpr size_t kBatchEntries = 256;
  // The copy's writeback windows: at most two of them wait in the page
  // cache, so that the copy's final sync (and any fsync meanwhile) waits
  // for little.
  static constexpr uint64_t kWritebackWindowBytes = 4 << 20;
  // The thread's nice value (the lowest priority).
  static constexpr int kNice = 19;
  // VACUUM INTO's VM steps between looks at its file (writeback, Stop).
  static constexpr int kProgressSteps = 10'000;

  // Starts vacuuming the database file at `path` on a thread; the copy's
  // state machine opens with `copy_options` (its path is set here).
  Vacuum(std::string path, SqliteOptions copy_options);
  // Abandons a vacuum not finished: the thread stops, the copy goes.
  ~Vacuum();
  Vacuum(const Vacuum&) = delete;
  Vacuum& operator=(const Vacuum&) = delete;

  static std::string CopyPath(const std::string& path);
  // Deletes what an earlier run's vacuum left beside `path`.
  static void Sweep(const std::string& path, FileDeleter* deleter);

  // The entries the database applied, in order, after the start. False
  // once the vacuum failed or fell VacuumBacklog::kMaxBytes behind (status()
  // says why): the caller drops it.
  bool Add(std::span<const core::Entry> entries);
  // The thread has applied everything queued and waits for more.
  bool CaughtUp() const;
  // On the apply loop, once CaughtUp: applies `last` (the batch the
  // database just applied, not queued). OK if the copy then holds `index`
  // (the database's); then Close. Otherwise the copy goes with the Vacuum.
  absl::Status Finish(std::span<const core::Entry> last, uint64_t index);
  // After Finish, on any thread (its close copies the copy's WAL into its
  // file: up to hundreds of ms): closes the copy and syncs it. OK: the
  // caller swaps the file at CopyPath in. Otherwise the copy goes with the
  // Vacuum.
  absl::Status Close();
  absl::Status status() const;
  // Waits (at most `bound`) until the thread has applied everything queued
  // or failed; whether it did (tests).
  bool WaitUntilIdle(std::chrono::milliseconds bound);
  // The copy's applied index when VACUUM INTO made it (0 before).
  uint64_t copied_at() const;

 private:
  struct CopyProgress;
  void Run();
  absl::Status Copy();
  absl::Status ApplyToCopy(std::vector<core::Entry> entries);
  void Fail(absl::Status s);
  void Stop();
  void RemoveCopy() const;  // Its file and SQLite's beside it.

  const std::string path_;
  const std::string copy_path_;
  SqliteOptions copy_options_;
  std::unique_ptr<SqliteStateMachine> copy_;  // The thread's, then Finish's.
  std::vector<std::string> results_;          // Thrown away.

  mutable std::mutex mu_;
  std::condition_variable cv_;
  VacuumBacklog backlog_;  // Guarded by mu_.
  // Set under mu_; VACUUM INTO's progress handler reads it without.
  std::atomic<bool> stop_{false};
  bool idle_ = false;       // Guarded by mu_: the thread waits for entries.
  absl::Status status_;     // Guarded by mu_.
  uint64_t copied_at_ = 0;  // Guarded by mu_.
  bool finished_ = false;   // Finish ran (the copy is the caller's).
  std::thread thread_;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_VACUUM_H_
