#include "core/raw_node.h"

#include "core/memory_storage.h"
#include "gtest/gtest.h"

namespace raftsql::core {
namespace {

Config TestConfig(const MemoryStorage* storage) {
  Config c;
  c.id = 1;
  c.storage = storage;
  return c;
}

TEST(RawNode, ReadyCarriesStateToPersistAndEntriesToApply) {
  MemoryStorage storage;
  storage.SetConfState(ConfState{{1}, {}});
  RawNode node(TestConfig(&storage));
  ASSERT_TRUE(node.Campaign().ok());
  ASSERT_TRUE(node.HasReady());
  Ready rd = node.GetReady();
  ASSERT_TRUE(rd.soft_state.has_value());
  EXPECT_EQ(rd.soft_state->state, StateType::kLeader);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term, 1u);
  EXPECT_EQ(rd.hard_state->vote, 1u);
  EXPECT_TRUE(rd.must_sync);
  ASSERT_EQ(rd.entries.size(), 1u);  // The leader's no-op.
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  storage.Append(rd.entries);
  storage.SetHardState(*rd.hard_state);
  node.Advance();
  EXPECT_FALSE(node.HasReady());
  ASSERT_TRUE(node.Propose("cmd").ok());
  rd = node.GetReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.entries[0].data, "cmd");
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  EXPECT_EQ(rd.committed_entries[0].data, "cmd");
  storage.Append(rd.entries);
  node.Advance();
  EXPECT_EQ(node.GetStatus().applied, 2u);
}

TEST(RawNode, CommitOnlyChangeNeedsNoSync) {
  MemoryStorage storage;
  storage.SetConfState(ConfState{{1, 2}, {}});
  RawNode node(TestConfig(&storage));
  Message app;
  app.type = MessageType::kApp;
  app.from = 2;
  app.to = 1;
  app.term = 1;
  app.entries.push_back(Entry{1, 1, EntryType::kNormal, "a"});
  ASSERT_TRUE(node.Step(app).ok());
  Ready rd = node.GetReady();
  EXPECT_TRUE(rd.must_sync);
  storage.Append(rd.entries);
  storage.SetHardState(*rd.hard_state);
  node.Advance();
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.from = 2;
  hb.to = 1;
  hb.term = 1;
  hb.commit = 1;
  ASSERT_TRUE(node.Step(hb).ok());
  rd = node.GetReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->commit, 1u);
  EXPECT_FALSE(rd.must_sync);
  node.Advance();
}

TEST(RawNode, GetReadyTwiceWithoutAdvanceIsABug) {
  MemoryStorage storage;
  storage.SetConfState(ConfState{{1}, {}});
  RawNode node(TestConfig(&storage));
  ASSERT_TRUE(node.Campaign().ok());
  node.GetReady();
  EXPECT_DEATH(node.GetReady(), "CHECK failed");
}

TEST(RawNode, LocalMessageTypesFromTheNetworkAreRefused) {
  MemoryStorage storage;
  storage.SetConfState(ConfState{{1, 2}, {}});
  RawNode node(TestConfig(&storage));
  Message hup;
  hup.type = MessageType::kHup;
  hup.from = 2;
  EXPECT_EQ(node.Step(hup).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RawNode, RestartRecoversTermVoteAndCommitFromStorage) {
  MemoryStorage storage;
  storage.SetConfState(ConfState{{1, 2, 3}, {}});
  storage.Append({Entry{3, 1, EntryType::kNormal, "a"},
                  Entry{3, 2, EntryType::kNormal, "b"}});
  storage.SetHardState(HardState{4, 2, 2});
  Config c = TestConfig(&storage);
  c.applied = 1;
  RawNode node(c);
  EXPECT_EQ(node.raft().term(), 4u);
  EXPECT_EQ(node.raft().vote(), 2u);
  Ready rd = node.GetReady();
  // Only the entry after `applied` is handed out again.
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  EXPECT_EQ(rd.committed_entries[0].data, "b");
  node.Advance();
}

TEST(ConfChange, EncodingRoundTripsAndRejectsGarbage) {
  ConfChange cc{ConfChange::Type::kAddLearner, 42, "127.0.0.1:7000"};
  EXPECT_EQ(ConfChange::Decode(cc.Encode()), cc);
  EXPECT_FALSE(ConfChange::Decode("").has_value());
  EXPECT_FALSE(ConfChange::Decode("9:1:").has_value());
  EXPECT_FALSE(ConfChange::Decode("0:x:").has_value());
  EXPECT_FALSE(ConfChange::Decode("0:0:").has_value());
}

}  // namespace
}  // namespace raftsql::core
