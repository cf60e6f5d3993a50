#include "core/node.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace raftsql::core {

namespace {

// Starts Raft after what the state machine applied (PrepareStateMachine
// brought it up to the log store's snapshot), so that a durable state
// machine never applies an entry twice.
Config PrepareStart(const NodeOptions& options) {
  CHECK(options.log_store != nullptr);
  CHECK(options.state_machine != nullptr);
  const absl::Status prepared =
      PrepareStateMachine(*options.log_store, *options.state_machine);
  if (!prepared.ok()) {
    internal::CheckFailedMessage(std::string(prepared.message()).c_str());
  }
  StateMachine* sm = options.state_machine;
  Config config = options.raft;
  config.applied = sm->AppliedIndex();
  config.snapshot_source = sm->snapshot_source();
  config.snapshot_sink = sm->snapshot_sink();
  config.validate_snapshot = [sm](const Snapshot& s) {
    return sm->ValidateSnapshot(s);
  };
  return config;
}

}  // namespace

absl::Status PrepareStateMachine(const LogStore& store, StateMachine& sm) {
  absl::StatusOr<Snapshot> snapshot = store.GetSnapshot();
  if (!snapshot.ok()) return snapshot.status();
  if (snapshot->metadata.index <= sm.AppliedIndex()) return absl::OkStatus();
  // A durable state machine's own compactions keep no image: it synced its
  // files before each one, so it can only be behind one it received (which
  // keeps a reference to its image).
  if (sm.snapshot_source() != nullptr && snapshot->data.empty()) {
    return absl::DataLossError(absl::StrCat(
        "the state machine's files are at index ", sm.AppliedIndex(),
        " but the log was compacted up to ", snapshot->metadata.index,
        " (files replaced, or a disk that lost synced writes)"));
  }
  const absl::Status restored = sm.Restore(*snapshot);
  if (!restored.ok()) {
    return absl::DataLossError(
        absl::StrCat("cannot restore the log's snapshot at ",
                     snapshot->metadata.index, ": ", restored.message()));
  }
  return absl::OkStatus();
}

Node::Node(const NodeOptions& options, NodeObserver observer)
    : options_(options),
      observer_(std::move(observer)),
      raw_(PrepareStart(options)) {
  CHECK(options.log_store != nullptr);
  CHECK(options.transport != nullptr);
  CHECK(options.state_machine != nullptr);
  CHECK(options.raft.storage == options.log_store);
  absl::StatusOr<InitialState> initial = options.log_store->GetInitialState();
  CHECK(initial.ok());
  durable_term_ = initial->hard_state.term;
  durable_vote_ = initial->hard_state.vote;
  absl::StatusOr<Snapshot> snapshot = options.log_store->GetSnapshot();
  CHECK(snapshot.ok());
  conf_history_.emplace_back(snapshot->metadata.index,
                             raw_.raft().tracker().GetConfState());
  ReplayDurableConfChanges();
}

void Node::ReplayDurableConfChanges() {
  // A durable state machine resumes after entries it applied in an earlier
  // life; Raft hands them out no more, so the membership changes among them
  // are re-applied here (the log store holds them: they are above the
  // snapshot, whose configuration covers everything below).
  LogStore* store = options_.log_store;
  const uint64_t applied = options_.state_machine->AppliedIndex();
  const uint64_t first = store->FirstIndex();
  if (applied < first) return;
  absl::StatusOr<std::vector<Entry>> ents =
      store->Entries(first, applied + 1, UINT64_MAX);
  CHECK(ents.ok());
  for (const Entry& e : *ents) {
    ApplyConfChangeEntry(e);
    RememberSize(e);  // What a compaction keeps counts them too.
  }
}

void Node::RememberSize(const Entry& e) {
  if (options_.compaction_keeps_entries == 0) return;
  recent_sizes_.push_back(e.Size());
  if (recent_sizes_.size() > options_.compaction_keeps_entries) {
    recent_sizes_.pop_front();
  }
}

void Node::ApplyConfChangeEntry(const Entry& e) {
  if (e.type != EntryType::kConfChange) return;
  // Followers refuse undecodable changes and leaders never propose one, but
  // a log written by another build may hold one: every replica skips it
  // alike, so they stay in agreement.
  std::optional<ConfChange> cc = ConfChange::Decode(e.data);
  if (!cc.has_value()) return;
  raw_.ApplyConfChange(*cc);
  RecordConfState(e.index);
}

void Node::RecordConfState(uint64_t index) {
  conf_history_.emplace_back(index, raw_.raft().tracker().GetConfState());
}

ConfState Node::ConfStateAt(uint64_t index) const {
  auto after = std::find_if(
      conf_history_.begin(), conf_history_.end(),
      [index](const auto& change) { return change.first > index; });
  CHECK(after != conf_history_.begin());
  return std::prev(after)->second;
}

void Node::Tick() {
  if (stopped_) return;
  raw_.Tick();
  MaybeReleaseImage();
  options_.state_machine->OnTick();
  raw_.SnapshotSinkProgressed();    // A sink may store at ticks.
  raw_.SnapshotSourceProgressed();  // In case a call was dropped.
  // A sync may have finished with nothing applied since (no write of the
  // log store under way: a compaction's delete waits for it).
  if (!persisting_) CompactWhenDurable();
  ApplyParked();
  Pump();
}

void Node::MaybeReleaseImage() {
  SnapshotSource* source = options_.state_machine->snapshot_source();
  if (source == nullptr) return;
  bool sending = raw_.raft().snapshot_wanted();
  for (const SnapshotTransfer& t : raw_.raft().SnapshotTransfers()) {
    sending = sending || t.sending;
  }
  if (sending) {
    ticks_without_sending_images_ = 0;
  } else if (++ticks_without_sending_images_ ==
             options_.release_image_after_ticks) {
    source->Release();
  }
}

void Node::Step(Message m) {
  if (stopped_) return;
  (void)raw_.Step(std::move(m));  // Errors are about the sender; ignore.
  Pump();
}

absl::Status Node::Propose(std::string data) {
  if (stopped_) return absl::UnavailableError("node stopped");
  absl::Status s = raw_.Propose(std::move(data));
  Pump();
  return s;
}

absl::Status Node::ReadIndex(std::string ctx) {
  if (stopped_) return absl::UnavailableError("node stopped");
  absl::Status s = raw_.ReadIndex(std::move(ctx));
  Pump();
  return s;
}

void Node::TransferLeadership(uint64_t transferee) {
  if (stopped_) return;
  raw_.TransferLeadership(transferee);
  Pump();
}

absl::Status Node::ProposeConfChange(const ConfChange& cc) {
  if (stopped_) return absl::UnavailableError("node stopped");
  absl::Status s = raw_.ProposeConfChange(cc);
  Pump();
  return s;
}

void Node::ReportSnapshot(uint64_t id, bool delivered) {
  if (stopped_) return;
  raw_.ReportSnapshot(id, delivered);
  Pump();
}

void Node::SnapshotSinkProgressed() {
  if (stopped_) return;
  raw_.SnapshotSinkProgressed();
  Pump();
}

void Node::SnapshotSourceProgressed() {
  if (stopped_) return;
  raw_.SnapshotSourceProgressed();
  Pump();
}

void Node::Campaign() {
  if (stopped_) return;
  (void)raw_.Campaign();
  Pump();
}

void Node::ReportUnreachable(uint64_t id) {
  if (stopped_) return;
  raw_.ReportUnreachable(id);
  Pump();
}

void Node::Release() {
  CHECK_GT(holds_, 0);
  if (--holds_ == 0) Pump();
}

void Node::CompactNow() {
  if (stopped_ || persisting_ || ApplyWaits()) return;
  StateMachine* sm = options_.state_machine;
  if (sm->AppliedIndex() < options_.log_store->FirstIndex()) {
    return;  // Nothing applied beyond the current snapshot.
  }
  if (sm->snapshot_source() == nullptr) {
    Compact(/*keep=*/0);
    return;
  }
  // Asked for (a join needs the log compacted before the learner's first
  // append): the sync is waited for here, on the loop, and makes the
  // applied index durable.
  const absl::Status synced = sm->Sync();
  if (!synced.ok()) {
    StopOn(synced);
    return;
  }
  CompactTo(sm->AppliedIndex(), "");
}

void Node::StopOn(const absl::Status& failure) {
  stopped_ = true;
  if (observer_.on_fatal) observer_.on_fatal(failure);
}

void Node::MaybeRequestImage() {
  SnapshotSource* source = options_.state_machine->snapshot_source();
  if (source == nullptr || !raw_.raft().snapshot_wanted()) return;
  // Parked conf changes are in effect already: the membership is not the
  // applied index's until they apply (asked again then).
  if (!parked_.empty()) return;
  raw_.raft().ClearSnapshotWanted();
  // Outside ApplyEntries the membership is the one at the applied index.
  const uint64_t applied = options_.state_machine->AppliedIndex();
  absl::StatusOr<uint64_t> term = options_.log_store->Term(applied);
  if (!term.ok()) return;  // Asked again at the next probe.
  source->Request(
      SnapshotMetadata{applied, *term, raw_.raft().tracker().GetConfState()});
}

void Node::Pump() {
  if (stopped_) return;
  MaybeRequestImage();
  if (persisting_ || holds_ > 0 || parked_bytes_ >= kMaxParkedBytes ||
      !raw_.HasReady()) {
    return;
  }
  Ready rd = raw_.GetReady();
  if (rd.soft_state.has_value() && observer_.on_soft_state) {
    observer_.on_soft_state(*rd.soft_state);
  }
  if (options_.unsafe_send_before_persist) {
    for (Message& m : rd.messages) options_.transport->Send(std::move(m));
    options_.transport->Flush();
    rd.messages.clear();
  }
  const bool same_term_and_vote =
      !rd.hard_state.has_value() || (rd.hard_state->term == durable_term_ &&
                                     rd.hard_state->vote == durable_vote_);
  if (options_.send_appends_before_persist && same_term_and_vote) {
    std::vector<Message> later;
    for (Message& m : rd.messages) {
      if (m.type == MessageType::kApp || m.type == MessageType::kHeartbeat ||
          m.type == MessageType::kSnap) {
        options_.transport->Send(std::move(m));
      } else {
        later.push_back(std::move(m));
      }
    }
    options_.transport->Flush();  // Out before the write starts.
    rd.messages = std::move(later);
  }
  LogWrite write;
  write.hard_state = rd.hard_state;
  // The entries are only needed by the store; the snapshot stays with the
  // Ready for the state machine.
  write.entries = std::move(rd.entries);
  rd.entries.clear();
  write.snapshot = rd.snapshot;
  write.sync = rd.must_sync;
  if (!write.sync && write.entries.empty()) {
    // Only the commit index moved. It is volatile (thesis §3.8: a restart
    // learns it again, and a durable state machine's applied index counts
    // as committed): skip the store write, which cost every node a RocksDB
    // write per commit.
    write.hard_state.reset();
  } else {
    // A real write carries the latest commit index along.
    write.hard_state = raw_.raft().GetHardState();
  }
  if (options_.unsafe_forget_vote && write.hard_state.has_value()) {
    write.hard_state->vote = kNone;
  }
  ApplyDurableCommitted(&rd, write.entries);
  persisting_ = true;
  std::weak_ptr<bool> alive = alive_;
  options_.log_store->Submit(
      std::move(write),
      [this, alive, rd = std::move(rd)](absl::Status status) mutable {
        if (alive.expired()) return;
        OnPersisted(std::move(rd), status);
      });
  // The early sends were safe only if the write is already durable.
  if (options_.send_appends_before_persist) CHECK(!persisting_ || stopped_);
}

void Node::OnPersisted(Ready rd, const absl::Status& status) {
  CHECK(persisting_);
  if (!status.ok()) {
    // The write may be lost: continuing could break promises already made
    // (votes, acks). Stop; a restart recovers from what is durable.
    persisting_ = false;
    StopOn(status);
    return;
  }
  if (rd.hard_state.has_value()) {
    durable_term_ = rd.hard_state->term;
    durable_vote_ = rd.hard_state->vote;
  }
  // Rule 1: only now, with the Ready durable, may its messages go out.
  for (Message& m : rd.messages) options_.transport->Send(std::move(m));
  options_.transport->Flush();
  ApplyCommitted(rd);
  MaybeCompact();
  for (ReadState& rs : rd.read_states) {
    if (pending_reads_.size() >= kMaxPendingReads) pending_reads_.pop_front();
    pending_reads_.push_back(std::move(rs));
  }
  ReleaseReads();
  raw_.Advance();
  persisting_ = false;
  Pump();
}

void Node::ApplyDurableCommitted(Ready* rd, const std::vector<Entry>& writing) {
  // Committed entries below the first entry this Ready writes are durable
  // here already (at most one Ready is in flight, and the previous one's
  // write has completed): a leader applies them now rather than after this
  // write, and so answers its clients one fsync sooner. A follower does not:
  // its write is followed by the acknowledgement the leader waits for to
  // commit, which must not wait for an apply. What this Ready writes or
  // rewrites waits for the write (rule 2: a crash must not leave the state
  // machine ahead of the durable log), and so does everything behind a
  // snapshot, which must be restored first.
  if (rd->snapshot.has_value() || rd->committed_entries.empty()) return;
  if (raw_.raft().state() != StateType::kLeader) return;
  const uint64_t first_written =
      writing.empty() ? UINT64_MAX : writing.front().index;
  auto split = std::find_if(
      rd->committed_entries.begin(), rd->committed_entries.end(),
      [first_written](const Entry& e) { return e.index >= first_written; });
  if (split == rd->committed_entries.begin()) return;
  std::vector<Entry> durable(
      std::make_move_iterator(rd->committed_entries.begin()),
      std::make_move_iterator(split));
  rd->committed_entries.erase(rd->committed_entries.begin(), split);
  CHECK(durable.back().index < first_written);
  ApplyEntries(std::move(durable));
}

void Node::ApplyCommitted(Ready& rd) {
  StateMachine* sm = options_.state_machine;
  if (rd.snapshot.has_value()) {
    // The image was validated before Raft accepted it (validate_snapshot):
    // failing now is the state machine's storage failing, fatal as a failed
    // log write is.
    const absl::Status restored = sm->Restore(*rd.snapshot);
    if (!restored.ok()) {
      StopOn(restored);
      return;
    }
    CHECK_EQ(sm->AppliedIndex(), rd.snapshot->metadata.index);
    conf_history_.clear();
    conf_history_.emplace_back(rd.snapshot->metadata.index,
                               rd.snapshot->metadata.conf_state);
    // What waited was committed, so at or below the snapshot (a follower
    // takes one only beyond its commit index): covered by it.
    CHECK(parked_.empty() ||
          parked_.back().index <= rd.snapshot->metadata.index);
    parked_.clear();
    parked_bytes_ = 0;
    if (observer_.on_restore) observer_.on_restore(rd.snapshot->metadata);
  }
  ApplyEntries(std::move(rd.committed_entries));
}

void Node::ApplyEntries(std::vector<Entry> todo) {
  StateMachine* sm = options_.state_machine;
  // A durable state machine may already hold some entries (it stores its
  // applied index with the effects): never apply them twice. They are a
  // prefix (entries come in index order); drop it in place, no copies.
  const uint64_t applied = sm->AppliedIndex();
  todo.erase(todo.begin(),
             std::find_if(todo.begin(), todo.end(), [applied](const Entry& e) {
               return e.index > applied;
             }));
  if (todo.empty()) return;
  ApplyParked();
  if (ApplyWaits()) return Park(std::move(todo));
  ApplyInOrder(std::move(todo), /*conf_changes_done=*/false);
}

void Node::CheckInvariants() const {
  CHECK_GE(holds_, 0);
  uint64_t next = options_.state_machine->AppliedIndex() + 1;
  uint64_t bytes = 0;
  for (const Entry& e : parked_) {
    CHECK_EQ(e.index, next);
    ++next;
    bytes += e.Size();
  }
  CHECK_EQ(bytes, parked_bytes_);
  CHECK_LE(recent_sizes_.size(), options_.compaction_keeps_entries);
  CHECK_LE(pending_reads_.size(), kMaxPendingReads);
  for (size_t i = 1; i < conf_history_.size(); ++i) {
    CHECK_LE(conf_history_[i - 1].first, conf_history_[i].first);
  }
}

bool Node::ApplyWaits() const {
  return !parked_.empty() || options_.state_machine->ApplyPaused();
}

void Node::Park(std::vector<Entry> todo) {
  CHECK_EQ(todo.front().index, parked_.empty()
                                   ? options_.state_machine->AppliedIndex() + 1
                                   : parked_.back().index + 1);
  for (Entry& e : todo) {
    ApplyConfChangeEntry(e);
    parked_bytes_ += e.Size();
    parked_.push_back(std::move(e));
  }
}

void Node::ApplyParked() {
  if (parked_.empty() || options_.state_machine->ApplyPaused()) return;
  std::vector<Entry> todo(std::make_move_iterator(parked_.begin()),
                          std::make_move_iterator(parked_.end()));
  parked_.clear();
  parked_bytes_ = 0;
  ApplyInOrder(std::move(todo), /*conf_changes_done=*/true);
  ReleaseReads();
}

void Node::ApplyInOrder(std::vector<Entry> todo, bool conf_changes_done) {
  StateMachine* sm = options_.state_machine;
  // Rule 2: in index order, each exactly once.
  CHECK_EQ(todo.front().index, sm->AppliedIndex() + 1);
  // One results vector for every batch: its strings keep their storage.
  std::vector<std::string>& results = apply_results_;
  sm->ApplyBatch(todo, &results);
  CHECK_EQ(results.size(), todo.size());
  CHECK_EQ(sm->AppliedIndex(), todo.back().index);
  for (size_t i = 0; i < todo.size(); ++i) {
    const Entry& e = todo[i];
    applied_bytes_since_snapshot_ += e.Size();
    RememberSize(e);
    if (!conf_changes_done) ApplyConfChangeEntry(e);
    if (observer_.on_apply) observer_.on_apply(e, results[i]);
  }
  // A catch-up's huge batch should not stay allocated.
  if (results.size() > kMaxKeptResults) results = {};
}

void Node::MaybeCompact() {
  const uint64_t threshold = options_.snapshot_threshold_entries;
  const uint64_t threshold_bytes = options_.snapshot_threshold_bytes;
  if (threshold == 0 && threshold_bytes == 0) return;
  // A paused state machine is not synced, and while entries wait the
  // membership is ahead of its applied index.
  if (ApplyWaits()) return;
  // A compaction waiting for its index to be durable is not moved on by
  // each batch (the sync would chase the applied index and never get
  // there).
  if (compaction_waits_for_ != 0) {
    CompactWhenDurable();
    return;
  }
  LogStore* store = options_.log_store;
  const uint64_t applied = options_.state_machine->AppliedIndex();
  const bool by_count =
      threshold > 0 && applied >= store->FirstIndex() + threshold;
  const bool by_bytes =
      threshold_bytes > 0 && applied_bytes_since_snapshot_ >= threshold_bytes;
  if (!by_count && !by_bytes) return;
  Compact(EntriesToKeep());
}

uint64_t Node::EntriesToKeep() const {
  // Only a durable state machine's compaction can stop below its applied
  // index (its snapshot is a record, not an image at that index); only a
  // leader serves entries, and it keeps those a follower that answered
  // lately still lacks: nothing while all keep up (kept entries cost
  // memory in the log's mirror and time at a restart).
  if (options_.state_machine->snapshot_source() == nullptr) return 0;
  const Raft& raft = raw_.raft();
  if (raft.state() != StateType::kLeader) return 0;
  const uint64_t applied = options_.state_machine->AppliedIndex();
  uint64_t lowest = applied;
  for (const auto& [id, pr] : raft.tracker().progress()) {
    if (id != raft.id() && pr.recent_active)
      lowest = std::min(lowest, pr.match);
  }
  const uint64_t lacking = applied - lowest;
  uint64_t keep = 0;
  uint64_t bytes = 0;
  for (auto it = recent_sizes_.rbegin();
       it != recent_sizes_.rend() && keep < lacking; ++it) {
    bytes += *it;
    if (bytes > options_.compaction_keeps_bytes) break;
    ++keep;
  }
  return keep;
}

void Node::Compact(uint64_t keep) {
  StateMachine* sm = options_.state_machine;
  const uint64_t applied = sm->AppliedIndex();
  const uint64_t index = applied - std::min(keep, applied);
  if (index < options_.log_store->FirstIndex()) {
    // Everything since the last compaction is still to be kept: look
    // again after as many bytes more.
    applied_bytes_since_snapshot_ = 0;
    return;
  }
  if (sm->snapshot_source() == nullptr) {
    absl::StatusOr<std::string> image = sm->SnapshotData();
    if (!image.ok()) return;  // Try again after the next batch.
    CompactTo(index, std::move(*image));
    return;
  }
  // Durable: its files hold everything up to `index` once that is durable
  // (rule 5), so no copy goes into the log store. The sync runs off the
  // loop (a WAL's fsync under load took 100 ms of it) and the compaction
  // waits for it (CompactWhenDurable, after batches and at ticks).
  compaction_waits_for_ = index;
  CompactWhenDurable();
  if (compaction_waits_for_ != 0 && !stopped_) sm->RequestSync();
}

void Node::CompactWhenDurable() {
  if (compaction_waits_for_ == 0 || stopped_ || ApplyWaits()) return;
  absl::StatusOr<uint64_t> durable = options_.state_machine->DurableIndex();
  if (!durable.ok()) {
    StopOn(durable.status());
    return;
  }
  if (*durable < compaction_waits_for_) return;
  const uint64_t index = std::exchange(compaction_waits_for_, 0);
  // A snapshot from the leader may have gone past it meanwhile.
  if (index < options_.log_store->FirstIndex()) return;
  CompactTo(index, "");
}

void Node::CompactTo(uint64_t index, std::string data) {
  LogStore* store = options_.log_store;
  absl::StatusOr<uint64_t> term = store->Term(index);
  // Applied entries were persisted before they were applied.
  CHECK(term.ok());
  Snapshot snapshot;
  snapshot.metadata.index = index;
  snapshot.metadata.term = *term;
  snapshot.metadata.conf_state = ConfStateAt(index);
  snapshot.data = std::move(data);
  const absl::Status s = store->Compact(snapshot);
  if (!s.ok() && !absl::IsFailedPrecondition(s)) {
    // The log store failed: stop, as for a failed write.
    StopOn(s);
    return;
  }
  ++snapshots_taken_;
  applied_bytes_since_snapshot_ = 0;
  // The membership at the new snapshot is the oldest one still needed.
  while (conf_history_.size() > 1 && conf_history_[1].first <= index) {
    conf_history_.pop_front();
  }
}

void Node::ReleaseReads() {
  if (pending_reads_.empty()) return;
  const uint64_t applied = options_.state_machine->AppliedIndex();
  std::deque<ReadState> waiting;
  for (ReadState& rs : pending_reads_) {
    if (rs.index > applied) {
      waiting.push_back(std::move(rs));
    } else if (observer_.on_read) {
      observer_.on_read(rs);
    }
  }
  pending_reads_ = std::move(waiting);
}

}  // namespace raftsql::core
