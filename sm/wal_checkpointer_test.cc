#include "sm/wal_checkpointer.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "sm/temp_dir.h"

namespace raftsql::sm {
namespace {

using Action = CheckpointSchedule::Action;
using Pass = CheckpointSchedule::Pass;

constexpr Pass kNoPass{};

TEST(CheckpointSchedule, NothingHappensBelowTheThreshold) {
  CheckpointSchedule s(1000);
  EXPECT_EQ(s.AfterCommit(999, false, kNoPass), Action::kNothing);
}

TEST(CheckpointSchedule, TheThreadCopiesFirst) {
  CheckpointSchedule s(1000);
  EXPECT_EQ(s.AfterCommit(1000, false, kNoPass), Action::kKickThread);
}

TEST(CheckpointSchedule, CommitsWhileTheThreadWorksDoNothingBelowFourTimes) {
  CheckpointSchedule s(1000);
  ASSERT_EQ(s.AfterCommit(1000, false, kNoPass), Action::kKickThread);
  EXPECT_EQ(s.AfterCommit(1500, true, kNoPass), Action::kNothing);
  EXPECT_EQ(s.AfterCommit(3999, true, kNoPass), Action::kNothing);
}

TEST(CheckpointSchedule, AtFourTimesTheWriterCopiesEvenWhileTheThreadWorks) {
  CheckpointSchedule s(1000);
  EXPECT_EQ(s.AfterCommit(4000, true, kNoPass), Action::kWriterPass);
}

TEST(CheckpointSchedule, TheWriterCopiesWhatTheThreadLeftIfItIsSmall) {
  CheckpointSchedule s(1000);
  ASSERT_EQ(s.AfterCommit(1000, false, kNoPass), Action::kKickThread);
  // The thread copied the 1,000 frames; 125 (an eighth) arrived meanwhile.
  EXPECT_EQ(s.AfterCommit(1125, false, Pass{0, 1000}), Action::kWriterPass);
}

TEST(CheckpointSchedule, ALargeRemainderGoesBackToTheThread) {
  CheckpointSchedule s(1000);
  ASSERT_EQ(s.AfterCommit(1000, false, kNoPass), Action::kKickThread);
  EXPECT_EQ(s.AfterCommit(1126, false, Pass{0, 1000}), Action::kKickThread);
}

TEST(CheckpointSchedule, AWriterPassHeldBackWaitsForTheWalToGrow) {
  CheckpointSchedule s(1000);
  ASSERT_EQ(s.AfterCommit(1100, false, Pass{0, 1000}), Action::kWriterPass);
  s.AfterWriterPass(1050);  // A reader still needed the last 50 frames.
  // No fsync per commit while the reader stays: the next try waits.
  EXPECT_EQ(s.AfterCommit(1110, false, Pass{0, 1000}), Action::kNothing);
  EXPECT_EQ(s.AfterCommit(1224, false, Pass{0, 1000}), Action::kNothing);
  EXPECT_EQ(s.AfterCommit(1225, false, Pass{0, 1000}), Action::kKickThread);
}

TEST(CheckpointSchedule, AWalAReaderHeldBackIsCopiedByTheThreadNotTheWriter) {
  // (Without a reader, at four times the writer copies whatever is left,
  // however much: AWalWaitsForASlowThreadOnlyUntilItsPassEnds.)
  CheckpointSchedule s(1000);
  ASSERT_EQ(s.AfterCommit(1000, false, kNoPass), Action::kKickThread);
  // A reader kept the thread at frame 200 while 49,800 more arrived.
  const Pass held{0, 200, /*held_back=*/true};
  EXPECT_EQ(s.AfterCommit(50000, false, held), Action::kKickThread);
  EXPECT_EQ(s.AfterCommit(50100, true, held), Action::kNothing);
  // No pass per commit while it may still hold the WAL back.
  EXPECT_EQ(s.AfterCommit(50110, false, held), Action::kNothing);
  // The reader let go and the thread copied 50,000: the writer, the rest.
  EXPECT_EQ(s.AfterCommit(50200, false, Pass{0, 50000}), Action::kWriterPass);
}

TEST(CheckpointSchedule, AWalStartedOverForgetsTheOldPasses) {
  CheckpointSchedule s(1000);
  ASSERT_EQ(s.AfterCommit(1100, false, Pass{0, 1000}), Action::kWriterPass);
  s.AfterWriterPass(1100);
  EXPECT_EQ(s.AfterCommit(3, false, Pass{0, 1000}), Action::kNothing);
  EXPECT_EQ(s.generation(), 1u);
  // The thread's copy was of the old WAL: none of these frames are copied.
  EXPECT_EQ(s.AfterCommit(1050, false, Pass{0, 1000}), Action::kKickThread);
}

// Steady commits of `per_commit` frames; a thread pass takes
// `pass_commits` commits and copies what was committed when it began; a
// writer pass copies everything (the WAL then starts over).
struct Tally {
  int generations = 0;
  int thread_passes = 0;
  int writer_passes = 0;
  int max_writer_copy = 0;  // Frames one writer pass copied, at most.
};
Tally Simulate(int frames, int per_commit, int pass_commits, int commits) {
  CheckpointSchedule s(frames);
  Tally t;
  int wal = 0;
  int copied = 0;  // In this WAL.
  bool busy = false;
  int busy_left = 0;
  int pass_target = 0;
  Pass last;
  for (int i = 0; i < commits; ++i) {
    wal += per_commit;
    if (busy && --busy_left == 0) {
      busy = false;
      copied = std::max(copied, pass_target);
      last = Pass{s.generation(), copied};
    }
    switch (s.AfterCommit(wal, busy, last)) {
      case Action::kNothing:
        break;
      case Action::kKickThread:
        busy = true;
        busy_left = pass_commits;
        pass_target = wal;
        ++t.thread_passes;
        break;
      case Action::kWriterPass:
        ++t.writer_passes;
        if (busy) {
          s.AfterWriterPass(-1);
          break;
        }
        t.max_writer_copy = std::max(t.max_writer_copy, wal - copied);
        s.AfterWriterPass(wal);
        wal = 0;  // Starts over before the next commit's frames.
        copied = 0;
        ++t.generations;
        break;
    }
  }
  return t;
}

TEST(CheckpointSchedule, SteadyCommitsCostAPassOrTwoOfTheThreadPerWal) {
  // 1,000-frame WALs, 3 frames a commit, a thread pass as long as 20
  // commits (the apply benchmark's proportions).
  const Tally t = Simulate(1000, 3, 20, 100'000);
  EXPECT_GE(t.generations, 100'000 * 3 / 1100);
  EXPECT_LE(t.thread_passes, 2 * t.generations + 2);
  EXPECT_EQ(t.writer_passes, t.generations);
  EXPECT_LE(t.max_writer_copy, 125);  // The writer copies an eighth at most.
}

TEST(CheckpointSchedule, AWalWaitsForASlowThreadOnlyUntilItsPassEnds) {
  // A pass as long as 2,000 commits (6,000 frames). From 4,000 frames the
  // writer tries itself, but SQLite lets one checkpoint run at a time; the
  // commit after the pass copies the rest.
  const Tally t = Simulate(1000, 3, 2000, 100'000);
  EXPECT_GE(t.generations, 100'000 * 3 / (1002 + 6000 + 3));
  EXPECT_LE(t.thread_passes, t.generations + 1);
}

// A connection to a new WAL-mode database at `path`, after `sql`.
sqlite3* OpenWal(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(
      sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr),
      SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
  return db;
}

// Whether a process other than this one could take a write lock on all of
// `path`. POSIX locks belong to a process: only another one can tell
// whether this one holds any.
bool AnotherProcessCouldLock(const std::string& path) {
  const pid_t child = fork();
  if (child == 0) {
    const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;  // From 0, length 0: the whole file.
    const bool free =
        fd >= 0 && fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type == F_UNLCK;
    _exit(free ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(WalCheckpointer, ItLeavesThisProcessesLocksOnTheDatabaseInPlace) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  sqlite3* writer =
      OpenWal(path, "CREATE TABLE t(x); BEGIN; SELECT count(*) FROM t");
  // SQLite's lock while a transaction reads: what must stay.
  ASSERT_FALSE(AnotherProcessCouldLock(path));
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  sqlite3* own = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &own), SQLITE_OK);
  {
    WalCheckpointer checkpointer(own, 10);
    checkpointer.Attach(other);
    for (int i = 0; i < 200; ++i) {  // Thread passes, with their syncs.
      ASSERT_EQ(sqlite3_exec(other, "INSERT INTO t VALUES (randomblob(3000))",
                             nullptr, nullptr, nullptr),
                SQLITE_OK);
    }
    EXPECT_GE(checkpointer.counts().thread_passes, 1u);
    sqlite3_wal_hook(other, nullptr, nullptr);
  }  // Its descriptors, had it any, close here.
  EXPECT_FALSE(AnotherProcessCouldLock(path));
  sqlite3_close(other);
  sqlite3_exec(writer, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(writer);
}

TEST(WalCheckpointer, TheWalStartsOverAndStaysBoundedUnderSteadyCommits) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  sqlite3* writer =
      OpenWal(path, "PRAGMA synchronous=NORMAL; CREATE TABLE t(x)");
  sqlite3* own = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &own), SQLITE_OK);
  WalCheckpointer::Counts counts;
  {
    WalCheckpointer checkpointer(own, 200);
    checkpointer.Attach(writer);
    sqlite3_stmt* insert = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(writer, "INSERT INTO t VALUES (randomblob(3000))",
                           -1, &insert, nullptr),
        SQLITE_OK);
    // About a frame per commit: 4,000 frames, 16 MB, were nothing copied.
    // Every 400 commits the loop lets a kicked thread finish its pass: on
    // a loaded machine (CI beside other tests) the thread could otherwise
    // starve for as long as the whole loop, and the WAL's high-water mark
    // was a race (3,270 and 4,000 frames were seen).
    for (int i = 0; i < 4000; ++i) {
      ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
      sqlite3_reset(insert);
      if (i % 400 == 399) {
        while (!checkpointer.ThreadIdleForTest()) std::this_thread::yield();
      }
    }
    sqlite3_finalize(insert);
    counts = checkpointer.counts();
    sqlite3_wal_hook(writer, nullptr, nullptr);
  }
  // Well below the 4,000 frames of a WAL never started over: about twice
  // 4 x 200 frames of 4 KiB (commits go on while a pass runs); beside a
  // loaded machine's other tests, up to 2,700 were seen.
  EXPECT_LT(std::filesystem::file_size(path + "-wal"), 4096u * 3000)
      << counts.generations << " WALs, " << counts.thread_passes
      << " thread passes, " << counts.writer_passes << " writer passes";
  EXPECT_GE(counts.generations, 2u);  // It started over, more than once.
  EXPECT_GE(counts.thread_passes, 1u);
  // Each start-over follows a pass that copied everything, the thread's
  // or (when commits kept it from finishing) the writer's.
  EXPECT_GE(counts.thread_passes + counts.writer_passes, counts.generations);
  sqlite3_close(writer);
}

}  // namespace
}  // namespace raftsql::sm
