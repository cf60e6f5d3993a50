// The boundary between the network and the core: what a peer sends is
// checked here, against itself (core/message_validation.h) and against our
// own state, before any handler (and any CHECK) sees it. A buggy or hostile
// peer gets its message refused and counted; the node keeps serving.
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/message_validation.h"
#include "core/raft.h"

namespace raftsql::core {

absl::Status Raft::StepNetwork(Message m) {
  absl::Status valid = ValidateNetworkMessage(m, max_snapshot_bytes_);
  if (valid.ok()) valid = CheckAgainstState(m);
  if (!valid.ok()) return Refuse(valid);
  return Step(std::move(m));
}

absl::Status Raft::Refuse(absl::Status error) {
  CHECK(absl::IsInvalidArgument(error));
  ++invalid_messages_;
  last_invalid_message_ = std::string(error.message());
  return error;
}

absl::Status Raft::CheckAgainstState(const Message& m) const {
  auto refuse = [&m](absl::string_view why) {
    return InvalidMessageError(m, why);
  };
  if (m.to != id_) return refuse("addressed to another node");
  // A leader hands over only to a follower that holds its whole log, which
  // it learnt from that leader's appends in this very term.
  if (m.type == MessageType::kTimeoutNow && m.term > term_) {
    return refuse("a hand-over from a term we never saw");
  }
  // Everything below concerns messages of our own term; older ones are
  // ignored by StepByTerm and newer ones make us a follower first.
  if (m.term != term_) return absl::OkStatus();
  switch (m.type) {
    case MessageType::kApp:
    case MessageType::kHeartbeat:
    case MessageType::kSnap:
      // Raft §5.2 (Election Safety): one leader per term.
      if (state_ == StateType::kLeader || (lead_ != kNone && m.from != lead_)) {
        return refuse("a second leader in our term");
      }
      return absl::OkStatus();
    case MessageType::kAppResp:
      // A follower acknowledges only entries this leader sent it, and the
      // leader's log never shrinks within its term.
      if (state_ == StateType::kLeader && !m.reject &&
          m.index > log_.LastIndex()) {
        return refuse("acknowledges entries never sent");
      }
      return absl::OkStatus();
    case MessageType::kTimeoutNow:
    case MessageType::kReadIndexResp:
      // Only our leader hands over leadership or grants reads. (A follower
      // that does not know its leader yet, just restarted, ignores a
      // hand-over in StepFollower: honest, but too late to act on.)
      if (lead_ != kNone && m.from != lead_) {
        return refuse("not from our leader");
      }
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

}  // namespace raftsql::core
