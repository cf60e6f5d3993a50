// The leader: heartbeats and CheckQuorum, proposals, replication with flow
// control, commitment (Raft §5.3, §5.4.2), ReadIndex (thesis §6.4) and
// leadership transfer (thesis §3.10).
#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "core/check.h"
#include "core/raft.h"

namespace raftsql::core {
namespace {

// Bound on read requests parked until the leader commits an entry of its
// term; beyond it new reads are dropped (the caller retries).
constexpr size_t kMaxPendingReadIndexMessages = 4096;

Message LocalMessage(MessageType type, uint64_t id) {
  Message m;
  m.type = type;
  m.from = id;
  return m;
}

}  // namespace

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_ticks_) {
    election_elapsed_ = 0;
    if (check_quorum_) (void)Step(LocalMessage(MessageType::kCheckQuorum, id_));
    // Thesis §3.10: a transfer that did not finish within an election
    // timeout is abandoned so the leader accepts proposals again.
    if (state_ == StateType::kLeader) AbortLeaderTransfer();
  }
  if (state_ != StateType::kLeader) return;
  if (commit_unannounced_) {
    commit_unannounced_ = false;
    BroadcastAppend();
  }
  if (snapshot_bytes_per_tick_ > 0) {
    // A new tick's budget (none saved up: no bursts), for the chunks that
    // waited for it.
    const auto per_tick = static_cast<int64_t>(snapshot_bytes_per_tick_);
    snapshot_budget_ = std::min(snapshot_budget_ + per_tick, per_tick);
    SendWaitingChunks(&Progress::snapshot_waiting);
  }
  if (heartbeat_elapsed_ >= heartbeat_ticks_) {
    heartbeat_elapsed_ = 0;
    (void)Step(LocalMessage(MessageType::kBeat, id_));
  }
}

absl::Status Raft::StepLeader(Message m) {
  CHECK(state_ == StateType::kLeader);
  switch (m.type) {
    case MessageType::kBeat:
      BroadcastHeartbeat(read_only_.LastPendingContext());
      return absl::OkStatus();
    case MessageType::kCheckQuorum:
      if (Progress* self = tracker_.Get(id_)) self->recent_active = true;
      if (!tracker_.QuorumActive()) {
        // Thesis §6.2: a leader cut off from a majority steps down, so its
        // clients stop waiting on it and reads cannot be served stale.
        BecomeFollower(term_, kNone);
        return absl::OkStatus();
      }
      for (auto& [id, pr] : tracker_.progress()) {
        if (id != id_) pr.recent_active = false;
      }
      return absl::OkStatus();
    case MessageType::kProp:
      if (m.log_term != 0 && m.log_term != term_) {
        return ProposalDroppedError("forwarded to the leader of another term");
      }
      return LeaderPropose(m);
    case MessageType::kReadIndex:
      LeaderReadIndex(m);
      return absl::OkStatus();
    case MessageType::kTransferLeader: {
      Progress* pr = tracker_.Get(m.index);
      if (pr != nullptr) HandleTransferLeader(m, *pr);
      return absl::OkStatus();
    }
    default:
      break;
  }
  Progress* pr = tracker_.Get(m.from);
  if (pr == nullptr) return absl::OkStatus();  // Not (or no longer) a member.
  switch (m.type) {
    case MessageType::kAppResp:
      HandleAppendResponse(m, *pr);
      break;
    case MessageType::kHeartbeatResp:
      HandleHeartbeatResponse(m, *pr);
      break;
    case MessageType::kSnapResp:
      HandleSnapshotResponse(m, *pr);
      break;
    case MessageType::kSnapStatus:
      // Only failures matter: success of one chunk says nothing about the
      // transfer, whose end arrives as an append response. After a failure,
      // probe again after the next heartbeat; the next snapshot send resumes
      // where the follower stands.
      if (pr->state != ProgressState::kSnapshot || !m.reject) break;
      pr->pending_snapshot = 0;
      pr->BecomeProbe();
      pr->probe_sent = true;
      break;
    case MessageType::kUnreachable:
      // Optimistic pipelining to an unreachable peer only loses messages.
      if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status Raft::LeaderPropose(Message& m) {
  CHECK(!m.entries.empty());
  if (tracker_.Get(id_) == nullptr) {
    return ProposalDroppedError("the leader is not a member");
  }
  if (lead_transferee_ != kNone) {
    return ProposalDroppedError("leadership transfer in progress");
  }
  for (size_t i = 0; i < m.entries.size(); ++i) {
    if (m.entries[i].type != EntryType::kConfChange) continue;
    // One membership change at a time: the next waits until the previous is
    // applied (single-server changes are safe only one by one).
    if (pending_conf_index_ > log_.applied()) {
      return ProposalDroppedError("a membership change is already pending");
    }
    absl::Status refused = CheckConfChange(m.entries[i]);
    if (!refused.ok()) return refused;
    pending_conf_index_ = log_.LastIndex() + i + 1;
  }
  CHECK(AppendEntries(std::move(m.entries)));
  BroadcastAppend();
  return absl::OkStatus();
}

absl::Status Raft::CheckConfChange(const Entry& entry) const {
  std::optional<ConfChange> cc = ConfChange::Decode(entry.data);
  if (!cc.has_value()) {
    return absl::InvalidArgumentError("malformed membership change");
  }
  if (cc->type == ConfChange::Type::kRemoveNode) {
    // A configuration without voters can never elect a leader again.
    if (tracker_.IsVoter(cc->node_id) && tracker_.voters().size() == 1) {
      return absl::FailedPreconditionError("refusing to remove the last voter");
    }
    return absl::OkStatus();
  }
  if (cc->type != ConfChange::Type::kAddVoter) return absl::OkStatus();
  // A learner becomes a voter only once it has caught up: promoting a node
  // far behind would make it count towards quorums it cannot help reach.
  const Progress* pr = tracker_.Get(cc->node_id);
  if (pr != nullptr && pr->is_learner && pr->match < log_.committed()) {
    return ProposalDroppedError("the learner has not caught up yet");
  }
  return absl::OkStatus();
}

bool Raft::AppendEntries(std::vector<Entry> entries) {
  const uint64_t last = log_.LastIndex();
  for (size_t i = 0; i < entries.size(); ++i) {
    entries[i].term = term_;
    entries[i].index = last + 1 + i;
  }
  const uint64_t new_last = log_.Append(entries);
  CHECK_EQ(new_last, last + entries.size());
  Progress* self = tracker_.Get(id_);
  CHECK(self != nullptr);
  self->MaybeUpdate(new_last);
  // A single-voter cluster commits at once.
  MaybeCommit();
  return true;
}

bool Raft::MaybeCommit() {
  uint64_t index = tracker_.Committed();
  if (unsafe_learners_in_quorum_) {
    std::set<uint64_t> members;
    std::map<uint64_t, uint64_t> match;
    for (const auto& [id, pr] : tracker_.progress()) {
      members.insert(id);
      match[id] = pr.match;
    }
    index = CommittedIndex(members, match);
  }
  return log_.MaybeCommit(index, unsafe_commit_earlier_terms_
                                     ? log_.ZeroTermOnError(index)
                                     : term_);
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.ZeroTermOnError(log_.committed()) == term_;
}

void Raft::LeaderReadIndex(const Message& m) {
  if (tracker_.IsSingleton()) {
    RespondToReadIndex(m, log_.committed());
    return;
  }
  // Thesis §6.4 step 1: until an entry of this term commits, the leader does
  // not know the latest commit index; park the request.
  if (!CommittedEntryInCurrentTerm() &&
      !unsafe_read_index_before_term_commit_) {
    if (pending_read_index_messages_.size() < kMaxPendingReadIndexMessages) {
      pending_read_index_messages_.push_back(m);
    }
    return;
  }
  if (unsafe_read_index_without_quorum_) {
    RespondToReadIndex(m, log_.committed());
    return;
  }
  // Steps 2-3: record the commit index and confirm leadership with a round
  // of heartbeats; the read is answered when a majority acknowledges.
  read_only_.AddRequest(log_.committed(), m);
  read_only_.RecvAck(id_, m.context);
  BroadcastHeartbeat(m.context);
}

void Raft::ReleasePendingReadIndexMessages() {
  if (pending_read_index_messages_.empty()) return;
  // The planted Figure 8 bug commits entries of earlier terms: the reads
  // wait for one of this term, as without the bug.
  if (unsafe_commit_earlier_terms_ && !CommittedEntryInCurrentTerm()) return;
  CHECK(CommittedEntryInCurrentTerm());
  std::vector<Message> pending = std::move(pending_read_index_messages_);
  pending_read_index_messages_.clear();
  for (const Message& m : pending) LeaderReadIndex(m);
}

void Raft::RespondToReadIndex(const Message& request, uint64_t index) {
  if (request.from == kNone || request.from == id_) {
    read_states_.push_back(ReadState{index, request.context});
    return;
  }
  Message resp;
  resp.type = MessageType::kReadIndexResp;
  resp.to = request.from;
  resp.index = index;
  resp.context = request.context;
  Send(std::move(resp));
}

void Raft::HandleAppendResponse(const Message& m, Progress& pr) {
  CHECK(state_ == StateType::kLeader);
  CHECK_NE(m.from, id_);
  pr.recent_active = true;
  if (m.reject) {
    uint64_t next_probe = m.reject_hint;
    if (m.log_term > 0) {
      // Skip every entry of ours whose term is above the follower's term at
      // the hint: they cannot match (thesis §3.5 fast back-off).
      next_probe = log_.FindConflictByTerm(m.reject_hint, m.log_term).first;
    }
    if (pr.MaybeDecrTo(m.index, next_probe)) {
      if (pr.state == ProgressState::kReplicate) pr.BecomeProbe();
      SendAppend(m.from);
    }
    return;
  }
  const bool was_paused = pr.IsPaused();
  const uint64_t acked =
      unsafe_match_what_was_sent_ ? std::max(m.index, pr.next - 1) : m.index;
  if (!pr.MaybeUpdate(acked)) return;
  switch (pr.state) {
    case ProgressState::kProbe:
      pr.BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      if (pr.match >= pr.pending_snapshot) {
        pr.BecomeProbe();
        pr.BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr.inflights.FreeLE(m.index);
      break;
  }
  if (MaybeCommit()) {
    ReleasePendingReadIndexMessages();
    if (announce_commit_at_tick_) {
      AnnounceCommit();
    } else {
      BroadcastAppend();
    }
  } else if (was_paused) {
    SendAppend(m.from);
  }
  // Fill the pipeline up to max_inflight_msgs.
  while (MaybeSendAppend(m.from, false)) {
  }
  if (m.from == lead_transferee_ && pr.match == log_.LastIndex()) {
    SendTimeoutNow(m.from);
  }
}

void Raft::HandleHeartbeatResponse(const Message& m, Progress& pr) {
  pr.recent_active = true;
  pr.probe_sent = false;
  // Snapshot chunks may have been lost: an election timeout's worth of
  // heartbeat round trips without progress is the retransmission timer
  // (a follower whose disk is slow for a moment is not one: resending the
  // window at every beat queued copies of it by the hundred megabytes).
  // The follower that holds the whole image and checks it is asked again
  // at every beat.
  if (pr.state == ProgressState::kSnapshot) {
    if (pr.snapshot_offset != pr.snapshot_offset_at_beat) {
      pr.snapshot_offset_at_beat = pr.snapshot_offset;
      pr.snapshot_stalled_beats = 0;
    } else {
      ++pr.snapshot_stalled_beats;
    }
    if (pr.snapshot_stalled_beats >= SnapshotResendBeats() ||
        pr.snapshot_offset == pr.snapshot_size) {
      pr.snapshot_stalled_beats = 0;
      SendSnapshotChunks(m.from, pr, ChunkSend::kResendOne);
    }
  }
  // If every in-flight append was lost, the window stays full and nothing
  // would ever be sent again: a heartbeat round trip frees one slot, and the
  // follower's rejection of the gap then drops us back to probing.
  if (pr.state == ProgressState::kReplicate && pr.inflights.Full()) {
    pr.inflights.FreeFirstOne();
  }
  if (pr.match < log_.LastIndex()) SendAppend(m.from);
  if (m.context.empty()) return;
  const std::map<uint64_t, bool>* acks = read_only_.RecvAck(m.from, m.context);
  // Thesis §6.4 step 3: only a majority's acknowledgement proves that no
  // newer leader could have committed entries we have not seen.
  if (acks == nullptr ||
      TallyVotes(tracker_.voters(), *acks) != VoteResult::kWon) {
    return;
  }
  for (ReadIndexStatus& rs : read_only_.Advance(m.context)) {
    RespondToReadIndex(rs.request, rs.index);
  }
}

void Raft::HandleTransferLeader(const Message& m, Progress& pr) {
  const uint64_t transferee = m.index;
  if (pr.is_learner) return;
  if (transferee == lead_transferee_) return;  // Already under way.
  AbortLeaderTransfer();
  if (transferee == id_) return;  // Already the leader.
  // The transfer must finish within an election timeout (TickHeartbeat).
  election_elapsed_ = 0;
  lead_transferee_ = transferee;
  if (pr.match == log_.LastIndex()) {
    SendTimeoutNow(transferee);
  } else {
    SendAppend(transferee);  // Catch it up first; see HandleAppendResponse.
  }
}

bool Raft::MaybeSendAppend(uint64_t to, bool send_if_empty) {
  Progress* pr = tracker_.Get(to);
  CHECK(pr != nullptr);
  if (pr->IsPaused()) return false;
  const uint64_t prev_index = pr->next - 1;
  absl::StatusOr<uint64_t> prev_term = log_.Term(prev_index);
  absl::StatusOr<std::vector<Entry>> ents =
      log_.EntriesFrom(pr->next, max_size_per_msg_);
  if (!prev_term.ok() || !ents.ok()) {
    // What the follower needs is compacted away (Raft §7).
    return MaybeSendSnapshot(to, *pr);
  }
  if (ents->empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::kApp;
  m.to = to;
  m.index = prev_index;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  const size_t count = ents->size();
  const uint64_t last = count > 0 ? ents->back().index : prev_index;
  m.entries = std::move(*ents);
  pr->SentEntries(count, last);
  Send(std::move(m));
  return true;
}

bool Raft::MaybeSendSnapshot(uint64_t to, Progress& pr) {
  // Don't ship a whole snapshot to a node we have not heard from lately.
  if (!pr.recent_active) return false;
  absl::StatusOr<ImageInfo> image = ImageToSend();
  if (!image.ok()) {
    CHECK(IsEntryUnavailable(image.status()));  // Not ready yet: retry later.
    return false;
  }
  CHECK(image->metadata.index != 0);
  pr.BecomeSnapshot(image->metadata.index);
  SendSnapshotChunks(to, pr, ChunkSend::kFill);
  return true;
}

absl::StatusOr<ImageInfo> Raft::ImageToSend() {
  if (snapshot_source_ == nullptr) {
    absl::StatusOr<Snapshot> snapshot = log_.GetSnapshot();
    if (!snapshot.ok()) return snapshot.status();
    return ImageInfo{snapshot->metadata, snapshot->data.size()};
  }
  absl::StatusOr<ImageInfo> latest = snapshot_source_->Latest();
  // Entries must follow the image: it cannot be older than the log.
  if (!latest.ok() || latest->metadata.index + 1 < log_.FirstIndex()) {
    snapshot_wanted_ = true;
    return EntryUnavailableError();
  }
  return latest;
}

absl::StatusOr<std::string> Raft::ImageChunk(uint64_t index, uint64_t offset) {
  if (snapshot_source_ != nullptr) {
    return snapshot_source_->Read(index, offset, max_snapshot_chunk_bytes_);
  }
  absl::StatusOr<Snapshot> snapshot = log_.GetSnapshot();
  if (!snapshot.ok()) return snapshot.status();
  return snapshot->data.substr(offset, max_snapshot_chunk_bytes_);
}

int Raft::SnapshotResendBeats() const {
  return std::max(1, election_ticks_ / heartbeat_ticks_);
}

void Raft::SendSnapshotChunks(uint64_t to, Progress& pr, ChunkSend how) {
  CHECK(pr.state == ProgressState::kSnapshot);
  absl::StatusOr<ImageInfo> image = ImageToSend();
  if (image.ok() && image->metadata.index != pr.pending_snapshot) {
    // A newer snapshot replaced the one in transfer: start that one.
    pr.BecomeSnapshot(image->metadata.index);
    how = ChunkSend::kFill;
  }
  if (!image.ok()) return LoseSnapshotTransfer(pr);
  CHECK_LE(pr.snapshot_offset, image->size);
  pr.snapshot_size = image->size;
  if (how == ChunkSend::kResendOne || pr.snapshot_sent < pr.snapshot_offset) {
    pr.snapshot_sent = pr.snapshot_offset;
  }
  if (how == ChunkSend::kResendOne) pr.snapshot_resent_from = pr.snapshot_sent;
  // A resend is one chunk (at the end, an empty one that asks the follower
  // to finish); the answer to it fills the window again.
  int sent = 0;
  auto more = [&] {
    if (how == ChunkSend::kResendOne) return sent == 0;
    return sent < kMaxSnapshotChunksPerSend && pr.snapshot_sent < image->size &&
           pr.snapshot_sent - pr.snapshot_offset < snapshot_window_bytes_;
  };
  while (more()) {
    pr.snapshot_waiting = snapshot_bytes_per_tick_ > 0 && snapshot_budget_ <= 0;
    if (pr.snapshot_waiting) return;  // TickHeartbeat sends it.
    absl::StatusOr<std::string> chunk =
        ImageChunk(image->metadata.index, pr.snapshot_sent);
    pr.snapshot_source_waiting = absl::IsUnavailable(chunk.status());
    if (pr.snapshot_source_waiting) return;  // SnapshotSourceProgressed.
    if (!chunk.ok()) return LoseSnapshotTransfer(pr);
    Message m;
    m.type = MessageType::kSnap;
    m.to = to;
    m.snapshot_offset = pr.snapshot_sent;
    m.snapshot_size = image->size;
    pr.snapshot_sent += chunk->size();
    snapshot_budget_ -= static_cast<int64_t>(chunk->size());
    m.snapshot = Snapshot{image->metadata, std::move(*chunk)};
    Send(std::move(m));
    ++sent;
  }
}

void Raft::SnapshotSourceProgressed() {
  if (state_ != StateType::kLeader) return;
  SendWaitingChunks(&Progress::snapshot_source_waiting);
}

void Raft::SendWaitingChunks(bool Progress::*waiting) {
  std::vector<uint64_t> ids;
  for (const auto& [id, pr] : tracker_.progress()) {
    if (pr.state == ProgressState::kSnapshot && pr.*waiting) ids.push_back(id);
  }
  for (uint64_t id : ids) {
    if (Progress* pr = tracker_.Get(id)) {
      SendSnapshotChunks(id, *pr, ChunkSend::kFill);
    }
  }
}

void Raft::LoseSnapshotTransfer(Progress& pr) {
  // The image went (replaced, or a read failed): probe again from what the
  // follower holds, which asks for an image anew if one is needed.
  pr.pending_snapshot = 0;
  pr.BecomeProbe();
}

void Raft::HandleSnapshotResponse(const Message& m, Progress& pr) {
  pr.recent_active = true;
  if (pr.state != ProgressState::kSnapshot || m.index != pr.pending_snapshot) {
    return;  // About a transfer that is over.
  }
  absl::StatusOr<ImageInfo> image = ImageToSend();
  if (!image.ok()) return LoseSnapshotTransfer(pr);
  // The follower says how much it holds: continue (or resume) from there.
  // Only news moves the transfer on: an answer to a chunk sent again (a
  // heartbeat response resends) that sent more would breed answers, and
  // the follower would spend its time on repeats (a 118 MB image moved 1
  // MiB per 1,200 repeated chunks on 127.0.0.1). A refusal (a gap, or a
  // transfer that must start over) sends again from what the follower
  // holds.
  const uint64_t held = std::min<uint64_t>(m.snapshot_offset, image->size);
  const bool news = m.reject || held > pr.snapshot_offset;
  pr.snapshot_offset = held;
  if (image->metadata.index != pr.pending_snapshot ||
      (news && pr.snapshot_offset < image->size)) {
    // Every chunk in flight behind a lost one is refused: one resend
    // answers them all (if it is lost too, the stall timer sends again).
    const bool resent =
        m.reject && pr.snapshot_resent_from == held && pr.snapshot_sent > held;
    if (!resent) {
      SendSnapshotChunks(m.from, pr,
                         m.reject ? ChunkSend::kResendOne : ChunkSend::kFill);
    }
  }
}

void Raft::SendHeartbeat(uint64_t to, const std::string& ctx) {
  const Progress* pr = tracker_.Get(to);
  CHECK(pr != nullptr);
  Message m;
  m.type = MessageType::kHeartbeat;
  m.to = to;
  // Never tell a follower to commit beyond what it is known to hold.
  m.commit = unsafe_heartbeat_full_commit_
                 ? log_.committed()
                 : std::min(pr->match, log_.committed());
  m.context = ctx;
  Send(std::move(m));
}

void Raft::AnnounceCommit() {
  // Followers with entries to receive get them now, and the commit index
  // with them. One with none (the usual case at one client: it holds all
  // the leader has) hears of the commit index at the next tick, from the
  // next entries or a heartbeat, whichever comes first. Nothing waits on a
  // follower's commit index but its apply (a follower's ReadIndex round
  // brings it the leader's by heartbeat).
  for (const auto& [id, pr] : tracker_.progress()) {
    if (id == id_) continue;
    if (!MaybeSendAppend(id, /*send_if_empty=*/false)) {
      commit_unannounced_ = true;
    }
  }
}

void Raft::BroadcastAppend() {
  for (const auto& [id, pr] : tracker_.progress()) {
    if (id != id_) SendAppend(id);
  }
}

void Raft::BroadcastHeartbeat(const std::string& ctx) {
  for (const auto& [id, pr] : tracker_.progress()) {
    if (id != id_) SendHeartbeat(id, ctx);
  }
}

void Raft::SendTimeoutNow(uint64_t to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  Send(std::move(m));
}

}  // namespace raftsql::core

namespace raftsql::core {

std::vector<SnapshotTransfer> Raft::SnapshotTransfers() const {
  std::vector<SnapshotTransfer> out;
  if (state_ == StateType::kLeader) {
    for (const auto& [id, pr] : tracker_.progress()) {
      if (id == id_ || pr.state != ProgressState::kSnapshot) continue;
      out.push_back(SnapshotTransfer{
          id, pr.pending_snapshot, pr.snapshot_offset, pr.snapshot_size, true});
    }
    return out;
  }
  const uint64_t held =
      snapshot_sink_ != nullptr
          ? snapshot_sink_->held()
          : (partial_snapshot_.has_value() ? partial_snapshot_->data.size()
                                           : 0);
  if (held > 0) {
    out.push_back(SnapshotTransfer{partial_snapshot_from_,
                                   partial_snapshot_meta_.index, held,
                                   partial_snapshot_size_, false});
  }
  return out;
}

}  // namespace raftsql::core
