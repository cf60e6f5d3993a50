#include "core/quorum.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "core/check.h"

namespace raftsql::core {

uint64_t CommittedIndex(const std::set<uint64_t>& voters,
                        const std::map<uint64_t, uint64_t>& match) {
  if (voters.empty()) return std::numeric_limits<uint64_t>::max();
  std::vector<uint64_t> acked;
  acked.reserve(voters.size());
  for (uint64_t id : voters) {
    auto it = match.find(id);
    acked.push_back(it == match.end() ? 0 : it->second);
  }
  // Sorted descending, the entry at position quorum-1 is held by at least
  // `quorum` voters: everything at or below it is on a majority.
  std::sort(acked.begin(), acked.end(), std::greater<uint64_t>());
  const size_t quorum = voters.size() / 2 + 1;
  CHECK_LE(quorum, acked.size());
  return acked[quorum - 1];
}

VoteResult TallyVotes(const std::set<uint64_t>& voters,
                      const std::map<uint64_t, bool>& votes) {
  if (voters.empty()) return VoteResult::kWon;
  size_t granted = 0;
  size_t missing = 0;
  for (uint64_t id : voters) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      ++missing;
    } else if (it->second) {
      ++granted;
    }
  }
  const size_t quorum = voters.size() / 2 + 1;
  if (granted >= quorum) return VoteResult::kWon;
  if (granted + missing >= quorum) return VoteResult::kPending;
  return VoteResult::kLost;
}

}  // namespace raftsql::core
