#include "server/boot.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/await.h"
#include "sm/temp_dir.h"
#include "tools/process.h"

namespace raftsql::server {
namespace {

using sm::TempDir;

ServerOptions SingleNode(const TempDir& dir) {
  ServerOptions o;
  o.id = 1;
  o.listen = "127.0.0.1:" + std::to_string(tools::FreePort());
  o.peers = {{1, o.listen}};
  o.data_dir = dir.File("node");
  o.tick_ms = 10;
  return o;
}

// A SQLite file with `rows` rows of 1 KiB in t, an index and a view.
void MakeFile(const std::string& path, int rows) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const std::string sql =
      "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
      "WHERE i < " +
      std::to_string(rows) +
      ") INSERT INTO t SELECT i, randomblob(1024) FROM n;"
      "CREATE INDEX t_v ON t(v); CREATE VIEW big AS SELECT id FROM t "
      "WHERE id > 10;";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
}

int64_t Count(RaftServer& node, const std::string& sql) {
  sm::Statement s;
  s.sql = sql;
  absl::StatusOr<sm::QueryResult> r = Await<sm::QueryResult>(
      [&](RaftServer::Done<sm::QueryResult> done) {
        node.Query(s, /*linearizable=*/true, sm::ReadLimits(), std::move(done));
      },
      std::chrono::steady_clock::now() + std::chrono::seconds(10), "count");
  if (!r.ok() || r->rows.size() != 1) return -1;
  return r->rows[0][0].integer;
}

TEST(CheckBootable, OnlyANewSingleNodeClusterBoots) {
  TempDir dir;
  ServerOptions o = SingleNode(dir);
  EXPECT_TRUE(CheckBootable(o).ok());
  ServerOptions two = o;
  two.peers[2] = "127.0.0.1:1";
  EXPECT_TRUE(absl::IsInvalidArgument(CheckBootable(two)));
  ServerOptions joining = o;
  joining.peers.clear();
  joining.join = "127.0.0.1:1";
  EXPECT_TRUE(absl::IsInvalidArgument(CheckBootable(joining)));
  std::filesystem::create_directories(o.data_dir + "/log");
  const absl::Status used = CheckBootable(o);
  EXPECT_TRUE(absl::IsInvalidArgument(used));
  EXPECT_NE(used.message().find("already holds a node's state"),
            std::string::npos)
      << used;
}

TEST(BootFromFile, AFileLoadsThroughTheLogBeforeTheFirstElection) {
  TempDir dir;
  MakeFile(dir.File("src.db"), 6000);  // 6 MB: three commands.
  auto node = RaftServer::Open(SingleNode(dir));
  ASSERT_TRUE(node.ok()) << node.status();
  // Its first command waits for the first election, then commits and
  // applies inside its own proposal (one node): it was once freed there.
  (*node)->Start();
  absl::StatusOr<LoadTotals> booted = BootFromFile(**node, dir.File("src.db"));
  ASSERT_TRUE(booted.ok()) << booted.status();
  EXPECT_EQ(booted->rows, 6000u);
  EXPECT_GE(booted->commands, 3u);
  EXPECT_EQ(Count(**node, "SELECT count(*) FROM t"), 6000);
  EXPECT_EQ(Count(**node, "SELECT count(*) FROM big"), 5990);
  EXPECT_EQ(Count(**node,
                  "SELECT count(*) FROM sqlite_schema WHERE name = "
                  "'t_v'"),
            1);
  (*node)->Shutdown();
}

TEST(BootFromFile, SqlTextLoadsToo) {
  TempDir dir;
  std::ofstream(dir.File("dump.sql"))
      << "BEGIN TRANSACTION;\nCREATE TABLE u(a);\nINSERT INTO u VALUES(1);\n"
         "INSERT INTO u VALUES(2);\nCOMMIT;\n";
  auto node = RaftServer::Open(SingleNode(dir));
  ASSERT_TRUE(node.ok()) << node.status();
  (*node)->Start();
  absl::StatusOr<LoadTotals> booted =
      BootFromFile(**node, dir.File("dump.sql"));
  ASSERT_TRUE(booted.ok()) << booted.status();
  EXPECT_EQ(Count(**node, "SELECT sum(a) FROM u"), 3);
  (*node)->Shutdown();
}

TEST(BootFromFile, BadInputNamesItsCause) {
  TempDir dir;
  auto node = RaftServer::Open(SingleNode(dir));
  ASSERT_TRUE(node.ok()) << node.status();
  (*node)->Start();
  EXPECT_TRUE(
      absl::IsNotFound(BootFromFile(**node, dir.File("missing.db")).status()));
  std::ofstream(dir.File("bad.sql")) << "CREATE TABLE w(a);\nNOT SQL AT ALL;\n";
  const absl::Status bad = BootFromFile(**node, dir.File("bad.sql")).status();
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("booting from"), std::string::npos) << bad;
  // A damaged SQLite file: its header, then garbage.
  MakeFile(dir.File("damaged.db"), 200);
  {
    std::fstream f(dir.File("damaged.db"),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 + 100);
    f << std::string(8192, '\x5a');
  }
  const absl::Status damaged =
      BootFromFile(**node, dir.File("damaged.db")).status();
  EXPECT_FALSE(damaged.ok());
  EXPECT_NE(damaged.message().find("(0 commands of the load applied"),
            std::string::npos)
      << damaged;
  (*node)->Shutdown();
}

}  // namespace
}  // namespace raftsql::server
