// Scenario outcome_unknown: the error model's promise that UNAVAILABLE
// means nothing was written. A leader whose followers are frozen (SIGSTOP)
// proposes a write it cannot commit and is then stopped (SIGTERM): the
// write's answer must say its outcome is unknown (UNKNOWN or
// DEADLINE_EXCEEDED), never UNAVAILABLE; afterwards the cluster holds the
// write on every node or on none.
#include <signal.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/verify_util.h"

namespace raftsql::verify {

void OutcomeUnknown(LocalCluster& c) {
  Check(c.Start().ok(), "start");
  const int leader = WaitLeader(c);
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t(v)")), "create");
  WaitConverged(c, 3, MaxApplied(c, 3));
  net::Client pinned = Pinned(c, leader);
  const uint64_t before =
      Ok(client.Status(c.Endpoint(leader)), "status").last_index();
  for (int node = 1; node <= 3; ++node) {
    if (node != leader) kill(c.Pid(node), SIGSTOP);
  }
  absl::Status answer;
  std::thread writer([&pinned, &answer] {
    answer = pinned.Execute(Sql("INSERT INTO t VALUES (1)")).status();
  });
  // Proposed once the leader's log grows.
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    auto s = client.Status(c.Endpoint(leader));
    if (s.ok() && s->last_index() > before) break;
  }
  c.StopNode(leader, SIGTERM);
  writer.join();
  for (int node = 1; node <= 3; ++node) {
    if (node != leader) kill(c.Pid(node), SIGCONT);
  }
  Log("the proposed write's answer: " + answer.ToString());
  Check(absl::IsUnknown(answer) || absl::IsDeadlineExceeded(answer),
        "a write proposed before its leader stopped answered " +
            answer.ToString() + ", not an outcome-unknown code");
  Check(c.StartNode(leader).ok(), "restart");
  WaitLeader(c);
  WaitConverged(c, 3, MaxApplied(c, 3));
  int64_t rows = -1;
  for (int node = 1; node <= 3; ++node) {
    net::Client one = Pinned(c, node);
    const int64_t n = Count(one, "SELECT count(*) FROM t", false);
    Check(rows < 0 || n == rows, "the nodes disagree about the write");
    rows = n;
  }
  Log(absl::StrCat("after the restart every node holds ", rows,
                   " row(s): the write applied everywhere or nowhere"));
}

}  // namespace raftsql::verify
