// Test-only: Raft's own guarantees, checked continuously as a cluster runs.
// The simulator (sim/) and the core's test network (network.h) both feed
// this one checker, so a check added here guards both.
//
// What it checks, each as the event that can break it happens:
// - election safety: one leader per term (OnBecameLeader);
// - leader completeness: a new leader holds every entry committed in an
//   earlier term (OnBecameLeader);
// - state machine safety: one entry per index, ever applied (OnApply);
// - commit safety: an index commits one entry only; at its first commit a
//   majority of the voters holds it, and no node lacking it could win an
//   election by the election restriction alone (Raft's Figure 8)
//   (AfterEvent);
// - progress truthfulness: a leader never believes a follower holds more
//   than it does (AfterEvent);
// - log safety: no node writes over an entry that was applied anywhere
//   (OnWrite);
// - vote safety: one vote per node per term, across restarts (OnVote).
// The first violation is kept, and passed to the callback when it is seen.
#ifndef RAFTSQL_CORE_TESTING_SAFETY_H_
#define RAFTSQL_CORE_TESTING_SAFETY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/raft.h"
#include "core/storage.h"
#include "core/types.h"

namespace raftsql::core::testing {

class SafetyChecker {
 public:
  // What the checker reads of one node.
  struct NodeView {
    // While it runs; null while it is down.
    const Raft* raft = nullptr;
    // Its log as written (a down node's as it was when it crashed); null if
    // it has none.
    const Storage* log = nullptr;
  };
  // The cluster's nodes (ids) and a view of each, read when a check runs.
  using Nodes = std::function<std::vector<uint64_t>()>;
  using View = std::function<NodeView(uint64_t id)>;

  SafetyChecker(Nodes nodes, View view,
                std::function<void(const std::string&)> on_violation = {});

  // Node `id` handled an event (a tick, a message, a completion): commit
  // safety for what it commits now, and, if it leads, progress
  // truthfulness.
  void AfterEvent(uint64_t id);
  // Node `id` just became leader.
  void OnBecameLeader(uint64_t id);
  // Node `id` applied `e`. True the first time any node applies its index.
  bool OnApply(uint64_t id, const Entry& e);
  // Node `id` is about to write `entries` to its log (`log` as it is).
  void OnWrite(uint64_t id, const Storage& log,
               const std::vector<Entry>& entries);
  // A message is sent; a granted vote is recorded with the voter's
  // incarnation (its restarts so far).
  void OnSend(const Message& m, uint64_t incarnation);

  const std::string& violation() const { return violation_; }

  // Each index applied anywhere: the entry as first applied, and the
  // highest term any node had reached then (the term it committed in is at
  // most that).
  struct AppliedEntry {
    uint64_t term;
    std::string data;
    uint64_t max_term;
  };
  const std::map<uint64_t, AppliedEntry>& applied() const { return applied_; }
  // The highest index applied anywhere.
  uint64_t applied_index() const { return applied_index_; }
  // The vote `voter` granted in `term`, if any: (candidate, incarnation).
  const std::pair<uint64_t, uint64_t>* VoteOf(uint64_t voter,
                                              uint64_t term) const;
  // A follower's log as progress truthfulness reads it: a running node's
  // Raft log, a down one's log as it crashed (what it acknowledged was
  // durable before it answered), with the entry's term at `index`; nullopt
  // for a node with neither.
  struct FollowerLog {
    bool down = false;
    uint64_t node_term = 0;  // Its current (or durable) term.
    uint64_t first = 0;
    uint64_t last = 0;
    absl::StatusOr<uint64_t> term;  // At the index asked for.
  };
  std::optional<FollowerLog> FollowerLogOf(uint64_t id, uint64_t index) const;
  // The node that led `term`, or kNone.
  uint64_t LeaderOf(uint64_t term) const;
  // Commits by a leader to an entry of an earlier term (only a broken
  // leader makes them: where Raft's Figure 8 would show).
  uint64_t earlier_term_commits() const { return earlier_term_commits_; }

 private:
  void Violation(const std::string& what);
  void CheckCommits(uint64_t id, const Raft& raft);
  void CheckProgress(uint64_t id, const Raft& leader);
  // Whether more than half of `voters` hold `index` at `term` (`self` by
  // its Raft log); appends those that do not to `*lacking`.
  bool MajorityHolds(const std::set<uint64_t>& voters, uint64_t self,
                     uint64_t index, uint64_t term, std::string* lacking) const;
  // Whether a node whose log lacks `index` at `term` could win an election
  // of `voters` by the election restriction alone (Raft §5.4.1: its last
  // entry at least as up to date as a majority's), whatever the terms and
  // votes: then the entry is not safe, as Raft's Figure 8 shows. Names the
  // node and those voters in `*who`.
  bool ElectableWithout(const std::set<uint64_t>& voters, uint64_t index,
                        uint64_t term, std::string* who) const;

  Nodes nodes_;
  View view_;
  std::function<void(const std::string&)> on_violation_;
  std::string violation_;
  std::map<uint64_t, uint64_t> leader_of_term_;
  std::map<uint64_t, AppliedEntry> applied_;
  uint64_t applied_index_ = 0;
  uint64_t max_term_ = 0;  // Over every node, after each event.
  // Commit safety, checked as commit indexes move: index -> (term, the
  // node that committed it first), and how far each node was checked.
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> committed_terms_;
  std::map<uint64_t, uint64_t> commit_checked_;
  std::map<uint64_t, std::set<uint64_t>> voters_before_;  // By node.
  // (voter, term) -> (candidate, the voter's incarnation then).
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, uint64_t>> votes_;
  uint64_t earlier_term_commits_ = 0;
};

}  // namespace raftsql::core::testing

#endif  // RAFTSQL_CORE_TESTING_SAFETY_H_
