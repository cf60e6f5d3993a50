// Scenario decisions: a rule fires on readings an edge agent uploads, and
// the hub's leader is SIGKILLed between the decision and its delivery. The
// command reaches the edge and runs there once; the new leader, which
// evaluates the later readings (still over the threshold), issues nothing
// more for them (the rule's cooldown), and the audit shows one issued
// decision for the device.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/verify_util.h"
#include "tools/process.h"
#include "tools/shell_rules.h"

namespace raftsql::verify {
namespace {

// Polls (bounded) until `sql` counts at least `want`.
bool Until(net::Client& client, const std::string& sql, int64_t want, int ms) {
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
    try {
      if (Count(client, sql, true) >= want) return true;
    } catch (const Failure&) {
      // A leader change: ask again.
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

void Decisions(LocalCluster& c, const std::string& agent_binary,
               const std::string& dir) {
  Check(!agent_binary.empty(), "the agent binary");
  Check(c.Start().ok(), "start");
  WaitLeader(c);
  auto& client = c.client();
  const std::string device = "boiler-1";
  Ok(client.PutUser(device, "token-of-boiler", {"device"}), "register");
  std::ofstream(dir + "/token") << "token-of-boiler\n";
  // The decision tables, an allow-list entry and the rule, as the shell's
  // .allow and .rule add send them.
  for (const std::string line :
       {".allow set boiler-*",
        ".rule add trip edge_readings set {\"valve\":0} SELECT device, "
        "max(value) AS peak FROM edge_readings_by_device GROUP BY device "
        "HAVING max(value) >= 1000"}) {
    const std::vector<std::string> words =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    Ok(client.Execute(Ok(tools::RuleRequest(words, line), line)), line);
  }
  const std::string store = dir + "/boiler.db";
  auto start = [&](const std::string& source, bool drain) {
    std::vector<std::string> argv = {
        agent_binary,
        "--hubs=" + absl::StrJoin(c.Endpoints(), ","),
        "--device=" + device,
        "--token_file=" + dir + "/token",
        "--ca_file=" + c.certs_dir() + "/ca.crt",
        "--store=" + store,
        "--source=" + source,
        "--batch_ms=20",
        "--backoff_min_ms=50",
        "--backoff_max_ms=500",
        "--stats_every_s=0"};
    if (drain) argv.push_back("--exit_when_drained");
    const pid_t pid = tools::Spawn(argv, dir + "/agent.log");
    Check(pid > 0, "spawn the agent");
    return pid;
  };
  // 1. Readings with one over the threshold; the agent leaves once the hub
  //    holds them, before any command could reach it.
  {
    std::ofstream csv(dir + "/hot.csv");
    for (int i = 1; i <= 50; ++i) csv << "temp," << 20 + i % 3 << "\n";
    csv << "temp,1500\n";
  }
  pid_t agent = start("csv:" + dir + "/hot.csv", true);
  int status = 0;
  Check(tools::WaitExit(agent, 60'000, &status), "the agent uploaded");
  const std::string issued =
      "SELECT count(*) FROM ai_audit WHERE rule = 'trip' AND device = '" +
      device + "' AND verdict = 'issued'";
  Check(Until(client, issued, 1, 20'000), "the leader decided within 20 s");
  Check(Count(client, "SELECT count(*) FROM edge_commands", true) == 1,
        "one command");
  const bool waiting =
      Count(client,
            "SELECT count(*) FROM edge_commands WHERE status = 'queued'",
            true) == 1;
  // 2. The leader dies between the decision and the delivery.
  const int leader = WaitLeader(c);
  Log(absl::StrCat("decided (the command ",
                   waiting ? "waits for its device" : "reached the device",
                   "); SIGKILL the leader, node ", leader));
  c.StopNode(leader, SIGKILL);
  WaitLeader(c);
  // 3. The device comes back with more hot readings (the rule still holds
  //    for it), and the old leader returns.
  {
    std::ofstream csv(dir + "/more.csv");
    for (int i = 0; i < 20; ++i) csv << "temp,1600\n";
  }
  agent = start("csv:" + dir + "/more.csv", false);
  Check(c.StartNode(leader).ok(), "restart the old leader");
  Check(
      Until(client, "SELECT count(*) FROM edge_commands WHERE status = 'done'",
            1, 30'000),
      "the command was run and answered within 30 s");
  // The new leader has evaluated the later readings by now (every 100 ms).
  Check(Until(client,
              "SELECT count(*) FROM ai_audit WHERE verdict = 'blocked' AND "
              "guard LIKE 'cooldown%'",
              1, 20'000),
        "the later readings were evaluated and held by the cooldown");
  tools::Stop(agent, 5000);
  Check(Count(client, "SELECT count(*) FROM edge_commands", true) == 1,
        "one command in all");
  Check(Count(client, issued, true) == 1, "one issued decision in the audit");
  Check(ReadStore(store).executed == 1, "the edge ran the command once");
  Log("one decision, one command, run once across the leader's SIGKILL");
  WaitConverged(c, 3, MaxApplied(c, 3));
}

}  // namespace raftsql::verify
