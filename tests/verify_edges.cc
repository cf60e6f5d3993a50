// Scenario edges: 20 edge agents (real processes, simulated sensors) upload
// to a 3-node hub while the hub's leader is SIGKILLed and restarted, one
// agent is SIGKILLed mid-upload and restarted on its store, and another's
// store is wiped (a new incarnation). Then every agent drains what it holds.
// Every reading an agent stored is on the hub exactly once (per
// incarnation, none missing, none twice), and every command issued to a
// device was run once and answered done (the wiped device's may instead end
// with its store, unrun by the new one).
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/verify_util.h"
#include "tools/process.h"

namespace raftsql::verify {
namespace {

constexpr int kAgents = 20;

struct Agent {
  std::string device;
  std::string store;
  pid_t pid = -1;
};

}  // namespace

void Edges(LocalCluster& c, const std::string& agent_binary,
           const std::string& dir) {
  Check(!agent_binary.empty(), "the agent binary");
  Check(c.Start().ok(), "start");
  WaitLeader(c);
  auto& client = c.client();
  const std::string hubs = absl::StrJoin(c.Endpoints(), ",");
  const std::string ca = c.certs_dir() + "/ca.crt";
  std::vector<Agent> agents(kAgents);
  for (int i = 0; i < kAgents; ++i) {
    Agent& a = agents[i];
    a.device = absl::StrCat("edge-", i);
    a.store = absl::StrCat(dir, "/", a.device, ".db");
    Ok(client.PutUser(a.device, "token-of-" + a.device, {"device"}),
       "register " + a.device);
    std::ofstream(absl::StrCat(dir, "/", a.device, ".token"))
        << "token-of-" << a.device << "\n";
  }
  auto start = [&](Agent& a, const std::string& source, bool drain) {
    std::vector<std::string> argv = {
        agent_binary,
        "--hubs=" + hubs,
        "--device=" + a.device,
        absl::StrCat("--token_file=", dir, "/", a.device, ".token"),
        "--ca_file=" + ca,
        "--store=" + a.store,
        "--source=" + source,
        "--sim_sensors=2",
        "--sim_period_ms=10",
        "--sample_ms=20",
        "--batch_ms=50",
        "--backoff_min_ms=50",
        "--backoff_max_ms=500",
        "--stats_every_s=0",
        absl::StrCat("--seed=", 1 + (&a - agents.data())),
    };
    if (drain) argv.push_back("--exit_when_drained");
    a.pid = tools::Spawn(argv, absl::StrCat(dir, "/", a.device, ".log"));
    Check(a.pid > 0, "spawn the agent of " + a.device);
  };
  // One command per device, issued before its agent starts.
  for (const Agent& a : agents) {
    v1::IssueEdgeCommandRequest r;
    r.set_id("cmd-" + a.device);
    r.set_device(a.device);
    r.set_name("set");
    r.set_params_json(R"({"valve": 40})");
    r.set_expires_in_ms(600'000);
    r.set_max_attempts(10);
    Ok(client.IssueEdgeCommand(r), "issue a command to " + a.device);
  }
  for (Agent& a : agents) start(a, "sim", false);
  Log("20 agents uploading");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));

  const int leader = WaitLeader(c);
  Log(absl::StrCat("SIGKILL the leader, node ", leader));
  c.StopNode(leader, SIGKILL);
  // Agent 0 dies mid-upload; agent 1 dies and its disk is wiped.
  tools::Stop(agents[0].pid, 0);
  kill(agents[1].pid, SIGKILL);
  tools::WaitExit(agents[1].pid, 5000);
  const StoreFacts wiped = ReadStore(agents[1].store);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(agents[1].store + suffix);
  }
  Log(absl::StrCat("wiped ", agents[1].device, "'s store (incarnation ",
                   wiped.incarnation, ", ", wiped.stored, " readings)"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  start(agents[0], "sim", false);
  start(agents[1], "sim", false);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  Check(c.StartNode(leader).ok(), "restart the old leader");
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));

  // Stop the sensors, then drain every store (no more readings).
  for (Agent& a : agents) tools::Stop(a.pid, 5000);
  Log("agents stopped; draining");
  const std::string empty = dir + "/empty.csv";
  std::ofstream(empty).flush();
  for (Agent& a : agents) start(a, "csv:" + empty, true);
  for (Agent& a : agents) {
    int status = 0;
    Check(tools::WaitExit(a.pid, 60'000, &status),
          a.device + " drained within 60 s");
  }

  int64_t produced = 0;
  for (const Agent& a : agents) {
    const StoreFacts f = ReadStore(a.store);
    Check(f.dropped == 0, a.device + " dropped nothing");
    produced += f.stored;
    const int64_t on_hub = Count(
        client,
        absl::StrCat("SELECT count(*) FROM edge_readings_by_device WHERE "
                     "device = '",
                     a.device, "' AND incarnation = '", f.incarnation, "'"),
        true);
    Check(on_hub == f.stored, absl::StrCat(a.device, ": stored ", f.stored,
                                           " readings, the hub "
                                           "holds ",
                                           on_hub));
    const int64_t acked = Count(
        client,
        absl::StrCat("SELECT acked FROM edge_streams WHERE device = '",
                     a.device, "' AND incarnation = '", f.incarnation, "'"),
        true);
    Check(acked == f.stored, absl::StrCat(a.device, ": acked ", acked));
    Check(f.executed <= 1, a.device + " ran its command at most once");
  }
  // The wiped store's first incarnation: what was acknowledged before the
  // wipe is there, nothing beyond what it stored.
  const int64_t before_wipe =
      Count(client,
            absl::StrCat("SELECT count(*) FROM edge_readings_by_device WHERE "
                         "incarnation = '",
                         wiped.incarnation, "'"),
            true);
  Check(before_wipe <= wiped.stored, "the wiped incarnation's readings");
  // Every device's command ran once and is done, but the wiped device's
  // may have reached its old store unanswered: then the hub does not send
  // it to the new store (it may have run) and ends it expired, and the new
  // store has not run it.
  const int64_t done = Count(
      client,
      absl::StrCat("SELECT count(*) FROM edge_commands WHERE status = 'done' "
                   "AND attempts >= 1 AND device <> '",
                   agents[1].device, "'"),
      true);
  Check(done == kAgents - 1, absl::StrCat(done, " of 19 commands done"));
  const int64_t wiped_done =
      Count(client,
            absl::StrCat("SELECT count(*) FROM edge_commands WHERE device = '",
                         agents[1].device, "' AND status = 'done'"),
            true);
  const int64_t wiped_gone = Count(
      client,
      absl::StrCat("SELECT count(*) FROM edge_commands WHERE device = '",
                   agents[1].device,
                   "' AND status = 'expired' AND detail LIKE 'delivered to a "
                   "store of the device that is gone%'"),
      true);
  Check(wiped_done + wiped_gone == 1,
        "the wiped device's command is done, or ended with its store");
  Check(wiped_gone == 0 || ReadStore(agents[1].store).executed == 0,
        "the wiped device's new store did not run a command that may have "
        "run");
  Log(absl::StrCat("every reading stored once: ", produced, " (plus ",
                   before_wipe, " of the wiped incarnation); ",
                   kAgents - 1 + wiped_done, " commands done",
                   wiped_gone > 0 ? ", 1 ended with the wiped store" : ""));
  WaitConverged(c, 3, MaxApplied(c, 3));
}

}  // namespace raftsql::verify
