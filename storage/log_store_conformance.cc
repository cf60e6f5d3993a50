#include "storage/log_store_conformance.h"

namespace raftsql::storage {
namespace {

using core::Entry;
using core::HardState;
using core::LogWrite;

std::vector<Entry> Ents(uint64_t term, uint64_t first, uint64_t last) {
  std::vector<Entry> out;
  for (uint64_t i = first; i <= last; ++i) {
    out.push_back(
        Entry{term, i, core::EntryType::kNormal, "v" + std::to_string(i)});
  }
  return out;
}

LogWrite Synced(std::vector<Entry> entries, std::optional<HardState> hs = {}) {
  LogWrite w;
  w.entries = std::move(entries);
  w.hard_state = hs;
  w.sync = true;
  return w;
}

}  // namespace

absl::Status LogStoreConformance::Write(core::LogWrite w) {
  absl::Status result = absl::UnknownError("write did not complete");
  h_->store().Submit(std::move(w), [&](absl::Status s) { result = s; });
  h_->Settle();
  return result;
}

TEST_P(LogStoreConformance, StartsEmptyWithTheBootstrapConfiguration) {
  core::LogStore& s = h_->store();
  EXPECT_EQ(s.FirstIndex(), 1u);
  EXPECT_EQ(s.LastIndex(), 0u);
  EXPECT_EQ(s.GetInitialState()->conf_state.voters,
            (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(s.GetInitialState()->hard_state.IsEmpty());
}

TEST_P(LogStoreConformance, AppendedEntriesReadBackInRange) {
  ASSERT_TRUE(Write(Synced(Ents(1, 1, 5))).ok());
  core::LogStore& s = h_->store();
  EXPECT_EQ(s.LastIndex(), 5u);
  absl::StatusOr<std::vector<Entry>> e = s.Entries(2, 5, UINT64_MAX);
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->size(), 3u);
  EXPECT_EQ((*e)[0].data, "v2");
  EXPECT_EQ(*s.Term(5), 1u);
  EXPECT_TRUE(core::IsEntryUnavailable(s.Term(6).status()));
  EXPECT_TRUE(core::IsEntryUnavailable(s.Entries(4, 7, UINT64_MAX).status()));
}

TEST_P(LogStoreConformance, EntriesHonourMaxBytesButReturnAtLeastOne) {
  ASSERT_TRUE(Write(Synced(Ents(1, 1, 10))).ok());
  absl::StatusOr<std::vector<Entry>> one = h_->store().Entries(1, 11, 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  absl::StatusOr<std::vector<Entry>> some = h_->store().Entries(1, 11, 80);
  ASSERT_TRUE(some.ok());
  EXPECT_GT(some->size(), 1u);
  EXPECT_LT(some->size(), 10u);
}

TEST_P(LogStoreConformance, ConflictingAppendTruncatesTheSuffix) {
  ASSERT_TRUE(Write(Synced(Ents(1, 1, 5))).ok());
  ASSERT_TRUE(Write(Synced(Ents(2, 3, 3))).ok());
  EXPECT_EQ(h_->store().LastIndex(), 3u);
  EXPECT_EQ(*h_->store().Term(3), 2u);
  h_->Reopen();
  EXPECT_EQ(h_->store().LastIndex(), 3u);
  EXPECT_EQ(*h_->store().Term(3), 2u);
  EXPECT_EQ(*h_->store().Term(2), 1u);
}

TEST_P(LogStoreConformance, SyncedEntriesAndHardStateSurviveReopen) {
  ASSERT_TRUE(Write(Synced(Ents(3, 1, 4), HardState{3, 2, 4})).ok());
  h_->Reopen();
  core::LogStore& s = h_->store();
  EXPECT_EQ(s.LastIndex(), 4u);
  EXPECT_EQ(s.GetInitialState()->hard_state, (HardState{3, 2, 4}));
  EXPECT_EQ(s.GetInitialState()->conf_state.voters.size(), 3u);
  EXPECT_EQ(s.Entries(4, 5, UINT64_MAX)->at(0).data, "v4");
}

TEST_P(LogStoreConformance, CompactionKeepsTheSnapshotAndTheSuffix) {
  ASSERT_TRUE(Write(Synced(Ents(1, 1, 10))).ok());
  core::Snapshot snap;
  snap.metadata = core::SnapshotMetadata{6, 1, core::ConfState{{1, 2, 3}, {}}};
  snap.data = "image";
  ASSERT_TRUE(h_->store().Compact(snap).ok());
  EXPECT_EQ(h_->store().Compact(snap).code(),
            absl::StatusCode::kFailedPrecondition);
  for (int round = 0; round < 2; ++round) {
    core::LogStore& s = h_->store();
    EXPECT_EQ(s.FirstIndex(), 7u);
    EXPECT_EQ(s.LastIndex(), 10u);
    EXPECT_EQ(*s.Term(6), 1u);  // The snapshot's own term is still known.
    EXPECT_TRUE(core::IsCompacted(s.Term(5).status()));
    EXPECT_TRUE(core::IsCompacted(s.Entries(5, 8, UINT64_MAX).status()));
    EXPECT_EQ(s.GetSnapshot()->data, "image");
    h_->Reopen();
  }
}

TEST_P(LogStoreConformance, InstalledSnapshotReplacesTheLog) {
  ASSERT_TRUE(Write(Synced(Ents(1, 1, 3))).ok());
  LogWrite w;
  w.snapshot =
      core::Snapshot{core::SnapshotMetadata{20, 4, {{1, 2, 3}, {}}}, "img"};
  w.hard_state = HardState{4, 0, 20};
  w.sync = true;
  ASSERT_TRUE(Write(std::move(w)).ok());
  ASSERT_TRUE(Write(Synced(Ents(4, 21, 22))).ok());
  for (int round = 0; round < 2; ++round) {
    core::LogStore& s = h_->store();
    EXPECT_EQ(s.FirstIndex(), 21u);
    EXPECT_EQ(s.LastIndex(), 22u);
    EXPECT_EQ(*s.Term(20), 4u);
    EXPECT_EQ(s.GetSnapshot()->metadata.index, 20u);
    EXPECT_EQ(s.GetInitialState()->hard_state.commit, 20u);
    h_->Reopen();
  }
}

TEST_P(LogStoreConformance, WritesCompleteInSubmissionOrder) {
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) {
    LogWrite w = Synced(Ents(1, i + 1, i + 1));
    w.sync = i % 2 == 0;
    h_->store().Submit(std::move(w), [&order, i](absl::Status s) {
      EXPECT_TRUE(s.ok());
      order.push_back(i);
    });
  }
  h_->Settle();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

}  // namespace raftsql::storage
