// End-of-run checks: replicas converge to identical state, no acknowledged
// write is lost, every node's committed log agrees with what was applied
// anywhere (log matching), and the client history is linearizable.
#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "sim/simulation.h"
#include "sim/simulation_internal.h"
#include "sm/divergence.h"

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
  // Divergence checks: honest replicas never conclude that one diverged
  // (the production nodes would stop its reads).
  auto checkpoints = [this](uint64_t id) {
    std::vector<sm::Checkpoint> out;
    for (const auto& [index, hash] : slots_[id - 1]->sm->Checkpoints()) {
      out.push_back(sm::Checkpoint{index, hash});
    }
    return out;
  };
  for (uint64_t id : members) {
    std::map<uint64_t, std::vector<sm::Checkpoint>> peers;
    for (uint64_t other : members) {
      if (other != id) peers[other] = checkpoints(other);
    }
    const sm::DivergenceVerdict v =
        sm::Decide(checkpoints(id), peers, members.size());
    if (v.diverged) {
      Violation(absl::StrFormat("divergence check: n%d %s", id, v.reason));
      return;
    }
  }
  // Membership: every member, at the same applied index (converged), has
  // taken every conf change the leader has.
  const core::ConfState config =
      slots_[members[0] - 1]->node->raw().raft().tracker().GetConfState();
  for (uint64_t id : members) {
    const core::ConfState mine =
        slots_[id - 1]->node->raw().raft().tracker().GetConfState();
    if (mine != config) {
      Violation(absl::StrFormat(
          "membership: n%d has voters {%s} learners {%s}, n%d has {%s} {%s}",
          id, absl::StrJoin(mine.voters, ","),
          absl::StrJoin(mine.learners, ","), members[0],
          absl::StrJoin(config.voters, ","),
          absl::StrJoin(config.learners, ",")));
      return;
    }
  }
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
      auto it = safety_->applied().find(i);
      if (it == safety_->applied().end() || it->second.term != (*e)[0].term ||
          it->second.data != (*e)[0].data) {
        Violation(absl::StrFormat(
            "log matching: n%d's committed entry %d differs", s->id, i));
        return;
      }
    }
  }
}

void Simulation::OnSend(const core::Message& m) {
  if (m.type != core::MessageType::kVoteResp || m.reject) return;
  safety_->OnSend(m, slots_[m.from - 1]->incarnation);
  if (fault_phase_ && plan_.crash_after_vote_probability > 0 &&
      crashes_after_votes_ < kMaxCrashesAfterVotes &&
      vote_crash_rng_.Chance(plan_.crash_after_vote_probability)) {
    ++crashes_after_votes_;
    // After this event (the vote is on its way); back before the election
    // is over.
    Slot* s = slots_[m.from - 1].get();
    const uint64_t incarnation = s->incarnation;
    queue_.After(1, 0xc4a7, [this, s, incarnation] {
      if (!s->up || s->incarnation != incarnation) return;
      ++result_.faults["crash after a vote"];
      CrashNode(*s, "right after voting");
      RestartLater(*s, kMillisecond * vote_crash_rng_.Range(20, 150), 0xc4a8);
    });
  }
}

void Simulation::CheckLists() {
  if (list_reads_.empty()) return;
  const std::vector<uint64_t> members = Members();
  CHECK(!members.empty());
  Slot& reference = *slots_[members[0] - 1];
  std::set<uint64_t> keys;
  for (const ListRead& r : list_reads_) keys.insert(r.key);
  for (uint64_t key : keys) {
    const std::vector<int64_t> final_list = reference.sm->ReadList(key);
    const std::set<int64_t> distinct(final_list.begin(), final_list.end());
    if (distinct.size() != final_list.size()) {
      Violation(absl::StrFormat("list l%d: an append was applied twice", key));
      return;
    }
    for (const auto& [ack, time] : list_acks_) {
      if (ack.first == key && distinct.count(ack.second) == 0) {
        Violation(absl::StrFormat("list l%d: acknowledged append %d is lost",
                                  key, ack.second));
        return;
      }
    }
  }
  for (const ListRead& r : list_reads_) {
    const std::vector<int64_t> final_list = reference.sm->ReadList(r.key);
    if (r.values.size() > final_list.size() ||
        !std::equal(r.values.begin(), r.values.end(), final_list.begin())) {
      Violation(absl::StrFormat(
          "list l%d: a read of %d items is not a prefix of the final list",
          r.key, r.values.size()));
      return;
    }
    const std::set<int64_t> seen(r.values.begin(), r.values.end());
    for (const auto& [ack, time] : list_acks_) {
      if (ack.first == r.key && time < r.call && seen.count(ack.second) == 0) {
        Violation(absl::StrFormat(
            "list l%d: a read missed append %d acknowledged before it began",
            r.key, ack.second));
        return;
      }
    }
  }
}

void Simulation::CheckLinearizability() {
  const HistoryReport report = CheckHistory(history_, kMaxCheckSteps);
  result_.linearizability = CheckResultName(report.result);
  if (report.result == CheckResult::kIllegal && options_.trace) {
    for (const RegisterOp& op : history_[report.key]) {
      Trace(absl::StrFormat(
          "history k%d: client %d %s %d [%d, %d]", report.key, op.client,
          op.is_write ? "write" : "read", op.value, op.call,
          op.ret == kNeverReturned ? -1 : static_cast<int64_t>(op.ret)));
    }
  }
  if (report.result == CheckResult::kIllegal) {
    Violation(absl::StrFormat(
        "linearizability: the history of key k%d is not linearizable (%d "
        "operations in all)",
        report.key, report.operations));
  }
}

}  // namespace raftsql::sim
