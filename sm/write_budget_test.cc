// The deterministic write budget: a poison write fails identically on every
// replica and the log moves on; the limits are replicated settings.
#include "sm/write_budget.h"

#include "gtest/gtest.h"
#include "sm/sqlite_state_machine.h"
#include "sm/temp_dir.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

// Never ends without a budget: the poison pill of issue 12.
constexpr char kEndless[] =
    "INSERT INTO t(v) SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION "
    "ALL SELECT x+1 FROM c) SELECT x FROM c)";

// Two replicas that created t and set a small step budget (fast tests).
class WriteBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto* r : {&a_, &b_}) {
      *r = OpenMemory();
      ApplyOk(**r, Cmd({S("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")}));
      ApplyOrDie(**r, SettingEntry(2, kSettingVmSteps, 200'000));
    }
  }
  static void ApplyOrDie(SqliteStateMachine& sm, const core::Entry& e) {
    CommandResult r = Decoded(sm.Apply(e));
    ASSERT_EQ(r.statements.size(), 1u);
    ASSERT_TRUE(r.statements[0].status.ok()) << r.statements[0].status;
  }
  // Applies `batch` on both replicas; their results must be byte-equal.
  std::vector<std::string> ApplyBoth(const std::vector<core::Entry>& batch) {
    std::vector<std::string> ra = a_->ApplyBatch(batch);
    // The other replica applies them one by one, as after a restart.
    std::vector<std::string> rb;
    for (const core::Entry& e : batch) rb.push_back(b_->Apply(e));
    EXPECT_EQ(ra, rb);
    EXPECT_EQ(a_->divergence_hash(), b_->divergence_hash());
    EXPECT_EQ(a_->SerializeForTest(), b_->SerializeForTest());
    return ra;
  }
  std::unique_ptr<SqliteStateMachine> a_, b_;
};

TEST_F(WriteBudgetTest, AnEndlessWriteFailsOnEveryReplicaAndTheLogMovesOn) {
  std::vector<std::string> out = ApplyBoth({
      E(3, Cmd({S("INSERT INTO t VALUES (1, 'before')")})),
      E(4, Cmd({S(kEndless)})),
      E(5, Cmd({S("INSERT INTO t VALUES (2, 'after')")})),
  });
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(Decoded(out[0]).statements[0].status.ok());
  const absl::Status poison = Decoded(out[1]).statements[0].status;
  EXPECT_EQ(poison.code(), absl::StatusCode::kResourceExhausted) << poison;
  EXPECT_NE(poison.message().find(kSettingVmSteps), absl::string_view::npos);
  EXPECT_TRUE(Decoded(out[2]).statements[0].status.ok());
  EXPECT_EQ(a_->AppliedIndex(), 5u);
  EXPECT_EQ(Count(*a_, "t"), 2);
}

TEST_F(WriteBudgetTest, AStatementOverBudgetUndoesItsWholeCommand) {
  // Without a transaction each statement is atomic alone, but a command
  // that spends its budget is refused whole: nothing of it stays.
  std::vector<std::string> out =
      ApplyBoth({E(3, Cmd({S("INSERT INTO t VALUES (1, 'first')"), S(kEndless),
                           S("INSERT INTO t VALUES (3, 'third')")}))});
  CommandResult r = Decoded(out[0]);
  ASSERT_EQ(r.statements.size(), 3u);
  for (const StatementResult& s : r.statements) {
    EXPECT_EQ(s.status.code(), absl::StatusCode::kResourceExhausted);
  }
  EXPECT_EQ(Count(*a_, "t"), 0);
  EXPECT_EQ(*a_->GetVersion("t"), 1u);
}

TEST_F(WriteBudgetTest, StepsAreCountedOverTheWholeCommand) {
  // Each statement alone fits (about 60k steps each); together they do not.
  const std::string bounded =
      "INSERT INTO t(v) SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 "
      "UNION ALL SELECT x+1 FROM c LIMIT 3000) SELECT x FROM c)";
  std::vector<std::string> out = ApplyBoth(
      {E(3, Cmd({S(bounded)})), E(4, Cmd({S(bounded), S(bounded), S(bounded),
                                          S(bounded), S(bounded)}))});
  EXPECT_TRUE(Decoded(out[0]).statements[0].status.ok());
  EXPECT_EQ(Decoded(out[1]).statements[0].status.code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Count(*a_, "t"), 3000);
}

TEST_F(WriteBudgetTest, RowBytesAndValueSizeAreBounded) {
  for (auto* r : {&a_, &b_}) {
    ApplyOrDie(**r, SettingEntry(3, kSettingRowBytes, 1 << 20));
  }
  const std::string many =
      "INSERT INTO t(v) SELECT zeroblob(200000) FROM (WITH RECURSIVE c(x) AS "
      "(SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 10) SELECT x FROM c)";
  // 16 MiB is the largest value: SQLite refuses a bigger one itself.
  const std::string huge = "INSERT INTO t VALUES (9, zeroblob(20000000))";
  std::vector<std::string> out =
      ApplyBoth({E(4, Cmd({S(many)})), E(5, Cmd({S(huge)})),
                 E(6, Cmd({S("INSERT INTO t VALUES (1, zeroblob(500000))")}))});
  EXPECT_EQ(Decoded(out[0]).statements[0].status.code(),
            absl::StatusCode::kResourceExhausted);
  const absl::Status too_big = Decoded(out[1]).statements[0].status;
  EXPECT_FALSE(too_big.ok());
  EXPECT_NE(too_big.message().find("too big"), absl::string_view::npos)
      << too_big;
  EXPECT_TRUE(Decoded(out[2]).statements[0].status.ok());
  EXPECT_EQ(Count(*a_, "t"), 1);
}

TEST_F(WriteBudgetTest, ARetriedSessionGetsTheSameBudgetFailure) {
  Command c = Cmd({S(kEndless)});
  c.session_id = 7;
  c.sequence = 1;
  std::vector<std::string> out = ApplyBoth({E(3, c), E(4, c)});
  CommandResult first = Decoded(out[0]);
  CommandResult retry = Decoded(out[1]);
  EXPECT_EQ(first.statements[0].status.code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.statements[0].status, first.statements[0].status);
}

TEST_F(WriteBudgetTest, AnUnknownOrOutOfRangeSettingIsRefused) {
  std::vector<std::string> out =
      ApplyBoth({SettingEntry(3, "no_such_setting", 5),
                 SettingEntry(4, kSettingVmSteps, 1),
                 core::Entry{1, 5, core::EntryType::kNormal, "set1garbage"}});
  for (const std::string& o : out) {
    EXPECT_EQ(Decoded(o).statements[0].status.code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(a_->write_settings().vm_steps_max, 200'000u);
  EXPECT_EQ(a_->AppliedIndex(), 5u);
}

TEST(WriteSettingsPersist, ASettingSurvivesReopenAndTravelsInSnapshots) {
  TempDir dir;
  const std::string path = dir.File("db.sqlite");
  std::string image;
  {
    auto sm = SqliteStateMachine::Open(SqliteOptions{.path = path});
    ASSERT_TRUE(sm.ok());
    EXPECT_EQ((*sm)->write_settings(), WriteSettings{});
    (*sm)->Apply(SettingEntry(1, kSettingValueBytes, 2 << 20));
    image = *(*sm)->CreateSnapshot();
  }
  auto reopened = SqliteStateMachine::Open(SqliteOptions{.path = path});
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->write_settings().value_bytes_max, 2u << 20);
  auto restored = OpenMemory();
  core::Snapshot snap;
  snap.metadata.index = 1;
  snap.data = image;
  ASSERT_TRUE(restored->Restore(snap).ok());
  EXPECT_EQ(restored->write_settings().value_bytes_max, 2u << 20);
  ApplyOk(*restored, Cmd({S("CREATE TABLE big(v)")}));
  const CommandResult r = ApplyOk(
      *restored, Cmd({S("INSERT INTO big VALUES (zeroblob(3000000))")}));
  EXPECT_FALSE(r.statements[0].status.ok());
}

TEST(SettingChange, EncodesAndDecodes) {
  const SettingChange c{"write_vm_steps_max", 12345, 77};
  EXPECT_EQ(SettingChange::PeekRequestId(c.Encode()), 77u);
  EXPECT_EQ(SettingChange::PeekRequestId("sql1whatever"), 0u);
  auto d = SettingChange::Decode(c.Encode());
  ASSERT_TRUE(d.has_value());
  ASSERT_TRUE(d->ok());
  EXPECT_EQ(**d, c);
  EXPECT_FALSE(SettingChange::Decode(Cmd({S("SELECT 1")}).Encode()));
  auto truncated = SettingChange::Decode(c.Encode().substr(0, 10));
  ASSERT_TRUE(truncated.has_value());
  EXPECT_FALSE(truncated->ok());
}

}  // namespace
}  // namespace raftsql::sm
