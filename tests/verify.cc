// verify: end-to-end scenarios against real raftsql_server processes on
// 127.0.0.1 (run by tests/verify.sh and the verify_* Bazel tests).
//
//   verify --scenario=full|restart_single_node|prepare_commit_kill|no_leader|
//                     membership|hostile|peer_port|divergence|
//                     outcome_unknown|forwarded_across_election|grow|
//                     vacuum|edges|decisions|nemesis|cut_off_leader|boot
//          --server=PATH --dir=DIR
//
// Each scenario prints what it does with timings, exits 0 when every check
// holds and 1 (with the tail of every node's log) when one fails. Every node
// it starts is stopped by PID before it exits.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "net/client.h"
#include "net/execute_stream_client.h"
#include "net/grpc_transport.h"
#include "tests/verify_util.h"
#include "tools/flags.h"
#include "tools/local_cluster.h"
#include "tools/process.h"

ABSL_FLAG(std::string, scenario, "", "the scenario to run");
ABSL_FLAG(std::string, server, "",
          "the server binary (default: the built one)");
ABSL_FLAG(std::string, dir, "", "the cluster's directory (default: a new one)");
ABSL_FLAG(std::string, agent, "",
          "the edge agent binary (default: the built one)");
ABSL_FLAG(std::string, fail_fsync, "",
          "the fsync-failing shim (default: the built one)");
ABSL_FLAG(std::string, peer_transport, "grpc",
          "the nodes' --peer_transport; stream runs them with peer ports");
ABSL_FLAG(uint64_t, seed, 1, "nemesis: the schedule's seed");
ABSL_FLAG(int, seconds, 20,
          "nemesis: seconds of faults (the clients go on 3 s more)");
ABSL_FLAG(int, nodes, 3, "nemesis: nodes of the cluster");
ABSL_FLAG(bool, forward_clock_jumps, false,
          "nemesis: clocks jump forward too (+1 h, +30 d)");

namespace raftsql::verify {
namespace {

// Sends raw bytes that are not HTTP/2 to a node's port.
void SendGarbage(const std::string& endpoint) {
  const std::string port = endpoint.substr(endpoint.rfind(':') + 1);
  const std::string cmd =
      "exec 3<>/dev/tcp/127.0.0.1/" + port +
      " && printf 'GARBAGE\\x00\\xff\\x13 not http2\\r\\n\\r\\n' >&3 && "
      "timeout 1 cat <&3 >/dev/null; exit 0";
  Check(std::system(("bash -c \"" + cmd + "\" 2>/dev/null").c_str()) == 0,
        "could not send garbage");
}

// gRPC health checking, by a stock client: grpc.health.v1.Health/Check with
// an empty request must answer SERVING (field 1 = 1).
// The status follows the node's readiness within its watcher's interval
// (500 ms): a node asked just after the cluster came up may not say it yet.
void CheckHealth(const std::string& endpoint, const net::Tls& tls) {
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (true) {
    absl::StatusOr<std::string> r = net::UnaryBytes(
        endpoint, "/grpc.health.v1.Health/Check", "", 5000, tls);
    Check(r.ok(), "health check failed: " + r.status().ToString());
    if (*r == std::string("\x08\x01", 2)) return;
    Check(std::chrono::steady_clock::now() < give_up,
          "health status is not SERVING");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Server reflection, by a stock client: ServerReflectionInfo with
// list_services must name raftsql's services.
void CheckReflection(const std::string& endpoint, const net::Tls& tls) {
  grpc::GenericStub stub(net::MakeChannel(endpoint, tls));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](void* want) {
    Check(cq.Next(&tag, &ok) && tag == want && ok, "reflection call failed");
  };
  call->StartCall(reinterpret_cast<void*>(1));
  step(reinterpret_cast<void*>(1));
  grpc::Slice list_services("\x3a\x00", 2);  // field 7, empty string
  grpc::ByteBuffer request(&list_services, 1), response;
  call->Write(request, reinterpret_cast<void*>(2));
  step(reinterpret_cast<void*>(2));
  call->Read(&response, reinterpret_cast<void*>(3));
  step(reinterpret_cast<void*>(3));
  std::vector<grpc::Slice> slices;
  Check(response.Dump(&slices).ok(), "reflection response unreadable");
  std::string bytes;
  for (const grpc::Slice& sl : slices) {
    bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  }
  Check(bytes.find("raftsql.v1.DatabaseService") != std::string::npos,
        "reflection does not list raftsql.v1.DatabaseService");
  ctx.TryCancel();
  grpc::Status finished;
  call->Finish(&finished, reinterpret_cast<void*>(4));
  while (cq.Next(&tag, &ok)) {
    if (tag == reinterpret_cast<void*>(4)) break;
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// Pipelined writes on one ExecuteStream to a follower, which forwards them:
// each valid one is acknowledged (and joins `acked`), a malformed one fails
// alone, and a linearizable read sees them all.
void StreamThroughFollower(LocalCluster& c, int leader, int64_t* key,
                           std::set<int64_t>* acked) {
  const int follower = leader % 3 + 1;
  auto stub = v1::DatabaseService::NewStub(
      net::MakeChannel(c.Endpoint(follower), c.client_tls()));
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, absl::Status> answers;
  net::ExecuteStreamClient stream(
      stub.get(), [&](uint64_t tag, absl::StatusOr<v1::ExecuteResponse> r) {
        absl::Status s = r.status();
        if (r.ok() && r->results(0).code() != 0) {
          s = absl::InternalError(r->results(0).error());
        }
        std::lock_guard<std::mutex> l(mu);
        answers.emplace(tag, s);
        cv.notify_all();
      });
  const int64_t first = *key + 1;
  constexpr int kWrites = 100;
  for (int i = 0; i < kWrites; ++i) {
    const int64_t k = ++*key;
    Check(stream.Send(static_cast<uint64_t>(k),
                      Sql("INSERT INTO kv VALUES (?, ?)", {k, k})),
          "stream send");
  }
  Check(stream.Send(0, Sql("INSERT INTO kv VALUES (1, 2")), "stream send");
  Check(stream.Close().ok(), "the stream did not end cleanly");
  std::lock_guard<std::mutex> l(mu);
  Check(answers.size() == kWrites + 1, "the stream left requests unanswered");
  Check(answers[0].code() == absl::StatusCode::kInvalidArgument,
        "malformed SQL on the stream: " + answers[0].ToString());
  for (int64_t k = first; k < first + kWrites; ++k) {
    Check(answers[static_cast<uint64_t>(k)].ok(),
          absl::StrCat("streamed write ", k, ": ",
                       answers[static_cast<uint64_t>(k)].ToString()));
    acked->insert(k);
  }
  Check(Count(c.client(), "SELECT count(*) FROM kv", true) ==
            static_cast<int64_t>(acked->size()),
        "a linearizable read missed streamed writes");
  Log(absl::StrCat(kWrites, " writes pipelined on one stream to follower ",
                   follower,
                   " acknowledged (a malformed one failed alone) and "
                   "seen by a linearizable read"));
}

// ---- full ----
void Full(LocalCluster& c) {
  Check(c.Start().ok(), "start");
  int leader = WaitLeader(c);
  Log(absl::StrCat("leader is node ", leader));
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER)")),
     "create");
  std::set<int64_t> acked;
  int64_t key = 0;
  // Writes through every node (followers forward); after each, a
  // linearizable read on another node must see it.
  for (int round = 0; round < 10; ++round) {
    for (int node = 1; node <= 3; ++node) {
      net::Client pinned = Pinned(c, node);
      ++key;
      Ok(pinned.Execute(Sql("INSERT INTO kv VALUES (?, ?)", {key, key * 10})),
         absl::StrCat("insert through node ", node));
      acked.insert(key);
      net::Client reader = Pinned(c, node % 3 + 1);
      Check(
          Count(reader, absl::StrCat("SELECT count(*) FROM kv WHERE k = ", key),
                true) == 1,
          absl::StrCat("linearizable read on node ", node % 3 + 1,
                       " missed acknowledged key ", key));
    }
  }
  Log(absl::StrCat(acked.size(),
                   " writes through all 3 nodes, each seen by a "
                   "linearizable read on another node"));
  for (int node = 1; node <= 3; ++node)
    CheckHealth(c.Endpoint(node), c.client_tls());
  Log("gRPC health check: SERVING on every node");
  CheckReflection(c.Endpoint(1), c.client_tls());
  Log("server reflection lists raftsql.v1.DatabaseService");
  StreamThroughFollower(c, leader, &key, &acked);

  // Bad input of several kinds: clear errors, nothing lost.
  auto bad = client.Execute(Sql("INSERT INTO kv VALUES (1, 2"));
  Check(bad.status().code() == absl::StatusCode::kInvalidArgument,
        "malformed SQL: " + bad.status().ToString());
  Log("malformed SQL: " + std::string(bad.status().message()));
  auto unknown = client.Execute(Sql("INSERT INTO nosuch VALUES (1)"));
  Check(unknown.ok() && unknown->results(0).code() != 0,
        "unknown table accepted");
  Log("unknown table: " + unknown->results(0).error());
  auto refused = client.Execute(Sql("ATTACH 'x.db' AS x"));
  Check(refused.status().code() == absl::StatusCode::kPermissionDenied,
        "ATTACH not refused: " + refused.status().ToString());
  Log("refused: " + std::string(refused.status().message()));
  auto big = client.Execute(
      Sql("INSERT INTO kv VALUES (0, '" + std::string(5 << 20, 'x') + "')"));
  Check(big.status().code() == absl::StatusCode::kResourceExhausted,
        "oversized request not refused: " + big.status().ToString());
  Log("oversized: " + std::string(big.status().message()).substr(0, 80));
  auto version = Ok(client.GetVersion("kv"), "version");
  Check(version > 0, "kv has no version");
  Check(client.GetVersion("nosuch").status().code() ==
            absl::StatusCode::kNotFound,
        "GetVersion of a missing table is not NOT_FOUND");
  SendGarbage(c.Endpoint(leader));
  Check(Count(client, "SELECT count(*) FROM kv", true) ==
            static_cast<int64_t>(acked.size()),
        "rows lost after bad input");
  Log(absl::StrCat("bad input refused; kv version ", version,
                   "; garbage bytes on the port did not hurt"));

  // Kill the leader: a new one is elected and writes continue.
  c.StopNode(leader, SIGKILL);
  Log(absl::StrCat("SIGKILL leader ", leader));
  const int next = WaitLeader(c, leader);
  Log(absl::StrCat("new leader is node ", next));
  for (int i = 0; i < 20; ++i) {
    ++key;
    Ok(client.Execute(Sql("INSERT INTO kv VALUES (?, ?)", {key, key})),
       "insert after failover");
    acked.insert(key);
  }
  Check(c.StartNode(leader).ok(), "restart");
  WaitConverged(c, 3, MaxApplied(c, 3));
  for (int node = 1; node <= 3; ++node) {
    net::Client pinned = Pinned(c, node);
    v1::QueryResponse rows =
        Ok(pinned.Query(Read("SELECT k FROM kv ORDER BY k", false)), "scan");
    std::set<int64_t> have;
    for (const v1::Row& r : rows.rows()) have.insert(r.values(0).integer());
    Check(have == acked, absl::StrCat("node ", node, " holds ", have.size(),
                                      " keys, ", acked.size(), " acked"));
  }
  Log(absl::StrCat("all ", acked.size(),
                   " acknowledged writes on every node; hashes equal"));

  // A follower that answers NOT_LEADER instead of forwarding.
  const int current = WaitLeader(c);
  const int follower = current % 3 + 1;
  c.StopNode(follower, SIGTERM);
  Check(c.StartNode(follower, {"--forward_writes=false"}).ok(), "restart");
  WaitConverged(c, 3, MaxApplied(c, 3));
  net::Client direct = Pinned(c, follower);
  auto refused_write = direct.Execute(Sql("INSERT INTO kv VALUES (-1, 0)"));
  Check(refused_write.status().code() == absl::StatusCode::kFailedPrecondition,
        "a non-forwarding follower took a write: " +
            refused_write.status().ToString());
  Log("non-forwarding follower: " +
      std::string(refused_write.status().message()));
  net::ClientOptions follow = c.ClientOptionsFor();
  follow.attempts = 3;
  net::Client following({c.Endpoint(follower)}, follow);
  Ok(following.Execute(Sql("INSERT INTO kv VALUES (-1, 0)")),
     "client following the leader address");
  Check(following.current() == c.Endpoint(current),
        "the client did not follow the raftsql-leader trailer");
  Log("the client followed the raftsql-leader trailer to node " +
      std::to_string(current));
}

// ---- restart_single_node ----
void RestartSingleNode(LocalCluster& c) {
  Check(c.Start().ok(), "start");
  WaitLeader(c);
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t (k INTEGER PRIMARY KEY)")), "create");
  Ok(client.Execute(Sql("CREATE TABLE counter (n INTEGER)")), "create");
  Ok(client.Execute(Sql("INSERT INTO counter VALUES (0)")), "init");
  int64_t writes = 0;
  auto write_some = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ++writes;
      v1::ExecuteRequest r = Sql("INSERT INTO t VALUES (?)", {writes});
      r.add_statements()->set_sql("UPDATE counter SET n = n + 1");
      r.set_transaction(true);
      Ok(client.Execute(r), "write");
    }
  };
  write_some(40);
  for (int sig : {SIGTERM, SIGKILL}) {
    // SIGTERM the leader (it hands leadership over), SIGKILL a follower.
    const int leader = WaitLeader(c);
    const int victim = sig == SIGTERM ? leader : leader % 3 + 1;
    c.StopNode(victim, sig);
    Log(absl::StrCat(sig == SIGTERM ? "SIGTERM" : "SIGKILL", " node ", victim,
                     sig == SIGTERM ? " (the leader)" : " (a follower)"));
    write_some(60);  // Past the snapshot threshold: it catches up by one.
    Check(c.StartNode(victim).ok(), "restart");
    Log(absl::StrCat("restarted node ", victim));
    WaitConverged(c, 3, MaxApplied(c, 3));
    net::Client pinned = Pinned(c, victim);
    const int64_t rows = Count(pinned, "SELECT count(*) FROM t", false);
    const int64_t n = Count(pinned, "SELECT n FROM counter", false);
    Check(rows == writes, absl::StrCat("node ", victim, " has ", rows,
                                       " rows, ", writes, " acked"));
    Check(n == writes,
          absl::StrCat("node ", victim, " counter is ", n, " after ", writes,
                       " writes: applied twice or lost"));
    auto st = Ok(c.client().Status(c.Endpoint(victim)), "status");
    Log(absl::StrCat("node ", victim, " caught up: ", rows, " rows, counter ",
                     n, ", snapshot index ", st.snapshot_index()));
  }
}

// ---- prepare_commit_kill ----
void PrepareCommitKill(LocalCluster& c) {
  Check(c.Start().ok(), "start");
  const int leader = WaitLeader(c);
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")),
     "create");
  WaitConverged(c, 3, MaxApplied(c, 3));
  const int follower = leader % 3 + 1;
  const uint64_t before =
      Ok(client.Status(c.Endpoint(follower)), "status").last_index();

  // The write, straight to the leader, with a session so it can be retried.
  v1::ExecuteRequest w = Sql("INSERT INTO t (v) VALUES ('w')");
  w.set_session_id(0xc0ffee);
  w.set_sequence(1);
  grpc::Status outcome;
  std::thread writer([&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    v1::ExecuteResponse resp;
    outcome = client.StubFor(c.Endpoint(leader)).Execute(&ctx, w, &resp);
  });
  // Replicated: the follower holds the entry; the leader then commits it
  // and sits in its pause before applying and answering.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    auto s = client.Status(c.Endpoint(follower));
    if (s.ok() && s->last_index() > before) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  c.StopNode(leader, SIGKILL);
  Log(absl::StrCat("SIGKILL leader ", leader,
                   " after replication, inside the pause before apply"));
  writer.join();
  Check(!outcome.ok(),
        "the client was answered OK by a leader killed "
        "before it applied the write");
  Log(absl::StrCat("client saw outcome unknown: code ", outcome.error_code(),
                   " (", outcome.error_message(), ")"));

  WaitLeader(c, leader);
  Check(c.StartNode(leader).ok(), "restart");
  WaitConverged(c, 3, MaxApplied(c, 3));
  std::set<int64_t> counts;
  for (int node = 1; node <= 3; ++node) {
    net::Client pinned = Pinned(c, node);
    counts.insert(Count(pinned, "SELECT count(*) FROM t", false));
  }
  Check(counts.size() == 1, "the write is on some nodes only");
  Log(absl::StrCat("after recovery the write is on ",
                   *counts.begin() == 1 ? "every node" : "no node"));

  // Retry with the same session and sequence: applied exactly once.
  v1::ExecuteResponse retry = Ok(client.Execute(w), "retry");
  Log(absl::StrCat("retry answered (duplicate=", retry.duplicate(), ")"));
  WaitConverged(c, 3, MaxApplied(c, 3));
  for (int node = 1; node <= 3; ++node) {
    net::Client pinned = Pinned(c, node);
    const int64_t n = Count(pinned, "SELECT count(*) FROM t", false);
    Check(n == 1, absl::StrCat("node ", node, " has the write ", n, " times"));
  }
  Log("exactly once on every node");
}

// ---- no_leader ----
void NoLeader(LocalCluster& c, int leader_wait_ms) {
  Check(c.Start().ok(), "start");
  const int leader = WaitLeader(c);
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t (k INTEGER)")), "create");
  Ok(client.Execute(Sql("INSERT INTO t VALUES (1)")), "insert");
  WaitConverged(c, 3, MaxApplied(c, 3));
  // A majority down: the two followers. The leader steps down (CheckQuorum).
  const int a = leader % 3 + 1, b = a % 3 + 1;
  c.StopNode(a, SIGKILL);
  c.StopNode(b, SIGKILL);
  Log(absl::StrCat("SIGKILL nodes ", a, " and ", b, "; node ", leader,
                   " is alone"));
  // At once, the old leader still leads (until CheckQuorum): it takes the
  // write into its log but cannot commit it, so the client hears "outcome
  // unknown" once it steps down (UNKNOWN), or when the request times out.
  {
    net::Client early = Pinned(c, leader);
    v1::ExecuteRequest w = Sql("INSERT INTO t VALUES (7)");
    const auto t0 = Clock::now();
    auto r = early.Execute(w);
    const int64_t took =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0)
            .count();
    Check(r.status().code() == absl::StatusCode::kUnknown ||
              r.status().code() == absl::StatusCode::kDeadlineExceeded ||
              r.status().code() == absl::StatusCode::kUnavailable,
          "a write without a quorum: " + r.status().ToString());
    Check(took <= 4000 + 1000,
          absl::StrCat("the write without a quorum took ", took, " ms"));
    Log(absl::StrCat("write right after the majority died: ", took, " ms, ",
                     std::string(r.status().message())));
  }
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    auto s = client.Status(c.Endpoint(leader));
    if (s.ok() && s->leader() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Log("the survivor knows no leader");
  net::Client alone = Pinned(c, leader);
  const auto t0 = Clock::now();
  auto w = alone.Execute(Sql("INSERT INTO t VALUES (2)"));
  const int64_t took =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0)
          .count();
  Check(w.status().code() == absl::StatusCode::kUnavailable,
        "write without a leader: " + w.status().ToString());
  Check(took <= leader_wait_ms + 1000,
        absl::StrCat("the no-leader error took ", took, " ms"));
  Log(absl::StrCat("write failed in ", took,
                   " ms: " + std::string(w.status().message())));
  auto r = alone.Query(Read("SELECT count(*) FROM t", true));
  Check(!r.ok(), "a linearizable read was served without a leader");
  Log("linearizable read refused: " + std::string(r.status().message()));
  Check(Count(alone, "SELECT count(*) FROM t", false) == 1,
        "NONE read of local state failed");
  Check(c.StartNode(a).ok() && c.StartNode(b).ok(), "restart");
  WaitLeader(c);
  WaitConverged(c, 3, MaxApplied(c, 3));
  Check(Count(client, "SELECT count(*) FROM t WHERE k = 2", true) == 0,
        "the refused write was applied");
  const int64_t unknown =
      Count(client, "SELECT count(*) FROM t WHERE k = 7", true);
  Check(unknown <= 1, "the timed-out write was applied twice");
  Log(
      absl::StrCat("majority back: the refused write is nowhere; the "
                   "timed-out one is there ",
                   unknown, " time(s) (its outcome was unknown)"));
}

// ---- membership ----
void Membership(LocalCluster& c) {
  Check(c.Start().ok(), "start");
  WaitLeader(c);
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t (k INTEGER PRIMARY KEY)")), "create");
  int64_t writes = 0;
  auto write_some = [&](net::Client& cl, int n) {
    for (int i = 0; i < n; ++i) {
      ++writes;
      Ok(cl.Execute(Sql("INSERT INTO t VALUES (?)", {writes})), "write");
    }
  };
  write_some(client, 80);  // Past the snapshot threshold.
  // Node 4 joins through a running member: added as a learner, sent a
  // snapshot, promoted to voter once caught up.
  const int joiner = c.AddSlot();
  Check(c.StartNode(joiner).ok(), "start joiner");
  Log(absl::StrCat("node ", joiner, " started with --join"));
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  bool voter = false;
  while (!voter && Clock::now() < deadline) {
    auto st = client.Status(c.Endpoint(WaitLeader(c)));
    for (const v1::Member& m :
         st.ok() ? st->members() : decltype(st->members()){}) {
      if (m.id() == static_cast<uint64_t>(joiner) && m.voter()) voter = true;
    }
    if (!voter) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Check(voter, "the joining node did not become a voter");
  WaitConverged(c, c.size(), MaxApplied(c, c.size()));
  net::Client at_joiner = Pinned(c, joiner);
  Check(Count(at_joiner, "SELECT count(*) FROM t", false) == writes,
        "the joined node misses rows");
  Log(absl::StrCat("node ", joiner, " is a voter with all ", writes, " rows"));
  // A join retried after a timeout must not demote it.
  // (At the address the node joined with: its peer port, if it has one.)
  auto again =
      Ok(client.AddNode(joiner, c.PeerEndpoint(joiner)), "AddNode again");
  bool still_voter = false;
  for (const v1::Member& m : again.members()) {
    if (m.id() == static_cast<uint64_t>(joiner)) still_voter = m.voter();
  }
  Check(still_voter, "a repeated AddNode demoted the voter");
  Log("a repeated AddNode leaves the voter a voter");

  // Leadership moves to the new node; then node 1 is removed.
  auto moved = Ok(client.TransferLeadership(joiner), "transfer");
  Check(WaitLeader(c) == joiner, "leadership did not move");
  Log(absl::StrCat("leadership transferred to node ", joiner));
  net::Client rest({c.Endpoint(2), c.Endpoint(3), c.Endpoint(joiner)},
                   c.ClientOptionsFor());
  write_some(rest, 10);
  auto removed = Ok(rest.RemoveNode(1), "remove node 1");
  for (const v1::Member& m : removed.members()) {
    Check(m.id() != 1, "node 1 is still a member");
  }
  // Once it applied its removal, node 1 refuses even reads at consistency
  // none: its data no longer follows the cluster's writes.
  {
    net::Client gone = Pinned(c, 1);
    absl::Status read = absl::OkStatus();
    const auto until = Clock::now() + std::chrono::seconds(5);
    do {
      read = gone.Query(Read("SELECT count(*) FROM t", false)).status();
      if (!read.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (Clock::now() < until);
    Check(read.code() == absl::StatusCode::kFailedPrecondition,
          "the removed node still serves reads: " + read.ToString());
    Log("node 1, removed, refuses reads: " + std::string(read.message()));
  }
  c.StopNode(1, SIGTERM);
  Log(absl::StrCat("node 1 removed and stopped; members: ",
                   removed.members_size()));
  write_some(rest, 10);
  WaitConverged(c, c.size(), MaxApplied(c, c.size()));
  for (int node : {2, 3, joiner}) {
    net::Client pinned = Pinned(c, node);
    Check(Count(pinned, "SELECT count(*) FROM t", false) == writes,
          absl::StrCat("node ", node, " misses rows"));
  }
  Log(absl::StrCat("nodes 2, 3, ", joiner, " hold all ", writes, " rows"));
}

void DumpLogs(LocalCluster& c, int nodes) {
  for (int i = 1; i <= nodes; ++i) {
    std::ifstream in(c.LogPath(i));
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::printf("--- node %d log (last lines) ---\n", i);
    for (size_t k = lines.size() > 15 ? lines.size() - 15 : 0; k < lines.size();
         ++k) {
      std::printf("%s\n", lines[k].c_str());
    }
  }
}

int Main(int argc, char** argv) {
  tools::ParseFlags(argc, argv,
                    "runs one scenario against real processes on 127.0.0.1 "
                    "(tests/verify.sh runs them all).");
  const std::string scenario = absl::GetFlag(FLAGS_scenario);
  std::string server = absl::GetFlag(FLAGS_server);
  std::string dir = absl::GetFlag(FLAGS_dir);
  std::string agent = absl::GetFlag(FLAGS_agent);
  std::string shim = absl::GetFlag(FLAGS_fail_fsync);
  NemesisOptions nemesis;
  nemesis.seed = absl::GetFlag(FLAGS_seed);
  nemesis.seconds = absl::GetFlag(FLAGS_seconds);
  nemesis.forward_clock_jumps = absl::GetFlag(FLAGS_forward_clock_jumps);
  const int nodes = absl::GetFlag(FLAGS_nodes);
  if (shim.empty()) shim = tools::FindBinary(argv[0], "tests/libfail_fsync.so");
  if (agent.empty()) agent = tools::FindBinary(argv[0], "edge/agent");
  if (server.empty())
    server = tools::FindBinary(argv[0], "server/raftsql_server");
  if (dir.empty()) {
    char tmpl[] = "/tmp/raftsql-verify-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  tools::LocalClusterOptions o;
  o.nodes = scenario == "nemesis" ? nodes : scenario == "boot" ? 1 : 3;
  o.server_binary = server;
  o.dir = dir;
  o.extra_flags = {"--leader_wait_ms=2000", "--request_timeout_ms=4000",
                   "--snapshot_entries=50"};
  if (scenario == "prepare_commit_kill") {
    // A pause (800 ms) that the election timeout (2-4 s) outlasts, so the
    // leader is still leading when it is killed inside the window.
    o.extra_flags.push_back("--pause_before_commit_ms=800");
    o.extra_flags.push_back("--election_ticks=100");
    o.extra_flags.push_back("--heartbeat_ticks=5");
    o.extra_flags.push_back("--request_timeout_ms=15000");
  }
  if (scenario == "hostile") {
    // Every node applies each 50M-step poison on its Raft loop (about a
    // second alone, several when three nodes and other tests share two
    // cores); the write behind it waits for that, so the server's bound
    // must outlast it as the patient client's does.
    o.extra_flags.push_back("--request_timeout_ms=15000");
  }
  if (scenario == "grow") {
    o.extra_flags.push_back(absl::StrCat("--snapshot_bytes_per_second=",
                                         kGrowSnapshotBytesPerSecond));
    // Only the log's byte bound compacts.
    o.extra_flags.push_back("--snapshot_entries=1000000");
  }
  if (scenario == "edges" || scenario == "decisions") {
    o.extra_flags.push_back("--edge_sweep_ms=200");
    o.extra_flags.push_back("--edge_command_lock_ms=2000");
    o.extra_flags.push_back("--snapshot_entries=10000");
  }
  if (scenario == "divergence") {
    o.extra_flags.push_back("--divergence_check_ms=200");
    o.extra_flags.push_back("--divergence_checkpoint_entries=10");
  }
  // The nemesis cuts the peer ports' links; the client ports stay.
  o.peer_ports = scenario == "peer_port" || scenario == "nemesis" ||
                 scenario == "cut_off_leader";
  o.peer_transport = absl::GetFlag(FLAGS_peer_transport);
  if (scenario == "nemesis") {
    o.node_env = [dir](int id) {
      return NemesisNodeEnv(absl::StrCat(dir, "/node", id));
    };
  }
  LocalCluster cluster(o);
  Log("scenario " + scenario + ", data in " + dir);
  try {
    if (scenario == "full") {
      Full(cluster);
    } else if (scenario == "restart_single_node") {
      RestartSingleNode(cluster);
    } else if (scenario == "prepare_commit_kill") {
      PrepareCommitKill(cluster);
    } else if (scenario == "no_leader") {
      NoLeader(cluster, 2000);
    } else if (scenario == "membership") {
      Membership(cluster);
    } else if (scenario == "hostile") {
      Hostile(cluster, server, dir);
    } else if (scenario == "peer_port") {
      PeerPort(cluster);
    } else if (scenario == "divergence") {
      Divergence(cluster);
    } else if (scenario == "outcome_unknown") {
      OutcomeUnknown(cluster);
    } else if (scenario == "fsync_failure") {
      FsyncFailure(cluster, shim, dir);
    } else if (scenario == "forwarded_across_election") {
      ForwardedAcrossElection(cluster);
    } else if (scenario == "grow") {
      Grow(cluster);
    } else if (scenario == "vacuum") {
      VacuumScenario(cluster);
    } else if (scenario == "edges") {
      Edges(cluster, agent, dir);
    } else if (scenario == "decisions") {
      Decisions(cluster, agent, dir);
    } else if (scenario == "nemesis") {
      Nemesis(cluster, nemesis);
    } else if (scenario == "cut_off_leader") {
      CutOffLeader(cluster);
    } else if (scenario == "boot") {
      Boot(cluster, dir);
    } else {
      std::fprintf(stderr,
                   "usage: verify --scenario=full|restart_single_node|"
                   "prepare_commit_kill|no_leader|membership|hostile|peer_port|"
                   "divergence|outcome_unknown|fsync_failure|"
                   "forwarded_across_election|grow|"
                   "vacuum|edges|decisions|nemesis|cut_off_leader|boot "
                   "[--server=PATH] "
                   "[--dir=DIR] [nemesis: --seed=N --seconds=N "
                   "--nodes=3|5 --forward_clock_jumps]\n");
      return 2;
    }
  } catch (const Failure& f) {
    Log(std::string("FAILED: ") + f.what());
    DumpLogs(cluster, cluster.size());
    return 1;
  }
  Log("PASSED " + scenario);
  return 0;
}

}  // namespace
}  // namespace raftsql::verify

int main(int argc, char** argv) { return raftsql::verify::Main(argc, argv); }
