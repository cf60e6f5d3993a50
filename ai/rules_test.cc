// Rules and guard rails over a state machine: a trigger issues its command
// once, a second leader with stale progress issues nothing, and each guard
// rail blocks (or holds) in its place with its reason in the audit.
#include "ai/rules.h"

#include "gtest/gtest.h"
#include "sm/test_util.h"

namespace raftsql::ai {
namespace {

using sm::Cmd;
using sm::S;
using sm::Value;

class RulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sm_ = sm::OpenMemory();
    sm::ApplyOk(*sm_, SchemaCommand());
    Write("CREATE TABLE temps(device TEXT, v REAL)");
    Write("INSERT INTO ai_allow VALUES ('cool', 'pump-*', '', NULL, NULL, 0)");
    Write(
        "INSERT INTO ai_allow VALUES ('cool', 'pump-*', 'target', 0, 100, 0)");
    Write(
        "INSERT INTO ai_rules(name, watch, condition, command, params, "
        "cooldown_ms) VALUES ('hot', 'temps', 'SELECT device, max(v) AS peak "
        "FROM temps GROUP BY device HAVING max(v) > 50 ORDER BY device', "
        "'cool', '{\"target\": \"$peak\"}', 60000)");
  }
  void Write(const std::string& sql) {
    sm::CommandResult r = sm::ApplyOk(*sm_, Cmd({S(sql)}));
    ASSERT_TRUE(r.statements[0].status.ok())
        << sql << ": " << r.statements[0].status;
  }
  QueryFn Query() {
    return [this](const sm::Statement& s) { return sm_->Query(s); };
  }
  // Evaluates the changes to temps through the applied index, with the
  // stored progress (or `progress`), and applies the decision; its status.
  absl::Status Decide(int64_t now_ms, Evaluation* out = nullptr,
                      std::optional<uint64_t> progress = std::nullopt,
                      const ModelFn& model = nullptr,
                      std::set<std::string> tables = {"temps"}) {
    absl::StatusOr<uint64_t> p = ReadProgress(Query());
    EXPECT_TRUE(p.ok()) << p.status();
    absl::StatusOr<Evaluation> e =
        Evaluate(progress.value_or(*p), sm_->AppliedIndex(), tables, now_ms,
                 Query(), false, model);
    EXPECT_TRUE(e.ok()) << e.status();
    if (out != nullptr) *out = *e;
    if (e->command.statements.empty()) return absl::OkStatus();
    sm::CommandResult r = sm::ApplyOk(*sm_, e->command);
    for (const sm::StatementResult& s : r.statements) {
      if (!s.status.ok()) return s.status;
    }
    return absl::OkStatus();
  }
  std::string Rows(const std::string& sql) {
    absl::StatusOr<sm::QueryResult> r = sm_->Query(S(sql));
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status();
    std::string out;
    for (const auto& row : r->rows) {
      for (const Value& v : row) out += v.DebugString() + " ";
      out += "\n";
    }
    return out;
  }
  std::unique_ptr<sm::SqliteStateMachine> sm_;
};

TEST_F(RulesTest, ATriggerIssuesItsCommandOnceAndAStaleLeaderNothing) {
  Write("INSERT INTO temps VALUES ('pump-1', 61), ('pump-2', 40)");
  const uint64_t index = sm_->AppliedIndex();
  Evaluation e;
  ASSERT_TRUE(Decide(1'000'000, &e).ok());
  EXPECT_EQ(e.issued, 1);
  EXPECT_EQ(Rows("SELECT id, device, name, params FROM edge_commands"),
            "'" + CommandId("hot", index, "pump-1") +
                "' 'pump-1' 'cool' '{\"target\": 61}' \n");
  EXPECT_EQ(Rows("SELECT verdict, command_id IS NOT NULL, inputs FROM "
                 "ai_audit"),
            "'issued' 1 '{\"device\":\"pump-1\",\"peak\":61}' \n");
  EXPECT_EQ(Rows("SELECT idx FROM ai_progress"), std::to_string(index) + " \n");
  // Another leader that read the progress before this one's commit: its
  // whole decision fails, nothing is issued twice.
  const absl::Status stale = Decide(1'000'001, nullptr, 0);
  EXPECT_FALSE(stale.ok());
  EXPECT_EQ(Rows("SELECT count(*) FROM edge_commands"), "1 \n");
  // Later changes: the same device is in its cooldown.
  Write("INSERT INTO temps VALUES ('pump-1', 70)");
  ASSERT_TRUE(Decide(1'010'000, &e).ok());
  EXPECT_EQ(e.blocked, 1);
  EXPECT_EQ(Rows("SELECT count(*) FROM edge_commands"), "1 \n");
  EXPECT_NE(Rows("SELECT guard FROM ai_audit WHERE verdict = 'blocked'")
                .find("cooldown"),
            std::string::npos);
}

TEST_F(RulesTest, EachGuardRailBlocksInItsPlaceWithItsReason) {
  Write("DELETE FROM ai_rules");
  Write("INSERT INTO ai_limits VALUES ('device_per_minute', 1)");
  // Not allow-listed (a fan), out of range, vetoed, over the rate limit.
  Write(
      "INSERT INTO ai_rules(name, watch, condition, command, params, "
      "priority) VALUES "
      "('a-fan', 'temps', 'SELECT ''fan-1'' AS device', 'cool', '{}', 9), "
      "('b-range', 'temps', 'SELECT ''pump-1'' AS device', 'cool', "
      "'{\"target\": 500}', 8), "
      "('c-veto', 'temps', 'SELECT ''pump-2'' AS device', 'cool', "
      "'{\"target\": 5}', 7), "
      "('d-ok', 'temps', 'SELECT ''pump-3'' AS device', 'cool', "
      "'{\"target\": 5}', 6), "
      "('e-rate', 'temps', 'SELECT ''pump-3'' AS device', 'cool', "
      "'{\"target\": 6}', 5)");
  Write(
      "INSERT INTO ai_rules(name, kind, condition) VALUES ('maintenance', "
      "'veto', 'SELECT ''pump-2'' AS device')");
  Write("INSERT INTO temps VALUES ('x', 1)");
  Evaluation e;
  ASSERT_TRUE(Decide(5'000'000, &e).ok());
  EXPECT_EQ(e.issued, 1);
  EXPECT_EQ(e.blocked, 4);
  EXPECT_EQ(Rows("SELECT rule, verdict, substr(guard, 1, instr(guard, ':')) "
                 "FROM ai_audit ORDER BY rule"),
            "'a-fan' 'blocked' 'allow-list:' \n"
            "'b-range' 'blocked' 'allow-list:' \n"
            "'c-veto' 'blocked' 'veto:' \n"
            "'d-ok' 'issued' NULL \n"
            "'e-rate' 'blocked' 'rate limit:' \n");
  // A class that needs an operator: held, then approved once.
  Write("UPDATE ai_allow SET approval = 1 WHERE param = ''");
  Write("DELETE FROM ai_limits");
  Write("INSERT INTO temps VALUES ('y', 1)");
  ASSERT_TRUE(Decide(6'000'000, &e).ok());
  EXPECT_GE(e.pending, 1);
  absl::StatusOr<sm::QueryResult> waiting =
      sm_->Query(S("SELECT command_id FROM ai_approvals WHERE rule = 'd-ok'"));
  ASSERT_TRUE(waiting.ok());
  ASSERT_EQ(waiting->rows.size(), 1u);
  const std::string pending = waiting->rows[0][0].bytes;
  EXPECT_EQ(
      Rows("SELECT count(*) FROM edge_commands WHERE id = '" + pending + "'"),
      "0 \n");
  absl::StatusOr<sm::QueryResult> approval = sm_->Query(ApprovalQuery(pending));
  ASSERT_TRUE(approval.ok());
  absl::StatusOr<sm::Command> answer =
      AnswerApproval(*approval, true, 6'100'000);
  ASSERT_TRUE(answer.ok()) << answer.status();
  sm::ApplyOk(*sm_, *answer);
  EXPECT_EQ(
      Rows("SELECT status FROM edge_commands WHERE id = '" + pending + "'"),
      "'queued' \n");
  EXPECT_FALSE(
      AnswerApproval(*sm_->Query(ApprovalQuery(pending)), false, 6'200'000)
          .ok());
}

TEST_F(RulesTest, ARuleFindsASpikeWithTheAnomalyFunctions) {
  Write("DELETE FROM ai_rules");
  Write(
      "INSERT INTO ai_rules(name, watch, condition, command, params) VALUES "
      "('spike', 'temps', 'SELECT device, zscore(v) AS score FROM (SELECT "
      "device, v FROM temps ORDER BY rowid) GROUP BY device HAVING "
      "zscore(v) > 1.9', 'cool', '{\"target\": 20}')");
  Write(
      "INSERT INTO temps VALUES ('pump-1', 20), ('pump-1', 20), ('pump-1', "
      "20), ('pump-1', 20), ('pump-1', 38), ('pump-2', 20), ('pump-2', 21), "
      "('pump-2', 20), ('pump-2', 21), ('pump-2', 20)");
  Evaluation e;
  ASSERT_TRUE(Decide(7'000'000, &e).ok());
  EXPECT_EQ(e.issued, 1);
  EXPECT_EQ(Rows("SELECT device, score FROM ai_audit"), "'pump-1' 2 \n");
}

// A model rule's situations, and a model that cools what is hot.
class ModelRuleTest : public RulesTest {
 protected:
  void SetUp() override {
    RulesTest::SetUp();
    Write("DELETE FROM ai_rules");
    Write(
        "CREATE TABLE situ(device TEXT, sensor TEXT, value REAL, mean REAL, "
        "z REAL, rate REAL, stuck INTEGER, gap INTEGER)");
    Write(
        "INSERT INTO ai_allow VALUES ('shutdown', 'pump-*', '', NULL, NULL, "
        "0)");
    Write(
        "INSERT INTO ai_rules(name, watch, condition, command, cooldown_ms) "
        "VALUES ('m', 'situ', 'SELECT * FROM situ ORDER BY device', '@model', "
        "60000)");
    // The allow-list wants cool's target: the rule's template gives it.
    Write("UPDATE ai_rules SET params = '{\"target\": \"$mean\"}'");
  }
  ModelFn Cooler() {
    return [this](const std::string& situation,
                  const std::vector<std::string>& candidates)
               -> absl::StatusOr<ModelChoice> {
      seen_.push_back(situation);
      candidates_.push_back(candidates);
      const bool hot =
          situation.find("temperature 93.0C") != std::string::npos &&
          std::find(candidates.begin(), candidates.end(), "cool") !=
              candidates.end();
      return ModelChoice{hot ? "cool" : "none", hot ? 0.9 : 0.8,
                         hot ? "hot and rising" : "normal", "m1@abc"};
    };
  }
  absl::Status DecideSitu(int64_t now_ms, const ModelFn& model,
                          Evaluation* e = nullptr) {
    return Decide(now_ms, e, std::nullopt, model, {"situ"});
  }
  std::vector<std::string> seen_;
  std::vector<std::vector<std::string>> candidates_;
};

TEST_F(ModelRuleTest, TheModelChoosesAmongTheAllowedCommandsAndIsAudited) {
  Write(
      "INSERT INTO situ VALUES ('pump-1', 'temperature', 93, 70, 2.9, 1.5, 0, "
      "3), ('pump-2', 'temperature', 61, 60, 0.1, 0, 0, 2), ('fan-1', "
      "'temperature', 93, 70, 2.9, 1.5, 0, 3)");
  const uint64_t index = sm_->AppliedIndex();
  Evaluation e;
  ASSERT_TRUE(DecideSitu(1'000'000, Cooler(), &e).ok());
  EXPECT_EQ(e.issued, 1);
  ASSERT_EQ(seen_.size(), 3u);
  EXPECT_EQ(seen_[1],
            "pump-1 temperature 93.0C mean 70.0 z 2.9 rate +1.5/min stuck no "
            "gap 3s");
  // fan-1 has no allowed command: the model may only say none.
  EXPECT_EQ(candidates_[0], std::vector<std::string>({"none"}));
  EXPECT_EQ(candidates_[1],
            std::vector<std::string>({"none", "cool", "shutdown"}));
  EXPECT_EQ(Rows("SELECT id, device, name FROM edge_commands"),
            "'" + CommandId("m", index, "pump-1") + "' 'pump-1' 'cool' \n");
  EXPECT_EQ(Rows("SELECT device, command, score, verdict, json_extract("
                 "inputs, '$.why'), json_extract(inputs, '$.model') FROM "
                 "ai_audit ORDER BY device"),
            "'fan-1' 'none' 0.8 'none' 'normal' 'm1@abc' \n"
            "'pump-1' 'cool' 0.9 'issued' 'hot and rising' 'm1@abc' \n"
            "'pump-2' 'none' 0.8 'none' 'normal' 'm1@abc' \n");
  // The guard rails hold for the model's choices: the cooldown.
  Write("INSERT INTO situ VALUES ('pump-3', 'flow', 1, 1, 0, 0, 0, 1)");
  ASSERT_TRUE(DecideSitu(1'001'000, Cooler(), &e).ok());
  EXPECT_EQ(e.issued, 0);
  EXPECT_NE(Rows("SELECT guard FROM ai_audit WHERE device = 'pump-1' AND "
                 "verdict = 'blocked'")
                .find("cooldown"),
            std::string::npos);
}

TEST_F(ModelRuleTest, WithoutAModelOrWithABadChoiceNothingIsIssued) {
  Write(
      "INSERT INTO situ VALUES ('pump-1', 'temperature', 93, 70, 2.9, 1.5, 0, "
      "3)");
  Evaluation e;
  ASSERT_TRUE(DecideSitu(1'000'000, nullptr, &e).ok());
  EXPECT_EQ(e.issued, 0);
  EXPECT_EQ(e.blocked, 1);
  EXPECT_EQ(Rows("SELECT guard FROM ai_audit"),
            "'model: no model is active' \n");
  Write("DELETE FROM ai_audit");
  ModelFn rogue =
      [](const std::string&,
         const std::vector<std::string>&) -> absl::StatusOr<ModelChoice> {
    return ModelChoice{"open-all-valves", 1, "", "rogue"};
  };
  Write("INSERT INTO situ VALUES ('pump-2', 'flow', 1, 1, 0, 0, 0, 1)");
  ASSERT_TRUE(DecideSitu(1'000'000, rogue, &e).ok());
  EXPECT_EQ(e.issued, 0);
  EXPECT_EQ(Rows("SELECT count(*) FROM edge_commands"), "0 \n");
  EXPECT_NE(Rows("SELECT guard FROM ai_audit")
                .find("model: it chose open-all-valves, not a candidate"),
            std::string::npos);
  // A condition without the situation's columns is an error in the audit.
  Write("UPDATE ai_rules SET condition = 'SELECT device FROM situ'");
  ASSERT_TRUE(DecideSitu(1'000'000, Cooler(), &e).ok());
  EXPECT_NE(Rows("SELECT guard FROM ai_audit WHERE verdict = 'error'")
                .find("returns no 'sensor' column"),
            std::string::npos);
}

}  // namespace
}  // namespace raftsql::ai
