// End-of-run checks: replicas converge to identical state, no acknowledged
// write is lost, every node's committed log agrees with what was applied
// anywhere (log matching), and the client history is linearizable.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "sim/simulation.h"
#include "sim/simulation_internal.h"

namespace raftsql::sim {

// Search budget of the linearizability checker, per key.
constexpr uint64_t kMaxCheckSteps = 2'000'000;

void Simulation::Violation(const std::string& what) {
  if (!violation_.empty()) return;
  violation_ = what;
  Trace(absl::StrCat("VIOLATION: ", what));
}

bool Simulation::Converged() const {
  // Nodes removed from the configuration no longer receive entries: only the
  // members of the current leader's configuration must agree.
  const std::vector<uint64_t> members = Members();
  if (members.empty()) return false;
  uint64_t commit = 0;
  for (uint64_t id : members) {
    const Slot& s = *slots_[id - 1];
    if (!s.up || s.node->persisting()) return false;
    commit = std::max(commit, s.node->raw().raft().log().committed());
  }
  for (uint64_t id : members) {
    if (slots_[id - 1]->sm->machine().AppliedIndex() != commit) return false;
  }
  const uint64_t digest = slots_[members[0] - 1]->sm->Digest();
  for (uint64_t id : members) {
    if (slots_[id - 1]->sm->Digest() != digest) return false;
  }
  return true;
}

void Simulation::CheckFinalState() {
  const std::vector<uint64_t> members = Members();
  for (const auto& s : slots_) {
    if (std::count(members.begin(), members.end(), s->id) == 0) continue;
    // Durability: every acknowledged write took effect on every replica.
    for (const auto& [client, op] : acked_writes_) {
      if (s->sm->LastOp(client) < op) {
        Violation(absl::StrFormat(
            "durability: n%d lost client %d's acknowledged write %d", s->id,
            client, op));
        return;
      }
    }
    // Log matching: the committed log is exactly what was applied anywhere.
    const core::RaftLog& log = s->node->raw().raft().log();
    for (uint64_t i = log.FirstIndex(); i <= log.committed(); ++i) {
      absl::StatusOr<std::vector<core::Entry>> e =
          log.Slice(i, i + 1, UINT64_MAX);
      CHECK(e.ok());
      auto it = committed_.find(i);
      if (it == committed_.end() || it->second.first != (*e)[0].term ||
          it->second.second != (*e)[0].data) {
        Violation(absl::StrFormat(
            "log matching: n%d's committed entry %d differs", s->id, i));
        return;
      }
    }
  }
}

void Simulation::CheckLinearizability() {
  const HistoryReport report = CheckHistory(history_, kMaxCheckSteps);
  result_.linearizability = CheckResultName(report.result);
  if (report.result == CheckResult::kIllegal) {
    Violation(absl::StrFormat(
        "linearizability: the history of key k%d is not linearizable (%d "
        "operations in all)",
        report.key, report.operations));
  }
}

}  // namespace raftsql::sim
