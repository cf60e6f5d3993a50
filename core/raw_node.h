// RawNode: the thread-free, I/O-free face of the Raft core (etcd's RawNode).
//
// Runtime contract — whoever drives a RawNode must, for each Ready:
//   1. Persist `hard_state`, `entries` and `snapshot` to the log store, and
//      fsync if `must_sync`, BEFORE sending any of `messages` (votes granted
//      and append acks promise that the data is durable; Raft §5, rule 1 of
//      DESIGN.md §2).
//   2. Send `messages` (best effort: Raft retries lost messages).
//   3. Install `snapshot` in the state machine if present, then apply
//      `committed_entries` in order, each exactly once.
//   4. Serve `read_states` once the applied index reaches their index.
//   5. Call Advance() exactly once, then fetch the next Ready.
// Tick/Step/Propose may be called between GetReady and Advance; GetReady may
// not be called again until Advance.
//
// Not thread-safe: one owner thread (or the simulator) drives it.
#ifndef RAFTSQL_CORE_RAW_NODE_H_
#define RAFTSQL_CORE_RAW_NODE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/raft.h"
#include "core/types.h"

namespace raftsql::core {

struct Ready {
  // Set when the leader or role changed since the last Ready.
  std::optional<SoftState> soft_state;
  // Set when term, vote or commit changed: persist it.
  std::optional<HardState> hard_state;
  std::vector<ReadState> read_states;
  // Entries to append to the log store (truncating any conflicting suffix).
  std::vector<Entry> entries;
  // A snapshot to persist and install (from the leader).
  std::optional<Snapshot> snapshot;
  // Committed entries to apply, in index order.
  std::vector<Entry> committed_entries;
  // Messages to send once the above is durable.
  std::vector<Message> messages;
  // Whether the write of this Ready must be fsynced before messages go out.
  bool must_sync = false;
};

struct NodeStatus {
  uint64_t id = kNone;
  HardState hard_state;
  SoftState soft_state;
  uint64_t applied = 0;
  uint64_t last_index = 0;
  uint64_t lead_transferee = kNone;
  ConfState conf_state;
  std::map<uint64_t, std::string> progress;  // Leader only.
};

class RawNode {
 public:
  // Precondition: config.Validate() is ok.
  explicit RawNode(const Config& config);

  void Tick() { raft_.Tick(); }
  // Starts an election now (as if the election timeout fired).
  absl::Status Campaign();
  // Proposes a command. IsProposalDropped if there is no leader to take it;
  // success means only that it was handed on, not that it will commit.
  absl::Status Propose(std::string data);
  absl::Status ProposeConfChange(const ConfChange& cc);
  // Call when a committed kConfChange entry is applied.
  ConfState ApplyConfChange(const ConfChange& cc) {
    return raft_.ApplyConfChange(cc);
  }
  // Feeds a message from a peer. InvalidArgument for local message types.
  absl::Status Step(Message m);
  // Requests a linearizable read point; a ReadState carrying `ctx` appears in
  // a later Ready. `ctx` must be unique among outstanding requests.
  absl::Status ReadIndex(std::string ctx);
  void TransferLeadership(uint64_t transferee);
  void ReportUnreachable(uint64_t id);
  void ReportSnapshot(uint64_t id, bool ok);
  void SnapshotSinkProgressed() { raft_.SnapshotSinkProgressed(); }
  void SnapshotSourceProgressed() { raft_.SnapshotSourceProgressed(); }

  bool HasReady() const;
  Ready GetReady();
  void Advance();

  NodeStatus GetStatus() const;
  Raft& raft() { return raft_; }
  const Raft& raft() const { return raft_; }

 private:
  Raft raft_;
  SoftState prev_soft_state_;
  HardState prev_hard_state_;
  // What the outstanding Ready handed out (set between GetReady and
  // Advance); consumed by Advance().
  std::optional<Ready> in_progress_;
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_RAW_NODE_H_
