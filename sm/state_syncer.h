// StateSyncer: makes a durable state machine's applied state survive a
// crash without the apply thread waiting for the disk (issue 14: the WAL's
// fsync before a log compaction held a node's Raft loop 102-104 ms under
// write load, on all three nodes in the same second, since they compact at
// the same index).
//
// The apply thread asks for everything applied up to an index (Request);
// the sync runs on a thread of the syncer's own (platform files) or at the
// apply thread's next Poll (the simulator's disk: at its ticks), and
// Durable() then reaches that index. The node compacts its log only up to
// Durable() (core::StateMachine::DurableIndex), so a crash at any point
// finds every entry above the database's recovered index still in the log.
//
// Requests coalesce: at most one sync runs and one waits, for the highest
// index asked. A failed sync is the disk's: Durable() returns its error
// from then on (the node stops).
//
// Thread-safety: Request, Poll and Synced on the apply thread; Durable on
// any; the sync function on the syncer's thread (or in Poll).
#ifndef RAFTSQL_SM_STATE_SYNCER_H_
#define RAFTSQL_SM_STATE_SYNCER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace raftsql::sm {

class StateSyncer {
 public:
  // Makes every commit done before the call durable. `after_swap`: the
  // database file was swapped (file_swap.h) since the last sync that
  // succeeded, so the rename's directory is synced too.
  using SyncFn = std::function<absl::Status(bool after_swap)>;

  // `durable`: the index already durable (a sync at open). `threaded`:
  // syncs on a thread of its own; else Poll runs them.
  StateSyncer(uint64_t durable, SyncFn sync, bool threaded);
  // Waits for a sync under way; drops one that waits.
  ~StateSyncer();
  StateSyncer(const StateSyncer&) = delete;
  StateSyncer& operator=(const StateSyncer&) = delete;

  // Everything applied up to `index` is committed; make it durable.
  // `swaps`: file swaps completed so far (a count that only grows).
  void Request(uint64_t index, uint64_t swaps);
  // Not threaded: runs the sync a Request asked for, if any.
  void Poll();
  // A sync done by the caller itself made `index` durable, with `swaps`.
  void Synced(uint64_t index, uint64_t swaps);
  // The highest index known durable (it never goes down), or the first
  // failed sync's error.
  absl::StatusOr<uint64_t> Durable() const;
  // Syncs run so far (tests).
  uint64_t syncs() const;

 private:
  void Run();
  // Runs one sync for what is wanted; `l` holds mu_ (released meanwhile).
  void SyncOnce(std::unique_lock<std::mutex>& l);

  const SyncFn sync_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  uint64_t durable_;
  uint64_t wanted_ = 0;        // The highest index asked for.
  uint64_t wanted_swaps_ = 0;  // Swaps when it was asked.
  uint64_t synced_swaps_ = 0;  // Swaps covered by the last sync.
  absl::Status error_;
  bool stop_ = false;
  uint64_t syncs_ = 0;
  std::thread thread_;  // Last: starts once the members above exist.
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_STATE_SYNCER_H_
