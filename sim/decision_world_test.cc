// The DecisionMaker inside the simulator (sim/decision_world.h): the rules
// and the shipped model decide across the cluster's faults without issuing
// anything disallowed or acting on a trigger twice, and the checkers catch
// a decision maker that ignores its replicated progress.
#include "sim/decision_world.h"

#include "gtest/gtest.h"
#include "sim/decision_world_internal.h"
#include "sim/simulation.h"

namespace raftsql::sim {
namespace {

SimOptions Decisions(uint64_t seed, DecisionMode mode) {
  SimOptions o;
  o.seed = seed;
  o.sql = true;
  o.sql_disk = true;
  o.edges = 4;
  o.ops = 1000;
  o.decisions = mode;
  return o;
}

uint64_t Count(const SimResult& r, const std::string& key) {
  auto it = r.decisions.find(key);
  return it == r.decisions.end() ? 0 : it->second;
}

TEST(DecisionWorld, RulesDecideAcrossFaultsAndBlockEveryDisallowedProposal) {
  uint64_t canaries = 0, acted = 0;
  for (uint64_t seed : {1, 2, 3}) {
    const SimResult r = Simulation(Decisions(seed, DecisionMode::kRules)).Run();
    ASSERT_TRUE(r.passed) << "seed " << seed << ": " << r.failure;
    EXPECT_GT(r.faults.count("edge: upload duplicated"), 0u) << seed;
    // Across failovers: more than one leader took over deciding.
    EXPECT_GT(Count(r, "decision makers started"), 1u) << seed;
    EXPECT_GT(Count(r, "evaluations committed"), 0u) << seed;
    EXPECT_EQ(Count(r, "canary blocked"), Count(r, "canary triggers"));
    canaries += Count(r, "canary triggers");
    acted += Count(r, "faults acted on");
    // The rules never act where no fault was (their thresholds sit well
    // outside the sensors' noise).
    EXPECT_EQ(Count(r, "issued: no fault"), 0u) << seed;
  }
  EXPECT_GT(canaries, 0u);
  EXPECT_GT(acted, 0u);
}

TEST(DecisionWorld, ShippedModelDecidesThroughTheGuardRails) {
  const SimResult r = Simulation(Decisions(2, DecisionMode::kModel)).Run();
  ASSERT_TRUE(r.passed) << r.failure;
  EXPECT_GT(Count(r, "issued: the runbook's action"), 0u);
  EXPECT_EQ(Count(r, "canary blocked"), Count(r, "canary triggers"));
}

TEST(DecisionWorld, WithoutTheModelFileModelTriggersAreBlocked) {
  SimOptions o = Decisions(2, DecisionMode::kModel);
  o.model_dir = "/nonexistent";
  const SimResult r = Simulation(o).Run();
  ASSERT_TRUE(r.passed) << r.failure;
  EXPECT_EQ(Count(r, "issued"), 0u);
}

TEST(DecisionWorld, CatchesDecisionsThatIgnoreTheirProgress) {
  // Caught in each of seeds 1-10 (a second evaluation from index 0 once a
  // leader changed or a decision's write failed).
  SimOptions o = Decisions(1, DecisionMode::kRules);
  o.broken_decision_progress = true;
  const SimResult r = Simulation(o).Run();
  EXPECT_EQ(r.failure.rfind("decisions: the evaluations through", 0), 0u)
      << r.failure;
}

TEST(DecisionWorld, RunbookActionsFollowTheTrainingCorpusRunbook) {
  // situations.py's expert() on each fault as the scenario draws it.
  EXPECT_EQ(RunbookAction("temperature", "spike"), "shutdown");  // > 95
  EXPECT_EQ(RunbookAction("vibration", "spike"), "shutdown");    // z > 4
  EXPECT_EQ(RunbookAction("pressure", "spike"), "throttle");     // z > 3
  EXPECT_EQ(RunbookAction("flow", "spike"), "inspect");          // < 15
  EXPECT_EQ(RunbookAction("temperature", "drift"), "cool");      // 82-88
  EXPECT_EQ(RunbookAction("pressure", "drift"), "inspect");
  EXPECT_EQ(RunbookAction("flow", "drift"), "inspect");
  EXPECT_EQ(RunbookAction("flow", "stuck"), "recalibrate");
  EXPECT_EQ(RunbookAction("vibration", "gap"), "ping");
  EXPECT_EQ(RunbookAction("pressure", "duplicates"), "none");
}

}  // namespace
}  // namespace raftsql::sim
