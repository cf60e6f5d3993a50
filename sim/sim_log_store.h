// A LogStore on a SimDisk: every write is a checksummed record appended to
// the node's disk file; an in-memory mirror serves reads. Completions arrive
// as events after a simulated latency (longer with fsync, longer on a slow
// disk); a crash drops the store and its pending completions, and Recover()
// rebuilds the mirror from what survived on disk.
#ifndef RAFTSQL_SIM_SIM_LOG_STORE_H_
#define RAFTSQL_SIM_SIM_LOG_STORE_H_

#include <memory>

#include "core/interfaces.h"
#include "core/mirrored_log_store.h"
#include "core/prng.h"
#include "sim/event_queue.h"
#include "sim/sim_disk.h"

namespace raftsql::sim {

struct DiskLatency {
  Time write_min = 20;
  Time write_max = 200;
  Time fsync_min = 100;
  Time fsync_max = 2 * kMillisecond;
  // Multiplies every latency (a slow disk).
  uint64_t slowdown = 1;
  // Writes complete (and fsync) before Submit returns, as RocksDB's do.
  bool synchronous = false;
};

struct RecoveryReport {
  size_t records = 0;
  size_t truncated_bytes = 0;  // A torn or corrupt tail that was cut off.
};

class SimLogStore final : public core::MirroredLogStore {
 public:
  // `disk`, `queue` and `rng` are borrowed and outlive the store.
  SimLogStore(SimDisk* disk, EventQueue* queue, core::Prng* rng,
              DiskLatency latency);

  // Writes the initial configuration, durably (cluster bootstrap).
  void Bootstrap(const core::ConfState& cs);
  // Replays the disk's valid records and truncates anything after them.
  RecoveryReport Recover();

  void Submit(core::LogWrite write,
              std::function<void(absl::Status)> done) override;
  // The process crashed: pending completions never come. What it holds
  // stays readable (the checkers look at a down node's log).
  void Kill() {
    alive_.reset();
    submit_hook_ = nullptr;
    entries_hook_ = nullptr;
  }
  // Called on every Submit with the time the write will complete (a fault
  // point: the simulator may crash the node inside that window). A
  // synchronous write completes within its Submit, so there the hook
  // answers whether the process dies inside it: the write then fails
  // unsynced (ABORTED), and the node stops at once. What it sent before
  // the write (a leader's appends) went out; nothing after it does.
  void SetSubmitHook(std::function<bool(Time completion)> hook) {
    submit_hook_ = std::move(hook);
  }
  // Called on every Submit with the entries it writes, before anything is
  // written (a checker's view of what the node puts in its log).
  void SetEntriesHook(
      std::function<void(const std::vector<core::Entry>&)> hook) {
    entries_hook_ = std::move(hook);
  }
  // Writes and fsyncs a compaction record at once (no simulated latency).
  absl::Status Compact(const core::Snapshot& snapshot) override;

 private:
  void ApplyRecord(uint8_t type, std::string_view payload);
  void CompactMirror(const core::Snapshot& snapshot);
  void Checkpoint();

  SimDisk* disk_;
  EventQueue* queue_;
  core::Prng* rng_;
  DiskLatency latency_;
  std::function<bool(Time)> submit_hook_;
  std::function<void(const std::vector<core::Entry>&)> entries_hook_;
  // Completion time of the last submitted write: writes complete in order.
  Time last_completion_ = 0;
  // Expires with the store, so completions scheduled before a crash are
  // dropped.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_SIM_LOG_STORE_H_
