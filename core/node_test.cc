#include "core/node.h"

#include <algorithm>
#include <memory>

#include "core/memory_storage.h"
#include "core/testing/memory_log_store.h"
#include "gtest/gtest.h"

namespace raftsql::core {
namespace {

using testing::MemoryLogStore;

class CountingMachine final : public StateMachine {
 public:
  std::string Apply(const Entry& e) override {
    applied = e.index;
    ++applies;
    return "ok";
  }
  absl::Status Restore(const Snapshot& s) override {
    applied = s.metadata.index;
    ++restores;
    return absl::OkStatus();
  }
  uint64_t AppliedIndex() const override { return applied; }
  absl::StatusOr<std::string> SnapshotData() override {
    ++copies;
    return "image";
  }
  SnapshotSource* snapshot_source() override { return source; }
  absl::Status Sync() override {
    ++syncs;
    if (sync_status.ok()) durable = applied;
    return sync_status;
  }
  void RequestSync() override {
    ++sync_requests;
    sync_wanted = applied;
  }
  absl::StatusOr<uint64_t> DurableIndex() override {
    if (!sync_later) return StateMachine::DurableIndex();
    if (!sync_status.ok()) return sync_status;
    return durable;
  }
  // The sync RequestSync asked for is done.
  void FinishSync() { durable = sync_wanted; }
  void OnTick() override { ++ticks; }
  bool ApplyPaused() const override { return paused; }

  uint64_t applied = 0;
  int applies = 0;
  int restores = 0;
  int copies = 0;
  int syncs = 0;
  int ticks = 0;
  absl::Status sync_status;
  SnapshotSource* source = nullptr;  // Set: a durable state machine.
  // Syncs only when the test says (FinishSync), as one with a thread.
  bool sync_later = false;
  uint64_t durable = 0;
  uint64_t sync_wanted = 0;
  int sync_requests = 0;
  bool paused = false;
};

class NoImages final : public SnapshotSource {
 public:
  void Release() override { ++releases; }
  int releases = 0;
  void Request(const SnapshotMetadata&) override {}
  absl::StatusOr<ImageInfo> Latest() const override {
    return absl::UnavailableError("none");
  }
  absl::StatusOr<std::string> Read(uint64_t, uint64_t,
                                   uint64_t) const override {
    return absl::NotFoundError("none");
  }
};

class NullTransport final : public Transport {
 public:
  void Send(Message m) override {
    ++sent;
    types.push_back(m.type);
  }
  int sent = 0;
  std::vector<MessageType> types;
};

NodeOptions Options(MemoryLogStore& store, CountingMachine& sm,
                    NullTransport& net) {
  NodeOptions o;
  o.raft.id = 1;
  o.raft.storage = &store;
  o.log_store = &store;
  o.state_machine = &sm;
  o.transport = &net;
  return o;
}

// Leader 2, at term 3, sends node 1 (of voters 1 and 2) an image of the
// state at `index`, an entry of `term`.
Message SnapshotFromNode2(uint64_t index, uint64_t term) {
  Message snap;
  snap.type = MessageType::kSnap;
  snap.from = 2;
  snap.to = 1;
  snap.term = 3;
  snap.snapshot =
      Snapshot{SnapshotMetadata{index, term, ConfState{{1, 2}, {}}}, "image"};
  snap.snapshot_size = 5;
  return snap;
}

TEST(Node, ARestoredSnapshotIsReportedWithItsIndexAndTerm) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1, 2}, {}});
  CountingMachine sm;
  NullTransport net;
  std::vector<SnapshotMetadata> restored;
  NodeObserver observer;
  observer.on_restore = [&restored](const SnapshotMetadata& m) {
    restored.push_back(m);
  };
  Node node(Options(store, sm, net), observer);
  node.Step(SnapshotFromNode2(/*index=*/10, /*term=*/2));
  EXPECT_EQ(sm.restores, 1);
  ASSERT_EQ(restored.size(), 1u);
  EXPECT_EQ(restored[0].index, 10u);
  EXPECT_EQ(restored[0].term, 2u);
}

TEST(Node, TheStateMachineIsToldOfEveryTick) {
  MemoryLogStore store;
  CountingMachine sm;
  NullTransport net;
  Node node(Options(store, sm, net), {});
  for (int i = 0; i < 3; ++i) node.Tick();
  EXPECT_EQ(sm.ticks, 3);
}

TEST(Node, CompactsTheLogAfterThresholdEntries) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  CountingMachine sm;
  NullTransport net;
  NodeOptions o = Options(store, sm, net);
  o.snapshot_threshold_entries = 10;
  Node node(o, {});
  node.Campaign();
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(node.Propose("x").ok());
  EXPECT_EQ(sm.applied, 26u);
  EXPECT_EQ(node.snapshots_taken(), 2u);
  EXPECT_GT(store.FirstIndex(), 20u);
  EXPECT_EQ(store.GetSnapshot()->data, "image");
}

TEST(Node, DurableStateMachineCompactsAfterSyncWithoutACopy) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  CountingMachine sm;
  NoImages images;
  sm.source = &images;
  NullTransport net;
  NodeOptions o = Options(store, sm, net);
  o.snapshot_threshold_entries = 10;
  Node node(o, {});
  node.Campaign();
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(node.Propose("x").ok());
  EXPECT_EQ(node.snapshots_taken(), 2u);
  EXPECT_EQ(sm.syncs, 2);
  EXPECT_EQ(sm.copies, 0);
  EXPECT_GT(store.FirstIndex(), 20u);
  EXPECT_EQ(store.GetSnapshot()->data, "");
}

// A single voter's durable state machine that syncs when told.
struct SyncsLater {
  SyncsLater() {
    store.mem.SetConfState(ConfState{{1}, {}});
    sm.source = &images;
    sm.sync_later = true;
  }
  NodeOptions Options(uint64_t threshold) {
    NodeOptions o = core::Options(store, sm, net);
    o.snapshot_threshold_entries = threshold;
    return o;
  }
  MemoryLogStore store;
  CountingMachine sm;
  NoImages images;
  NullTransport net;
};

TEST(Node, ADurableStateMachineThatSyncsLaterIsCompactedUpToWhatItSynced) {
  SyncsLater c;
  CountingMachine& sm = c.sm;
  Node node(c.Options(10), {});
  node.Campaign();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(node.Propose("x").ok());
  ASSERT_EQ(sm.sync_requests, 1);
  const uint64_t asked = sm.sync_wanted;
  EXPECT_GE(asked, 11u);
  // Batches applied while the sync runs neither compact nor move the
  // index the compaction waits for (a sync chasing the applied index
  // would never catch it).
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(node.Propose("x").ok());
  node.Tick();
  EXPECT_EQ(sm.sync_requests, 1);
  EXPECT_EQ(node.snapshots_taken(), 0u);
  EXPECT_EQ(c.store.FirstIndex(), 1u);
  // Done: the next tick compacts up to the index asked, not beyond.
  sm.FinishSync();
  node.Tick();
  EXPECT_EQ(node.snapshots_taken(), 1u);
  EXPECT_EQ(c.store.FirstIndex(), asked + 1);
  EXPECT_EQ(sm.syncs, 0);  // Never on the loop.
  EXPECT_EQ(sm.copies, 0);
  // The entries applied meanwhile count towards the next one.
  ASSERT_TRUE(node.Propose("x").ok());
  EXPECT_EQ(sm.sync_requests, 2);
}

TEST(Node, ASyncThatFailsLaterStopsTheNodeAndKeepsTheLog) {
  SyncsLater c;
  CountingMachine& sm = c.sm;
  absl::Status fatal;
  Node node(c.Options(5),
            {.on_fatal = [&](const absl::Status& s) { fatal = s; }});
  node.Campaign();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(node.Propose("x").ok());
  ASSERT_EQ(sm.sync_requests, 1);
  sm.sync_status = absl::DataLossError("fsync failed");
  node.Tick();
  EXPECT_TRUE(node.stopped());
  EXPECT_TRUE(absl::IsDataLoss(fatal)) << fatal;
  EXPECT_EQ(c.store.FirstIndex(), 1u);
}

// Learner `from` (2 unless said) answers leader 1: it holds the log up to
// `index`.
void Acknowledge(Node& node, uint64_t index, uint64_t from = 2) {
  Message m;
  m.type = MessageType::kAppResp;
  m.from = from;
  m.to = 1;
  m.term = node.raw().raft().term();
  m.index = index;
  node.Step(m);
}

// A durable state machine led by node 1, with learner 2.
struct DurableWithALearner {
  DurableWithALearner() {
    store.mem.SetConfState(ConfState{{1}, {2}});
    sm.source = &images;
  }
  NodeOptions Options(uint64_t threshold, uint64_t keep) {
    NodeOptions o = core::Options(store, sm, net);
    o.snapshot_threshold_entries = threshold;
    o.compaction_keeps_entries = keep;
    return o;
  }
  // A node on this store and state machine (again: a restart), leading.
  std::unique_ptr<Node> Lead(const NodeOptions& o) {
    auto node = std::make_unique<Node>(o, NodeObserver{});
    node->Campaign();
    return node;
  }
  MemoryLogStore store;
  CountingMachine sm;
  NoImages images;
  NullTransport net;
};

TEST(Node, ALeaderKeepsTheEntriesAnAnsweringFollowerLacks) {
  DurableWithALearner c;
  std::unique_ptr<Node> node = c.Lead(c.Options(10, 100));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(node->Propose("x").ok());
  Acknowledge(*node, 5);
  for (int i = 0; i < 26; ++i) ASSERT_TRUE(node->Propose("x").ok());
  ASSERT_EQ(c.sm.applied, 31u);
  // Compacted only up to what the learner holds: it catches up from here.
  EXPECT_EQ(c.store.GetSnapshot()->metadata.index, 5u);
  EXPECT_EQ(c.store.FirstIndex(), 6u);
  Acknowledge(*node, 31);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(node->Propose("x").ok());
  EXPECT_EQ(c.store.GetSnapshot()->metadata.index, 31u);
}

TEST(Node, AFollowerThatDoesNotAnswerHoldsNoEntries) {
  DurableWithALearner c;
  std::unique_ptr<Node> node = c.Lead(c.Options(10, 100));
  // The learner never answers.
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(node->Propose("x").ok());
  EXPECT_GE(c.store.GetSnapshot()->metadata.index, 21u);
}

TEST(Node, TheEntriesALeaderKeepsAreBoundedInCountAndBytes) {
  DurableWithALearner c;
  NodeOptions o = c.Options(1, 5);
  std::unique_ptr<Node> node = c.Lead(o);
  Acknowledge(*node, 1);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(node->Propose("x").ok());
  EXPECT_EQ(c.store.GetSnapshot()->metadata.index, c.sm.applied - 5);
  const std::string entry(1000, 'x');
  o.compaction_keeps_bytes = 3 * (entry.size() + 24);  // Three entries.
  o.compaction_keeps_entries = 100;
  node = c.Lead(o);  // A restart.
  Acknowledge(*node, 1);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(node->Propose(entry).ok());
  EXPECT_EQ(c.store.GetSnapshot()->metadata.index, c.sm.applied - 3);
  node->CompactNow();  // Keeps nothing: explicit.
  EXPECT_EQ(c.store.GetSnapshot()->metadata.index, c.sm.applied);
}

TEST(Node, ACompactionBelowTheAppliedIndexRecordsTheMembershipThen) {
  DurableWithALearner c;
  const NodeOptions o = c.Options(8, 100);
  std::unique_ptr<Node> node = c.Lead(o);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(node->Propose("x").ok());
  Acknowledge(*node, 3);
  ASSERT_TRUE(
      node->ProposeConfChange(ConfChange{ConfChange::Type::kAddLearner, 3, ""})
          .ok());
  const uint64_t change = c.sm.applied;  // 6
  Acknowledge(*node, 3, /*from=*/3);     // The new learner is as far as 2.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(node->Propose("x").ok());
  // Compacted at 3, where learner 2 stands, before the change: the
  // membership recorded is 3's.
  ASSERT_EQ(c.store.GetSnapshot()->metadata.index, 3u);
  EXPECT_EQ(c.store.GetSnapshot()->metadata.conf_state.learners,
            std::vector<uint64_t>{2});
  // A restart replays the change from the kept entries.
  node = std::make_unique<Node>(o, NodeObserver{});
  EXPECT_EQ(node->raw().raft().tracker().GetConfState().learners,
            (std::vector<uint64_t>{2, 3}));
  node->Campaign();
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(node->Propose("x").ok());
  ASSERT_GT(c.store.GetSnapshot()->metadata.index, change);
  EXPECT_EQ(c.store.GetSnapshot()->metadata.conf_state.learners,
            (std::vector<uint64_t>{2, 3}));
}

TEST(Node, AnImageNobodyNeedsIsReleasedOnceAfterItsTicks) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  CountingMachine sm;
  NoImages images;
  sm.source = &images;
  NullTransport net;
  NodeOptions o = Options(store, sm, net);
  o.release_image_after_ticks = 5;
  Node node(o, {});
  for (int i = 0; i < 4; ++i) node.Tick();
  EXPECT_EQ(images.releases, 0);
  for (int i = 0; i < 20; ++i) node.Tick();
  EXPECT_EQ(images.releases, 1);
}

TEST(Node, AFailedSyncStopsTheNodeAndKeepsTheLog) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  CountingMachine sm;
  NoImages images;
  sm.source = &images;
  sm.sync_status = absl::DataLossError("fsync failed");
  NullTransport net;
  NodeOptions o = Options(store, sm, net);
  o.snapshot_threshold_entries = 5;
  absl::Status fatal;
  Node node(o, {.on_fatal = [&](const absl::Status& s) { fatal = s; }});
  node.Campaign();
  for (int i = 0; i < 10 && !node.stopped(); ++i) (void)node.Propose("x");
  EXPECT_TRUE(node.stopped());
  EXPECT_TRUE(absl::IsDataLoss(fatal)) << fatal;
  EXPECT_EQ(store.FirstIndex(), 1u);
}

TEST(NodeDeathTest, ADurableStateMachineBehindItsOwnCompactionDoesNotStart) {
  MemoryLogStore store;
  store.mem.Append({Entry{1, 1, EntryType::kNormal, ""},
                    Entry{1, 2, EntryType::kNormal, "x"}});
  ASSERT_TRUE(store.mem.CreateSnapshot(2, ConfState{{1}, {}}, "").ok());
  ASSERT_TRUE(store.mem.Compact(2).ok());
  CountingMachine sm;  // At 0: its files lost what the log dropped.
  NoImages images;
  sm.source = &images;
  NullTransport net;
  EXPECT_DEATH(Node(Options(store, sm, net), {}),
               "files are at index 0 but the log was compacted up to 2");
  // A runtime asks first and reports it instead.
  const absl::Status s = PrepareStateMachine(store, sm);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_NE(s.message().find("compacted up to 2"), absl::string_view::npos);
}

TEST(Node, CompactsTheLogAfterThresholdBytes) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  CountingMachine sm;
  NullTransport net;
  NodeOptions o = Options(store, sm, net);
  o.snapshot_threshold_bytes = 1000;
  Node node(o, {});
  node.Campaign();
  ASSERT_TRUE(node.Propose(std::string(400, 'a')).ok());
  EXPECT_EQ(node.snapshots_taken(), 0u);
  ASSERT_TRUE(node.Propose(std::string(700, 'b')).ok());
  EXPECT_EQ(node.snapshots_taken(), 1u);
}

TEST(Node, DurableStateMachineIsNotReappliedButItsConfChangesAre) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1, 2, 3}, {}});
  store.mem.Append(
      {Entry{1, 1, EntryType::kNormal, ""},
       Entry{1, 2, EntryType::kConfChange,
             ConfChange{ConfChange::Type::kAddVoter, 4, ""}.Encode()},
       Entry{1, 3, EntryType::kNormal, "x"}});
  store.mem.SetHardState(HardState{1, 1, 3});
  CountingMachine sm;
  sm.applied = 3;  // It stored its applied index with the effects.
  NullTransport net;
  Node node(Options(store, sm, net), {});
  EXPECT_EQ(sm.applies, 0);
  EXPECT_TRUE(node.raw().raft().tracker().IsVoter(4));
}

TEST(Node, DurableStateMachineAheadOfTheStoredCommitIndexStarts) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  store.mem.Append({Entry{1, 1, EntryType::kNormal, ""},
                    Entry{1, 2, EntryType::kNormal, "x"},
                    Entry{1, 3, EntryType::kNormal, "y"}});
  // The commit index on disk lags: its last update was not fsynced.
  store.mem.SetHardState(HardState{1, 1, 1});
  CountingMachine sm;
  sm.applied = 3;  // But the state machine had applied (and stored) 3.
  NullTransport net;
  Node node(Options(store, sm, net), {});
  EXPECT_EQ(node.raw().raft().log().committed(), 3u);
  EXPECT_EQ(sm.applies, 0);
  node.Campaign();
  ASSERT_TRUE(node.Propose("z").ok());
  EXPECT_EQ(sm.applied, 5u);  // The new leader's no-op, then "z".
}

TEST(Node, VolatileStateMachineStartsFromTheStoresSnapshot) {
  MemoryLogStore store;
  store.mem.Append({Entry{1, 1, EntryType::kNormal, ""},
                    Entry{1, 2, EntryType::kNormal, "x"}});
  ASSERT_TRUE(store.mem.CreateSnapshot(2, ConfState{{1}, {}}, "img").ok());
  ASSERT_TRUE(store.mem.Compact(2).ok());
  store.mem.SetHardState(HardState{1, 1, 2});
  CountingMachine sm;
  NullTransport net;
  Node node(Options(store, sm, net), {});
  EXPECT_EQ(sm.restores, 1);
  EXPECT_EQ(sm.applied, 2u);
}

TEST(Node, HeldProposalsArePersistedInOneWrite) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  CountingMachine sm;
  NullTransport net;
  Node node(Options(store, sm, net), {});
  node.Campaign();
  const int before = store.writes;
  node.Hold();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(node.Propose("x").ok());
  EXPECT_EQ(store.writes, before);
  node.Release();
  // One write holds all 50 entries (and commits them: a single voter; the
  // commit index alone is not written).
  EXPECT_LE(store.writes - before, 2);
  EXPECT_EQ(sm.applied, 51u);
}

TEST(Node, WhileApplyIsPausedEntriesCommitAndWaitThenApplyInOrder) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  CountingMachine sm;
  NullTransport net;
  NodeOptions o = Options(store, sm, net);
  o.snapshot_threshold_entries = 3;
  std::vector<uint64_t> reported;
  NodeObserver observer;
  observer.on_apply = [&reported](const Entry& e, const std::string&) {
    reported.push_back(e.index);
  };
  Node node(o, observer);
  node.Campaign();
  ASSERT_EQ(sm.applied, 1u);
  sm.paused = true;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(node.Propose("x").ok());
  node.Tick();
  // Written and committed, not applied, and nothing compacted: a paused
  // state machine is not synced.
  EXPECT_EQ(store.LastIndex(), 11u);
  EXPECT_EQ(node.raw().raft().log().committed(), 11u);
  EXPECT_EQ(sm.applied, 1u);
  EXPECT_EQ(node.parked_entries(), 10u);
  EXPECT_EQ(sm.syncs + sm.copies, 0);
  sm.paused = false;
  node.Tick();
  EXPECT_EQ(sm.applied, 11u);
  EXPECT_EQ(node.parked_entries(), 0u);
  std::vector<uint64_t> want;
  for (uint64_t i = 1; i <= 11; ++i) want.push_back(i);
  EXPECT_EQ(reported, want);
  ASSERT_TRUE(node.Propose("x").ok());  // Compacts again.
  EXPECT_EQ(sm.applied, 12u);
  EXPECT_GT(node.snapshots_taken(), 0u);
}

// A lone voter leading, its state machine's apply paused.
struct PausedLeader {
  PausedLeader() {
    store.mem.SetConfState(ConfState{{1}, {}});
    node = std::make_unique<Node>(Options(store, sm, net), NodeObserver{});
    node->Campaign();
    sm.paused = true;
  }
  MemoryLogStore store;
  CountingMachine sm;
  NullTransport net;
  std::unique_ptr<Node> node;
};

TEST(Node, AParkedConfChangeTakesEffectAtOnce) {
  PausedLeader leader;
  Node& node = *leader.node;
  CountingMachine& sm = leader.sm;
  ASSERT_TRUE(
      node.ProposeConfChange(ConfChange{ConfChange::Type::kAddLearner, 2, ""})
          .ok());
  EXPECT_EQ(sm.applied, 1u);
  EXPECT_EQ(node.raw().raft().tracker().GetConfState().learners,
            std::vector<uint64_t>{2});
  sm.paused = false;
  node.Tick();
  EXPECT_EQ(sm.applied, 2u);
  EXPECT_EQ(node.raw().raft().tracker().GetConfState().learners,
            std::vector<uint64_t>{2});
}

TEST(Node, AboveTheParkedBoundRaftWaitsForThePauseToEnd) {
  PausedLeader leader;
  Node& node = *leader.node;
  CountingMachine& sm = leader.sm;
  MemoryLogStore& store = leader.store;
  const std::string big(4 << 20, 'x');
  // Each entry is a little over 4 MiB: this many reach the bound.
  const uint64_t over = Node::kMaxParkedBytes / big.size();
  for (uint64_t i = 0; i < over; ++i) ASSERT_TRUE(node.Propose(big).ok());
  EXPECT_EQ(node.parked_entries(), over);
  const int writes = store.writes;
  ASSERT_TRUE(node.Propose(big).ok());
  node.Tick();
  EXPECT_EQ(store.writes, writes);  // Not written: no Ready started.
  sm.paused = false;
  node.Tick();
  EXPECT_GT(store.writes, writes);
  EXPECT_EQ(sm.applied, over + 2);
}

TEST(Node, ASnapshotReplacesTheEntriesThatWaitForAPausedApply) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1, 2}, {}});
  CountingMachine sm;
  NullTransport net;
  int reported = 0;
  NodeObserver observer;
  observer.on_apply = [&reported](const Entry&, const std::string&) {
    ++reported;
  };
  Node node(Options(store, sm, net), observer);
  sm.paused = true;
  Message app;
  app.type = MessageType::kApp;
  app.from = 2;
  app.to = 1;
  app.term = 3;
  app.commit = 3;
  for (uint64_t i = 1; i <= 3; ++i) {
    app.entries.push_back(Entry{3, i, EntryType::kNormal, "e"});
  }
  node.Step(app);
  ASSERT_EQ(node.parked_entries(), 3u);
  node.Step(SnapshotFromNode2(/*index=*/10, /*term=*/3));
  EXPECT_EQ(sm.restores, 1);
  EXPECT_EQ(sm.applied, 10u);
  EXPECT_EQ(node.parked_entries(), 0u);
  sm.paused = false;
  node.Tick();
  EXPECT_EQ(reported, 0);
  EXPECT_EQ(sm.applied, 10u);
}

TEST(Node, CompactNowSnapshotsWhateverTheThresholds) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  CountingMachine sm;
  NullTransport net;
  Node node(Options(store, sm, net), {});
  node.Campaign();
  ASSERT_TRUE(node.Propose("x").ok());
  node.CompactNow();
  EXPECT_EQ(node.snapshots_taken(), 1u);
  EXPECT_EQ(store.GetSnapshot()->metadata.index, 2u);
  EXPECT_EQ(store.FirstIndex(), 3u);
  node.CompactNow();  // Nothing new applied: no new snapshot.
  EXPECT_EQ(node.snapshots_taken(), 1u);
}

TEST(Node, CompactNowSyncsADurableStateMachineOnceOnTheLoop) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  CountingMachine sm;
  NoImages images;
  sm.source = &images;
  NullTransport net;
  Node node(Options(store, sm, net), {});
  node.Campaign();
  ASSERT_TRUE(node.Propose("x").ok());
  node.CompactNow();
  EXPECT_EQ(sm.syncs, 1);
  EXPECT_EQ(node.snapshots_taken(), 1u);
  EXPECT_EQ(store.FirstIndex(), 3u);
  EXPECT_EQ(sm.copies, 0);
}

// Makes node 1 the leader of {1, 2, 3}: campaign, then grant its votes.
// Nodes 2 and 3 answer node 1 with `type` (at node 1's term and last index).
void BothFollowersAnswer(Node& node, MessageType type) {
  for (uint64_t from : {2, 3}) {
    Message m;
    m.type = type;
    m.from = from;
    m.to = 1;
    m.term = node.raw().raft().term();
    m.index = node.raw().raft().log().LastIndex();
    node.Step(m);
  }
}

void ElectNodeOne(Node& node) {
  node.Campaign();
  BothFollowersAnswer(node, MessageType::kVoteResp);
  ASSERT_EQ(node.raw().raft().state(), StateType::kLeader);
}

TEST(Node, LeaderSendsAppendsWhileItPersistsTheSameEntries) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1, 2, 3}, {}});
  CountingMachine sm;
  NullTransport net;
  NodeOptions o = Options(store, sm, net);
  o.raft.pre_vote = false;
  o.send_appends_before_persist = true;
  Node node(o, {});
  // The vote requests wait for the durable term and vote.
  int sent_at_submit = -1;
  store.on_submit = [&](const LogWrite& w) {
    if (w.hard_state.has_value() && w.hard_state->vote == 1 &&
        sent_at_submit < 0) {
      sent_at_submit = net.sent;
    }
  };
  ElectNodeOne(node);
  EXPECT_EQ(sent_at_submit, 0);
  // Both acknowledge the leader's no-op.
  BothFollowersAnswer(node, MessageType::kAppResp);
  // As leader: appends go out before the entries are written.
  std::vector<MessageType> sent_before;
  store.on_submit = [&](const LogWrite& w) {
    if (!w.entries.empty()) sent_before = net.types;
  };
  net.types.clear();
  ASSERT_TRUE(node.Propose("x").ok());
  EXPECT_EQ(
      std::count(sent_before.begin(), sent_before.end(), MessageType::kApp), 2);
}

// Node 1 of three voters, elected, its first entry acknowledged by both.
struct LeaderOfThree {
  LeaderOfThree() {
    store.mem.SetConfState(ConfState{{1, 2, 3}, {}});
    NodeOptions o = Options(store, sm, net);
    o.raft.pre_vote = false;
    node = std::make_unique<Node>(o, NodeObserver{});
    ElectNodeOne(*node);
    BothFollowersAnswer(*node, MessageType::kAppResp);
  }
  MemoryLogStore store;
  CountingMachine sm;
  NullTransport net;
  std::unique_ptr<Node> node;
};

TEST(Node, ACommitThatOnlyMovesTheCommitIndexWritesNoHardState) {
  LeaderOfThree c;
  MemoryLogStore& store = c.store;
  CountingMachine& sm = c.sm;
  Node& node = *c.node;
  ASSERT_TRUE(node.Propose("x").ok());
  int commit_only_writes = 0;
  store.on_submit = [&](const LogWrite& w) {
    if (w.hard_state.has_value() && w.entries.empty()) ++commit_only_writes;
  };
  const uint64_t applied_before = sm.applied;
  BothFollowersAnswer(node, MessageType::kAppResp);  // Commits "x".
  EXPECT_EQ(sm.applied, applied_before + 1);
  EXPECT_EQ(commit_only_writes, 0);
  // The next write with entries carries the commit index.
  std::optional<HardState> carried;
  store.on_submit = [&](const LogWrite& w) {
    if (!w.entries.empty()) carried = w.hard_state;
  };
  ASSERT_TRUE(node.Propose("y").ok());
  ASSERT_TRUE(carried.has_value());
  EXPECT_EQ(carried->commit, sm.applied);
}

TEST(Node, ACommittedEntryAlreadyDurableIsAppliedBeforeTheNextWrite) {
  LeaderOfThree c;
  MemoryLogStore& store = c.store;
  CountingMachine& sm = c.sm;
  Node& node = *c.node;
  ASSERT_TRUE(node.Propose("x").ok());  // Written by its own Ready.
  const uint64_t x = node.raw().raft().log().LastIndex();
  // One Ready both commits "x" (the acks) and writes "y": "x" is durable
  // already, so it is applied before the write of "y", not after it.
  uint64_t applied_at_write = 0;
  store.on_submit = [&](const LogWrite& w) {
    if (!w.entries.empty()) applied_at_write = sm.applied;
  };
  node.Hold();
  BothFollowersAnswer(node, MessageType::kAppResp);
  ASSERT_TRUE(node.Propose("y").ok());
  node.Release();
  EXPECT_EQ(applied_at_write, x);
  EXPECT_EQ(sm.applied, x);  // "y" is not committed yet.
}

TEST(Node, AFollowerWritesAndAcknowledgesBeforeItApplies) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1, 2, 3}, {}});
  CountingMachine sm;
  NullTransport net;
  Node node(Options(store, sm, net), {});
  // Leader 2 sends entries 1-2, then entry 3 with the commit index at 2.
  auto append = [&](uint64_t prev, uint64_t commit, uint64_t n) {
    Message m;
    m.type = MessageType::kApp;
    m.from = 2;
    m.to = 1;
    m.term = 1;
    m.index = prev;
    m.log_term = prev == 0 ? 0 : 1;
    m.commit = commit;
    for (uint64_t i = prev + 1; i <= prev + n; ++i) {
      m.entries.push_back(Entry{1, i, EntryType::kNormal, "e"});
    }
    node.Step(m);
  };
  append(0, 0, 2);
  uint64_t applied_at_write = 99;
  store.on_submit = [&](const LogWrite& w) {
    if (!w.entries.empty()) applied_at_write = sm.applied;
  };
  append(2, 2, 1);
  // The write of entry 3 (and its acknowledgement) come first, then the
  // apply of entries 1-2.
  EXPECT_EQ(applied_at_write, 0u);
  EXPECT_EQ(sm.applied, 2u);
}

TEST(Node, AnEntryIsNeverAppliedBeforeTheWriteThatHoldsIt) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});  // Commits on append.
  CountingMachine sm;
  NullTransport net;
  Node node(Options(store, sm, net), {});
  node.Campaign();
  ASSERT_EQ(node.raw().raft().state(), StateType::kLeader);
  uint64_t written = 0;
  uint64_t applied_at_write = 0;
  store.on_submit = [&](const LogWrite& w) {
    if (w.entries.empty()) return;
    written = w.entries.back().index;
    applied_at_write = sm.applied;
  };
  ASSERT_TRUE(
      node.Propose("z").ok());  // Committed in the Ready that writes it.
  EXPECT_LT(applied_at_write, written);
  EXPECT_EQ(sm.applied, written);
}

TEST(Node, FailedLogWriteStopsTheNode) {
  MemoryLogStore store;
  store.mem.SetConfState(ConfState{{1}, {}});
  store.fail = true;
  CountingMachine sm;
  NullTransport net;
  absl::Status fatal;
  NodeObserver obs;
  obs.on_fatal = [&](const absl::Status& s) { fatal = s; };
  Node node(Options(store, sm, net), obs);
  node.Campaign();
  EXPECT_TRUE(node.stopped());
  EXPECT_EQ(fatal.code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(node.Propose("x").ok());
  EXPECT_EQ(sm.applies, 0);
}

}  // namespace
}  // namespace raftsql::core
