#include "sm/divergence.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace raftsql::sm {

CheckpointLog::CheckpointLog(uint64_t every) : every_(every) {
  CHECK_GT(every_, 0u);
}

void CheckpointLog::Record(uint64_t index, uint64_t hash) {
  if (index % every_ != 0) return;
  CHECK(pending_.empty() || pending_.back().index < index);
  pending_.push_back(Checkpoint{index, hash});
}

void CheckpointLog::Commit() {
  if (pending_.empty()) return;
  std::lock_guard<std::mutex> l(mu_);
  for (const Checkpoint& c : pending_) {
    // A restored snapshot starts the indexes over further on; an index
    // already kept (a batch applied again after a crash) replaces it.
    while (!kept_.empty() && kept_.back().index >= c.index) kept_.pop_back();
    kept_.push_back(c);
    if (kept_.size() > kMaxCheckpoints) kept_.pop_front();
  }
  pending_.clear();
}

void CheckpointLog::CheckInvariants() const {
  std::lock_guard<std::mutex> l(mu_);
  CHECK_LE(kept_.size(), kMaxCheckpoints);
  auto ascending = [this](const auto& checkpoints) {
    for (size_t i = 0; i < checkpoints.size(); ++i) {
      CHECK_EQ(checkpoints[i].index % every_, 0u);
      if (i > 0) CHECK_LT(checkpoints[i - 1].index, checkpoints[i].index);
    }
  };
  ascending(kept_);
  ascending(pending_);
}

std::vector<Checkpoint> CheckpointLog::Checkpoints() const {
  std::lock_guard<std::mutex> l(mu_);
  return std::vector<Checkpoint>(kept_.begin(), kept_.end());
}

DivergenceVerdict Decide(
    const std::vector<Checkpoint>& mine,
    const std::map<uint64_t, std::vector<Checkpoint>>& peers, size_t replicas) {
  DivergenceVerdict v;
  replicas = std::max(replicas, peers.size() + 1);
  // The latest index this replica holds that a peer holds too.
  for (auto it = mine.rbegin(); it != mine.rend() && v.index == 0; ++it) {
    for (const auto& [id, theirs] : peers) {
      const bool held = std::any_of(
          theirs.begin(), theirs.end(),
          [&it](const Checkpoint& c) { return c.index == it->index; });
      if (held) {
        v.index = it->index;
        break;
      }
    }
  }
  if (v.index == 0) return v;
  const auto own = std::find_if(mine.begin(), mine.end(), [&v](const auto& c) {
    return c.index == v.index;
  });
  CHECK(own != mine.end());
  size_t holders = 1, agree = 1;
  std::string others;
  for (const auto& [id, theirs] : peers) {
    for (const Checkpoint& c : theirs) {
      if (c.index != v.index) continue;
      ++holders;
      if (c.hash == own->hash) {
        ++agree;
      } else {
        absl::StrAppend(&others, others.empty() ? "" : ", ", "node ", id,
                        " has ", c.hash);
      }
    }
  }
  // Those that have not said count as agreeing, for now.
  const size_t unknown = replicas - holders;
  if (2 * (agree + unknown) > replicas) return v;
  v.diverged = true;
  v.reason = absl::StrCat("at index ", v.index, " this replica's hash is ",
                          own->hash, " but ", others, " (", agree, " of ",
                          replicas, " replicas agree with it)");
  return v;
}

}  // namespace raftsql::sm
