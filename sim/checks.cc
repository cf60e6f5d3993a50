// End-of-run checks: replicas converge to identical state, no acknowledged
// write is lost, every node's committed log agrees with what was applied
// anywhere (log matching), and the client history is linearizable.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

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
      auto it = committed_.find(i);
      if (it == committed_.end() || it->second.term != (*e)[0].term ||
          it->second.data != (*e)[0].data) {
        Violation(absl::StrFormat(
            "log matching: n%d's committed entry %d differs", s->id, i));
        return;
      }
    }
  }
}

bool Simulation::MajorityHolds(const std::set<uint64_t>& voters, uint64_t self,
                               uint64_t index, uint64_t term,
                               std::string* lacking) const {
  size_t holding = 0;
  for (uint64_t v : voters) {
    if (v == self) {
      ++holding;  // Its Raft log holds it: it just committed it.
      continue;
    }
    if (v == 0 || v > slots_.size()) continue;
    const Slot& o = *slots_[v - 1];
    const SimLogStore* log = o.store ? o.store.get() : o.down_store.get();
    if (log == nullptr) continue;
    if (index < log->FirstIndex()) {  // Below its snapshot.
      ++holding;
      continue;
    }
    absl::StatusOr<uint64_t> held = log->Term(index);
    if (held.ok() && *held == term) {
      ++holding;
    } else {
      absl::StrAppend(lacking, " n", v, " (log ", log->FirstIndex(), "-",
                      log->LastIndex(),
                      held.ok() ? absl::StrCat(", term ", *held) : "", ")");
    }
  }
  return holding * 2 > voters.size();
}

bool Simulation::ElectableWithout(const std::set<uint64_t>& voters,
                                  uint64_t index, uint64_t term,
                                  std::string* who) const {
  // A node's log as an election weighs it: a running node's Raft log, a
  // down node's log as it crashed (a snapshot holds what it covers).
  struct Tail {
    uint64_t last_term = 0;
    uint64_t last_index = 0;
    bool holds = false;
  };
  auto tail = [&](const Slot& n) -> std::optional<Tail> {
    if (n.up && n.node) {
      const core::RaftLog& log = n.node->raw().raft().log();
      return Tail{
          log.LastTerm(), log.LastIndex(),
          index < log.FirstIndex() || log.ZeroTermOnError(index) == term};
    }
    const SimLogStore* log = n.down_store.get();
    if (log == nullptr) return std::nullopt;
    const absl::StatusOr<uint64_t> last = log->Term(log->LastIndex());
    const absl::StatusOr<uint64_t> held = log->Term(index);
    return Tail{last.ok() ? *last : 0, log->LastIndex(),
                index < log->FirstIndex() || (held.ok() && *held == term)};
  };
  std::map<uint64_t, Tail> tails;
  for (const auto& n : slots_) {
    if (std::optional<Tail> t = tail(*n)) tails[n->id] = *t;
  }
  for (const auto& [candidate, c] : tails) {
    if (c.holds) continue;
    std::vector<uint64_t> granting;
    for (uint64_t v : voters) {
      auto it = tails.find(v);
      if (it == tails.end()) continue;
      const Tail& t = it->second;
      if (std::tie(c.last_term, c.last_index) >=
          std::tie(t.last_term, t.last_index)) {
        granting.push_back(v);
      }
    }
    if (granting.size() * 2 > voters.size()) {
      *who = absl::StrFormat(
          "n%d, whose log lacks it (last entry %d/%d), is as up to date as "
          "n%s",
          candidate, c.last_term, c.last_index, absl::StrJoin(granting, " n"));
      return true;
    }
  }
  return false;
}

void Simulation::CheckCommits(Slot& s) {
  const core::Raft& raft = s.node->raw().raft();
  const core::RaftLog& log = raft.log();
  const uint64_t committed = log.committed();
  const std::set<uint64_t>& voters = raft.tracker().voters();
  uint64_t& checked = commit_checked_[s.id];
  checked = std::min(checked, committed);  // A restart starts lower.
  if (committed > checked && raft.state() == core::StateType::kLeader &&
      log.ZeroTermOnError(committed) != raft.term()) {
    ++result_.earlier_term_commits;  // Only a broken leader gets here.
  }
  for (uint64_t i = std::max(checked, log.FirstIndex() - 1) + 1; i <= committed;
       ++i) {
    const uint64_t term = log.ZeroTermOnError(i);
    if (term == 0) continue;
    auto [it, first] = committed_terms_.emplace(i, std::make_pair(term, s.id));
    if (!first) {
      if (it->second.first != term) {
        return Violation(absl::StrFormat(
            "commit safety: n%d committed %d/%d, but n%d committed %d/%d", s.id,
            term, i, it->second.second, it->second.first, i));
      }
      continue;
    }
    // The first to commit it (its leader): a majority of the voters hold
    // it in their logs or below their snapshots, in the configuration the
    // node had before this event or the one it has now (a membership
    // change that applies within the event changes the quorum of what
    // commits after it). A down node counts with the log it had when it
    // crashed; the committing node with its Raft log (a leader counts its
    // own entries before its write completes, and persists them before it
    // acts on the commit).
    std::string lacking;
    std::string lacking_before;
    auto before = voters_before_.find(s.id);
    if (!MajorityHolds(voters, s.id, i, term, &lacking) &&
        (before == voters_before_.end() ||
         !MajorityHolds(before->second, s.id, i, term, &lacking_before))) {
      return Violation(absl::StrFormat(
          "commit safety: n%d committed %d/%d, held by no majority of %d "
          "voters (lacking:%s)%s",
          s.id, term, i, voters.size(), lacking,
          lacking_before.empty() || lacking_before == lacking
              ? ""
              : absl::StrCat(" nor of the configuration before (lacking:",
                             lacking_before, ")")));
    }
    // And no node without it can be elected (Figure 8): in a configuration
    // where a majority holds it, every holder's log outranks such a node's.
    std::string who;
    if (ElectableWithout(voters, i, term, &who) &&
        (before == voters_before_.end() ||
         ElectableWithout(before->second, i, term, &who))) {
      return Violation(absl::StrFormat(
          "commit safety: n%d committed %d/%d, but %s: it could be elected "
          "and overwrite it",
          s.id, term, i, who));
    }
  }
  checked = committed;
  std::set<uint64_t>& before = voters_before_[s.id];
  if (before != voters) before = voters;  // Copied only when it changed.
}

void Simulation::CheckOverwrites(const Slot& s,
                                 const std::vector<core::Entry>& entries) {
  if (entries.front().index > result_.commit_index) return;
  for (const core::Entry& e : entries) {
    if (e.index > result_.commit_index) return;
    auto it = committed_.find(e.index);
    if (it == committed_.end() || it->second.term == e.term) continue;
    // A stale leader may append its own entry where the cluster committed
    // another (it never commits it); what must never happen is a log that
    // held the committed entry losing it.
    const absl::StatusOr<uint64_t> held = s.store->Term(e.index);
    if (held.ok() && *held == it->second.term) {
      Violation(absl::StrFormat(
          "log safety: n%d writes %d/%d over %d/%d, which had been applied",
          s.id, e.term, e.index, it->second.term, e.index));
      return;
    }
  }
}

void Simulation::CheckLeaderCompleteness(Slot& s) {
  const core::Raft& raft = s.node->raw().raft();
  const core::RaftLog& log = raft.log();
  for (auto it = committed_.lower_bound(log.FirstIndex());
       it != committed_.end(); ++it) {
    const uint64_t index = it->first;
    const uint64_t term = it->second.term;
    if (it->second.max_term >= raft.term()) continue;
    const absl::StatusOr<uint64_t> ours = log.Term(index);
    if (index > log.LastIndex() || !ours.ok() || *ours != term) {
      Violation(absl::StrFormat(
          "leader completeness: n%d leads term %d without %d/%d, committed "
          "in an earlier term (its log ends at %d%s)",
          s.id, raft.term(), term, index, log.LastIndex(),
          ours.ok() && index <= log.LastIndex()
              ? absl::StrFormat(", with %d/%d there", *ours, index)
              : ""));
      return;
    }
  }
}

void Simulation::CheckProgress(Slot& s) {
  const core::Raft& leader = s.node->raw().raft();
  if (leader.state() != core::StateType::kLeader) return;
  for (const auto& [id, pr] : leader.tracker().progress()) {
    if (id == s.id || id == 0 || id > slots_.size() || pr.match == 0) continue;
    const Slot& f = *slots_[id - 1];
    if (!f.up || !f.node) continue;
    const core::Raft& follower = f.node->raw().raft();
    // A follower in a later term may have had its log changed by a later
    // leader. One in an earlier term never answered this leader, whose
    // matches come from answers of its own term: whatever it records must
    // hold there too.
    if (follower.term() > leader.term()) continue;
    const core::RaftLog& log = follower.log();
    const absl::StatusOr<uint64_t> ours = leader.log().Term(pr.match);
    if (!ours.ok()) continue;  // Compacted here: not checkable.
    if (pr.match < log.FirstIndex()) continue;  // In its snapshot.
    const absl::StatusOr<uint64_t> theirs = log.Term(pr.match);
    if (pr.match > log.LastIndex() || !theirs.ok() || *theirs != *ours) {
      Violation(absl::StrFormat(
          "progress truthfulness: n%d (term %d) records n%d as holding "
          "%d/%d, but n%d's log ends at %d%s",
          s.id, leader.term(), id, *ours, pr.match, id, log.LastIndex(),
          theirs.ok() && pr.match <= log.LastIndex()
              ? absl::StrFormat(" with %d/%d there", *theirs, pr.match)
              : ""));
      return;
    }
  }
}

void Simulation::CheckVote(const core::Message& m) {
  if (m.type != core::MessageType::kVoteResp || m.reject) return;
  auto [it, first] = votes_granted_.emplace(
      std::make_pair(m.from, m.term),
      GrantedVote{m.to, slots_[m.from - 1]->incarnation});
  if (!first && it->second.candidate != m.to) {
    Violation(
        absl::StrFormat("vote safety: n%d voted for n%d and for n%d in term %d",
                        m.from, it->second.candidate, m.to, m.term));
  }
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
