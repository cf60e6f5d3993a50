// The planted-bug suite (issue 19): realistic mistakes in election,
// replication, commit, ReadIndex, membership, the runtime's persist/send/
// apply order, storage and the SQL layer, each switched on by one
// SimOptions flag (`sim --broken=NAME`). For each, a bounded sweep of seeds
// must be caught by the simulator's checkers, not by a CHECK inside the
// core ("invariant: ..."), in at least a tenth of the seeds where the bug
// can matter. The options aim the seeds at that: a bug that needs a crash
// right after a vote runs where the plan crashes voters, one in learner
// counting runs with learners, and so on.
//
// Each case prints its rate; the README's table is these figures.
#include <cstdio>
#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/simulation.h"

namespace raftsql::sim {
namespace {

struct Planted {
  const char* name;  // As --broken= names it.
  std::function<void(SimOptions&)> plant;
  uint64_t seeds;       // Seeds 1..seeds are run.
  uint64_t min_caught;  // Caught by a checker in at least this many.
  // A checker the catches must come from (a failure's prefix); empty: any.
  const char* by = "";
  // Whether the bug could matter in a run (the tenth is of those seeds);
  // unset: in every run.
  std::function<bool(const SimResult&)> matters;
};

void PrintTo(const Planted& p, std::ostream* os) { *os << p.name; }

SimOptions Small() {
  SimOptions o;
  o.nodes = 5;
  o.clients = 6;
  o.ops = 400;
  return o;
}

// The simulator's default workload over Small's cluster (more operations
// and clients: more elections and reads under them).
void DefaultWorkload(SimOptions& o) {
  o.ops = SimOptions().ops;
  o.clients = SimOptions().clients;
}

class PlantedBug : public ::testing::TestWithParam<Planted> {};

TEST_P(PlantedBug, IsCaughtByTheCheckersInATenthOfItsSeeds) {
  const Planted& p = GetParam();
  uint64_t caught = 0;
  uint64_t by_core_check = 0;
  uint64_t mattered = 0;
  std::string first;
  for (uint64_t seed = 1; seed <= p.seeds; ++seed) {
    SimOptions o = Small();
    p.plant(o);
    o.seed = seed;
    const SimResult r = Simulation(o).Run();
    if (!p.matters || p.matters(r)) ++mattered;
    if (r.passed) continue;
    if (r.failure.rfind("invariant:", 0) == 0) {
      ++by_core_check;
      continue;
    }
    EXPECT_EQ(r.failure.rfind(p.by, 0), 0u)
        << p.name << " seed " << seed << ": " << r.failure;
    if (first.empty()) first = absl::StrCat("seed ", seed, ": ", r.failure);
    ++caught;
  }
  std::printf(
      "%s: caught by a checker in %llu of %llu seeds, %llu where it could "
      "matter (%llu more by a core CHECK); %s\n",
      p.name, static_cast<unsigned long long>(caught),
      static_cast<unsigned long long>(p.seeds),
      static_cast<unsigned long long>(mattered),
      static_cast<unsigned long long>(by_core_check), first.c_str());
  EXPECT_GE(caught, p.min_caught) << p.name;
  EXPECT_GE(caught * 10, mattered) << p.name;
}

// Measured rates (caught of seeds run, 2026-12-06) are in the README's
// planted-bug table. Each minimum is a tenth of the seeds run, except
// where `matters` narrows them (forget-vote, learners-in-quorum); the test
// also requires a tenth of the seeds where the bug could matter.
INSTANTIATE_TEST_SUITE_P(
    Suite, PlantedBug,
    ::testing::Values(
        // Storage and the runtime's persist/send/apply order.
        Planted{"fsync", [](SimOptions& o) { o.broken_fsync = true; }, 20, 2},
        Planted{"send-before-persist",
                [](SimOptions& o) {
                  // Acks and votes sent before they are durable matter when
                  // the node dies inside the write: crashes aimed there, on
                  // 3 nodes, where one lost ack or vote breaks a quorum.
                  o.nodes = 3;
                  o.broken_send_before_persist = true;
                  o.min_crash_mid_write_probability = 0.03;
                },
                40, 4},
        Planted{"forget-vote",
                [](SimOptions& o) {
                  // Matters only when a voter restarts before its next
                  // write: crashes aimed right after votes.
                  DefaultWorkload(o);
                  o.broken_forget_vote = true;
                  o.min_crash_after_vote_probability = 0.3;
                },
                100, 5, "vote safety:",
                // A vote asked again of a restarted voter for its term.
                [](const SimResult& r) { return r.revote_requests > 0; }},
        // Election.
        Planted{"vote-without-log-check",
                [](SimOptions& o) {
                  DefaultWorkload(o);
                  o.broken_vote_without_log_check = true;
                },
                20, 2},
        Planted{"double-vote",
                [](SimOptions& o) {
                  DefaultWorkload(o);
                  o.broken_double_vote = true;
                },
                100, 10, "vote safety:"},
        // Replication and commit.
        Planted{"conflict-by-index",
                [](SimOptions& o) { o.broken_conflict_by_index = true; }, 20,
                2},
        Planted{"match-what-was-sent",
                [](SimOptions& o) { o.broken_match_what_was_sent = true; }, 20,
                2},
        Planted{"heartbeat-full-commit",
                [](SimOptions& o) {
                  DefaultWorkload(o);
                  o.broken_heartbeat_full_commit = true;
                },
                20, 2, "commit safety:"},
        Planted{"commit-earlier-terms",
                [](SimOptions& o) {
                  // Raft's Figure 8: a leader's entries left on it alone
                  // by a crash inside its write, another leader's too, and
                  // appends cut to one entry, on 3 nodes.
                  o.nodes = 3;
                  o.broken_commit_earlier_terms = true;
                  o.min_crash_mid_write_probability = 0.1;
                  o.max_message_bytes = 1;
                },
                100, 10, "commit safety:",
                [](const SimResult& r) { return r.earlier_term_commits > 0; }},
        Planted{"stale-append-acks",
                [](SimOptions& o) {
                  // An ack of an earlier term lies only when its leader's
                  // log was cut back in between while the follower's was
                  // not: leaders cut off with one follower and returned
                  // (Simulation::LeaderReturns) make that.
                  DefaultWorkload(o);
                  o.broken_stale_append_acks = true;
                  o.min_leader_return_weight = 8;
                },
                100, 3, "",
                // Runs where such an ack reached its leader.
                [](const SimResult& r) { return r.stale_acks_that_lie > 0; }},
        // Membership.
        Planted{"learners-in-quorum",
                [](SimOptions& o) { o.broken_learners_in_quorum = true; }, 40,
                4, "commit safety:",
                // Runs whose membership changes made a learner.
                [](const SimResult& r) {
                  return r.faults.count("membership: add learner") > 0;
                }},
        // Reads.
        Planted{"stale-reads",
                [](SimOptions& o) { o.broken_stale_reads = true; }, 20, 2},
        Planted{"early-reads",
                [](SimOptions& o) { o.broken_early_reads = true; }, 20, 2, "",
                [](const SimResult& r) { return r.early_reads_kept > 0; }},
        Planted{"read-index-without-quorum",
                [](SimOptions& o) {
                  DefaultWorkload(o);
                  o.broken_read_index_without_quorum = true;
                },
                60, 6},
        Planted{"read-index-before-term-commit",
                [](SimOptions& o) {
                  // Matters when a read reaches a new leader before its
                  // term's first entry commits: many readers on 3 nodes.
                  o.nodes = 3;
                  o.clients = 16;
                  o.ops = 2000;
                  o.broken_read_index_before_term_commit = true;
                },
                60, 6},
        // The SQL layer, the edges and the DecisionMaker.
        Planted{"split-transfers",
                [](SimOptions& o) {
                  o.sql = true;
                  o.broken_split_transfers = true;
                },
                10, 1, "bank"},
        Planted{"edge-fsync",
                [](SimOptions& o) {
                  o.sql = true;
                  o.sql_disk = true;
                  o.edges = 3;
                  o.broken_edge_fsync = true;
                },
                10, 1},
        Planted{"decision-progress",
                [](SimOptions& o) {
                  o.sql = true;
                  o.sql_disk = true;
                  o.edges = 4;
                  o.ops = 1000;
                  o.decisions = DecisionMode::kRules;
                  o.broken_decision_progress = true;
                },
                3, 1, "decisions:"}));

}  // namespace
}  // namespace raftsql::sim
