// Test-only: a LogStore over MemoryStorage whose writes complete at once
// (durable as soon as submitted); it can be told to fail.
#ifndef RAFTSQL_CORE_TESTING_MEMORY_LOG_STORE_H_
#define RAFTSQL_CORE_TESTING_MEMORY_LOG_STORE_H_

#include <functional>
#include <vector>

#include "core/check.h"
#include "core/interfaces.h"
#include "core/memory_storage.h"

namespace raftsql::core::testing {

class MemoryLogStore final : public LogStore {
 public:
  void Submit(LogWrite w, std::function<void(absl::Status)> done) override {
    if (fail) return done(absl::DataLossError("disk on fire"));
    ++writes;
    if (on_submit) on_submit(w);
    if (w.snapshot.has_value()) CHECK(mem.ApplySnapshot(*w.snapshot).ok());
    mem.Append(w.entries);
    if (w.hard_state.has_value()) mem.SetHardState(*w.hard_state);
    done(absl::OkStatus());
  }
  absl::Status Compact(const Snapshot& s) override {
    absl::StatusOr<Snapshot> made =
        mem.CreateSnapshot(s.metadata.index, s.metadata.conf_state, s.data);
    if (!made.ok()) return made.status();
    return mem.Compact(s.metadata.index);
  }
  absl::StatusOr<InitialState> GetInitialState() const override {
    return mem.GetInitialState();
  }
  absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                             uint64_t max) const override {
    return mem.Entries(lo, hi, max);
  }
  absl::StatusOr<uint64_t> Term(uint64_t i) const override {
    return mem.Term(i);
  }
  uint64_t FirstIndex() const override { return mem.FirstIndex(); }
  uint64_t LastIndex() const override { return mem.LastIndex(); }
  absl::StatusOr<Snapshot> GetSnapshot() const override {
    return mem.GetSnapshot();
  }

  MemoryStorage mem;
  bool fail = false;
  int writes = 0;
  // Called with each write before it takes effect.
  std::function<void(const LogWrite&)> on_submit;
};

}  // namespace raftsql::core::testing

#endif  // RAFTSQL_CORE_TESTING_MEMORY_LOG_STORE_H_
