// An in-memory Storage: used by core tests and as the in-memory mirror of a
// node's durable log in the simulator and the production runtime. Not
// thread-safe; its owner serialises access.
#ifndef RAFTSQL_CORE_MEMORY_STORAGE_H_
#define RAFTSQL_CORE_MEMORY_STORAGE_H_

#include <vector>

#include "core/storage.h"

namespace raftsql::core {

class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  absl::StatusOr<InitialState> GetInitialState() const override;
  absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                             uint64_t max_bytes) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  absl::StatusOr<Snapshot> GetSnapshot() const override;

  void SetHardState(const HardState& hs) { hard_state_ = hs; }
  const HardState& hard_state() const { return hard_state_; }
  void SetConfState(const ConfState& cs) { snapshot_.metadata.conf_state = cs; }

  // Appends entries, truncating any conflicting suffix. Entries already
  // compacted away are skipped. Precondition: no gap after LastIndex().
  void Append(const std::vector<Entry>& entries);
  // Replaces the whole log with `snapshot`. Fails if it is older than ours.
  absl::Status ApplySnapshot(const Snapshot& snapshot);
  // Records a snapshot at `index` (<= LastIndex()) with `data`.
  absl::StatusOr<Snapshot> CreateSnapshot(uint64_t index, const ConfState& cs,
                                          std::string data);
  // Drops entries below `compact_index`. Precondition: <= LastIndex().
  absl::Status Compact(uint64_t compact_index);

 private:
  HardState hard_state_;
  Snapshot snapshot_;
  // entries_[0] is a dummy holding the snapshot's index and term.
  // Invariant: entries_[i].index == entries_[0].index + i.
  std::vector<Entry> entries_;
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_MEMORY_STORAGE_H_
