// Node: the runtime that turns each Ready of a RawNode into calls on LogStore,
// Transport and StateMachine, keeping the contract of raw_node.h:
//   persist (and fsync if needed) -> send -> apply in order, once -> serve
//   reads whose index is applied -> Advance.
// On a leader, committed entries that are durable already (below the first
// entry the Ready writes; the previous Ready's write has completed) are
// applied before the write rather than after it. Sends are flushed per group
// (Transport::Flush), so one Ready's messages to a peer can travel together.
// The simulator and the production server run this same code; only the
// interfaces' implementations differ.
//
// Single-threaded: one owner calls every method, and LogStore completions
// must arrive on that same owner (the simulator's event loop, or the
// production Raft loop thread).
#ifndef RAFTSQL_CORE_NODE_H_
#define RAFTSQL_CORE_NODE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "core/interfaces.h"
#include "core/raw_node.h"

namespace raftsql::core {

struct NodeOptions {
  Config raft;  // raft.storage must be `log_store`.
  LogStore* log_store = nullptr;
  Transport* transport = nullptr;
  StateMachine* state_machine = nullptr;
  // Log compaction: once this many applied entries sit in the log, snapshot
  // the state machine and compact the log below it (0 = never).
  uint64_t snapshot_threshold_entries = 0;
  // ... or once the entries applied since the last snapshot exceed this many
  // bytes (0 = no byte threshold).
  uint64_t snapshot_threshold_bytes = 0;
  // A leader's compaction (of a durable state machine) keeps the applied
  // entries a follower that answered lately still lacks, at most this many
  // and this many bytes, so that a follower a little behind catches up
  // from the log rather than by an image of the whole database (as etcd's
  // SnapshotCatchUpEntries, but only while someone needs them). A volatile
  // state machine's image is at its applied index: nothing is kept.
  uint64_t compaction_keeps_entries = 0;
  uint64_t compaction_keeps_bytes = 64 << 20;
  // Fault injection for the simulator's self-tests: break rule 1 of the
  // contract by sending messages before their Ready is durable.
  bool unsafe_send_before_persist = false;
  // ... or persist the hard state without its vote (a restarted node may
  // vote twice in one term).
  bool unsafe_forget_vote = false;
  // Raft thesis §10.2.1: the leader sends AppendEntries (and heartbeats and
  // snapshot chunks, which promise nothing about its own disk) while it
  // writes the same entries to its own log. Requires a log store whose
  // Submit completes before it returns (checked): no response can then be
  // counted before the leader's own write is durable. A Ready that changes
  // the term or the vote still persists first.
  bool send_appends_before_persist = false;
  // A durable state machine's image is released (SnapshotSource::Release)
  // after this many ticks in which this node sent no snapshot.
  int release_image_after_ticks = 500;
};

// Callbacks from the runtime, all on the owner's thread.
struct NodeObserver {
  // A committed entry was applied with this result.
  std::function<void(const Entry&, const std::string& result)> on_apply;
  // The state machine jumped to a snapshot: the entries up to its index
  // took effect without on_apply.
  std::function<void(const SnapshotMetadata&)> on_restore;
  // A ReadIndex request became safe to serve: the state machine has applied
  // at least up to its read index.
  std::function<void(const ReadState&)> on_read;
  std::function<void(const SoftState&)> on_soft_state;
  // The log store failed; the node has stopped.
  std::function<void(const absl::Status&)> on_fatal;
};

// Brings the state machine up to the log store's snapshot if it is behind
// it (a volatile one after a restart, or a durable one that received an
// image and stopped before restoring it). DATA_LOSS if it cannot: a
// durable one behind a compaction that kept no image, or an image that
// does not restore. The Node's constructor calls it and stops on an
// error; a runtime calls it first to report the error instead.
absl::Status PrepareStateMachine(const LogStore& store, StateMachine& sm);

class Node {
 public:
  Node(const NodeOptions& options, NodeObserver observer);

  void Tick();
  void Step(Message m);
  absl::Status Propose(std::string data);
  absl::Status ReadIndex(std::string ctx);
  void TransferLeadership(uint64_t transferee);
  absl::Status ProposeConfChange(const ConfChange& cc);
  // Starts an election now (tests and the simulator's fault points).
  void Campaign();
  void ReportUnreachable(uint64_t id);
  // The transport tells the leader whether a snapshot reached `id`.
  void ReportSnapshot(uint64_t id, bool delivered);
  // The state machine's snapshot sink stored more, or checked its image
  // (Tick asks too).
  void SnapshotSinkProgressed();
  // Its snapshot source read chunks the core waits for (Tick asks too).
  void SnapshotSourceProgressed();
  uint64_t snapshots_taken() const { return snapshots_taken_; }
  // Committed entries waiting for a paused state machine (ApplyPaused).
  size_t parked_entries() const { return parked_.size(); }
  static constexpr uint64_t kMaxParkedBytes = 64 << 20;
  // Group commit: between Hold() and Release() calls feed the RawNode but
  // start no Ready; Release() then persists everything they produced in one
  // write (one fsync). Holds nest.
  void Hold() { ++holds_; }
  void Release();
  // Snapshots the state machine and compacts the log now, whatever the
  // thresholds (a node joining with an empty log then receives a snapshot,
  // which carries the whole membership).
  void CompactNow();

  bool stopped() const { return stopped_; }
  bool persisting() const { return persisting_; }
  // Entries parked for a paused state machine follow its applied index
  // one by one and add up to parked_bytes_; the bounded queues are within
  // their bounds; the membership history is in index order.
  void CheckInvariants() const;
  // Starts the next Ready through the contract if none is in flight. The
  // methods above call it; a caller that drives raw() directly (a test)
  // calls it after.
  void Pump();
  RawNode& raw() { return raw_; }
  const RawNode& raw() const { return raw_; }

 private:
  void OnPersisted(Ready rd, const absl::Status& status);
  void ApplyCommitted(Ready& rd);  // Takes rd's committed entries.
  // Applies, and removes from rd, the committed entries that are durable
  // already: those below the first of `writing` (this Ready's write).
  void ApplyDurableCommitted(Ready* rd, const std::vector<Entry>& writing);
  void ApplyEntries(std::vector<Entry> committed);
  // While the state machine's apply is paused (StateMachine::ApplyPaused):
  // `committed` waits in parked_, its conf changes already in effect (the
  // membership follows the log, as if it had applied).
  void Park(std::vector<Entry> committed);
  // Entries are parked, or the state machine is paused: applying waits.
  bool ApplyWaits() const;
  // Applies what was parked once the pause is over.
  void ApplyParked();
  // Hands `todo` to the state machine and reports each entry applied.
  void ApplyInOrder(std::vector<Entry> todo, bool conf_changes_done);
  void ApplyConfChangeEntry(const Entry& e);
  void ReleaseReads();
  void MaybeCompact();
  // Asks a durable state machine for an image when the core wants one.
  void MaybeRequestImage();
  // ... and lets it free its image once none was sent for a while.
  void MaybeReleaseImage();
  // Compacts the log up to the applied index less `keep` entries (as
  // compaction_keeps_*: trailing entries a follower may still need); for a
  // durable state machine, once that index is durable (it asks for a sync
  // and sets compaction_waits_for_ until then).
  void Compact(uint64_t keep);
  // The waiting compaction, if its index is durable now.
  void CompactWhenDurable();
  // Compacts the log store up to `index` (with a volatile state machine's
  // image `data`).
  void CompactTo(uint64_t index, std::string data);
  // A failure of the disk's: the node stops.
  void StopOn(const absl::Status& failure);
  // Records an applied entry's size for EntriesToKeep.
  void RememberSize(const Entry& e);
  // Of the entries applied last, how many compaction keeps.
  uint64_t EntriesToKeep() const;
  // The membership after applying every entry up to `index` (at or above
  // the log store's snapshot).
  ConfState ConfStateAt(uint64_t index) const;
  // Records the membership in effect from `index` on (conf_history_).
  void RecordConfState(uint64_t index);
  void ReplayDurableConfChanges();

  NodeOptions options_;
  NodeObserver observer_;
  RawNode raw_;
  // A Ready is between GetReady and Advance (waiting on the log store).
  bool persisting_ = false;
  bool stopped_ = false;
  int holds_ = 0;
  // The term and vote on disk (for send_appends_before_persist).
  uint64_t durable_term_ = 0;
  uint64_t durable_vote_ = 0;
  uint64_t snapshots_taken_ = 0;
  uint64_t applied_bytes_since_snapshot_ = 0;
  // A compaction up to this index waits for the state machine to report
  // it durable (0: none waits).
  uint64_t compaction_waits_for_ = 0;
  int ticks_without_sending_images_ = 0;
  // ApplyEntries' results, reused from batch to batch (up to this many).
  std::vector<std::string> apply_results_;
  static constexpr size_t kMaxKeptResults = 4096;
  // The membership from each index on where it changed, oldest first,
  // from the log store's snapshot on (older ones are dropped at each
  // compaction): a compaction below the applied index needs the one then.
  std::deque<std::pair<uint64_t, ConfState>> conf_history_;
  // Sizes of the last applied entries, newest last (at most
  // compaction_keeps_entries of them).
  std::deque<uint64_t> recent_sizes_;
  // Committed entries waiting for a paused state machine, in index order,
  // and their bytes. Above kMaxParkedBytes no new Ready starts until the
  // pause ends: Raft waits rather than memory growing without bound.
  std::deque<Entry> parked_;
  uint64_t parked_bytes_ = 0;
  // Read states waiting for the state machine to reach their index.
  std::deque<ReadState> pending_reads_;
  // Bound on reads waiting to be applied; older ones are answered first.
  static constexpr size_t kMaxPendingReads = 1 << 16;
  // Shared with completions so a late completion after destruction is a
  // no-op (the simulator drops them, this is belt and braces).
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_NODE_H_
