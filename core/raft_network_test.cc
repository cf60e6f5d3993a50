// The network boundary: messages that no honest peer sends are refused and
// counted, change nothing, and never reach a CHECK (each test here was a
// remote crash or a forged takeover before the boundary existed).
#include <cstdint>

#include "core/message_validation.h"
#include "core/testing/raft_fixture.h"
#include "gtest/gtest.h"

namespace raftsql::core {
namespace {

using testing::Msg;
using testing::RaftOptions;
using testing::TestRaft;

// A leader of term 1 over {1, 2, 3} whose log holds the term's no-op.
TestRaft Leader() {
  TestRaft r(1, {1, 2, 3});
  r.BecomeLeader();
  return r;
}

// Node 2 following leader 1 in term 2, with entries 1..3 committed.
TestRaft CommittedFollower() {
  TestRaft r(
      2, {1, 2, 3},
      RaftOptions{.log_terms = {1, 1, 2}, .hard_state = HardState{2, 1, 3}});
  Message hb = Msg(MessageType::kHeartbeat, 1, 2, 2);
  hb.commit = 3;
  EXPECT_TRUE(r.StepNetwork(hb).ok());
  r.TakeMessages();
  return r;
}

void ExpectRefused(TestRaft& r, Message m) {
  const uint64_t before = r->invalid_messages();
  const absl::Status s = r.StepNetwork(std::move(m));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(r->invalid_messages(), before + 1);
  EXPECT_TRUE(r.TakeMessages().empty());
}

TEST(NetworkBoundary, ATermThatWouldWrapIsRefusedAndTheLeaderStays) {
  TestRaft r = Leader();
  ExpectRefused(r, Msg(MessageType::kHeartbeatResp, 2, 1, UINT64_MAX));
  ExpectRefused(r, Msg(MessageType::kVote, 2, 1, kMaxTerm));
  EXPECT_EQ(r->state(), StateType::kLeader);
  EXPECT_EQ(r->term(), 1u);
}

TEST(NetworkBoundary, AnAppendRewritingCommittedEntriesIsRefused) {
  TestRaft r = CommittedFollower();
  // Claims to follow entry 3, but numbers its entries from 2: accepted, it
  // would overwrite committed entry 2.
  Message app = Msg(MessageType::kApp, 1, 2, 2);
  app.index = 3;
  app.log_term = 2;
  app.entries = {Entry{2, 2, EntryType::kNormal, "forged"}};
  ExpectRefused(r, app);
  EXPECT_EQ(r->log().LastIndex(), 3u);
  EXPECT_EQ(r->log().ZeroTermOnError(2), 1u);
}

TEST(NetworkBoundary, EntriesOfALaterTermThanTheLeadersAreRefused) {
  TestRaft r = CommittedFollower();
  Message app = Msg(MessageType::kApp, 1, 2, 2);
  app.index = 3;
  app.log_term = 2;
  app.entries = {Entry{9, 4, EntryType::kNormal, "x"}};
  ExpectRefused(r, app);
  EXPECT_EQ(r->log().LastIndex(), 3u);
}

TEST(NetworkBoundary, AnUndecodableMembershipChangeIsNeverLogged) {
  TestRaft r = CommittedFollower();
  Message app = Msg(MessageType::kApp, 1, 2, 2);
  app.index = 3;
  app.log_term = 2;
  app.entries = {Entry{2, 4, EntryType::kConfChange, "garbage"}};
  ExpectRefused(r, app);
  EXPECT_EQ(r->log().LastIndex(), 3u);
}

TEST(NetworkBoundary, ASnapshotChunkBeyondItsSizeIsRefused) {
  TestRaft r = CommittedFollower();
  Message snap = Msg(MessageType::kSnap, 1, 2, 2);
  snap.snapshot = Snapshot{SnapshotMetadata{10, 2, ConfState{{1, 2, 3}, {}}},
                           std::string(100, 'x')};
  snap.snapshot_offset = 0;
  snap.snapshot_size = 10;
  ExpectRefused(r, snap);
  snap.snapshot_size = 100;
  snap.snapshot->metadata.conf_state = ConfState{{1, 2}, {2}};
  ExpectRefused(r, snap);  // Node 2 voter and learner at once.
  EXPECT_EQ(r->log().LastIndex(), 3u);
}

TEST(NetworkBoundary, ASnapshotTheStateMachineRefusesIsNotInstalled) {
  int checked = 0;
  TestRaft r(2, {1, 2, 3},
             RaftOptions{.log_terms = {1, 1, 2},
                         .hard_state = HardState{2, 1, 3},
                         .validate_snapshot = [&checked](const Snapshot& s) {
                           ++checked;
                           return s.data == "good"
                                      ? absl::OkStatus()
                                      : absl::DataLossError("not an image");
                         }});
  Message snap = Msg(MessageType::kSnap, 1, 2, 2);
  snap.snapshot =
      Snapshot{SnapshotMetadata{10, 2, ConfState{{1, 2, 3}, {}}}, "garbage"};
  snap.snapshot_size = 7;
  ASSERT_TRUE(r.StepNetwork(snap).ok());
  EXPECT_EQ(checked, 1);
  EXPECT_EQ(r->invalid_messages(), 1u);
  EXPECT_EQ(r->log().LastIndex(), 3u);  // Log and state kept.
  EXPECT_FALSE(r->log().UnstableSnapshot().has_value());
  std::vector<Message> out = r.TakeMessages();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MessageType::kSnapResp);
  EXPECT_TRUE(out[0].reject);
  EXPECT_EQ(out[0].snapshot_offset, 0u);  // Start over.
  // The same transfer with a good image installs.
  snap.snapshot->data = "good";
  snap.snapshot_size = 4;
  ASSERT_TRUE(r.StepNetwork(snap).ok());
  EXPECT_EQ(r->log().LastIndex(), 10u);
}

TEST(NetworkBoundary, AnAcknowledgementOfEntriesNeverSentIsRefused) {
  TestRaft r = Leader();
  Message resp = Msg(MessageType::kAppResp, 2, 1, 1);
  resp.index = uint64_t{1} << 40;
  ExpectRefused(r, resp);
  EXPECT_EQ(r->tracker().Get(2)->match, 0u);
  EXPECT_EQ(r->log().committed(), 0u);
}

TEST(NetworkBoundary, AHandOverFromANodeThatIsNotTheLeaderIsRefused) {
  TestRaft r = CommittedFollower();
  ExpectRefused(r, Msg(MessageType::kTimeoutNow, 3, 2, 2));
  ExpectRefused(r, Msg(MessageType::kTimeoutNow, 1, 2, 50));
  EXPECT_EQ(r->state(), StateType::kFollower);
  EXPECT_EQ(r->term(), 2u);
  // The leader's own hand-over still works.
  ASSERT_TRUE(r.StepNetwork(Msg(MessageType::kTimeoutNow, 1, 2, 2)).ok());
  EXPECT_EQ(r->state(), StateType::kCandidate);
}

TEST(NetworkBoundary, ASecondLeaderInOneTermIsRefused) {
  TestRaft r = CommittedFollower();
  Message hb = Msg(MessageType::kHeartbeat, 3, 2, 2);
  hb.commit = 3;
  ExpectRefused(r, hb);
  EXPECT_EQ(r->lead(), 1u);
  TestRaft leader = Leader();
  ExpectRefused(leader, Msg(MessageType::kHeartbeat, 2, 1, 1));
  EXPECT_EQ(leader->state(), StateType::kLeader);
}

TEST(NetworkBoundary, AForwardedProposalWithoutEntriesIsRefused) {
  TestRaft r = Leader();
  ExpectRefused(r, Msg(MessageType::kProp, 2, 1, 0));
  Message with_term = Msg(MessageType::kProp, 2, 1, 1);
  with_term.entries = {Entry{}};
  ExpectRefused(r, with_term);
}

TEST(NetworkBoundary, AMessageForAnotherNodeOrFromNobodyIsRefused) {
  TestRaft r = Leader();
  ExpectRefused(r, Msg(MessageType::kHeartbeatResp, 2, 3, 1));
  ExpectRefused(r, Msg(MessageType::kHeartbeatResp, kNone, 1, 1));
  ExpectRefused(r, Msg(MessageType::kHeartbeatResp, 1, 1, 1));
  Message ctx = Msg(MessageType::kHeartbeatResp, 2, 1, 1);
  ctx.context = std::string(kMaxContextBytes + 1, 'c');
  ExpectRefused(r, ctx);
}

TEST(NetworkBoundary, HonestTrafficIsNotCounted) {
  TestRaft r = Leader();
  Message resp = Msg(MessageType::kAppResp, 2, 1, 1);
  resp.index = r->log().LastIndex();
  EXPECT_TRUE(r.StepNetwork(resp).ok());
  EXPECT_EQ(r->invalid_messages(), 0u);
  EXPECT_EQ(r->log().committed(), r->log().LastIndex());
}

TEST(Membership, RemovingTheLastVoterIsRefused) {
  TestRaft r(1, {1});
  r.BecomeLeader();
  Message prop = Msg(MessageType::kProp, 1, kNone, 0);
  prop.entries = {
      Entry{0, 0, EntryType::kConfChange,
            ConfChange{ConfChange::Type::kRemoveNode, 1, ""}.Encode()}};
  const absl::Status s = r.Step(prop);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_EQ(r->tracker().voters().size(), 1u);
}

}  // namespace
}  // namespace raftsql::core
