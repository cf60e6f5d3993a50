// Replicas started differently apply the same log to the same database:
// one in memory taking the log as one batch, one on a file restarted every
// two entries with SQLite's process-wide PRNG stirred in between, one in
// another time zone. Each command below draws on something that once
// differed between such replicas (issue 13).
#include <sqlite3.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sm/deterministic_vfs.h"
#include "sm/sqlite_state_machine.h"
#include "sm/temp_dir.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

std::vector<core::Entry> Log() {
  const std::vector<Command> commands = {
      Cmd({S("CREATE TABLE t(id INTEGER PRIMARY KEY, v)"),
           S("CREATE TABLE n(k TEXT, v)")}),
      // Connection counters: per command, as on a fresh connection.
      Cmd({S("INSERT INTO n VALUES ('rowid', last_insert_rowid()), "
             "('total', total_changes()), ('changes', changes())")}),
      Cmd({S("INSERT INTO t(v) VALUES ('a'), ('b'), ('c')"),
           S("INSERT INTO n VALUES ('rowid3', last_insert_rowid()), "
             "('after3', changes()), ('total3', total_changes())")}),
      // Random rowids once the table holds the largest one.
      Cmd({S("INSERT INTO t(id, v) VALUES (9223372036854775807, 'max')")}),
      Cmd({S("INSERT INTO t(v) VALUES ('r1')"),
           S("INSERT INTO t(v) VALUES ('r2')")}),
      Cmd({S("INSERT INTO t(v) VALUES ('r3')"),
           S("INSERT INTO n VALUES ('rowid_r3', last_insert_rowid())")}),
      // The clock and the zone.
      Cmd({S("INSERT INTO n VALUES ('local', datetime(0, 'unixepoch', "
             "'localtime')), ('now', datetime('now', 'localtime')), "
             "('utc', strftime('%s', '2024-06-01 12:00', 'utc'))")}),
      Cmd({S("INSERT INTO n VALUES ('random', random()), "
             "('blob', hex(randomblob(8)))")}),
  };
  std::vector<core::Entry> log;
  for (const Command& c : commands) log.push_back(E(log.size() + 1, c));
  return log;
}

Value Named(SqliteStateMachine& sm, const std::string& key) {
  return QueryValue(sm, "SELECT v FROM n WHERE k = '" + key + "'");
}

TEST(Determinism, ReplicasStartedDifferentlyHoldTheSameDatabase) {
  const std::vector<core::Entry> log = Log();
  // In memory, the whole log as one batch.
  auto batched = OpenMemory();
  batched->ApplyBatch(log);

  // On a file, reopened every two entries, SQLite's PRNG stirred before
  // each entry (as other users of SQLite in the process would).
  TempDir dir;
  const SqliteOptions file{.path = dir.File("db")};
  std::unique_ptr<SqliteStateMachine> restarted;
  for (size_t i = 0; i < log.size(); ++i) {
    if (i % 2 == 0) {
      restarted.reset();
      restarted = std::move(*SqliteStateMachine::Open(file));
    }
    char stir[16];
    sqlite3_randomness(sizeof(stir), stir);
    restarted->Apply(log[i]);
  }

  // In another time zone (the process's, as a node started with TZ set).
  const char* zone = getenv("TZ");
  const std::string saved = zone != nullptr ? zone : "";
  setenv("TZ", "America/New_York", 1);
  tzset();
  auto elsewhere = OpenMemory();
  for (const core::Entry& e : log) elsewhere->Apply(e);
  if (zone != nullptr) {
    setenv("TZ", saved.c_str(), 1);
  } else {
    unsetenv("TZ");
  }
  tzset();

  const std::string dump = DumpDatabase(*batched);
  EXPECT_NE(dump.find("rowid_r3"), std::string::npos);
  EXPECT_EQ(DumpDatabase(*restarted), dump);
  EXPECT_EQ(DumpDatabase(*elsewhere), dump);
  EXPECT_EQ(restarted->divergence_hash(), batched->divergence_hash());
  EXPECT_EQ(elsewhere->divergence_hash(), batched->divergence_hash());

  // The values are as documented.
  EXPECT_EQ(Named(*batched, "total"), Value::Integer(0));
  EXPECT_EQ(Named(*batched, "changes"), Value::Integer(0));
  EXPECT_EQ(Named(*batched, "rowid"), Value::Integer(0));
  EXPECT_EQ(Named(*batched, "after3"), Value::Integer(3));
  EXPECT_EQ(Named(*batched, "total3"), Value::Integer(3));
  EXPECT_EQ(Named(*batched, "rowid3"), Value::Integer(3));
  EXPECT_EQ(Named(*batched, "local"), Value::Text("1970-01-01 00:00:00"));
  EXPECT_EQ(Named(*batched, "utc"), Value::Text("1717243200"));
  EXPECT_EQ(Count(*batched, "t"), 7);
}

TEST(Determinism, WhatDiffersBetweenReplicasCannotBeWritten) {
  auto sm = OpenMemory();
  ApplyOk(*sm, Cmd({S("CREATE TABLE t(v)")}));
  const char* refused[] = {
      "INSERT INTO t SELECT pgsize FROM dbstat",
      "INSERT INTO t SELECT * FROM pragma_page_count",
      "INSERT INTO t SELECT file FROM pragma_database_list",
      "INSERT INTO t SELECT sql FROM sqlite_stmt",
      "SELECT fts3_tokenizer('simple')",
  };
  for (const char* sql : refused) {
    const absl::Status s = sm->Validate(Cmd({S(sql)}));
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << sql << ": " << s;
  }
}

}  // namespace
}  // namespace raftsql::sm

namespace raftsql::sm {
namespace {

// The names of this process's open files that hold `part`.
std::vector<std::string> OpenFilesNamed(const std::string& part) {
  std::vector<std::string> out;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string target =
        std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && target.find(part) != std::string::npos) out.push_back(target);
  }
  return out;
}

// Found by bench/edge_load (3 replicas on one host, 1,000 entries/s): the
// platform VFS named temporary files from SQLite's PRNG, which every
// replica seeds from the entry, so replicas drew the same names at the same
// moment; one opened the other's file read-only and its write failed
// (EBADF), stopping it in 2 of 5 five-second runs.
TEST(TemporaryFiles, AreNotNamedFromSqlitesSeededPrng) {
  sqlite3_vfs* vfs = sqlite3_vfs_find(DeterministicVfsName());
  ASSERT_NE(vfs, nullptr);
  std::vector<char> a(static_cast<size_t>(vfs->szOsFile));
  std::vector<char> b(static_cast<size_t>(vfs->szOsFile));
  auto* fa = reinterpret_cast<sqlite3_file*>(a.data());
  auto* fb = reinterpret_cast<sqlite3_file*>(b.data());
  const int flags = SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_READWRITE |
                    SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE |
                    SQLITE_OPEN_DELETEONCLOSE;
  // The same seed before each open, as two replicas' entries would give.
  sqlite3_test_control(SQLITE_TESTCTRL_PRNG_SEED, 42, nullptr);
  ASSERT_EQ(vfs->xOpen(vfs, nullptr, fa, flags, nullptr), SQLITE_OK);
  sqlite3_test_control(SQLITE_TESTCTRL_PRNG_SEED, 42, nullptr);
  ASSERT_EQ(vfs->xOpen(vfs, nullptr, fb, flags, nullptr), SQLITE_OK);
  const std::string mine = "raftsql-tmp-" + std::to_string(getpid()) + "-";
  const std::vector<std::string> open = OpenFilesNamed(mine);
  EXPECT_EQ(open.size(), 2u);
  if (open.size() == 2) {
    EXPECT_NE(open[0], open[1]);
  }
  // Both are writable (the failure was a read-only descriptor).
  const char page[512] = {1};
  EXPECT_EQ(fa->pMethods->xWrite(fa, page, sizeof(page), 0), SQLITE_OK);
  EXPECT_EQ(fb->pMethods->xWrite(fb, page, sizeof(page), 0), SQLITE_OK);
  fa->pMethods->xClose(fa);
  fb->pMethods->xClose(fb);
  EXPECT_TRUE(OpenFilesNamed(mine).empty());
  EXPECT_NE(NextTempNameForTest(), NextTempNameForTest());
}

}  // namespace
}  // namespace raftsql::sm
