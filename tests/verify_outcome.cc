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
  const int64_t rows =
      CountOnEveryNode(c, 3, "SELECT count(*) FROM t", "about the write");
  Log(absl::StrCat("after the restart every node holds ", rows,
                   " row(s): the write applied everywhere or nowhere"));
}

namespace {

// The node `via` names as leader, once it names one other than `old`.
int LeaderSeenBy(LocalCluster& c, int via, int old) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    auto s = c.client().Status(c.Endpoint(via));
    if (s.ok() && s->leader() != 0 && static_cast<int>(s->leader()) != old &&
        s->role() != "Candidate") {
      return static_cast<int>(s->leader());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw Failure(absl::StrCat("node ", via, " names no new leader"));
}

}  // namespace

void ForwardedAcrossElection(LocalCluster& c) {
  Check(c.Start().ok(), "start");
  const int leader = WaitLeader(c);
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t(v)")), "create");
  WaitConverged(c, 3, MaxApplied(c, 3));
  const int via = leader % 3 + 1;
  net::Client follower = Pinned(c, via);
  // The follower forwards the write to the leader it knows, which is
  // frozen: the proposal is lost. Once the other two elect a leader, the
  // follower sees an entry of a later term apply without it, so it knows
  // the write never applies and proposes it again to the new leader.
  kill(c.Pid(leader), SIGSTOP);
  const auto write_began = std::chrono::steady_clock::now();
  Ok(follower.Execute(Sql("INSERT INTO t VALUES (1)")),
     "a write forwarded to a leader that froze");
  Log(absl::StrCat("a write forwarded to frozen leader ", leader,
                   " applied through the next one after ",
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - write_began)
                       .count(),
                   " ms"));
  const int second = LeaderSeenBy(c, via, leader);
  kill(c.Pid(leader), SIGCONT);
  WaitConverged(c, 3, MaxApplied(c, 3));
  // The same for a linearizable read: its read index, asked of a leader
  // that froze, is asked again of the next.
  const int reader = second % 3 + 1;
  LeaderSeenBy(c, reader, leader);
  net::Client reading = Pinned(c, reader);
  kill(c.Pid(second), SIGSTOP);
  const auto read_began = std::chrono::steady_clock::now();
  Check(Count(reading, "SELECT count(*) FROM t", true) == 1,
        "the read after the election missed the write");
  Log(absl::StrCat("a linearizable read through node ", reader,
                   ", asked of frozen leader ", second,
                   ", was answered through the next after ",
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - read_began)
                       .count(),
                   " ms"));
  kill(c.Pid(second), SIGCONT);
  WaitConverged(c, 3, MaxApplied(c, 3));
  for (int node = 1; node <= 3; ++node) {
    net::Client one = Pinned(c, node);
    Check(Count(one, "SELECT count(*) FROM t", false) == 1,
          absl::StrCat("node ", node, " does not hold the write once"));
  }
  Log("every node holds the write exactly once");
}

}  // namespace raftsql::verify
