// Scenario boot: a new cluster booted from a SQLite file in one step
// (--boot_from on a single-node bootstrap), two nodes joining it and
// receiving the data, and a restart with the flag still given refused.
#include <sqlite3.h>
#include <sys/wait.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/verify_util.h"
#include "tools/process.h"

namespace raftsql::verify {
namespace {

constexpr int kFileRows = 30'000;  // About 6 MB: several load commands.

void MakeFile(const std::string& path) {
  sqlite3* db = nullptr;
  Check(sqlite3_open(path.c_str(), &db) == SQLITE_OK, "open the boot file");
  const std::string sql = absl::StrCat(
      "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);"
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
      "WHERE i < ",
      kFileRows,
      ") INSERT INTO t SELECT i, hex(randomblob(100)) FROM n;"
      "CREATE INDEX t_v ON t(v);");
  const bool made =
      sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(db);
  Check(made, "fill the boot file");
}

void WaitVoter(LocalCluster& c, int id) {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    auto st = c.client().Status(c.Endpoint(WaitLeader(c)));
    if (st.ok()) {
      for (const v1::Member& m : st->members()) {
        if (m.id() == static_cast<uint64_t>(id) && m.voter()) return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw Failure(absl::StrCat("node ", id, " did not become a voter"));
}

}  // namespace

void Boot(LocalCluster& c, const std::string& dir) {
  const std::string file = dir + "/boot.sqlite";
  MakeFile(file);
  const std::string boot_flag = "--boot_from=" + file;
  Check(c.StartNode(1, {boot_flag}).ok(), "start node 1 with --boot_from");
  WaitLeader(c);
  auto& client = c.client();
  Check(Count(client, "SELECT count(*) FROM t", true) == kFileRows,
        "node 1 does not serve the file's rows");
  Log(absl::StrCat("node 1 booted from the file: ", kFileRows, " rows"));
  // Past the snapshot threshold (--snapshot_entries=50): the joiners get
  // an image, not the log from its start.
  for (int i = 0; i < 60; ++i) {
    Ok(client.Execute(Sql("INSERT INTO t(v) VALUES ('after')")), "write");
  }
  for (int n = 0; n < 2; ++n) {
    const int joiner = c.AddSlot();
    Check(c.StartNode(joiner).ok(), "start a joiner");
    WaitVoter(c, joiner);
    Log(absl::StrCat("node ", joiner, " joined and is a voter"));
  }
  WaitConverged(c, 3, MaxApplied(c, 3));
  CountOnEveryNode(c, 3, "SELECT count(*) FROM t", "after the joins");
  Check(CountOnEveryNode(c, 3, "SELECT count(*) FROM t WHERE v = 'after'",
                         "after the joins") == 60,
        "a joiner misses the writes after the boot");
  Check(CountOnEveryNode(c, 3, "SELECT count(*) FROM t", "after the joins") ==
            kFileRows + 60,
        "a joiner misses the file's rows");
  Log("three nodes hold the file's rows and the writes after it");

  // The flag given again on a restart is refused: the file is not loaded
  // twice over the data the node holds.
  c.StopNode(1, SIGTERM);
  Check(c.StartNode(1, {boot_flag}).ok(), "restart node 1 with --boot_from");
  int status = 0;
  Check(tools::WaitExit(c.Pid(1), 10'000, &status),
        "node 1 kept running with --boot_from over its data");
  c.ForgetNode(1);
  Check(WIFEXITED(status) && WEXITSTATUS(status) == 2,
        absl::StrCat("node 1 ended with status ", status, ", not exit 2"));
  std::stringstream log;
  log << std::ifstream(c.LogPath(1)).rdbuf();
  Check(log.str().find("already holds a node's state") != std::string::npos,
        "node 1's log does not say why it refused");
  Check(c.StartNode(1).ok(), "restart node 1");
  WaitConverged(c, 3, MaxApplied(c, 3));
  Check(CountOnEveryNode(c, 3, "SELECT count(*) FROM t", "after the restart") ==
            kFileRows + 60,
        "the restart changed the rows");
  Log("a restart with --boot_from was refused; without it, it rejoined");
}

}  // namespace raftsql::verify
