// VACUUM through the log: accepted in its plain form only, run off the
// apply loop on files (a copy that catches up, then a swap), at once in
// memory; the replicated state, rowids and divergence hash stay the same.
#include "sm/vacuum.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "sm/sql_tokens.h"
#include "sm/temp_dir.h"
#include "sm/test_util.h"
#include "sm/vacuum_backlog.h"

namespace raftsql::sm {
namespace {

constexpr std::chrono::milliseconds kBound{60'000};

// The same commands for every machine: a table without an INTEGER PRIMARY
// KEY (VACUUM could renumber its rowids), filled, then mostly deleted.
std::vector<Command> FillThenDelete() {
  std::vector<Command> out;
  out.push_back(Cmd(
      {S("CREATE TABLE t(v BLOB, n INTEGER)"), S("CREATE INDEX t_n ON t(n)")}));
  for (int i = 0; i < 40; ++i) {
    out.push_back(
        Cmd({S("INSERT INTO t(v, n) WITH RECURSIVE c(x) AS "
               "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < "
               "50) SELECT randomblob(4000), x FROM c")}));
  }
  out.push_back(Cmd({S("DELETE FROM t WHERE rowid % 10 != 3")}));
  return out;
}

void ApplyAll(SqliteStateMachine& sm, const std::vector<Command>& commands) {
  for (const Command& c : commands) ApplyOk(sm, c);
}

std::string Rowids(SqliteStateMachine& sm) {
  absl::StatusOr<QueryResult> q =
      sm.Query(S("SELECT group_concat(r) FROM (SELECT rowid AS r FROM t "
                 "ORDER BY rowid)"));
  EXPECT_TRUE(q.ok()) << q.status();
  return q.ok() ? q->rows[0][0].bytes : "";
}

int64_t FileBytes(const std::string& path) {
  return static_cast<int64_t>(std::filesystem::file_size(path));
}

// A file database filled, then mostly deleted (FillThenDelete).
class VacuumOfAFilledFile : public ::testing::Test {
 protected:
  VacuumOfAFilledFile() : path(dir.File("db")), sm(OpenFile(path)) {
    ApplyAll(*sm, FillThenDelete());
  }
  TempDir dir;
  const std::string path;
  std::unique_ptr<SqliteStateMachine> sm;
};

std::vector<core::Entry> Entries(uint64_t from, int n, size_t bytes) {
  std::vector<core::Entry> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(core::Entry{2, from + i, core::EntryType::kNormal,
                              std::string(bytes, static_cast<char>('a' + i))});
  }
  return out;
}

TEST(VacuumBacklog, EntriesBeyondMemoryGoToAFileAndComeBackInOrder) {
  TempDir dir;
  const std::string file = dir.File("backlog");
  VacuumBacklog backlog(file);
  // 40 MiB: 32 in memory, the rest in the file; then more while spilled.
  const size_t mib = 1 << 20;
  ASSERT_TRUE(backlog.Push(Entries(1, 40, mib)).ok());
  backlog.CheckInvariants();
  EXPECT_TRUE(backlog.spilled());
  EXPECT_TRUE(std::filesystem::exists(file));
  absl::StatusOr<std::vector<core::Entry>> got = backlog.Pop(35);
  ASSERT_TRUE(got.ok()) << got.status();
  backlog.CheckInvariants();
  ASSERT_TRUE(backlog.Push(Entries(41, 3, 10)).ok());
  backlog.CheckInvariants();
  uint64_t next = 1;
  auto check = [&next](const std::vector<core::Entry>& es) {
    for (const core::Entry& e : es) {
      ASSERT_EQ(e.index, next);
      ASSERT_EQ(e.term, 2u);
      ASSERT_EQ(e.data[0], static_cast<char>('a' + (e.index - 1) % 40));
      ++next;
    }
  };
  check(*got);
  got = backlog.Pop(100);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 8u);
  backlog.CheckInvariants();
  check(*got);
  EXPECT_EQ(next, 44u);
  EXPECT_TRUE(backlog.empty());
  EXPECT_FALSE(backlog.spilled());
  EXPECT_EQ(std::filesystem::file_size(file), 0u);     // Emptied.
  ASSERT_TRUE(backlog.Push(Entries(44, 1, 10)).ok());  // Memory again.
  EXPECT_FALSE(backlog.spilled());
  backlog.CheckInvariants();
}

TEST(VacuumBacklog, ItsBoundIsAnErrorAndItsFileGoesWithIt) {
  TempDir dir;
  const std::string file = dir.File("backlog");
  {
    VacuumBacklog backlog(file, /*max_bytes=*/40 << 20);
    ASSERT_TRUE(backlog.Push(Entries(1, 33, 1 << 20)).ok());
    EXPECT_TRUE(std::filesystem::exists(file));
    const absl::Status s = backlog.Push(Entries(34, 8, 1 << 20));
    EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
    backlog.CheckInvariants();
  }
  EXPECT_FALSE(std::filesystem::exists(file));
}

TEST(Vacuum, OnlyThePlainFormIsRecognized) {
  for (const char* sql : {"VACUUM", "vacuum;", "  VACUUM main ;; ",
                          "VACUUM \"main\"", "/* c */ VACUUM -- x\n"}) {
    EXPECT_TRUE(IsPlainVacuum(sql)) << sql;
  }
  for (const char* sql :
       {"VACUUM INTO '/tmp/x'", "VACUUM main INTO 'x'", "VACUUM temp",
        "VACUUMS", "SELECT 1; VACUUM", "VACUUM; SELECT 1", "VACUUM mainx"}) {
    EXPECT_FALSE(IsPlainVacuum(sql)) << sql;
  }
}

TEST(Vacuum, PlainVacuumIsAcceptedAndTheOtherFormsRefusedBeforeTheLog) {
  auto sm = OpenMemory();
  EXPECT_TRUE(sm->Validate(Cmd({S("VACUUM")})).ok());
  EXPECT_TRUE(sm->Validate(Cmd({S("VACUUM main")})).ok());
  for (const char* sql : {"VACUUM INTO '/tmp/raftsql-x'", "VACUUM temp"}) {
    const absl::Status s = sm->Validate(Cmd({S(sql)}));
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << sql << ": " << s;
    EXPECT_NE(s.message().find("VACUUM INTO"), absl::string_view::npos) << s;
  }
}

TEST(Vacuum, AMemoryDatabaseVacuumsWhenTheEntryApplies) {
  auto sm = OpenMemory();
  ApplyAll(*sm, FillThenDelete());
  const std::string rowids = Rowids(*sm);
  const uint64_t hash = sm->divergence_hash();
  const CommandResult r = ApplyOk(*sm, Cmd({S("VACUUM")}));
  ASSERT_TRUE(r.statements[0].status.ok()) << r.statements[0].status;
  EXPECT_EQ(sm->vacuums_done(), 1u);
  EXPECT_EQ(Rowids(*sm), rowids);
  EXPECT_EQ(sm->divergence_hash(), hash);
}

TEST(Vacuum, AFileShrinksOffTheApplyLoopAndHoldsWhatAReplicaWithoutItHolds) {
  TempDir dir;
  const std::string path = dir.File("db");
  auto sm = OpenFile(path);
  auto reference = OpenMemory();  // Applies the same entries.
  auto both = [&](const Command& c) {
    ApplyOk(*sm, c);
    ApplyOk(*reference, c);
  };
  for (const Command& c : FillThenDelete()) both(c);
  ASSERT_TRUE(sm->Sync().ok());
  const std::string rowids = Rowids(*sm);
  const int64_t before = static_cast<int64_t>(sm->SerializeForTest().size());
  both(Cmd({S("VACUUM")}));
  EXPECT_TRUE(sm->vacuuming());
  sm->HoldVacuumSwap(true);  // Until the UPDATE below, whatever the timing.
  // Writes go on while the copy is made and catches up.
  for (int i = 0; i < 30; ++i) {
    both(Cmd({S("INSERT INTO t(v, n) VALUES (randomblob(100), ?)",
                {Value::Integer(i)})}));
  }
  ASSERT_TRUE(sm->WaitForVacuumCopyForTest(kBound));
  sm->HoldVacuumSwap(false);
  both(Cmd({S("UPDATE t SET n = n + 1 WHERE n < 5")}));  // Finishes it.
  // The files are swapped on a thread: apply pauses until a tick (or an
  // apply, which waits) finds them done and reopens.
  EXPECT_TRUE(sm->ApplyPaused());
  EXPECT_TRUE(sm->vacuuming());
  EXPECT_EQ(sm->vacuums_done(), 0u);
  sm->CheckInvariants();
  sm->FinishSwapForTest();
  sm->CheckInvariants();
  EXPECT_FALSE(sm->ApplyPaused());
  ASSERT_EQ(sm->vacuums_done(), 1u);
  EXPECT_FALSE(sm->vacuuming());
  EXPECT_LT(FileBytes(path), before / 2) << "before: " << before;
  EXPECT_EQ(sm->AppliedIndex(), reference->AppliedIndex());
  EXPECT_EQ(sm->divergence_hash(), reference->divergence_hash());
  EXPECT_EQ(DumpDatabase(*sm), DumpDatabase(*reference));
  EXPECT_EQ(Rowids(*sm).substr(0, rowids.size()), rowids);
  // It serves, and survives a reopen.
  both(Cmd({S("INSERT INTO t(v, n) VALUES (x'00', 99)")}));
  EXPECT_EQ(Count(*sm, "t"), Count(*reference, "t"));
  const uint64_t applied = sm->AppliedIndex();
  sm.reset();
  EXPECT_FALSE(std::filesystem::exists(Vacuum::CopyPath(path)));
  sm = OpenFile(path);
  EXPECT_EQ(sm->AppliedIndex(), applied);
  EXPECT_EQ(DumpDatabase(*sm), DumpDatabase(*reference));
}

TEST_F(VacuumOfAFilledFile,
       AnIdleReplicaFinishesOnItsTicksAndASecondVacuumJoinsTheFirst) {
  ApplyOk(*sm, Cmd({S("VACUUM")}));
  ApplyOk(*sm, Cmd({S("VACUUM")}));  // Its copy applies it as nothing.
  ASSERT_TRUE(sm->WaitForVacuumCopyForTest(kBound));
  sm->OnTick();
  ASSERT_TRUE(sm->ApplyPaused());
  const auto until = std::chrono::steady_clock::now() + kBound;
  while (sm->ApplyPaused() && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
    sm->OnTick();  // Ends the swap once its files are done.
  }
  EXPECT_FALSE(sm->ApplyPaused());
  EXPECT_EQ(sm->vacuums_done(), 1u);
  EXPECT_FALSE(sm->vacuuming());
  EXPECT_FALSE(std::filesystem::exists(Vacuum::CopyPath(path)));
  EXPECT_FALSE(
      std::filesystem::exists(Vacuum::CopyPath(Vacuum::CopyPath(path))));
}

TEST_F(VacuumOfAFilledFile, AStopDuringTheSwapReopensTheVacuumedFile) {
  // The database's size, wherever its pages are: under load the WAL may
  // not be checkpointed into the file yet.
  const int64_t before = static_cast<int64_t>(sm->SerializeForTest().size());
  ApplyOk(*sm, Cmd({S("VACUUM")}));
  ASSERT_TRUE(sm->WaitForVacuumCopyForTest(kBound));
  const uint64_t applied = sm->AppliedIndex();
  const std::string dump = DumpDatabase(*sm);
  sm->OnTick();
  ASSERT_TRUE(sm->ApplyPaused());
  sm.reset();  // Its files part ends; the open completes the rest.
  sm = OpenFile(path);
  EXPECT_EQ(sm->AppliedIndex(), applied);
  EXPECT_EQ(DumpDatabase(*sm), dump);
  EXPECT_LT(FileBytes(path), before / 2) << "before: " << before;
  EXPECT_FALSE(std::filesystem::exists(Vacuum::CopyPath(path)));
}

TEST_F(VacuumOfAFilledFile,
       AStopBeforeTheSwapLeavesTheDatabaseAsItWasAndNoCopy) {
  ApplyOk(*sm, Cmd({S("VACUUM")}));
  const uint64_t applied = sm->AppliedIndex();
  const int64_t rows = Count(*sm, "t");
  sm.reset();  // The vacuum is abandoned wherever it stood.
  EXPECT_FALSE(std::filesystem::exists(Vacuum::CopyPath(path)));
  // What a crash leaves goes at the next start.
  std::ofstream(Vacuum::CopyPath(path)) << "half a copy";
  std::ofstream(Vacuum::CopyPath(path) + "-wal") << "its wal";
  sm = OpenFile(path);
  EXPECT_EQ(sm->AppliedIndex(), applied);
  EXPECT_EQ(Count(*sm, "t"), rows);
  EXPECT_EQ(sm->vacuums_done(), 0u);
  sm.reset();  // Its deleter finishes what it queued.
  EXPECT_FALSE(std::filesystem::exists(Vacuum::CopyPath(path)));
  EXPECT_FALSE(std::filesystem::exists(Vacuum::CopyPath(path) + "-wal"));
}

}  // namespace
}  // namespace raftsql::sm
