// A LogStore whose read side is an in-memory mirror (MemoryStorage) of what
// it wrote: the RocksDB store and the simulator's SimDisk store both keep
// the retained log in memory and serve the core's reads from it.
#ifndef RAFTSQL_CORE_MIRRORED_LOG_STORE_H_
#define RAFTSQL_CORE_MIRRORED_LOG_STORE_H_

#include <vector>

#include "core/interfaces.h"
#include "core/memory_storage.h"

namespace raftsql::core {

class MirroredLogStore : public LogStore {
 public:
  absl::StatusOr<InitialState> GetInitialState() const override {
    return mirror_.GetInitialState();
  }
  absl::StatusOr<std::vector<Entry>> Entries(
      uint64_t lo, uint64_t hi, uint64_t max_bytes) const override {
    return mirror_.Entries(lo, hi, max_bytes);
  }
  absl::StatusOr<uint64_t> Term(uint64_t i) const override {
    return mirror_.Term(i);
  }
  uint64_t FirstIndex() const override { return mirror_.FirstIndex(); }
  uint64_t LastIndex() const override { return mirror_.LastIndex(); }
  absl::StatusOr<Snapshot> GetSnapshot() const override {
    return mirror_.GetSnapshot();
  }

 protected:
  // Invariant: holds exactly what was submitted (durable or not yet).
  MemoryStorage mirror_;
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_MIRRORED_LOG_STORE_H_
