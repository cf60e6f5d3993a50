#include "core/raw_node.h"

#include <utility>

#include "core/check.h"

namespace raftsql::core {

RawNode::RawNode(const Config& config)
    : raft_(config),
      prev_soft_state_(raft_.GetSoftState()),
      prev_hard_state_(raft_.GetHardState()) {}

absl::Status RawNode::Campaign() {
  Message m;
  m.type = MessageType::kHup;
  m.from = raft_.id();
  return raft_.Step(std::move(m));
}

absl::Status RawNode::Propose(std::string data) {
  Message m;
  m.type = MessageType::kProp;
  m.from = raft_.id();
  m.entries.push_back(Entry{0, 0, EntryType::kNormal, std::move(data)});
  return raft_.Step(std::move(m));
}

absl::Status RawNode::ProposeConfChange(const ConfChange& cc) {
  Message m;
  m.type = MessageType::kProp;
  m.from = raft_.id();
  m.entries.push_back(Entry{0, 0, EntryType::kConfChange, cc.Encode()});
  return raft_.Step(std::move(m));
}

absl::Status RawNode::Step(Message m) {
  if (IsLocalMessage(m.type)) {
    return absl::InvalidArgumentError(
        "local message types cannot arrive from the network");
  }
  if (IsResponseMessage(m.type) && raft_.tracker().Get(m.from) == nullptr) {
    return absl::NotFoundError("response from a node that is not a member");
  }
  return raft_.StepNetwork(std::move(m));
}

absl::Status RawNode::ReadIndex(std::string ctx) {
  Message m;
  m.type = MessageType::kReadIndex;
  m.context = std::move(ctx);
  return raft_.Step(std::move(m));
}

void RawNode::TransferLeadership(uint64_t transferee) {
  Message m;
  m.type = MessageType::kTransferLeader;
  m.from = raft_.id();
  m.index = transferee;
  (void)raft_.Step(std::move(m));
}

void RawNode::ReportUnreachable(uint64_t id) {
  Message m;
  m.type = MessageType::kUnreachable;
  m.from = id;
  (void)raft_.Step(std::move(m));
}

void RawNode::ReportSnapshot(uint64_t id, bool ok) {
  Message m;
  m.type = MessageType::kSnapStatus;
  m.from = id;
  m.reject = !ok;
  (void)raft_.Step(std::move(m));
}

bool RawNode::HasReady() const {
  if (raft_.GetSoftState() != prev_soft_state_) return true;
  const HardState hs = raft_.GetHardState();
  if (!hs.IsEmpty() && hs != prev_hard_state_) return true;
  const RaftLog& log = raft_.log();
  if (log.UnstableSnapshot().has_value()) return true;
  if (!log.UnstableEntries().empty()) return true;
  if (log.HasNextCommittedEntries()) return true;
  return !raft_.msgs().empty() || !raft_.read_states().empty();
}

Ready RawNode::GetReady() {
  CHECK(!in_progress_.has_value());  // One Ready at a time; Advance() first.
  Ready rd;
  const SoftState ss = raft_.GetSoftState();
  if (ss != prev_soft_state_) rd.soft_state = ss;
  const HardState hs = raft_.GetHardState();
  if (hs != prev_hard_state_) rd.hard_state = hs;
  RaftLog& log = raft_.log();
  rd.entries = log.UnstableEntries();
  rd.snapshot = log.UnstableSnapshot();
  rd.committed_entries = log.NextCommittedEntries();
  rd.messages = std::move(raft_.msgs());
  raft_.msgs().clear();
  rd.read_states = std::move(raft_.read_states());
  raft_.read_states().clear();
  rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value() ||
                 hs.term != prev_hard_state_.term ||
                 hs.vote != prev_hard_state_.vote;
  prev_soft_state_ = ss;
  prev_hard_state_ = hs;
  // Remember only what Advance() needs.
  Ready marker;
  if (!rd.entries.empty()) marker.entries.push_back(rd.entries.back());
  if (!rd.committed_entries.empty()) {
    marker.committed_entries.push_back(rd.committed_entries.back());
  }
  if (rd.snapshot.has_value()) {
    marker.snapshot = Snapshot{rd.snapshot->metadata, ""};
  }
  in_progress_ = std::move(marker);
  return rd;
}

void RawNode::Advance() {
  CHECK(in_progress_.has_value());
  RaftLog& log = raft_.log();
  const Ready& rd = *in_progress_;
  if (!rd.committed_entries.empty()) {
    log.AppliedTo(rd.committed_entries.back().index);
  } else if (rd.snapshot.has_value()) {
    log.AppliedTo(rd.snapshot->metadata.index);
  }
  if (!rd.entries.empty()) {
    log.StableTo(rd.entries.back().index, rd.entries.back().term);
  }
  if (rd.snapshot.has_value()) log.StableSnapTo(rd.snapshot->metadata.index);
  in_progress_.reset();
}

NodeStatus RawNode::GetStatus() const {
  NodeStatus st;
  st.id = raft_.id();
  st.hard_state = raft_.GetHardState();
  st.soft_state = raft_.GetSoftState();
  st.applied = raft_.log().applied();
  st.last_index = raft_.log().LastIndex();
  st.lead_transferee = raft_.lead_transferee();
  st.conf_state = raft_.tracker().GetConfState();
  if (raft_.state() == StateType::kLeader) {
    for (const auto& [id, pr] : raft_.tracker().progress()) {
      st.progress[id] = pr.DebugString();
    }
  }
  return st;
}

}  // namespace raftsql::core
