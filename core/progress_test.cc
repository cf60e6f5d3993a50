#include "core/progress.h"

#include "gtest/gtest.h"

namespace raftsql::core {
namespace {

TEST(Inflights, FullAtCapacityAndFreedUpToAnIndex) {
  Inflights in(3);
  in.Add(5);
  in.Add(7);
  EXPECT_FALSE(in.Full());
  in.Add(9);
  EXPECT_TRUE(in.Full());
  in.FreeLE(7);
  EXPECT_EQ(in.count(), 1u);
  in.Add(11);
  in.Add(12);  // Wraps around the ring.
  EXPECT_TRUE(in.Full());
  in.FreeLE(100);
  EXPECT_EQ(in.count(), 0u);
}

TEST(Progress, ProbeSendsOneMessageUntilAcknowledged) {
  Progress pr(4);
  pr.next = 5;
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(2, 6);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.next, 5u);  // Probe does not advance optimistically.
  EXPECT_TRUE(pr.MaybeUpdate(6));
  EXPECT_FALSE(pr.IsPaused());
  EXPECT_EQ(pr.next, 7u);
}

TEST(Progress, ReplicatePipelinesUntilInflightsAreFull) {
  Progress pr(2);
  pr.match = 4;
  pr.BecomeReplicate();
  pr.SentEntries(1, 5);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(3, 8);
  EXPECT_EQ(pr.next, 9u);
  EXPECT_TRUE(pr.IsPaused());
  pr.MaybeUpdate(5);
  pr.inflights.FreeLE(5);
  EXPECT_FALSE(pr.IsPaused());
}

TEST(Progress, StaleRejectionInReplicateIsIgnored) {
  Progress pr(4);
  pr.match = 5;
  pr.BecomeReplicate();
  pr.SentEntries(3, 8);
  EXPECT_FALSE(pr.MaybeDecrTo(5, 5));  // At or below match: reordered reply.
  EXPECT_EQ(pr.next, 9u);
  EXPECT_TRUE(pr.MaybeDecrTo(7, 5));
  EXPECT_EQ(pr.next, 6u);
}

TEST(Progress, ProbeRejectionOnlyCountsForTheLatestProbe) {
  Progress pr(4);
  pr.next = 10;
  EXPECT_FALSE(pr.MaybeDecrTo(5, 3));  // Not next-1: stale.
  EXPECT_EQ(pr.next, 10u);
  EXPECT_TRUE(pr.MaybeDecrTo(9, 3));
  EXPECT_EQ(pr.next, 4u);  // Jumps to the follower's hint + 1.
}

TEST(Progress, SnapshotStatePausesAndResumesAfterThePendingIndex) {
  Progress pr(4);
  pr.BecomeSnapshot(20);
  EXPECT_TRUE(pr.IsPaused());
  pr.BecomeProbe();
  EXPECT_EQ(pr.next, 21u);
}

TEST(ProgressTracker, QuorumActiveCountsRecentlyHeardVoters) {
  ProgressTracker t(4);
  t.Configure(ConfState{{1, 2, 3}, {4}}, 1);
  for (auto& [id, pr] : t.progress()) pr.recent_active = false;
  t.Get(1)->recent_active = true;
  t.Get(4)->recent_active = true;  // A learner does not count.
  EXPECT_FALSE(t.QuorumActive());
  t.Get(3)->recent_active = true;
  EXPECT_TRUE(t.QuorumActive());
}

TEST(ProgressTracker, CommittedIgnoresLearners) {
  ProgressTracker t(4);
  t.Configure(ConfState{{1, 2, 3}, {4}}, 1);
  t.Get(1)->match = 10;
  t.Get(4)->match = 10;
  EXPECT_EQ(t.Committed(), 0u);
  t.Get(2)->match = 7;
  EXPECT_EQ(t.Committed(), 7u);
}

}  // namespace
}  // namespace raftsql::core
