// Scenario divergence: a replica whose data differs from the cluster's is
// found by its divergence checks and stops serving reads; the others serve.
// Node 3's stored divergence hash is altered while it is down (as a bug in
// one replica's apply, or a disk that changed a page, would leave it).
#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/verify_util.h"

namespace raftsql::verify {
namespace {

using Clock = std::chrono::steady_clock;

// Adds one to node `id`'s stored divergence hash (the node is down).
void Tamper(LocalCluster& c, int id) {
  const std::string path = c.data_dir(id) + "/db.sqlite";
  sqlite3* db = nullptr;
  Check(sqlite3_open(path.c_str(), &db) == SQLITE_OK, "open " + path);
  char* err = nullptr;
  const int rc =
      sqlite3_exec(db,
                   "UPDATE _raftsql_meta SET value = value + 1 WHERE key = "
                   "'divergence_hash'",
                   nullptr, nullptr, &err);
  Check(rc == SQLITE_OK && sqlite3_changes(db) == 1,
        absl::StrCat("tamper with node ", id, ": ", err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
}

}  // namespace

void Divergence(LocalCluster& c) {
  Check(c.Start().ok(), "start");
  WaitLeader(c);
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t(v)")), "create");
  WaitConverged(c, 3, MaxApplied(c, 3));
  c.StopNode(3, SIGTERM);
  Tamper(c, 3);
  Check(c.StartNode(3).ok(), "restart node 3");
  // Writes carry every replica past the next checkpoints (every 10).
  for (int i = 0; i < 40; ++i) {
    Ok(client.Execute(Sql("INSERT INTO t VALUES (?)", {i})), "insert");
  }
  // (Not WaitConverged: node 3's hash differs by design.)
  const auto start = Clock::now();
  std::string divergence;
  while (Clock::now() - start < std::chrono::seconds(20)) {
    // Node 3 may still be starting (not listening yet): ask again.
    auto status = client.Status(c.Endpoint(3));
    if (status.ok()) divergence = status->divergence();
    if (!divergence.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Check(!divergence.empty(), "node 3 never found that it diverged");
  Log("node 3 found it diverged: " + divergence);
  net::Client three = Pinned(c, 3);
  auto refused = three.Query(Read("SELECT count(*) FROM t", false));
  Check(absl::IsUnavailable(refused.status()),
        "node 3 still serves reads: " + refused.status().ToString());
  // Nor its changes (one attempt: Watch would resume on another node).
  v1::WatchRequest watch;
  watch.set_from_index(1);
  const absl::Status watched =
      three.Watch(watch, [](const v1::WatchResponse&) { return false; }, 0);
  Check(absl::IsUnavailable(watched),
        "node 3 still serves its changes: " + watched.ToString());
  for (int node = 1; node <= 2; ++node) {
    Check(Ok(client.Status(c.Endpoint(node)), "status").divergence().empty(),
          absl::StrCat("node ", node, " thinks it diverged"));
    net::Client pinned = Pinned(c, node);
    Check(Count(pinned, "SELECT count(*) FROM t", false) == 40,
          absl::StrCat("node ", node, " lost rows"));
  }
  Log("node 3 refuses reads and Watch (UNAVAILABLE); nodes 1 and 2 serve "
      "them");

  // The operator's resync (README): the diverged node leaves, and a fresh
  // one joins in its place and catches up by snapshot.
  c.StopNode(3, SIGTERM);
  net::Client healthy({c.Endpoint(1), c.Endpoint(2)}, c.ClientOptionsFor());
  // The leader refuses a removal while it does not see a quorum of the
  // rest up (it counts who answered lately): retry within a bound.
  absl::Status removed = absl::UnknownError("not tried");
  const auto removing = Clock::now();
  while (!removed.ok() && Clock::now() - removing < std::chrono::seconds(15)) {
    removed = healthy.RemoveNode(3).status();
    if (!removed.ok())
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Check(removed.ok(), "remove the diverged node: " + removed.ToString());
  const int fresh = c.AddSlot();
  Check(c.StartNode(fresh).ok(), "start the replacement");
  const auto joined = Clock::now();
  bool voter = false;
  while (!voter && Clock::now() - joined < std::chrono::seconds(30)) {
    auto st = healthy.Status(c.Endpoint(WaitLeader(c)));
    for (const v1::Member& m :
         st.ok() ? st->members() : decltype(st->members()){}) {
      if (m.id() == static_cast<uint64_t>(fresh) && m.voter()) voter = true;
    }
    if (!voter) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Check(voter, "the replacement did not become a voter");
  Ok(healthy.Execute(Sql("INSERT INTO t VALUES (40)")), "insert");
  const auto caught = Clock::now();
  int64_t rows = 0;
  while (Clock::now() - caught < std::chrono::seconds(20)) {
    net::Client at_fresh = Pinned(c, fresh);
    auto r = at_fresh.Query(Read("SELECT count(*) FROM t", false));
    if (r.ok() && r->rows(0).values(0).integer() == 41) {
      rows = 41;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Check(rows == 41, "the replacement did not catch up");
  Check(Ok(healthy.Status(c.Endpoint(fresh)), "status").divergence().empty(),
        "the replacement thinks it diverged");
  Log(absl::StrCat("node 3 removed; node ", fresh,
                   " joined in its place, serves all 41 rows, not diverged"));
}

}  // namespace raftsql::verify
