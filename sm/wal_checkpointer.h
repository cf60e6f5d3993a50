// WAL checkpoints for the state machine's write connection, mostly off its
// thread.
//
// SQLite starts a WAL over only when a write transaction begins with every
// frame copied into the database. Under steady commits a checkpoint on
// another thread never gets there (commits land while it copies and
// syncs), so the writer has to finish the job; the aim is that it only
// copies a little. The schedule, per WAL generation:
//   - at `frames` frames the thread copies what is there, then writes back
//     the database pages and the WAL frames committed meanwhile with fsyncs
//     of its own (SQLite syncs the database only after a pass that copied
//     everything: the writer's, which would then flush the whole
//     generation's pages on its own time);
//   - once a pass is over, the writer copies the rest itself if that is at
//     most `frames / 8` frames, else the thread goes again;
//   - at 4 x `frames` the writer copies whatever the thread left; but when
//     a reader (an image for a follower) held the thread's last pass back,
//     a rest over 4 x `frames` frames goes to the thread again: once the
//     reader lets go, the writer would otherwise copy all the WAL it held,
//     on its thread (seconds, for the WAL of a long transfer).
// Attempts that find nothing to gain (a reader still on old frames, the
// thread at work) are retried only after the WAL grew by `frames / 8`, so
// no commit pays for an fsync that copies nothing.
#ifndef RAFTSQL_SM_WAL_CHECKPOINTER_H_
#define RAFTSQL_SM_WAL_CHECKPOINTER_H_

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace raftsql::sm {

// The schedule above, without threads or SQLite: the writer's thread asks it
// what to do after each commit.
class CheckpointSchedule {
 public:
  explicit CheckpointSchedule(int frames);

  enum class Action { kNothing, kKickThread, kWriterPass };
  // What a pass left: the WAL generation it ran in and the frames copied
  // (SQLite's count: every frame copied so far in that generation).
  struct Pass {
    uint64_t generation = ~uint64_t{0};
    int copied = 0;
    // A reader kept the pass from copying every frame the WAL held.
    bool held_back = false;
  };
  // After a commit that left `frames` frames in the WAL. `thread_busy`: a
  // thread pass is under way; `thread_last`: the last one that finished.
  // kKickThread: the caller starts one for generation().
  Action AfterCommit(int frames, bool thread_busy, const Pass& thread_last);
  // The writer's pass after kWriterPass copied `copied` frames (-1: none, it
  // found the thread at work).
  void AfterWriterPass(int copied);

  // WALs started over so far, as seen by the commits.
  uint64_t generation() const { return generation_; }

 private:
  const int frames_;
  const int slack_;
  const int writer_copy_max_;  // Frames the writer copies in a pass, at most.
  int last_frames_ = 0;
  uint64_t generation_ = 0;
  int next_attempt_ = 0;   // No attempt before the WAL holds this many.
  int writer_copied_ = 0;  // What the writer's last pass left copied.
};

class WalCheckpointer {
 public:
  // `db`: a connection of its own to the database, taken over (closed at
  // destruction). `frames` > 0.
  WalCheckpointer(sqlite3* db, int frames);
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Installs the schedule on `writer` (replacing SQLite's automatic
  // checkpoints); from then on only `writer`'s thread commits.
  void Attach(sqlite3* writer);

  struct Counts {
    uint64_t generations = 0;    // Times the WAL started over.
    uint64_t thread_passes = 0;  // Checkpoints the thread ran.
    uint64_t writer_passes = 0;  // Checkpoints the writer ran itself.
  };
  Counts counts() const;
  // Whether the thread has no pass to run or running (tests: a commit loop
  // that waits for it models a thread that gets the CPU).
  bool ThreadIdleForTest() const;

 private:
  static int OnCommit(void* self, sqlite3* writer, const char* db_name,
                      int frames);
  void AfterCommit(sqlite3* writer, int frames);  // The writer's thread.
  void Run();                                     // The thread.

  sqlite3* const db_;  // The thread's; its file handles sync what it copied.

  mutable std::mutex mu_;  // Guards what follows, except thread_.
  std::condition_variable cv_;
  CheckpointSchedule schedule_;
  uint64_t writer_passes_ = 0;
  bool pending_ = false;  // Kicked and not finished.
  bool stop_ = false;
  uint64_t kicked_generation_ = 0;
  CheckpointSchedule::Pass thread_last_;  // The thread's last finished pass.
  uint64_t thread_passes_ = 0;
  std::thread thread_;  // Last: starts once the members above exist.
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_WAL_CHECKPOINTER_H_
