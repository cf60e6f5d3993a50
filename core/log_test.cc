#include "core/log.h"

#include "core/memory_storage.h"
#include "gtest/gtest.h"

namespace raftsql::core {
namespace {

std::vector<Entry> Ents(std::vector<std::pair<uint64_t, uint64_t>> term_index) {
  std::vector<Entry> out;
  for (auto [term, index] : term_index) {
    out.push_back(Entry{term, index, EntryType::kNormal, ""});
  }
  return out;
}

// Log with terms {1,2,3} at indexes {1,2,3}.
class RaftLogTest : public ::testing::Test {
 protected:
  RaftLogTest() : log_(&storage_, UINT64_MAX) {
    log_.Append(Ents({{1, 1}, {2, 2}, {3, 3}}));
  }
  MemoryStorage storage_;
  RaftLog log_;
};

TEST_F(RaftLogTest, FindConflictReturnsFirstMismatch) {
  EXPECT_EQ(log_.FindConflict({}), 0u);
  EXPECT_EQ(log_.FindConflict(Ents({{2, 2}, {3, 3}})), 0u);
  EXPECT_EQ(log_.FindConflict(Ents({{3, 3}, {4, 4}})), 4u);
  EXPECT_EQ(log_.FindConflict(Ents({{1, 1}, {4, 2}})), 2u);
}

// Raft §5.4.1: compare last terms first, then lengths.
TEST_F(RaftLogTest, IsUpToDateComparesLastTermThenLength) {
  EXPECT_TRUE(log_.IsUpToDate(1, 4));   // Higher last term wins.
  EXPECT_FALSE(log_.IsUpToDate(9, 2));  // Lower last term loses, even longer.
  EXPECT_TRUE(log_.IsUpToDate(3, 3));
  EXPECT_TRUE(log_.IsUpToDate(4, 3));
  EXPECT_FALSE(log_.IsUpToDate(2, 3));
}

// Raft §5.3: an AppendEntries whose previous entry does not match is refused.
TEST_F(RaftLogTest, MaybeAppendRefusesWhenPreviousEntryMismatches) {
  EXPECT_FALSE(log_.MaybeAppend(3, 2, 3, Ents({{4, 4}})).has_value());
  EXPECT_FALSE(log_.MaybeAppend(4, 3, 3, Ents({{4, 5}})).has_value());
  EXPECT_EQ(log_.LastIndex(), 3u);
}

// Raft §5.3: a conflicting suffix is deleted and replaced.
TEST_F(RaftLogTest, MaybeAppendTruncatesConflictingSuffix) {
  std::optional<uint64_t> last = log_.MaybeAppend(1, 1, 2, Ents({{4, 2}}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 2u);
  EXPECT_EQ(log_.LastIndex(), 2u);
  EXPECT_EQ(log_.LastTerm(), 4u);
  EXPECT_EQ(log_.committed(), 2u);
}

TEST_F(RaftLogTest, MaybeAppendCommitsOnlyWhatTheMessageProves) {
  // Leader commit 10, but the message only covers up to index 3.
  ASSERT_TRUE(log_.MaybeAppend(2, 2, 10, Ents({{3, 3}})).has_value());
  EXPECT_EQ(log_.committed(), 3u);
}

TEST_F(RaftLogTest, DuplicateAppendDoesNotTruncateLaterEntries) {
  ASSERT_TRUE(log_.MaybeAppend(1, 1, 0, Ents({{2, 2}})).has_value());
  EXPECT_EQ(log_.LastIndex(), 3u);
}

TEST_F(RaftLogTest, OverwritingACommittedEntryIsABug) {
  log_.CommitTo(2);
  EXPECT_DEATH(log_.MaybeAppend(1, 1, 2, Ents({{9, 2}})), "CHECK failed");
}

// Raft §5.4.2: an entry from an earlier term is not committed by counting.
TEST_F(RaftLogTest, MaybeCommitOnlyCommitsEntriesOfTheGivenTerm) {
  EXPECT_FALSE(log_.MaybeCommit(2, 3));
  EXPECT_EQ(log_.committed(), 0u);
  EXPECT_TRUE(log_.MaybeCommit(3, 3));
  EXPECT_EQ(log_.committed(), 3u);
  EXPECT_FALSE(log_.MaybeCommit(2, 2));  // Commit never goes back.
}

TEST_F(RaftLogTest, FindConflictByTermSkipsWholeTerms) {
  log_.Append(Ents({{5, 4}, {5, 5}, {5, 6}}));
  EXPECT_EQ(log_.FindConflictByTerm(6, 4), std::make_pair(3ul, 3ul));
  EXPECT_EQ(log_.FindConflictByTerm(6, 5), std::make_pair(6ul, 5ul));
  EXPECT_EQ(log_.FindConflictByTerm(6, 0), std::make_pair(0ul, 0ul));
}

TEST_F(RaftLogTest, StableEntriesMoveFromUnstableToStorage) {
  std::vector<Entry> ents = log_.UnstableEntries();
  ASSERT_EQ(ents.size(), 3u);
  storage_.Append(ents);
  log_.StableTo(3, 3);
  EXPECT_TRUE(log_.UnstableEntries().empty());
  EXPECT_EQ(log_.LastIndex(), 3u);
  // A stale StableTo (term changed meanwhile) keeps the unstable entries.
  log_.Append(Ents({{6, 4}}));
  log_.StableTo(4, 5);
  EXPECT_EQ(log_.UnstableEntries().size(), 1u);
}

TEST_F(RaftLogTest, SliceSpansStorageAndUnstableAndHonoursSize) {
  storage_.Append(log_.UnstableEntries());
  log_.StableTo(3, 3);
  log_.Append(Ents({{3, 4}, {3, 5}}));
  absl::StatusOr<std::vector<Entry>> all = log_.Slice(2, 6, UINT64_MAX);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ(all->front().index, 2u);
  EXPECT_EQ(all->back().index, 5u);
  absl::StatusOr<std::vector<Entry>> one = log_.Slice(2, 6, 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);  // Always at least one entry.
}

TEST_F(RaftLogTest, CompactedIndexesReportCompacted) {
  storage_.Append(log_.UnstableEntries());
  log_.StableTo(3, 3);
  ASSERT_TRUE(storage_.CreateSnapshot(2, ConfState{{1}, {}}, "s").ok());
  ASSERT_TRUE(storage_.Compact(2).ok());
  EXPECT_TRUE(IsCompacted(log_.Term(1).status()));
  EXPECT_EQ(*log_.Term(2), 2u);  // The snapshot's own term is still known.
  EXPECT_TRUE(IsCompacted(log_.Slice(1, 3, UINT64_MAX).status()));
  EXPECT_TRUE(IsEntryUnavailable(log_.Term(4).status()));
}

TEST(MemoryStorage, AppendTruncatesAndSkipsCompacted) {
  MemoryStorage s;
  s.Append(Ents({{1, 1}, {1, 2}, {1, 3}}));
  s.Append(Ents({{2, 2}}));
  EXPECT_EQ(s.LastIndex(), 2u);
  EXPECT_EQ(*s.Term(2), 2u);
  ASSERT_TRUE(s.CreateSnapshot(2, ConfState{{1}, {}}, "").ok());
  ASSERT_TRUE(s.Compact(2).ok());
  s.Append(Ents({{2, 1}, {2, 2}, {2, 3}}));
  EXPECT_EQ(s.FirstIndex(), 3u);
  EXPECT_EQ(s.LastIndex(), 3u);
}

}  // namespace
}  // namespace raftsql::core
