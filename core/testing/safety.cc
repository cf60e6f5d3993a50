#include "core/testing/safety.h"

#include <algorithm>
#include <optional>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace raftsql::core::testing {

SafetyChecker::SafetyChecker(
    Nodes nodes, View view,
    std::function<void(const std::string&)> on_violation)
    : nodes_(std::move(nodes)),
      view_(std::move(view)),
      on_violation_(std::move(on_violation)) {}

void SafetyChecker::Violation(const std::string& what) {
  if (!violation_.empty()) return;
  violation_ = what;
  if (on_violation_) on_violation_(what);
}

const std::pair<uint64_t, uint64_t>* SafetyChecker::VoteOf(
    uint64_t voter, uint64_t term) const {
  auto it = votes_.find({voter, term});
  return it == votes_.end() ? nullptr : &it->second;
}

uint64_t SafetyChecker::LeaderOf(uint64_t term) const {
  auto it = leader_of_term_.find(term);
  return it == leader_of_term_.end() ? kNone : it->second;
}

void SafetyChecker::AfterEvent(uint64_t id) {
  const NodeView v = view_(id);
  if (v.raft == nullptr) return;
  max_term_ = std::max(max_term_, v.raft->term());
  CheckCommits(id, *v.raft);
  if (v.raft->state() == StateType::kLeader) CheckProgress(id, *v.raft);
}

void SafetyChecker::OnBecameLeader(uint64_t id) {
  const NodeView v = view_(id);
  if (v.raft == nullptr) return;
  const Raft& raft = *v.raft;
  auto [leader, inserted] = leader_of_term_.emplace(raft.term(), id);
  if (leader->second != id) {
    Violation(absl::StrFormat("election safety: n%d and n%d both lead term %d",
                              leader->second, id, raft.term()));
  }
  // Leader completeness (Raft §5.4): checked for entries first applied
  // while no node had reached the leader's term (so they committed in an
  // earlier one) that its log still holds (older ones are in its
  // snapshot).
  const RaftLog& log = raft.log();
  for (auto it = applied_.lower_bound(log.FirstIndex()); it != applied_.end();
       ++it) {
    const uint64_t index = it->first;
    const uint64_t term = it->second.term;
    if (it->second.max_term >= raft.term()) continue;
    const absl::StatusOr<uint64_t> ours = log.Term(index);
    if (index > log.LastIndex() || !ours.ok() || *ours != term) {
      Violation(absl::StrFormat(
          "leader completeness: n%d leads term %d without %d/%d, committed "
          "in an earlier term (its log ends at %d%s)",
          id, raft.term(), term, index, log.LastIndex(),
          ours.ok() && index <= log.LastIndex()
              ? absl::StrFormat(", with %d/%d there", *ours, index)
              : ""));
      return;
    }
  }
}

bool SafetyChecker::OnApply(uint64_t id, const Entry& e) {
  auto [it, inserted] =
      applied_.emplace(e.index, AppliedEntry{e.term, e.data, max_term_});
  if (!inserted && (it->second.term != e.term || it->second.data != e.data)) {
    Violation(absl::StrFormat(
        "state machine safety: n%d applied %d/%d but %d/%d was applied before",
        id, e.term, e.index, it->second.term, e.index));
  }
  if (e.index <= applied_index_) return false;
  applied_index_ = e.index;
  return true;
}

void SafetyChecker::OnWrite(uint64_t id, const Storage& log,
                            const std::vector<Entry>& entries) {
  if (entries.empty() || entries.front().index > applied_index_) return;
  for (const Entry& e : entries) {
    if (e.index > applied_index_) return;
    auto it = applied_.find(e.index);
    if (it == applied_.end() || it->second.term == e.term) continue;
    // A stale leader may append its own entry where the cluster committed
    // another (it never commits it); what must never happen is a log that
    // held the committed entry losing it.
    const absl::StatusOr<uint64_t> held = log.Term(e.index);
    if (held.ok() && *held == it->second.term) {
      Violation(absl::StrFormat(
          "log safety: n%d writes %d/%d over %d/%d, which had been applied", id,
          e.term, e.index, it->second.term, e.index));
      return;
    }
  }
}

void SafetyChecker::OnSend(const Message& m, uint64_t incarnation) {
  if (m.type != MessageType::kVoteResp || m.reject) return;
  auto [it, first] = votes_.emplace(std::make_pair(m.from, m.term),
                                    std::make_pair(m.to, incarnation));
  if (!first && it->second.first != m.to) {
    Violation(
        absl::StrFormat("vote safety: n%d voted for n%d and for n%d in term %d",
                        m.from, it->second.first, m.to, m.term));
  }
}

bool SafetyChecker::MajorityHolds(const std::set<uint64_t>& voters,
                                  uint64_t self, uint64_t index, uint64_t term,
                                  std::string* lacking) const {
  size_t holding = 0;
  for (uint64_t v : voters) {
    if (v == self) {
      ++holding;  // Its Raft log holds it: it just committed it.
      continue;
    }
    const Storage* log = view_(v).log;
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

bool SafetyChecker::ElectableWithout(const std::set<uint64_t>& voters,
                                     uint64_t index, uint64_t term,
                                     std::string* who) const {
  // A node's log as an election weighs it: a running node's Raft log, a
  // down node's log as it crashed (a snapshot holds what it covers).
  struct Tail {
    uint64_t last_term = 0;
    uint64_t last_index = 0;
    bool holds = false;
  };
  auto tail = [&](const NodeView& n) -> std::optional<Tail> {
    if (n.raft != nullptr) {
      const RaftLog& log = n.raft->log();
      return Tail{
          log.LastTerm(), log.LastIndex(),
          index < log.FirstIndex() || log.ZeroTermOnError(index) == term};
    }
    const Storage* log = n.log;
    if (log == nullptr) return std::nullopt;
    const absl::StatusOr<uint64_t> last = log->Term(log->LastIndex());
    const absl::StatusOr<uint64_t> held = log->Term(index);
    return Tail{last.ok() ? *last : 0, log->LastIndex(),
                index < log->FirstIndex() || (held.ok() && *held == term)};
  };
  std::map<uint64_t, Tail> tails;
  for (uint64_t id : nodes_()) {
    if (std::optional<Tail> t = tail(view_(id))) tails[id] = *t;
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

void SafetyChecker::CheckCommits(uint64_t id, const Raft& raft) {
  const RaftLog& log = raft.log();
  const uint64_t committed = log.committed();
  const std::set<uint64_t>& voters = raft.tracker().voters();
  uint64_t& checked = commit_checked_[id];
  checked = std::min(checked, committed);  // A restart starts lower.
  if (committed > checked && raft.state() == StateType::kLeader &&
      log.ZeroTermOnError(committed) != raft.term()) {
    ++earlier_term_commits_;  // Only a broken leader gets here.
  }
  for (uint64_t i = std::max(checked, log.FirstIndex() - 1) + 1; i <= committed;
       ++i) {
    const uint64_t term = log.ZeroTermOnError(i);
    if (term == 0) continue;
    auto [it, first] = committed_terms_.emplace(i, std::make_pair(term, id));
    if (!first) {
      if (it->second.first != term) {
        return Violation(absl::StrFormat(
            "commit safety: n%d committed %d/%d, but n%d committed %d/%d", id,
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
    auto before = voters_before_.find(id);
    if (!MajorityHolds(voters, id, i, term, &lacking) &&
        (before == voters_before_.end() ||
         !MajorityHolds(before->second, id, i, term, &lacking_before))) {
      return Violation(absl::StrFormat(
          "commit safety: n%d committed %d/%d, held by no majority of %d "
          "voters (lacking:%s)%s",
          id, term, i, voters.size(), lacking,
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
          id, term, i, who));
    }
  }
  checked = committed;
  std::set<uint64_t>& before = voters_before_[id];
  if (before != voters) before = voters;  // Copied only when it changed.
}

std::optional<SafetyChecker::FollowerLog> SafetyChecker::FollowerLogOf(
    uint64_t id, uint64_t index) const {
  const NodeView f = view_(id);
  FollowerLog out;
  out.down = f.raft == nullptr;
  if (f.raft != nullptr) {
    out.node_term = f.raft->term();
    out.first = f.raft->log().FirstIndex();
    out.last = f.raft->log().LastIndex();
    out.term = f.raft->log().Term(index);
  } else if (f.log != nullptr) {
    const absl::StatusOr<InitialState> state = f.log->GetInitialState();
    if (!state.ok()) return std::nullopt;
    out.node_term = state->hard_state.term;
    out.first = f.log->FirstIndex();
    out.last = f.log->LastIndex();
    out.term = f.log->Term(index);
  } else {
    return std::nullopt;
  }
  return out;
}

void SafetyChecker::CheckProgress(uint64_t id, const Raft& leader) {
  for (const auto& [fid, pr] : leader.tracker().progress()) {
    if (fid == id || pr.match == 0) continue;
    const std::optional<FollowerLog> f = FollowerLogOf(fid, pr.match);
    if (!f.has_value()) continue;
    // A follower in a later term may have had its log changed by a later
    // leader. One in an earlier term never answered this leader, whose
    // matches come from answers of its own term: whatever it records must
    // hold there too.
    if (f->node_term > leader.term()) continue;
    const absl::StatusOr<uint64_t> ours = leader.log().Term(pr.match);
    if (!ours.ok()) continue;           // Compacted here: not checkable.
    if (pr.match < f->first) continue;  // In its snapshot.
    if (pr.match > f->last || !f->term.ok() || *f->term != *ours) {
      Violation(absl::StrFormat(
          "progress truthfulness: n%d (term %d) records n%d as holding "
          "%d/%d, but n%d's log%s ends at %d%s",
          id, leader.term(), fid, *ours, pr.match, fid,
          f->down ? " (down)" : "", f->last,
          f->term.ok() && pr.match <= f->last
              ? absl::StrFormat(" with %d/%d there", *f->term, pr.match)
              : ""));
      return;
    }
  }
}

}  // namespace raftsql::core::testing
