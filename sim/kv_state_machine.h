// A deterministic key/register state machine for the simulator's workload:
// commands write a value to a key. Client sessions (Raft thesis §6.3) make a
// retried or duplicated command apply at most once: each client's operation
// ids increase, and an id at or below the last one applied is skipped.
#ifndef RAFTSQL_SIM_KV_STATE_MACHINE_H_
#define RAFTSQL_SIM_KV_STATE_MACHINE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/interfaces.h"

namespace raftsql::sim {

struct KvCommand {
  uint64_t client = 0;
  uint64_t op = 0;
  uint64_t key = 0;
  int64_t value = 0;

  std::string Encode() const;
  static std::optional<KvCommand> Decode(const std::string& data);
};

class KvStateMachine final : public core::StateMachine {
 public:
  // Result strings of Apply.
  static constexpr char kApplied[] = "applied";
  static constexpr char kDuplicate[] = "duplicate";

  std::string Apply(const core::Entry& entry) override;
  using core::StateMachine::ApplyBatch;
  void ApplyBatch(const std::vector<core::Entry>& entries,
                  std::vector<std::string>* results) override;
  absl::Status Restore(const core::Snapshot& snapshot) override;
  uint64_t AppliedIndex() const override { return applied_; }
  absl::StatusOr<std::string> SnapshotData() override { return Serialize(); }
  // Pauses (ApplyPaused) for `ticks` ticks each time its applied index
  // passes a multiple of `every`, as a file swap pauses the SQLite state
  // machine (0: never); counts the pauses into `*pauses`.
  void PauseApplies(uint64_t every, int ticks, uint64_t* pauses) {
    pause_every_ = every;
    pause_ticks_ = ticks;
    pauses_ = pauses;
  }
  bool ApplyPaused() const override { return paused_for_ > 0; }
  void OnTick() override {
    if (paused_for_ > 0) --paused_for_;
  }

  // 0 for a key never written.
  int64_t Get(uint64_t key) const;
  // Last op id applied for `client`, 0 if none.
  uint64_t LastOp(uint64_t client) const;
  std::string Serialize() const;
  // A digest of the whole state (divergence detection).
  uint64_t Digest() const;

 private:
  std::map<uint64_t, int64_t> data_;
  std::map<uint64_t, uint64_t> sessions_;
  uint64_t applied_ = 0;
  uint64_t pause_every_ = 0;
  int pause_ticks_ = 0;
  int paused_for_ = 0;  // Ticks left of the pause.
  uint64_t* pauses_ = nullptr;
};

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_KV_STATE_MACHINE_H_
