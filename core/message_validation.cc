#include "core/message_validation.h"

#include "absl/strings/str_cat.h"

namespace raftsql::core {
absl::Status InvalidMessageError(const Message& m, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid ", MessageTypeName(m.type), " from ", m.from, ": ", what));
}

namespace {

absl::Status Invalid(const Message& m, absl::string_view what) {
  return InvalidMessageError(m, what);
}

bool CarriesEntries(MessageType type) {
  return type == MessageType::kApp || type == MessageType::kProp;
}

// Forwarded requests carry no term: the leader treats them as its own.
bool IsForwardedRequest(MessageType type) {
  return type == MessageType::kProp || type == MessageType::kReadIndex ||
         type == MessageType::kTransferLeader;
}

absl::Status ValidateEntryTypes(const Message& m) {
  for (const Entry& e : m.entries) {
    if (e.type != EntryType::kNormal && e.type != EntryType::kConfChange) {
      return Invalid(m, "unknown entry type");
    }
    // A membership change nobody can decode would stop every replica that
    // applies it: refuse it before it is logged.
    if (e.type == EntryType::kConfChange &&
        !ConfChange::Decode(e.data).has_value()) {
      return Invalid(m, "undecodable membership change");
    }
  }
  return absl::OkStatus();
}

// Raft §5.3: an append carries consecutive entries after (index, log_term),
// of terms that never decrease and never exceed the leader's.
absl::Status ValidateAppend(const Message& m) {
  if (m.log_term > m.term) return Invalid(m, "log_term above the term");
  if (m.index > kMaxIndex - m.entries.size()) {
    return Invalid(m, "index out of range");
  }
  uint64_t prev_term = m.log_term;
  for (size_t i = 0; i < m.entries.size(); ++i) {
    const Entry& e = m.entries[i];
    if (e.index != m.index + 1 + i)
      return Invalid(m, "entries not consecutive");
    if (e.term == 0 || e.term < prev_term || e.term > m.term) {
      return Invalid(m, "entry terms out of order");
    }
    prev_term = e.term;
  }
  return absl::OkStatus();
}

absl::Status ValidateSnapshotChunk(const Message& m,
                                   uint64_t max_snapshot_bytes) {
  if (!m.snapshot.has_value()) return Invalid(m, "no snapshot");
  const SnapshotMetadata& meta = m.snapshot->metadata;
  if (meta.index == 0 || meta.index >= kMaxIndex) {
    return Invalid(m, "snapshot index out of range");
  }
  if (meta.term == 0 || meta.term > m.term) {
    return Invalid(m, "snapshot term out of range");
  }
  absl::Status cs = ValidateConfState(meta.conf_state);
  if (!cs.ok()) return Invalid(m, cs.message());
  if (meta.conf_state.voters.empty())
    return Invalid(m, "snapshot has no voter");
  if (m.snapshot_size > max_snapshot_bytes) {
    return Invalid(m, "snapshot larger than the limit");
  }
  if (m.snapshot_offset > m.snapshot_size ||
      m.snapshot->data.size() > m.snapshot_size - m.snapshot_offset) {
    return Invalid(m, "snapshot chunk outside the snapshot");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateConfState(const ConfState& cs) {
  if (cs.voters.size() + cs.learners.size() > kMaxMembers) {
    return absl::InvalidArgumentError("too many members");
  }
  for (const std::vector<uint64_t>* ids : {&cs.voters, &cs.learners}) {
    for (size_t i = 0; i < ids->size(); ++i) {
      if ((*ids)[i] == kNone) {
        return absl::InvalidArgumentError("member id 0");
      }
      if (i > 0 && (*ids)[i - 1] >= (*ids)[i]) {
        return absl::InvalidArgumentError("member ids not sorted and unique");
      }
    }
  }
  for (uint64_t learner : cs.learners) {
    for (uint64_t voter : cs.voters) {
      if (learner == voter) {
        return absl::InvalidArgumentError("a member is voter and learner");
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateNetworkMessage(const Message& m,
                                    uint64_t max_snapshot_bytes) {
  if (IsLocalMessage(m.type)) return Invalid(m, "local message type");
  if (m.from == kNone || m.to == kNone || m.from == m.to) {
    return Invalid(m, "bad sender or receiver");
  }
  if (m.term >= kMaxTerm || m.log_term >= kMaxTerm) {
    return Invalid(m, "term out of range");
  }
  if (m.index >= kMaxIndex || m.commit >= kMaxIndex ||
      m.reject_hint >= kMaxIndex) {
    return Invalid(m, "index out of range");
  }
  if (IsForwardedRequest(m.type) != (m.term == 0)) {
    return Invalid(m, "term does not fit the message type");
  }
  if (m.context.size() > kMaxContextBytes)
    return Invalid(m, "context too long");
  if (!CarriesEntries(m.type) && !m.entries.empty()) {
    return Invalid(m, "unexpected entries");
  }
  if (m.type != MessageType::kSnap && m.snapshot.has_value()) {
    return Invalid(m, "unexpected snapshot");
  }
  absl::Status types = ValidateEntryTypes(m);
  if (!types.ok()) return types;
  switch (m.type) {
    case MessageType::kProp:
      if (m.entries.empty()) return Invalid(m, "no entries");
      return absl::OkStatus();
    case MessageType::kApp:
      return ValidateAppend(m);
    case MessageType::kAppResp:
      if (m.reject && m.reject_hint > m.index) {
        return Invalid(m, "reject hint above the rejected index");
      }
      if (m.log_term > m.term) return Invalid(m, "log_term above the term");
      return absl::OkStatus();
    case MessageType::kVote:
    case MessageType::kPreVote:
      if (m.log_term > m.term) return Invalid(m, "log_term above the term");
      return absl::OkStatus();
    case MessageType::kSnap:
      return ValidateSnapshotChunk(m, max_snapshot_bytes);
    default:
      return absl::OkStatus();
  }
}

}  // namespace raftsql::core
