// Divergence checks (DESIGN.md §3): replicas that applied the same entries
// hold the same divergence hash at every index. Each replica keeps its hash
// at fixed checkpoints (every `every` indexes) and compares them with its
// peers'; one that differs from the majority stops serving reads.
//
// Thread-safety: Checkpoints is thread-safe; Record and Commit run on the
// apply thread.
#ifndef RAFTSQL_SM_DIVERGENCE_H_
#define RAFTSQL_SM_DIVERGENCE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace raftsql::sm {

struct Checkpoint {
  uint64_t index = 0;
  uint64_t hash = 0;
  bool operator==(const Checkpoint&) const = default;
};

class CheckpointLog {
 public:
  // How many recent checkpoints are kept.
  static constexpr size_t kMaxCheckpoints = 64;

  // Checkpoints fall on indexes that are multiples of `every` (> 0).
  explicit CheckpointLog(uint64_t every);

  // The running batch applied the entry at `index`, the hash then `hash`.
  void Record(uint64_t index, uint64_t hash);
  // The batch committed: its checkpoints count. Or it rolled back: they
  // are forgotten (the redo records them again).
  void Commit();
  void Abandon() { pending_.clear(); }
  // The kept checkpoints, oldest first.
  std::vector<Checkpoint> Checkpoints() const;
  uint64_t every() const { return every_; }
  // Kept and pending checkpoints fall on multiples of every(), ascending;
  // at most kMaxCheckpoints kept.
  void CheckInvariants() const;

 private:
  const uint64_t every_;
  std::vector<Checkpoint> pending_;  // Apply thread only.
  mutable std::mutex mu_;
  std::deque<Checkpoint> kept_;  // Invariant: indexes ascending, bounded.
};

// What a replica concludes from the checkpoints of its peers.
struct DivergenceVerdict {
  bool diverged = false;
  uint64_t index = 0;  // The checkpoint compared (0: none in common).
  std::string reason;  // Why, naming the index and the hashes.
};

// Compares `mine` with `peers` (by node id) at the latest checkpoint index
// that this replica and at least one peer hold; `replicas` is how many
// there are in all, this one included (peers that did not answer, or have
// not reached the index yet, count as unknown). The replica has diverged
// once those agreeing with it could no longer be a majority of `replicas`,
// even if every unknown one agreed: a replica outvoted, or any replica
// when no hash can reach a majority (no side can then be trusted).
DivergenceVerdict Decide(
    const std::vector<Checkpoint>& mine,
    const std::map<uint64_t, std::vector<Checkpoint>>& peers, size_t replicas);

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_DIVERGENCE_H_
