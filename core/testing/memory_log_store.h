// Test-only: a LogStore over MemoryStorage whose writes complete at once
// (durable as soon as submitted); it can be told to fail.
#ifndef RAFTSQL_CORE_TESTING_MEMORY_LOG_STORE_H_
#define RAFTSQL_CORE_TESTING_MEMORY_LOG_STORE_H_

#include <functional>
#include <vector>

#include "core/check.h"
#include "core/memory_storage.h"
#include "core/mirrored_log_store.h"

namespace raftsql::core::testing {

class MemoryLogStore final : public MirroredLogStore {
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

  MemoryStorage& mem{mirror_};  // What it holds, for tests to change.
  bool fail = false;
  int writes = 0;
  // Called with each write before it takes effect.
  std::function<void(const LogWrite&)> on_submit;
};

}  // namespace raftsql::core::testing

#endif  // RAFTSQL_CORE_TESTING_MEMORY_LOG_STORE_H_
