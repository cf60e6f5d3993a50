// The read side of the durable log, as the Raft core sees it (etcd's Storage).
//
// The runtime writes entries, HardState and snapshots to its LogStore; the core
// only reads them back through this interface. Implementations must be
// consistent with what the runtime persisted in earlier Ready cycles.
//
// Error codes:
//   OutOfRange  (IsCompacted)    the index is below the first retained entry.
//   Unavailable (IsEntryUnavailable)  the index is beyond the last entry.
// Any other error is an I/O failure; the core treats it as fatal.
#ifndef RAFTSQL_CORE_STORAGE_H_
#define RAFTSQL_CORE_STORAGE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/types.h"

namespace raftsql::core {

absl::Status CompactedError();
absl::Status EntryUnavailableError();
bool IsCompacted(const absl::Status& status);
bool IsEntryUnavailable(const absl::Status& status);

struct InitialState {
  HardState hard_state;
  ConfState conf_state;
};

class Storage {
 public:
  virtual ~Storage() = default;

  virtual absl::StatusOr<InitialState> GetInitialState() const = 0;
  // Entries in [lo, hi), at most `max_bytes` of them but always at least one
  // if any are in range.
  virtual absl::StatusOr<std::vector<Entry>> Entries(
      uint64_t lo, uint64_t hi, uint64_t max_bytes) const = 0;
  // Term of entry i; i may be FirstIndex()-1 (the snapshot's index).
  virtual absl::StatusOr<uint64_t> Term(uint64_t i) const = 0;
  // Index of the first entry available (snapshot index + 1).
  virtual uint64_t FirstIndex() const = 0;
  virtual uint64_t LastIndex() const = 0;
  virtual absl::StatusOr<Snapshot> GetSnapshot() const = 0;
};

// Keeps at most `max_bytes` worth of entries, but never less than one.
void LimitSize(std::vector<Entry>& entries, uint64_t max_bytes);

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_STORAGE_H_
