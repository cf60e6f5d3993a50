#include "core/types.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace raftsql::core {

const char* MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kHup:
      return "Hup";
    case MessageType::kBeat:
      return "Beat";
    case MessageType::kCheckQuorum:
      return "CheckQuorum";
    case MessageType::kUnreachable:
      return "Unreachable";
    case MessageType::kSnapStatus:
      return "SnapStatus";
    case MessageType::kProp:
      return "Prop";
    case MessageType::kApp:
      return "App";
    case MessageType::kAppResp:
      return "AppResp";
    case MessageType::kVote:
      return "Vote";
    case MessageType::kVoteResp:
      return "VoteResp";
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResp:
      return "PreVoteResp";
    case MessageType::kSnap:
      return "Snap";
    case MessageType::kSnapResp:
      return "SnapResp";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResp:
      return "HeartbeatResp";
    case MessageType::kTransferLeader:
      return "TransferLeader";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
    case MessageType::kReadIndex:
      return "ReadIndex";
    case MessageType::kReadIndexResp:
      return "ReadIndexResp";
  }
  return "Unknown";
}

bool IsLocalMessage(MessageType type) {
  return type == MessageType::kHup || type == MessageType::kBeat ||
         type == MessageType::kCheckQuorum ||
         type == MessageType::kUnreachable || type == MessageType::kSnapStatus;
}

bool IsResponseMessage(MessageType type) {
  return type == MessageType::kAppResp || type == MessageType::kVoteResp ||
         type == MessageType::kPreVoteResp ||
         type == MessageType::kHeartbeatResp ||
         type == MessageType::kReadIndexResp ||
         type == MessageType::kSnapResp || type == MessageType::kUnreachable;
}

const char* StateTypeName(StateType state) {
  switch (state) {
    case StateType::kFollower:
      return "Follower";
    case StateType::kCandidate:
      return "Candidate";
    case StateType::kLeader:
      return "Leader";
    case StateType::kPreCandidate:
      return "PreCandidate";
  }
  return "Unknown";
}

std::string Message::DebugString() const {
  std::string out = absl::StrFormat("%d->%d %s term=%d", from, to,
                                    MessageTypeName(type), term);
  if (log_term != 0 || index != 0) {
    absl::StrAppendFormat(&out, " log=%d/%d", log_term, index);
  }
  if (commit != 0) absl::StrAppendFormat(&out, " commit=%d", commit);
  if (!entries.empty()) {
    absl::StrAppendFormat(&out, " entries=[%d..%d]", entries.front().index,
                          entries.back().index);
  }
  if (reject) absl::StrAppendFormat(&out, " rejected(hint=%d)", reject_hint);
  if (snapshot.has_value()) {
    absl::StrAppendFormat(
        &out, " snapshot=%d/%d bytes [%d, %d) of %d", snapshot->metadata.term,
        snapshot->metadata.index, snapshot_offset,
        snapshot_offset + snapshot->data.size(), snapshot_size);
  }
  return out;
}

std::string ConfChange::Encode() const {
  return absl::StrCat(static_cast<int>(type), ":", node_id, ":", context);
}

std::optional<ConfChange> ConfChange::Decode(const std::string& data) {
  const size_t first = data.find(':');
  if (first == std::string::npos) return std::nullopt;
  const size_t second = data.find(':', first + 1);
  if (second == std::string::npos) return std::nullopt;
  ConfChange cc;
  const std::string type = data.substr(0, first);
  if (type == "0") {
    cc.type = Type::kAddVoter;
  } else if (type == "1") {
    cc.type = Type::kAddLearner;
  } else if (type == "2") {
    cc.type = Type::kRemoveNode;
  } else {
    return std::nullopt;
  }
  cc.node_id = 0;
  for (size_t i = first + 1; i < second; ++i) {
    if (data[i] < '0' || data[i] > '9') return std::nullopt;
    cc.node_id = cc.node_id * 10 + static_cast<uint64_t>(data[i] - '0');
  }
  if (cc.node_id == kNone) return std::nullopt;
  cc.context = data.substr(second + 1);
  return cc;
}

}  // namespace raftsql::core
