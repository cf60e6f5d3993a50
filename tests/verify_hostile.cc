// verify scenarios with hostile or careless input (issue 12): a poison-pill
// write, cluster settings, unsafe membership changes, a second server on a
// port in use. Each check failed before its fix.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/types.h"
#include "net/convert.h"
#include "net/grpc_transport.h"
#include "net/tls.h"
#include "sm/command.h"
#include "tests/verify_util.h"
#include "tools/process.h"

namespace raftsql::verify {
namespace {

constexpr char kEndless[] =
    "INSERT INTO t(v) SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION "
    "ALL SELECT x+1 FROM c) SELECT x FROM c)";

// The endless write fails with the budget's error and the cluster serves.
void PoisonFailsAndTheClusterServes(LocalCluster& c, net::Client& via,
                                    int64_t* rows) {
  const auto start = Clock::now();
  absl::StatusOr<v1::ExecuteResponse> r = via.Execute(Sql(kEndless));
  const double ms =
      std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  Check(r.ok() && r->results_size() == 1 &&
            r->results(0).code() ==
                static_cast<int>(absl::StatusCode::kResourceExhausted) &&
            absl::StrContains(r->results(0).error(), "write budget"),
        "the endless write did not fail with the write budget's error: " +
            (r.ok() ? r->DebugString() : r.status().ToString()));
  Log(absl::StrCat("the endless write failed after ", static_cast<int>(ms),
                   " ms: ", r->results(0).error()));
  ++*rows;
  // Followers apply the poison on their Raft loops too (about a second of
  // steps each, more when three nodes share two cores) before they take
  // the next entry: wait for that (the scenario's servers answer within
  // 15 s, so does this client).
  net::ClientOptions patient = c.ClientOptionsFor();
  patient.timeout_ms = 15'000;
  net::Client after({c.Endpoint(1), c.Endpoint(2), c.Endpoint(3)}, patient);
  Ok(after.Execute(Sql("INSERT INTO t(v) VALUES (?)", {*rows})),
     "a write after the poison");
  for (int node = 1; node <= 3; ++node) {
    if (!c.Running(node)) continue;
    net::Client pinned = Pinned(c, node);
    Check(Count(pinned, "SELECT count(*) FROM t", true) == *rows,
          absl::StrCat("node ", node, " has the wrong rows"));
  }
}

void Budget(LocalCluster& c) {
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t (v INTEGER)")), "create");
  int64_t rows = 0;
  // At the default budget, through a follower (forwarded).
  const int leader = WaitLeader(c);
  net::Client follower = Pinned(c, leader % 3 + 1);
  PoisonFailsAndTheClusterServes(c, follower, &rows);
  // A smaller budget, set once for the whole cluster.
  auto set = Ok(client.SetSetting("write_vm_steps_max", 2'000'000), "set");
  Check(set.settings().at("write_vm_steps_max") == 2'000'000,
        "the setting did not take");
  auto bad = client.SetSetting("write_vm_steps_max", 1);
  Check(absl::IsInvalidArgument(bad.status()),
        "an out-of-range setting was accepted: " + bad.status().ToString());
  Check(absl::IsInvalidArgument(client.SetSetting("nonsense", 5).status()),
        "an unknown setting was accepted");
  // A follower that was down applies the poison from its log on return.
  const int absent = WaitLeader(c) % 3 + 1;
  c.StopNode(absent, SIGKILL);
  Log(absl::StrCat("SIGKILL node ", absent));
  PoisonFailsAndTheClusterServes(c, client, &rows);
  Check(c.StartNode(absent).ok(), "restart");
  WaitConverged(c, 3, MaxApplied(c, 3));
  net::Client returned = Pinned(c, absent);
  auto settings = Ok(returned.GetSettings(), "settings");
  Check(settings.settings().at("write_vm_steps_max") == 2'000'000,
        "the returned node lost the setting");
  Log(absl::StrCat("node ", absent,
                   " came back, applied the poison from its "
                   "log with the same outcome (converged)"));
  // Every node restarts on its data and serves (the entry stays in the log).
  for (int node = 1; node <= 3; ++node) c.StopNode(node, SIGKILL);
  for (int node = 1; node <= 3; ++node) {
    Check(c.StartNode(node).ok(), "restart");
  }
  WaitLeader(c);
  PoisonFailsAndTheClusterServes(c, client, &rows);
  WaitConverged(c, 3, MaxApplied(c, 3));
  Log("after a restart of every node the cluster serves");
}

void Membership(LocalCluster& c) {
  auto& client = c.client();
  auto missing = client.RemoveNode(42);
  Check(absl::IsNotFound(missing.status()),
        "removing a non-member: " + missing.status().ToString());
  auto moved = client.AddNode(2, "127.0.0.1:1");
  Check(absl::IsAlreadyExists(moved.status()),
        "AddNode rewrote a member's address: " + moved.status().ToString());
  auto stolen = client.AddNode(9, c.Endpoint(2));
  Check(absl::IsAlreadyExists(stolen.status()),
        "AddNode took a member's address: " + stolen.status().ToString());
  // With one node down, removing another voter would leave 2 voters of
  // which 1 is up: no quorum.
  const int leader = WaitLeader(c);
  const int down = leader % 3 + 1;
  const int other = down % 3 + 1 == leader ? down % 3 + 2 : down % 3 + 1;
  c.StopNode(down, SIGKILL);
  // Let the leader notice (CheckQuorum rounds mark it inactive).
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  absl::StatusOr<v1::AdminResponse> removed;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    removed = client.RemoveNode(other);
  } while (!absl::IsFailedPrecondition(removed.status()) && !removed.ok() &&
           Clock::now() < deadline);
  Check(absl::IsFailedPrecondition(removed.status()) &&
            absl::StrContains(removed.status().message(), "quorum"),
        "a removal that leaves no quorum: " + removed.status().ToString());
  Log("membership: non-member NOT_FOUND, taken id/address ALREADY_EXISTS, "
      "quorum-losing removal refused");
  Check(c.StartNode(down).ok(), "restart");
  WaitConverged(c, 3, MaxApplied(c, 3));
}

constexpr char kEndlessRead[] =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
    "SELECT count(*) FROM c";

// Endless reads are interrupted at their client's deadline; meanwhile other
// reads and writes are served and the leader keeps its term.
void Reads(LocalCluster& c) {
  const int leader = WaitLeader(c);
  const uint64_t term =
      Ok(c.client().Status(c.Endpoint(leader)), "status").term();
  std::vector<std::thread> stuck;
  std::vector<absl::Status> outcomes(3);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    stuck.emplace_back([&c, &outcomes, leader, i] {
      net::ClientOptions o = c.ClientOptionsFor();
      o.attempts = 1;
      o.timeout_ms = 3000;
      net::Client client({c.Endpoint(leader)}, o);
      outcomes[i] = client.Query(Read(kEndlessRead, false)).status();
    });
  }
  net::Client pinned = Pinned(c, leader);
  for (int i = 0; i < 20; ++i) {
    Ok(pinned.Query(Read("SELECT 1", i % 2 == 0)), "a read beside them");
    Ok(pinned.Execute(Sql("INSERT INTO t(v) VALUES (-1)")), "a write");
  }
  Log("20 reads and 20 writes served beside 3 endless reads");
  for (std::thread& t : stuck) t.join();
  for (const absl::Status& s : outcomes) {
    Check(absl::IsDeadlineExceeded(s),
          "an endless read did not end at its deadline: " + s.ToString());
  }
  const auto status = Ok(c.client().Status(c.Endpoint(leader)), "status");
  Check(status.role() == "Leader" && status.term() == term,
        "the leader lost its leadership under endless reads");
  auto big = pinned.Query(Read(
      "SELECT zeroblob(1000000) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION "
      "ALL SELECT x+1 FROM c LIMIT 100) SELECT x FROM c)",
      false));
  Check(absl::IsResourceExhausted(big.status()),
        "a 100 MB result was not refused: " + big.status().ToString());
  Log("endless reads ended at their deadline (DEADLINE_EXCEEDED), the leader "
      "kept term " +
      std::to_string(term) + ", a 100 MB result was refused");
}

// SIGTERM stops a node within its bound while an endless read and a poison
// write run on it.
void StopWhileBusy(LocalCluster& c) {
  const int leader = WaitLeader(c);
  std::thread reader([&c, leader] {
    net::ClientOptions o = c.ClientOptionsFor();
    o.attempts = 1;
    o.timeout_ms = 60'000;
    net::Client client({c.Endpoint(leader)}, o);
    (void)client.Query(Read(kEndlessRead, false));
  });
  std::thread writer([&c, leader] {
    net::ClientOptions o = c.ClientOptionsFor();
    o.attempts = 1;
    net::Client client({c.Endpoint(leader)}, o);
    (void)client.Execute(Sql(kEndless));
  });
  // Both are under way once a plain read has waited behind nothing.
  Ok(Pinned(c, leader).Query(Read("SELECT 1", false)), "read");
  const auto start = Clock::now();
  c.StopNode(leader, SIGTERM);
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  reader.join();
  writer.join();
  // StopNode sends SIGKILL after 10 s; a node that needed it failed.
  Check(s < 9.0, absl::StrCat("SIGTERM took ", s, " s to stop a busy node"));
  Log(absl::StrCat("SIGTERM stopped the busy leader in ", s, " s"));
  Check(c.StartNode(leader).ok(), "restart");
  WaitConverged(c, 3, MaxApplied(c, 3));
  WaitLeader(c);  // Converged nodes may still be electing the next leader.
}

// A forged append (a row into t), a heartbeat response and a vote request
// 1,000 terms ahead, and a snapshot chunk naming `claimed` the only voter,
// all claiming to come from `claimed`, sent to node 1 over `tls`.
grpc::Status SendForged(const std::string& endpoint, const net::Tls& tls,
                        uint64_t claimed, uint64_t term) {
  auto stub = v1::PeerService::NewStub(
      net::MakeChannel(endpoint, tls, net::NodeName(1)));
  sm::Command insert;
  insert.statements.push_back({"INSERT INTO t(v) VALUES (424242)", {}, {}});
  core::Message app;
  app.type = core::MessageType::kApp;
  app.from = claimed;
  app.to = 1;
  app.term = term + 1;
  app.index = 1'000'000;
  app.entries.push_back(core::Entry{term + 1, 1'000'001,
                                    core::EntryType::kNormal, insert.Encode()});
  core::Message resp;
  resp.type = core::MessageType::kHeartbeatResp;
  resp.from = claimed;
  resp.to = 1;
  resp.term = term + 1000;
  core::Message vote;
  vote.type = core::MessageType::kVote;
  vote.from = claimed;
  vote.to = 1;
  vote.term = term + 1000;
  vote.index = 1'000'000;
  vote.log_term = term + 1000;
  core::Message snap;
  snap.type = core::MessageType::kSnap;
  snap.from = claimed;
  snap.to = 1;
  snap.term = term + 1;
  snap.snapshot =
      core::Snapshot{core::SnapshotMetadata{1'000'000, term + 1,
                                            core::ConfState{{claimed}, {}}},
                     "not a database"};
  snap.snapshot_size = snap.snapshot->data.size();
  v1::RaftBatch batch;
  for (const core::Message* m : {&app, &resp, &vote, &snap}) {
    net::ToProto(*m, batch.add_messages());
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::RaftBatchAck ack;
  std::unique_ptr<grpc::ClientWriter<v1::RaftBatch>> w =
      stub->Stream(&ctx, &ack);
  w->Write(batch);
  w->WritesDone();
  return w->Finish();
}

// Nobody but node N speaks as node N: without a certificate, with a
// client's, as another node, or in plaintext, forged Raft messages are
// refused and change nothing.
void ForgedPeerMessages(LocalCluster& c) {
  const uint64_t term = Ok(c.client().Status(c.Endpoint(1)), "status").term();
  auto load = [&](const std::string& name) {
    return Ok(net::LoadTlsDir(c.certs_dir(), name), "certificates " + name);
  };
  const struct {
    const char* who;
    net::Tls tls;
    uint64_t claimed;
    grpc::StatusCode want;
  } attempts[] = {
      {"no certificate", load(""), 2, grpc::StatusCode::UNAUTHENTICATED},
      {"a client's certificate", load("client-root"), 2,
       grpc::StatusCode::PERMISSION_DENIED},
      {"node 3's certificate as node 2", load("node-3"), 2,
       grpc::StatusCode::PERMISSION_DENIED},
      {"plaintext", net::Tls{}, 2, grpc::StatusCode::UNAVAILABLE},
  };
  for (const auto& a : attempts) {
    const grpc::Status s = SendForged(c.Endpoint(1), a.tls, a.claimed, term);
    Check(s.error_code() == a.want,
          absl::StrCat("forged peer messages with ", a.who, ": code ",
                       s.error_code(), " ", s.error_message()));
  }
  WaitConverged(c, 3, MaxApplied(c, 3));
  const auto after = Ok(c.client().Status(c.Endpoint(1)), "status");
  Check(after.term() == term,
        absl::StrCat("the term moved from ", term, " to ", after.term()));
  Check(Count(c.client(), "SELECT count(*) FROM t WHERE v = 424242", true) == 0,
        "a forged append wrote a row");
  Log("forged appends, heartbeat responses, votes and snapshot chunks "
      "without a node certificate, with a client's, as another node, or in "
      "plaintext: refused, term and rows unchanged");
}

void SecondServerOnAPortInUse(LocalCluster& c, const std::string& server,
                              const std::string& dir) {
  const std::string port = c.Endpoint(1);
  const pid_t pid =
      tools::Spawn({server, "--id=9", "--listen=" + port, "--peers=9=" + port,
                    "--data_dir=" + dir + "/intruder"},
                   dir + "/intruder.log");
  int status = 0;
  const bool exited = tools::WaitExit(pid, 15'000, &status);
  if (!exited) tools::Stop(pid, 1000);
  Check(exited && WIFEXITED(status) && WEXITSTATUS(status) != 0,
        "a second server started on a port in use");
  Log("a second server on a port in use refuses to start");
}

}  // namespace

void PeerPort(LocalCluster& c) {
  Check(c.Start().ok(), "start");
  const int leader = WaitLeader(c);
  const int follower = leader % 3 + 1;
  auto& client = c.client();
  Ok(client.Execute(Sql("CREATE TABLE t (v INTEGER)")), "create");
  net::Client at_follower = Pinned(c, follower);
  Ok(at_follower.Execute(Sql("INSERT INTO t(v) VALUES (1)")),
     "a write forwarded by a follower");
  for (int node = 1; node <= 3; ++node) {
    net::Client pinned = Pinned(c, node);
    Check(Count(pinned, "SELECT count(*) FROM t", true) == 1,
          absl::StrCat("node ", node, " misses the row"));
  }
  const auto st = Ok(client.Status(c.Endpoint(follower)), "status");
  Check(st.leader_address() == c.Endpoint(leader),
        "a follower names the leader's peer port to clients: " +
            st.leader_address());
  Log("separate peer ports: writes forwarded and replicated, clients are "
      "pointed at client ports");
  auto load = [&](const std::string& name) {
    return Ok(net::LoadTlsDir(c.certs_dir(), name), "certificates " + name);
  };
  const uint64_t term = st.term();
  // Raft on the client port, clients on the peer port, and the peer port
  // without a client certificate: none of it is served.
  const grpc::Status raft_on_client_port =
      SendForged(c.Endpoint(1), load("node-2"), 2, term);
  Check(raft_on_client_port.error_code() == grpc::StatusCode::UNIMPLEMENTED,
        "the client port serves Raft: " + raft_on_client_port.error_message());
  net::ClientOptions o = c.ClientOptionsFor();
  o.attempts = 1;
  auto on_peer_port =
      net::Client({c.PeerEndpoint(1)}, o).Status(c.PeerEndpoint(1));
  Check(absl::IsUnimplemented(on_peer_port.status()),
        "the peer port serves clients: " + on_peer_port.status().ToString());
  o.tls = load("");
  auto no_cert = net::Client({c.PeerEndpoint(1)}, o).Status(c.PeerEndpoint(1));
  Check(absl::IsUnavailable(no_cert.status()),
        "the peer port took a caller without a certificate: " +
            no_cert.status().ToString());
  Log("the client port refuses Raft (UNIMPLEMENTED), the peer port clients "
      "(UNIMPLEMENTED) and callers without a certificate (UNAVAILABLE)");
  // A node joins through a client port and is reached at its peer port.
  const int joiner = c.AddSlot();
  Check(c.StartNode(joiner).ok(), "start joiner");
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  bool voter = false;
  while (!voter && Clock::now() < deadline) {
    auto s = client.Status(c.Endpoint(WaitLeader(c)));
    for (const v1::Member& m :
         s.ok() ? s->members() : decltype(s->members()){}) {
      if (m.id() == static_cast<uint64_t>(joiner) && m.voter()) {
        voter = m.address() == c.PeerEndpoint(joiner) &&
                m.client_address() == c.Endpoint(joiner);
      }
    }
    if (!voter) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Check(voter, "the joiner did not become a voter at its peer port");
  WaitConverged(c, c.size(), MaxApplied(c, c.size()));
  Log(absl::StrCat("node ", joiner,
                   " joined; members list its peer and "
                   "client addresses"));
}

void Hostile(LocalCluster& c, const std::string& server,
             const std::string& dir) {
  Check(c.Start().ok(), "start");
  WaitLeader(c);
  Budget(c);
  ForgedPeerMessages(c);
  Reads(c);
  StopWhileBusy(c);
  Membership(c);
  SecondServerOnAPortInUse(c, server, dir);
}

}  // namespace raftsql::verify
