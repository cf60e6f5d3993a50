// Scenario fsync_failure: a failed fsync is fatal (DESIGN.md §2 rule 6).
// The leader's log fsyncs start failing with EIO (tests/fail_fsync.cc,
// preloaded into every server): it must exit with kExitLogStoreFailed and
// say why, acknowledging no write it could not make durable; the others
// elect a leader and go on; restarted (its disk healthy again) it catches
// up, and every node holds the same rows.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "server/exit_codes.h"
#include "tests/verify_util.h"
#include "tools/process.h"

namespace raftsql::verify {

void FsyncFailure(LocalCluster& c, const std::string& shim,
                  const std::string& dir) {
  const std::string flags = dir + "/fail-fsync";
  Check(mkdir(flags.c_str(), 0755) == 0, "mkdir " + flags);
  // Spawned servers inherit the environment.
  setenv("RAFTSQL_FAIL_FSYNC_DIR", flags.c_str(), 1);
  setenv("LD_PRELOAD", shim.c_str(), 1);
  const absl::Status started = c.Start();
  unsetenv("LD_PRELOAD");
  Check(started.ok(), "start: " + started.ToString());
  const int leader = WaitLeader(c);
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t(v)")), "create");
  Ok(client.Execute(Sql("INSERT INTO t VALUES (1)")), "first insert");
  const pid_t pid = c.Pid(leader);
  std::ofstream(absl::StrCat(flags, "/", pid)).put('\n');
  net::Client pinned = Pinned(c, leader);
  const absl::Status answer =
      pinned.Execute(Sql("INSERT INTO t VALUES (2)")).status();
  Log("the write the leader could not sync answered: " + answer.ToString());
  int status = 0;
  Check(tools::WaitExit(pid, 10'000, &status), "the leader kept running");
  c.ForgetNode(leader);
  Check(WIFEXITED(status) && WEXITSTATUS(status) == server::kExitLogStoreFailed,
        absl::StrCat("the leader ended with status ", status, ", not exit ",
                     server::kExitLogStoreFailed));
  std::stringstream log;
  log << std::ifstream(c.LogPath(leader)).rdbuf();
  Check(log.str().find("log store failed, node stopped") != std::string::npos,
        "the leader's log does not say why it stopped");
  Check(!answer.ok(),
        "the write was acknowledged by a leader whose fsync "
        "failed");
  Log(absl::StrCat("n", leader, " exited ", server::kExitLogStoreFailed,
                   " and said why"));
  // The others go on without it.
  const int next = WaitLeader(c);
  Check(next != leader, "no new leader");
  Ok(client.Execute(Sql("INSERT INTO t VALUES (3)")), "insert after");
  // Its disk healthy again, it comes back and catches up.
  Check(c.StartNode(leader).ok(), "restart");
  WaitConverged(c, 3, MaxApplied(c, 3));
  const int64_t rows =
      CountOnEveryNode(c, 3, "SELECT count(*) FROM t", "after the restart");
  Check(rows == 2 || rows == 3, absl::StrCat(rows, " rows"));
  net::Client any = Pinned(c, next);
  Check(Count(any, "SELECT count(*) FROM t WHERE v = 2", false) <= 1,
        "the write the failed leader took applied twice");
  Log(absl::StrCat("restarted, every node holds ", rows,
                   " rows (the unsynced write ",
                   rows == 3 ? "committed through the others" : "was lost",
                   "; its client, pinned to the failed leader, was not told "
                   "it succeeded)"));
}

}  // namespace raftsql::verify
