#include "core/quorum.h"

#include <limits>

#include "gtest/gtest.h"

namespace raftsql::core {
namespace {

TEST(Quorum, CommittedIndexIsTheMedianOfThree) {
  EXPECT_EQ(CommittedIndex({1, 2, 3}, {{1, 5}, {2, 3}, {3, 1}}), 3u);
  EXPECT_EQ(CommittedIndex({1, 2, 3}, {{1, 5}, {2, 5}, {3, 1}}), 5u);
}

TEST(Quorum, CommittedIndexNeedsAMajorityOfFive) {
  EXPECT_EQ(
      CommittedIndex({1, 2, 3, 4, 5}, {{1, 9}, {2, 8}, {3, 2}, {4, 1}, {5, 1}}),
      2u);
  // Two nodes that never answered count as zero.
  EXPECT_EQ(CommittedIndex({1, 2, 3, 4, 5}, {{1, 9}, {2, 8}, {3, 7}}), 7u);
  EXPECT_EQ(CommittedIndex({1, 2, 3, 4, 5}, {{1, 9}, {2, 8}}), 0u);
}

TEST(Quorum, EmptyConfigurationNeverHoldsCommitBack) {
  EXPECT_EQ(CommittedIndex({}, {}), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(TallyVotes({}, {}), VoteResult::kWon);
}

TEST(Quorum, VotesWinLoseOrWait) {
  EXPECT_EQ(TallyVotes({1, 2, 3}, {{1, true}}), VoteResult::kPending);
  EXPECT_EQ(TallyVotes({1, 2, 3}, {{1, true}, {2, true}}), VoteResult::kWon);
  EXPECT_EQ(TallyVotes({1, 2, 3}, {{1, true}, {2, false}}),
            VoteResult::kPending);
  EXPECT_EQ(TallyVotes({1, 2, 3}, {{1, false}, {2, false}}), VoteResult::kLost);
  // Votes of non-members do not count.
  EXPECT_EQ(TallyVotes({1, 2, 3}, {{1, true}, {7, true}}),
            VoteResult::kPending);
  EXPECT_EQ(TallyVotes({1, 2, 3, 4}, {{1, true}, {2, true}}),
            VoteResult::kPending);
}

}  // namespace
}  // namespace raftsql::core
