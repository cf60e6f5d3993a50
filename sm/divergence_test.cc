// Divergence: replicas keep their hash at checkpoints, equal whatever their
// batches; a replica outvoted at a checkpoint stops serving reads.
#include "sm/divergence.h"

#include "gtest/gtest.h"
#include "sm/sqlite_state_machine.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

using Peers = std::map<uint64_t, std::vector<Checkpoint>>;

TEST(Decide, TheMinorityHasDivergedAndAMajorityHasNot) {
  const std::vector<Checkpoint> a = {{10, 1}, {20, 2}};
  const std::vector<Checkpoint> b = {{10, 1}, {20, 9}};
  EXPECT_FALSE(Decide(a, {{2, a}, {3, a}}, 3).diverged);
  const DivergenceVerdict outvoted = Decide(b, {{2, a}, {3, a}}, 3);
  EXPECT_TRUE(outvoted.diverged);
  EXPECT_EQ(outvoted.index, 20u);
  EXPECT_NE(outvoted.reason.find("node 2 has 2"), std::string::npos)
      << outvoted.reason;
  EXPECT_FALSE(Decide(a, {{2, a}, {3, b}}, 3).diverged);  // Node 3 is odd.
  // Two replicas that disagree: neither can be trusted.
  EXPECT_TRUE(Decide(a, {{2, b}}, 2).diverged);
  EXPECT_TRUE(Decide(b, {{2, a}}, 2).diverged);
  // Three, all different: none can.
  const std::vector<Checkpoint> c = {{20, 5}};
  EXPECT_TRUE(Decide(a, {{2, b}, {3, c}}, 3).diverged);
}

TEST(Decide, APeerThatHasNotSpokenIsNoVoteAgainst) {
  // Found by verify_divergence: with node 2 not yet at the checkpoint (or
  // not answering), healthy node 1 and diverged node 3 were one against
  // one, and node 1 concluded it had diverged.
  const std::vector<Checkpoint> a = {{40, 1}};
  const std::vector<Checkpoint> b = {{40, 9}};
  EXPECT_FALSE(Decide(a, {{3, b}}, 3).diverged);
  EXPECT_FALSE(Decide(a, {{2, {{30, 7}}}, {3, b}}, 3).diverged);  // Behind.
  EXPECT_TRUE(Decide(b, {{1, a}, {2, a}}, 3).diverged);
  EXPECT_TRUE(Decide(a, {{2, b}, {3, b}}, 3).diverged);
}

TEST(Decide, OnlyACheckpointBothHoldIsCompared) {
  const std::vector<Checkpoint> mine = {{10, 1}, {20, 2}, {30, 3}};
  // The peer is behind (holds 10 and 20 only) and agrees there.
  EXPECT_FALSE(Decide(mine, {{2, {{10, 1}, {20, 2}}}}, 2).diverged);
  EXPECT_EQ(Decide(mine, {{2, {{10, 1}, {20, 2}}}}, 2).index, 20u);
  // Nothing in common: nothing to conclude.
  const DivergenceVerdict none = Decide(mine, {{2, {{40, 7}}}}, 2);
  EXPECT_FALSE(none.diverged);
  EXPECT_EQ(none.index, 0u);
  EXPECT_FALSE(Decide({}, {{2, mine}}, 2).diverged);
}

TEST(CheckpointLog, KeepsTheRecentCommittedOnes) {
  CheckpointLog log(10);
  log.Record(5, 1);  // Not a checkpoint.
  log.Record(10, 1);
  log.Abandon();  // Its batch rolled back.
  EXPECT_TRUE(log.Checkpoints().empty());
  for (uint64_t i = 1; i <= CheckpointLog::kMaxCheckpoints + 5; ++i) {
    log.Record(i * 10, i);
    log.CheckInvariants();
    log.Commit();
    log.CheckInvariants();
  }
  const std::vector<Checkpoint> kept = log.Checkpoints();
  ASSERT_EQ(kept.size(), CheckpointLog::kMaxCheckpoints);
  EXPECT_EQ(kept.front().index, 60u);
  EXPECT_EQ(kept.back().hash, CheckpointLog::kMaxCheckpoints + 5);
}

TEST(Divergence, ReplicasThatBatchDifferentlyHoldTheSameCheckpoints) {
  std::vector<core::Entry> log;
  log.push_back(E(1, Cmd({S("CREATE TABLE t(v)")})));
  for (uint64_t i = 2; i <= 40; ++i) {
    log.push_back(E(i, Cmd({S("INSERT INTO t VALUES (?)",
                              {Value::Integer(static_cast<int64_t>(i))})})));
  }
  auto a = SqliteStateMachine::Open(
      SqliteOptions{.divergence_checkpoint_entries = 8});
  auto b = SqliteStateMachine::Open(
      SqliteOptions{.divergence_checkpoint_entries = 8});
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->ApplyBatch(log);
  for (const core::Entry& e : log) (*b)->Apply(e);
  const std::vector<Checkpoint> ca = (*a)->Checkpoints();
  ASSERT_EQ(ca.size(), 5u);  // 8, 16, 24, 32, 40.
  EXPECT_EQ(ca, (*b)->Checkpoints());
  EXPECT_FALSE(Decide(ca, {{2, (*b)->Checkpoints()}}, 2).diverged);
}

TEST(Divergence, ADivergedReplicaRefusesReads) {
  auto sm = OpenMemory();
  ApplyOk(*sm, Cmd({S("CREATE TABLE t(v)")}));
  EXPECT_TRUE(sm->Query(S("SELECT 1")).ok());
  sm->MarkDiverged("at index 10 this replica's hash is 1 but node 2 has 2");
  const absl::Status read = sm->Query(S("SELECT 1")).status();
  EXPECT_TRUE(absl::IsUnavailable(read)) << read;
  EXPECT_NE(read.message().find("read from another node"),
            absl::string_view::npos);
  EXPECT_TRUE(absl::IsUnavailable(sm->GetVersion("t").status()));
  EXPECT_NE(sm->divergence(), "");
}

}  // namespace
}  // namespace raftsql::sm
