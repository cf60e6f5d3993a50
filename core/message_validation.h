// Validation of Raft messages that arrive from the network, before they reach
// the core. A peer may be buggy, out of date or hostile: nothing it sends may
// reach a CHECK (a CHECK that a remote party can trigger is a remote crash).
// This is the stateless part, every field against every other field of the
// same message; what depends on our own log and role is refused inside Raft
// (Raft::invalid_messages()).
#ifndef RAFTSQL_CORE_MESSAGE_VALIDATION_H_
#define RAFTSQL_CORE_MESSAGE_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/types.h"

namespace raftsql::core {

// Terms grow by one per election: a term at or above this one never comes
// from an honest peer, and accepting it would let the next election wrap the
// term to zero.
inline constexpr uint64_t kMaxTerm = uint64_t{1} << 62;
// Log indexes likewise (one per entry): keeps index + count from wrapping.
inline constexpr uint64_t kMaxIndex = uint64_t{1} << 62;
// A read request's context (the runtime's are 8-16 bytes) and the leader
// transfer marker on votes.
inline constexpr size_t kMaxContextBytes = 256;
// Largest voters + learners in a snapshot's configuration.
inline constexpr size_t kMaxMembers = 1024;

// INVALID_ARGUMENT "invalid <type> from <sender>: <what>": how every refusal
// of a network message reads.
absl::Status InvalidMessageError(const Message& m, absl::string_view what);

// OK if `m` is well formed for its type; INVALID_ARGUMENT naming the first
// field that is not. `max_snapshot_bytes` bounds a snapshot's total size.
absl::Status ValidateNetworkMessage(const Message& m,
                                    uint64_t max_snapshot_bytes);

// OK if `cs` is a configuration the core can hold: voters and learners
// sorted, disjoint, without node 0, at most kMaxMembers.
absl::Status ValidateConfState(const ConfState& cs);

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_MESSAGE_VALIDATION_H_
