// //sim:sim — run seeds of the deterministic simulator.
//
//   sim --seeds=500 [--from=1]     sweep, with a progress bar and a summary
//   sim --seed=17 [--trace]        replay one seed, optionally with a trace
//   sim --check-determinism        run each seed twice, compare trace hashes
// Knobs: --nodes --clients --ops --keys --faults (intensity, 0 = none)
//        --broken=fsync|send-before-persist|stale-reads|split-transfers|
//                 edge-fsync|commit-earlier-terms|learners-in-quorum|
//                 read-index-without-quorum|stale-append-acks|
//                 decision-progress|vote-without-log-check|
//                 heartbeat-full-commit|forget-vote|double-vote|
//                 read-index-before-term-commit|conflict-by-index|
//                 match-what-was-sent
//        --sql (the workload as SQL on the real SQLite state machine)
//        --edges=N (simulated edge devices and their checkers; implies --sql)
//        --decisions=rules|model [--model-dir=ai/model] (the DecisionMaker's
//                 labelled-fault scenario; implies --edges=4)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/simulation.h"
#include "tools/flags.h"

ABSL_FLAG(uint64_t, seed, 0, "replay this one seed (0: sweep --seeds)");
ABSL_FLAG(uint64_t, seeds, 100, "sweep this many seeds, from --from");
ABSL_FLAG(uint64_t, from, 1, "the sweep's first seed");
ABSL_FLAG(bool, trace, false, "print a readable per-node timeline (--seed)");
ABSL_FLAG(bool, check_determinism, false,
          "run every seed twice; the trace hashes must match");
ABSL_FLAG(uint64_t, determinism_every, 0,
          "... or only every K-th seed of a sweep (0: none)");
ABSL_FLAG(bool, verbose, false, "one line per seed of a sweep, with its hash");
ABSL_FLAG(int, nodes, 5, "nodes of the cluster");
ABSL_FLAG(int, clients, 8, "clients of the workload");
ABSL_FLAG(int, ops, 2000, "operations of each run");
ABSL_FLAG(int, keys, 8, "keys of the workload");
ABSL_FLAG(double, faults, 1.0, "fault intensity; 0 runs fault-free");
ABSL_FLAG(bool, sql, false,
          "run the workload as SQL on the real SQLite state machine "
          "(registers and a bank)");
ABSL_FLAG(bool, sql_disk, false,
          "--sql with the database in files on a simulated disk (SQLite's "
          "own crash recovery)");
ABSL_FLAG(int, edges, 0,
          "simulated edge devices (the real agent logic and buffer) with "
          "sessions on the nodes, commands, twins, edge faults and their "
          "checkers; implies --sql");
ABSL_FLAG(std::string, decisions, "",
          "rules|model: the DecisionMaker's scenario (labelled sensor faults "
          "on the edges, the hub's rules or its model decided on the leader "
          "across failovers; prints precision and recall); implies --edges=4");
ABSL_FLAG(std::string, model_dir, "",
          "where hub-actions.gguf is (default "
          "ai/model; --decisions=model)");
ABSL_FLAG(bool, pause_apply, false,
          "(KV) state machines pause their apply now and then, as a file "
          "swap does");
ABSL_FLAG(bool, sync_disk, false,
          "the production server's configuration: log writes complete "
          "before Submit returns and the leader sends appends while it "
          "writes");
ABSL_FLAG(std::string, broken, "",
          "break a component on purpose (the checkers must catch it): "
          "fsync|send-before-persist|stale-reads|split-transfers|edge-fsync|"
          "commit-earlier-terms|learners-in-quorum|read-index-without-quorum|"
          "stale-append-acks|decision-progress|vote-without-log-check|"
          "heartbeat-full-commit|forget-vote|double-vote|"
          "read-index-before-term-commit|conflict-by-index|"
          "match-what-was-sent");

namespace raftsql::sim {
namespace {

constexpr const char* kBrokenNames[] = {"fsync",
                                        "send-before-persist",
                                        "stale-reads",
                                        "early-reads",
                                        "split-transfers",
                                        "edge-fsync",
                                        "commit-earlier-terms",
                                        "learners-in-quorum",
                                        "read-index-without-quorum",
                                        "stale-append-acks",
                                        "decision-progress",
                                        "vote-without-log-check",
                                        "heartbeat-full-commit",
                                        "forget-vote",
                                        "double-vote",
                                        "read-index-before-term-commit",
                                        "conflict-by-index",
                                        "match-what-was-sent"};

// Every knob that changes a run: a replay repeats those given.
constexpr const char* kRunKnobs[] = {
    "nodes",  "clients",   "ops",       "keys",     "faults",
    "broken", "sql",       "sync_disk", "sql_disk", "pause_apply",
    "edges",  "decisions", "model_dir"};

SimOptions MakeOptions(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.nodes = absl::GetFlag(FLAGS_nodes);
  o.clients = absl::GetFlag(FLAGS_clients);
  o.ops = absl::GetFlag(FLAGS_ops);
  o.keys = absl::GetFlag(FLAGS_keys);
  o.fault_intensity = absl::GetFlag(FLAGS_faults);
  o.sql = absl::GetFlag(FLAGS_sql);
  o.sync_disk = absl::GetFlag(FLAGS_sync_disk);
  o.sql_disk = absl::GetFlag(FLAGS_sql_disk);
  if (o.sql_disk) o.sql = true;
  o.pause_apply = absl::GetFlag(FLAGS_pause_apply);
  o.edges = absl::GetFlag(FLAGS_edges);
  if (o.edges > 0) o.sql = true;
  const std::string broken = absl::GetFlag(FLAGS_broken);
  o.broken_fsync = broken == "fsync";
  o.broken_send_before_persist = broken == "send-before-persist";
  o.broken_stale_reads = broken == "stale-reads";
  o.broken_early_reads = broken == "early-reads";
  o.broken_split_transfers = broken == "split-transfers";
  o.broken_edge_fsync = broken == "edge-fsync";
  o.broken_commit_earlier_terms = broken == "commit-earlier-terms";
  o.broken_learners_in_quorum = broken == "learners-in-quorum";
  o.broken_read_index_without_quorum = broken == "read-index-without-quorum";
  o.broken_stale_append_acks = broken == "stale-append-acks";
  o.broken_decision_progress = broken == "decision-progress";
  o.broken_vote_without_log_check = broken == "vote-without-log-check";
  o.broken_heartbeat_full_commit = broken == "heartbeat-full-commit";
  o.broken_forget_vote = broken == "forget-vote";
  o.broken_double_vote = broken == "double-vote";
  o.broken_read_index_before_term_commit =
      broken == "read-index-before-term-commit";
  o.broken_conflict_by_index = broken == "conflict-by-index";
  o.broken_match_what_was_sent = broken == "match-what-was-sent";
  if (o.broken_decision_progress && absl::GetFlag(FLAGS_decisions).empty()) {
    o.decisions = DecisionMode::kRules;
  }
  if (o.broken_edge_fsync && o.edges == 0) o.edges = 3;
  const std::string decisions = absl::GetFlag(FLAGS_decisions);
  if (decisions == "rules") o.decisions = DecisionMode::kRules;
  if (decisions == "model") o.decisions = DecisionMode::kModel;
  if (!absl::GetFlag(FLAGS_model_dir).empty()) {
    o.model_dir = absl::GetFlag(FLAGS_model_dir);
  }
  if (o.decisions != DecisionMode::kNone && o.edges == 0) o.edges = 4;
  if (o.edges > 0) o.sql = true;
  if (o.broken_split_transfers) o.sql = true;
  return o;
}

std::string Replay(uint64_t seed) {
  std::string cmd = absl::StrCat("./bazelw run //sim -- --seed=", seed);
  // Every knob that changes the run (without --sql, another run).
  for (const char* k : kRunKnobs) {
    const std::string set = tools::FlagIfNotDefault(k);
    if (!set.empty()) absl::StrAppend(&cmd, " ", set);
  }
  return absl::StrCat(cmd, " --trace");
}

// The DecisionMaker scenario's figures, summed over seeds.
void PrintDecisions(const std::map<std::string, uint64_t>& d) {
  if (d.empty()) return;
  const auto n = [&d](const std::string& k) {
    auto it = d.find(k);
    return it == d.end() ? uint64_t{0} : it->second;
  };
  const auto share = [](uint64_t a, uint64_t b) {
    return b == 0 ? std::string("-")
                  : absl::StrFormat("%.1f%% (%d/%d)", 100.0 * a / b, a, b);
  };
  std::printf(
      "  decisions    precision %s, recall %s\n"
      "    %llu evaluations; %llu written through Raft, %llu not; a node "
      "took over deciding %llu times (a new leader, or one starting over "
      "from the replicated progress after a failed write)\n",
      share(n("issued: the runbook's action"), n("issued")).c_str(),
      share(n("faults acted on"), n("faults")).c_str(),
      static_cast<unsigned long long>(n("evaluations")),
      static_cast<unsigned long long>(n("evaluations committed")),
      static_cast<unsigned long long>(n("evaluations not committed")),
      static_cast<unsigned long long>(n("decision makers started")));
  for (const char* kind : {"spike", "drift", "stuck", "gap"}) {
    const std::string k = absl::StrCat("faults ", kind);
    std::printf("    %-8s recall %s\n", kind,
                share(n(k + " acted on"), n(k)).c_str());
  }
  std::printf(
      "    issued: %llu the runbook's action, %llu another action during a "
      "fault, %llu with no fault\n",
      static_cast<unsigned long long>(n("issued: the runbook's action")),
      static_cast<unsigned long long>(
          n("issued: another action during a fault")),
      static_cast<unsigned long long>(n("issued: no fault")));
  std::printf(
      "    faults whose readings the hub never held (not counted): "
      "%llu\n",
      static_cast<unsigned long long>(n("faults the hub never held")));
  std::printf(
      "    duplicated uploads left alone %s; disallowed proposals blocked "
      "%s\n",
      share(n("faults duplicates left alone"), n("faults duplicates")).c_str(),
      share(n("canary blocked"), n("canary triggers")).c_str());
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

int RunOne(uint64_t seed) {
  SimOptions o = MakeOptions(seed);
  if (absl::GetFlag(FLAGS_trace)) {
    o.trace = [](const std::string& line) {
      std::printf("%s\n", line.c_str());
    };
  }
  std::printf(
      "seed %llu: %d nodes, %d clients, %d ops; faults: %s\n",
      static_cast<unsigned long long>(seed), o.nodes, o.clients, o.ops,
      DrawFaultPlan(seed, o.nodes, o.fault_intensity).Describe().c_str());
  const auto start = std::chrono::steady_clock::now();
  const SimResult r = Simulation(o).Run();
  const double wall = Seconds(std::chrono::steady_clock::now() - start);
  std::printf(
      "seed %llu %s: %llu events in %.3fs (%.2fM events/s), %.1fs virtual, "
      "commit index %llu\n  ops: %llu ok, %llu failed, %llu timed out; "
      "linearizability: %s\n",
      static_cast<unsigned long long>(seed), r.passed ? "PASSED" : "FAILED",
      static_cast<unsigned long long>(r.events), wall, r.events / wall / 1e6,
      static_cast<double>(r.virtual_time) / kSecond,
      static_cast<unsigned long long>(r.commit_index),
      static_cast<unsigned long long>(r.ops_ok),
      static_cast<unsigned long long>(r.ops_failed),
      static_cast<unsigned long long>(r.ops_unknown),
      r.linearizability.empty() ? "not checked" : r.linearizability.c_str());
  for (const auto& [kind, n] : r.faults) {
    std::printf("  fault %-22s %llu\n", kind.c_str(),
                static_cast<unsigned long long>(n));
  }
  PrintDecisions(r.decisions);
  if (!r.passed) std::printf("  failure: %s\n", r.failure.c_str());
  std::printf("trace hash %016llx\n",
              static_cast<unsigned long long>(r.trace_hash));
  if (absl::GetFlag(FLAGS_check_determinism)) {
    SimOptions again = MakeOptions(seed);
    const SimResult r2 = Simulation(again).Run();
    if (r2.trace_hash != r.trace_hash) {
      std::printf("NOT DETERMINISTIC: second run hash %016llx\n",
                  static_cast<unsigned long long>(r2.trace_hash));
      return 1;
    }
    std::printf("determinism: second run has the same hash\n");
  }
  return r.passed ? 0 : 1;
}

int Sweep() {
  const uint64_t count = absl::GetFlag(FLAGS_seeds);
  const uint64_t from = absl::GetFlag(FLAGS_from);
  uint64_t every = absl::GetFlag(FLAGS_determinism_every);
  if (absl::GetFlag(FLAGS_check_determinism)) every = 1;
  const SimOptions shown = MakeOptions(from);
  std::printf(
      "raftsql sim: seeds %llu..%llu, %d nodes, %d clients, %d ops, "
      "fault intensity %.1f%s\n",
      static_cast<unsigned long long>(from),
      static_cast<unsigned long long>(from + count - 1), shown.nodes,
      shown.clients, shown.ops, shown.fault_intensity,
      every > 0
          ? absl::StrCat(", determinism checked every ", every, " seed(s)")
                .c_str()
          : "");
  std::map<std::string, uint64_t> faults, decisions;
  std::vector<std::pair<uint64_t, std::string>> failures;
  uint64_t events = 0, ok = 0, failed = 0, unknown = 0, virtual_us = 0;
  uint64_t determinism_checked = 0, lin_unknown = 0;
  const auto start = std::chrono::steady_clock::now();
  const bool tty = isatty(fileno(stdout));
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t seed = from + i;
    const SimResult r = Simulation(MakeOptions(seed)).Run();
    events += r.events;
    ok += r.ops_ok;
    failed += r.ops_failed;
    unknown += r.ops_unknown;
    virtual_us += r.virtual_time;
    lin_unknown += r.linearizability.rfind("unknown", 0) == 0;
    for (const auto& [k, n] : r.faults) faults[k] += n;
    for (const auto& [k, n] : r.decisions) decisions[k] += n;
    if (!r.passed) failures.push_back({seed, r.failure});
    if (absl::GetFlag(FLAGS_verbose)) {
      // Where some planted bugs can show (0 is left out).
      std::string paths;
      if (r.revote_requests > 0) {
        absl::StrAppend(&paths, " revote-requests ", r.revote_requests);
      }
      if (r.earlier_term_commits > 0) {
        absl::StrAppend(&paths, " earlier-term-commits ",
                        r.earlier_term_commits);
      }
      if (r.stale_acks_at_leader > 0) {
        absl::StrAppend(&paths, " stale-acks-at-leader ",
                        r.stale_acks_at_leader, " lying ",
                        r.stale_acks_that_lie);
      }
      if (r.early_reads_kept + r.early_reads_redone > 0) {
        absl::StrAppend(&paths, " early-reads kept ", r.early_reads_kept,
                        " redone ", r.early_reads_redone);
      }
      std::printf("seed %llu %s hash %016llx events %llu%s%s%s\n",
                  static_cast<unsigned long long>(seed),
                  r.passed ? "passed" : "FAILED",
                  static_cast<unsigned long long>(r.trace_hash),
                  static_cast<unsigned long long>(r.events), paths.c_str(),
                  r.passed ? "" : ": ", r.failure.c_str());
    }
    if (every > 0 && i % every == 0) {
      ++determinism_checked;
      const SimResult again = Simulation(MakeOptions(seed)).Run();
      if (again.trace_hash != r.trace_hash) {
        failures.push_back(
            {seed, "not deterministic: two runs, two trace hashes"});
      }
    }
    const uint64_t done = i + 1;
    if (tty || done == count || done % 50 == 0) {
      const int width = 40;
      const int filled = static_cast<int>(width * done / count);
      std::printf("%s[%s%s] %llu/%llu seeds, %zu failed%s", tty ? "\r" : "",
                  std::string(filled, '#').c_str(),
                  std::string(width - filled, '.').c_str(),
                  static_cast<unsigned long long>(done),
                  static_cast<unsigned long long>(count), failures.size(),
                  tty ? "" : "\n");
      std::fflush(stdout);
    }
  }
  const double wall = Seconds(std::chrono::steady_clock::now() - start);
  std::printf("%s\nsummary\n", tty ? "" : "");
  std::printf("  seeds        %llu passed, %zu failed\n",
              static_cast<unsigned long long>(count - failures.size()),
              failures.size());
  std::printf("  events       %llu in %.1fs wall: %.2fM events/s\n",
              static_cast<unsigned long long>(events), wall,
              events / wall / 1e6);
  std::printf("  time         %.0fs virtual / %.1fs real = %.0fx\n",
              virtual_us / 1e6, wall, virtual_us / 1e6 / wall);
  std::printf("  client ops   %llu ok, %llu failed cleanly, %llu timed out\n",
              static_cast<unsigned long long>(ok),
              static_cast<unsigned long long>(failed),
              static_cast<unsigned long long>(unknown));
  std::printf("  linearizability undecided (search bound) in %llu seeds\n",
              static_cast<unsigned long long>(lin_unknown));
  if (determinism_checked > 0) {
    std::printf("  determinism  %llu seeds run twice\n",
                static_cast<unsigned long long>(determinism_checked));
  }
  PrintDecisions(decisions);
  std::printf("  faults injected:\n");
  for (const auto& [kind, n] : faults) {
    std::printf("    %-24s %llu\n", kind.c_str(),
                static_cast<unsigned long long>(n));
  }
  if (!failures.empty()) {
    std::printf("failing seeds:\n");
    for (const auto& [seed, why] : failures) {
      std::printf("  seed %llu: %s\n    replay: %s\n",
                  static_cast<unsigned long long>(seed), why.c_str(),
                  Replay(seed).c_str());
    }
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace
}  // namespace raftsql::sim

int main(int argc, char** argv) {
  using raftsql::sim::kBrokenNames;
  const std::vector<std::string> rest = raftsql::tools::ParseFlags(
      argc, argv,
      "run seeds of the deterministic simulator.\n"
      "  sim --seeds=500 [--from=1]   sweep, with a progress bar and a "
      "summary\n"
      "  sim --seed=17 [--trace]      replay one seed, with a timeline\n"
      "  sim --seeds=50 --check-determinism   every seed twice\n"
      "Flags may be spelled with - or _ (--sql-disk), or given in a file "
      "(--flagfile=FILE).");
  if (rest.size() > 1) {
    std::fprintf(stderr, "sim: unexpected argument %s (see --help)\n",
                 rest[1].c_str());
    return 2;
  }
  const std::string broken = absl::GetFlag(FLAGS_broken);
  if (!broken.empty() &&
      std::find(std::begin(kBrokenNames), std::end(kBrokenNames), broken) ==
          std::end(kBrokenNames)) {
    std::fprintf(stderr, "sim: no --broken=%s (see --help)\n", broken.c_str());
    return 2;
  }
  const std::string decisions = absl::GetFlag(FLAGS_decisions);
  if (!decisions.empty() && decisions != "rules" && decisions != "model") {
    std::fprintf(stderr, "sim: --decisions is rules or model\n");
    return 2;
  }
  if (absl::GetFlag(FLAGS_seed) != 0) {
    return raftsql::sim::RunOne(absl::GetFlag(FLAGS_seed));
  }
  return raftsql::sim::Sweep();
}
