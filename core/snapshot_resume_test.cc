// Which chunks continue an image being received: only the same sender's in
// the same term. A node that restarts recovers its database and applies
// its log again, so its image at the same index may differ byte for byte
// from the one it sent before (sim seed 7029 with an edge upload worded
// otherwise: a follower joined the restarted leader's chunks to the ones
// it held from before the crash, and the image's checksum caught it).
#include <string>
#include <vector>

#include "core/testing/fake_sink.h"
#include "core/testing/raft_fixture.h"
#include "gtest/gtest.h"

namespace raftsql::core {
namespace {

using testing::FakeSink;
using testing::Msg;
using testing::RaftOptions;
using testing::TestRaft;

const SnapshotMetadata kMeta{10, 2, ConfState{{1, 2, 3}, {}}};

// Node 2 following leader 1 in term 2, with entries 1..3 committed.
TestRaft Follower(SnapshotSink* sink) {
  return TestRaft(2, {1, 2, 3},
                  RaftOptions{.log_terms = {1, 1, 2},
                              .hard_state = HardState{2, 1, 3},
                              .snapshot_sink = sink});
}

// A chunk of node 1's 8-byte image at kMeta, sent in `term`.
Message Chunk(uint64_t term, uint64_t offset, std::string data) {
  Message m = Msg(MessageType::kSnap, 1, 2, term);
  m.snapshot = Snapshot{kMeta, std::move(data)};
  m.snapshot_offset = offset;
  m.snapshot_size = 8;
  return m;
}

// The one answer `r` sent to a chunk.
Message Answer(TestRaft& r) {
  std::vector<Message> out = r.TakeMessages();
  EXPECT_EQ(out.size(), 1u);
  return out.empty() ? Message{} : out[0];
}

TEST(SnapshotResume, ARestartedLeadersImageIsReceivedFromItsStart) {
  TestRaft r = Follower(nullptr);
  ASSERT_TRUE(r.StepNetwork(Chunk(2, 0, "aaaa")).ok());
  EXPECT_EQ(Answer(r).snapshot_offset, 4u);
  // Node 1 crashed and leads again in term 3: its image differs.
  ASSERT_TRUE(r.StepNetwork(Chunk(3, 0, "bbbb")).ok());
  EXPECT_EQ(Answer(r).snapshot_offset, 4u);
  ASSERT_TRUE(r.StepNetwork(Chunk(3, 4, "bbbb")).ok());
  ASSERT_TRUE(r->log().UnstableSnapshot().has_value());
  EXPECT_EQ(r->log().UnstableSnapshot()->data, "bbbbbbbb");
}

TEST(SnapshotResume, ASinkReceivesARestartedLeadersImageFromItsStart) {
  FakeSink sink;
  TestRaft r = Follower(&sink);
  ASSERT_TRUE(r.StepNetwork(Chunk(2, 0, "aaaa")).ok());
  EXPECT_EQ(Answer(r).snapshot_offset, 4u);
  ASSERT_TRUE(r.StepNetwork(Chunk(3, 0, "bbbb")).ok());
  EXPECT_EQ(Answer(r).snapshot_offset, 4u);
  ASSERT_TRUE(r.StepNetwork(Chunk(3, 4, "bbbb")).ok());
  r.TakeMessages();  // "Checking": asked again.
  r->SnapshotSinkProgressed();
  EXPECT_EQ(sink.begins, 2);
  EXPECT_EQ(sink.installed, "bbbbbbbb");
  EXPECT_EQ(r->invalid_messages(), 0u);
}

TEST(SnapshotResume, ANewTransfersLaterChunkFirstIsAnsweredWithNothingHeld) {
  FakeSink sink;
  TestRaft r = Follower(&sink);
  ASSERT_TRUE(r.StepNetwork(Chunk(2, 0, "aaaa")).ok());
  r.TakeMessages();
  // The new term's first chunk was lost: its second arrives first. The
  // sender must hear 0, not the 4 bytes held of the other image (it would
  // send on from 4, and be refused again).
  ASSERT_TRUE(r.StepNetwork(Chunk(3, 4, "bbbb")).ok());
  const Message answer = Answer(r);
  EXPECT_TRUE(answer.reject);
  EXPECT_EQ(answer.snapshot_offset, 0u);
  ASSERT_TRUE(r.StepNetwork(Chunk(3, 0, "bbbb")).ok());
  ASSERT_TRUE(r.StepNetwork(Chunk(3, 4, "bbbb")).ok());
  r.TakeMessages();
  r->SnapshotSinkProgressed();
  EXPECT_EQ(sink.installed, "bbbbbbbb");
}

TEST(SnapshotResume,
     AnImageTakenWholeInAnEarlierTermIsFinishedNotReceivedAgain) {
  FakeSink sink;
  TestRaft r = Follower(&sink);
  ASSERT_TRUE(r.StepNetwork(Chunk(2, 0, "aaaa")).ok());
  ASSERT_TRUE(r.StepNetwork(Chunk(2, 4, "aaaa")).ok());
  r.TakeMessages();  // Taken whole; "checking".
  // The sender leads again in term 3 and starts over: the image it sent
  // whole in term 2 is consistent in itself, and is being checked.
  ASSERT_TRUE(r.StepNetwork(Chunk(3, 0, "bbbb")).ok());
  r.TakeMessages();
  r->SnapshotSinkProgressed();
  EXPECT_EQ(sink.begins, 1);
  EXPECT_EQ(sink.installed, "aaaaaaaa");
  EXPECT_EQ(r->invalid_messages(), 0u);
}

}  // namespace
}  // namespace raftsql::core
