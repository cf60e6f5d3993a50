// Majority quorum arithmetic (etcd's quorum package, single majority: we change
// membership one server at a time, see DESIGN.md §2).
#ifndef RAFTSQL_CORE_QUORUM_H_
#define RAFTSQL_CORE_QUORUM_H_

#include <cstdint>
#include <map>
#include <set>

namespace raftsql::core {

enum class VoteResult : uint8_t { kPending, kLost, kWon };

// The largest index that a majority of `voters` has acknowledged, given each
// voter's match index (absent = 0). An empty config commits everything
// (returns UINT64_MAX) so that it never holds back a joint computation.
uint64_t CommittedIndex(const std::set<uint64_t>& voters,
                        const std::map<uint64_t, uint64_t>& match);

// Outcome of an election given the votes received so far (absent = not yet
// answered).
VoteResult TallyVotes(const std::set<uint64_t>& voters,
                      const std::map<uint64_t, bool>& votes);

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_QUORUM_H_
