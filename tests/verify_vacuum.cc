// Scenario vacuum (issue 13): VACUUM through the API on a 3-node cluster.
// Each node rebuilds its file in the background while writes go on; the
// files shrink, the replicas still agree (divergence hashes, rows), and
// no copy is left behind. Fails on a failed write, a node whose Status
// does not report its vacuum done within kShrinkBound, a file that did
// not shrink to half, or a leftover `db.sqlite.vacuum`.
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/verify_util.h"

namespace raftsql::verify {
namespace {

constexpr auto kShrinkBound = std::chrono::seconds(60);
constexpr int kCommands = 40;  // Of about 1 MB each.

std::string DbFile(LocalCluster& c, int node) {
  return c.data_dir(node) + "/db.sqlite";
}

uint64_t Bytes(const std::string& path) {
  std::error_code ec;
  const uint64_t n = std::filesystem::file_size(path, ec);
  return ec ? 0 : n;
}

}  // namespace

void VacuumScenario(LocalCluster& c) {
  Check(c.Start().ok(), "start");
  WaitLeader(c);
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t(v BLOB, n INTEGER)")), "create");
  for (int i = 0; i < kCommands; ++i) {
    Ok(client.Execute(Sql(
           "INSERT INTO t(v, n) SELECT randomblob(4096), x FROM (WITH "
           "RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE "
           "x < 256) SELECT x FROM c)")),
       "fill");
  }
  Ok(client.Execute(Sql("DELETE FROM t WHERE rowid % 10 != 0")), "delete");
  WaitConverged(c, 3, MaxApplied(c, 3));
  uint64_t before[4] = {};
  for (int node = 1; node <= 3; ++node) before[node] = Bytes(DbFile(c, node));
  Log(absl::StrCat("before VACUUM: ", before[1] >> 20, " MB per file"));
  const auto began = std::chrono::steady_clock::now();
  Ok(client.Execute(Sql("VACUUM")), "vacuum");
  // Writes go on while every node copies and catches up.
  int writes = 0;
  bool shrunk = false;
  int refused = 0;
  while (!shrunk && std::chrono::steady_clock::now() - began < kShrinkBound) {
    auto written =
        client.Execute(Sql("INSERT INTO t(v, n) VALUES (randomblob(64), ?)",
                           {static_cast<int64_t>(writes)}));
    // The leader refuses writes while it swaps its own file in ("nothing
    // was written, try again"): a client tries again (the README's error
    // model). Any other failure fails the scenario.
    if (!written.ok() && absl::IsUnavailable(written.status()) &&
        absl::StrContains(written.status().message(), "nothing was written")) {
      ++refused;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // Backoff.
      continue;
    }
    Ok(std::move(written), "a write during the vacuum");
    ++writes;
    shrunk = true;
    for (int node = 1; node <= 3; ++node) {
      auto st = client.Status(c.Endpoint(node));
      shrunk &= st.ok() && st->vacuums_done() == 1 && !st->vacuuming();
    }
  }
  Check(shrunk, "a node did not report its vacuum done within the bound");
  for (int node = 1; node <= 3; ++node) {
    Check(Bytes(DbFile(c, node)) < before[node] / 2,
          absl::StrCat("node ", node, "'s file did not shrink to half"));
  }
  Log(absl::StrCat("every file shrank (", before[1] >> 20, " MB -> ",
                   Bytes(DbFile(c, 1)) >> 20, " MB on node 1) after ",
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - began)
                       .count(),
                   " ms and ", writes, " writes (", refused,
                   " refused during the leader's swap and tried again)"));
  WaitConverged(c, 3, MaxApplied(c, 3));
  for (int node = 1; node <= 3; ++node) {
    Check(!std::filesystem::exists(DbFile(c, node) + ".vacuum"),
          absl::StrCat("node ", node, " left its copy behind"));
  }
  const int64_t rows =
      CountOnEveryNode(c, 3, "SELECT count(*) FROM t", "after the vacuum");
  Log(absl::StrCat("every node holds the same ", rows, " rows"));
}

}  // namespace raftsql::verify
