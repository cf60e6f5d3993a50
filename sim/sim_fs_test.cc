#include "sim/sim_fs.h"

#include <sqlite3.h>

#include "core/prng.h"
#include "gtest/gtest.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sim {
namespace {

TEST(SimFile, SyncedBytesSurviveACrashAndUnsyncedOnesMayNot) {
  SimFile f;
  f.Write(0, "durable");
  f.Sync();
  f.Write(0, "DURABLE");
  f.Write(7, "+tail");
  EXPECT_EQ(f.contents(), "DURABLE+tail");
  core::Prng rng(3);
  const size_t lost = f.Crash(rng);
  EXPECT_LE(lost, 2u);
  // Each unsynced write either reached the disk whole or not at all.
  const std::string& c = f.contents();
  EXPECT_TRUE(c == "durable" || c == "DURABLE" || c == "durable+tail" ||
              c == "DURABLE+tail")
      << c;
}

TEST(SimFs, ADeadProcessWritesNothingMore) {
  SimFs fs(424242);
  SimFile* f = fs.Create(fs.Path("db"));
  f->Write(0, "kept");
  f->Sync();
  fs.Freeze();
  EXPECT_TRUE(fs.frozen());
  core::Prng rng(1);
  fs.Crash(rng);
  EXPECT_FALSE(fs.frozen());
  EXPECT_EQ(fs.Find(fs.Path("db"))->contents(), "kept");
  EXPECT_EQ(SimFs::ForPath(fs.Path("db")), &fs);
  EXPECT_EQ(SimFs::ForPath("/elsewhere/db"), nullptr);
}

// SQLite on the simulated disk: what a crash keeps is a consistent database
// whose applied index matches its contents.
TEST(SimFs, SqliteRecoversAConsistentDatabaseAfterACrash) {
  SimFs fs(NextSimFsId());
  core::Prng rng(7);
  for (int round = 0; round < 20; ++round) {
    sm::SqliteOptions o;
    o.path = fs.Path("state.db");
    o.vfs = SimFsVfsName();
    auto sm = sm::SqliteStateMachine::Open(o);
    ASSERT_TRUE(sm.ok()) << sm.status();
    const uint64_t start = (*sm)->AppliedIndex();
    if (start == 0) {
      sm::Command create;
      create.statements.push_back({"CREATE TABLE t(i INTEGER)", {}, {}});
      (*sm)->Apply(
          core::Entry{1, 1, core::EntryType::kNormal, create.Encode()});
    }
    for (uint64_t i = (*sm)->AppliedIndex() + 1; i < start + 40; ++i) {
      sm::Command c;
      c.statements.push_back(
          {"INSERT INTO t VALUES (?)", {sm::Value::Integer(int64_t(i))}, {}});
      (*sm)->Apply(core::Entry{1, i, core::EntryType::kNormal, c.Encode()});
    }
    // Every applied index from 2 on inserted one row.
    auto rows = (*sm)->Query({"SELECT count(*) FROM t", {}, {}});
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ(static_cast<uint64_t>(rows->rows[0][0].integer),
              (*sm)->AppliedIndex() - 1);
    fs.Freeze();
    sm->reset();
    fs.Crash(rng);
  }
}

TEST(SimFsDeathTest, AReplicaWhoseDiskIsFullStopsInsteadOfDiverging) {
  // A statement that fails for want of disk here would succeed on the
  // replicas with room: recorded as the entry's result, this replica would
  // diverge. It stops instead (a restart replays the entry).
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SimFs fs(NextSimFsId());
        sm::SqliteOptions o;
        o.path = fs.Path("state.db");
        o.vfs = SimFsVfsName();
        auto sm = sm::SqliteStateMachine::Open(o);
        sm::Command create;
        create.statements.push_back({"CREATE TABLE t(v)", {}, {}});
        (*sm)->Apply(
            core::Entry{1, 1, core::EntryType::kNormal, create.Encode()});
        fs.set_capacity_bytes(1 << 20);
        sm::Command big;
        big.statements.push_back(
            {"INSERT INTO t SELECT zeroblob(10000) FROM (WITH RECURSIVE "
             "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
             "SELECT x FROM c)",
             {},
             {}});
        (*sm)->Apply(core::Entry{1, 2, core::EntryType::kNormal, big.Encode()});
      },
      "cannot apply entry 2: database or disk is full");
}

}  // namespace
}  // namespace raftsql::sim
