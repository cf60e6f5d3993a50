// The small interfaces the Node runtime drives (leveldb-style): each has a
// production implementation (RocksDB, gRPC, SQLite) and a simulated one
// (SimDisk, SimNetwork, an in-memory state machine) that can fail the way
// hardware fails.
#ifndef RAFTSQL_CORE_INTERFACES_H_
#define RAFTSQL_CORE_INTERFACES_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/storage.h"
#include "core/types.h"

namespace raftsql::core {

// One atomic write of a Ready's durable state.
struct LogWrite {
  std::optional<HardState> hard_state;
  std::vector<Entry> entries;  // Truncates any conflicting suffix.
  std::optional<Snapshot> snapshot;
  // Durable (fsynced) before `done` runs. Without sync the write may be lost
  // by a crash, but is visible to reads at once.
  bool sync = false;
};

// The durable Raft log. Reads (the Storage side) see every submitted write at
// once, as a file's page cache does.
class LogStore : public Storage {
 public:
  // Applies `write` to the read side now and calls `done` once it is durable
  // as requested. An error means the write may be lost: the caller must stop
  // (a failed fsync is never retried as if nothing was lost). Writes complete
  // in submission order. `done` may run before Submit returns.
  virtual void Submit(LogWrite write,
                      std::function<void(absl::Status)> done) = 0;
  // Durably stores `snapshot` (taken by the state machine at an applied, and
  // so committed, index) and then drops the entries up to its index. Rule 5
  // of DESIGN.md §2: the log is compacted only below a durable snapshot.
  // FailedPrecondition if the snapshot is not newer than the current one.
  virtual absl::Status Compact(const Snapshot& snapshot) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Best effort: a message may be lost; Raft retries. It may wait until
  // the next Flush, so that a group of sends to one peer travels together.
  virtual void Send(Message m) = 0;
  // Starts sending what Send queued. The runtime calls it after each group
  // of sends (a Ready's early appends, then the rest of its messages).
  virtual void Flush() {}
};

class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // Applies a committed entry, exactly once and in index order; returns the
  // result for the proposer. Every entry, even an empty no-op or a conf
  // change, advances AppliedIndex() to its index.
  virtual std::string Apply(const Entry& entry) = 0;
  // Applies consecutive committed entries (indexes AppliedIndex()+1, ...);
  // a state machine may do them in one transaction. Sets `*results` to their
  // results, in order, overwriting its strings: a caller that keeps one
  // vector from batch to batch lets their storage be reused (no allocation
  // per entry).
  virtual void ApplyBatch(const std::vector<Entry>& entries,
                          std::vector<std::string>* results) {
    results->resize(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      (*results)[i] = Apply(entries[i]);
    }
  }
  // The same, into a new vector.
  std::vector<std::string> ApplyBatch(const std::vector<Entry>& entries) {
    std::vector<std::string> results;
    ApplyBatch(entries, &results);
    return results;
  }
  // Replaces the state with a snapshot's image.
  virtual absl::Status Restore(const Snapshot& snapshot) = 0;
  // OK if Restore would accept `snapshot`'s image (a follower checks an image
  // it received before it gives up its log for it); changes nothing.
  virtual absl::Status ValidateSnapshot(const Snapshot& snapshot) const {
    (void)snapshot;
    return absl::OkStatus();
  }
  // An image of the state at AppliedIndex(), for Restore on another replica.
  // Volatile state machines only: a durable one is never copied.
  virtual absl::StatusOr<std::string> SnapshotData() = 0;
  // A durable state machine (its files hold its state and applied index)
  // returns the source of its images: the log is then compacted up to its
  // DurableIndex(), with no copy of the state, and followers get images
  // made on demand. Null: a volatile one, copied by SnapshotData() at each
  // compaction.
  virtual SnapshotSource* snapshot_source() { return nullptr; }
  // ... and where its images from a leader go: Restore then gets a
  // snapshot whose data is the sink's Reference().
  virtual SnapshotSink* snapshot_sink() { return nullptr; }
  // Makes everything applied so far survive a crash now (DurableIndex()
  // then reaches AppliedIndex()). An error is the disk's: the node stops.
  virtual absl::Status Sync() { return absl::OkStatus(); }
  // Durable state machines, without waiting for the disk: asks for
  // everything applied so far to survive a crash (a sync on a thread of
  // the state machine's own, or at a later OnTick) ...
  virtual void RequestSync() {}
  // ... and how far that got: the highest applied index known to survive
  // a crash (it never goes down). An error is the disk's: the node stops.
  // This default syncs now.
  virtual absl::StatusOr<uint64_t> DurableIndex() {
    const absl::Status s = Sync();
    if (!s.ok()) return s;
    return AppliedIndex();
  }
  virtual uint64_t AppliedIndex() const = 0;
  // Called on every tick, on the thread that applies: work a state machine
  // runs in the background finishes here even when no entry applies.
  virtual void OnTick() {}
  // True while work of the state machine's own (a file swap) keeps it from
  // applying. The node then goes on with Raft (persists, sends, commits)
  // and keeps the committed entries, bounded (Node::kMaxParkedBytes), until
  // this is false again (asked after each OnTick and before each apply).
  // Meanwhile it calls neither Sync, SnapshotData nor the snapshot source;
  // Restore may come (a snapshot replaces what waits) and waits for the
  // work to end.
  virtual bool ApplyPaused() const { return false; }
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_INTERFACES_H_
