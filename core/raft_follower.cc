// The follower: forwarding requests to the leader and accepting its log
// (Raft §5.3), commit index (heartbeats) and snapshots (Raft §7).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/message_validation.h"
#include "core/raft.h"

namespace raftsql::core {

absl::Status Raft::StepFollower(Message m) {
  CHECK(state_ == StateType::kFollower);
  switch (m.type) {
    case MessageType::kProp:
    case MessageType::kReadIndex:
    case MessageType::kTransferLeader:
      if (lead_ == kNone) return ProposalDroppedError("no leader");
      // Forward to the leader. Forwarded proposals and reads carry no term;
      // the leader treats them as local requests from us. A proposal states
      // the term it was forwarded in, and only that term's leader takes
      // it: once an entry of a later term applies here, a proposal this
      // node forwarded earlier has applied or never will.
      if (m.type == MessageType::kProp && m.log_term == 0) m.log_term = term_;
      m.to = lead_;
      m.term = 0;
      Send(std::move(m));
      return absl::OkStatus();
    case MessageType::kApp:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleAppendEntries(m);
      return absl::OkStatus();
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleHeartbeat(m);
      return absl::OkStatus();
    case MessageType::kSnap:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleSnapshot(m);
      return absl::OkStatus();
    case MessageType::kTimeoutNow:
      // Thesis §3.10: the leader hands over; campaign at once, skipping the
      // pre-vote and the other followers' leases. Only our leader may.
      if (m.from != lead_ || lead_ == kNone) return absl::OkStatus();
      Hup(CampaignType::kTransfer);
      return absl::OkStatus();
    case MessageType::kReadIndexResp:
      read_states_.push_back(ReadState{m.index, m.context});
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

void Raft::HandleAppendEntries(const Message& m) {
  CHECK(state_ == StateType::kFollower);
  CHECK_EQ(m.term, term_);
  CHECK_EQ(m.from, lead_);
  Message resp;
  resp.type = MessageType::kAppResp;
  resp.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to our commit index is settled; tell the leader where we
    // are so it skips ahead.
    resp.index = log_.committed();
    Send(std::move(resp));
    return;
  }
  if (std::optional<uint64_t> last =
          log_.MaybeAppend(m.index, m.log_term, m.commit, m.entries)) {
    resp.index = *last;
    Send(std::move(resp));
    return;
  }
  // Raft §5.3 with the fast back-off of thesis §3.5: tell the leader the
  // largest index at or below the probe whose term is <= the probe's term,
  // so it can skip a whole term of mismatching entries per round trip.
  const uint64_t probe = std::min(m.index, log_.LastIndex());
  const auto [hint_index, hint_term] =
      log_.FindConflictByTerm(probe, m.log_term);
  resp.index = m.index;
  resp.reject = true;
  resp.reject_hint = hint_index;
  resp.log_term = hint_term;
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  // The leader never sends a commit index above what it knows we hold.
  log_.CommitTo(std::min(m.commit, log_.LastIndex()));
  Message resp;
  resp.type = MessageType::kHeartbeatResp;
  resp.to = m.from;
  resp.context = m.context;
  Send(std::move(resp));
}

void Raft::HandleSnapshot(const Message& m) {
  CHECK(m.snapshot.has_value());
  const SnapshotMetadata& meta = m.snapshot->metadata;
  Message done;
  done.type = MessageType::kAppResp;
  done.to = m.from;
  if (meta.index <= log_.committed()) {
    // Nothing to install: tell the leader where we are.
    partial_snapshot_.reset();
    if (snapshot_sink_ != nullptr) snapshot_sink_->Drop();
    done.index = log_.committed();
    Send(std::move(done));
    return;
  }
  if (snapshot_sink_ != nullptr) {
    HandleSnapshotIntoSink(m);
    return;
  }
  if (!partial_snapshot_.has_value() || partial_snapshot_->metadata != meta ||
      partial_snapshot_from_ != m.from || partial_snapshot_term_ != m.term ||
      partial_snapshot_size_ != m.snapshot_size) {
    // A new transfer must start at the beginning.
    partial_snapshot_.reset();
    if (m.snapshot_offset != 0) {
      SendSnapshotResponse(m.from, meta.index, /*reject=*/true);
      return;
    }
    partial_snapshot_ = Snapshot{meta, ""};
    partial_snapshot_from_ = m.from;
    partial_snapshot_term_ = m.term;
    partial_snapshot_size_ = m.snapshot_size;
    partial_snapshot_meta_ = meta;
  }
  std::string& have = partial_snapshot_->data;
  const std::string& chunk = m.snapshot->data;
  if (m.snapshot_offset > have.size()) {
    SendSnapshotResponse(m.from, meta.index, /*reject=*/true);  // A gap.
    return;
  }
  // Append what this chunk adds beyond what we hold (chunks may repeat).
  const uint64_t skip = have.size() - m.snapshot_offset;
  if (skip < chunk.size()) have.append(chunk, skip, std::string::npos);
  // ValidateNetworkMessage: a chunk never reaches past the snapshot's size.
  CHECK_LE(have.size(), m.snapshot_size);
  if (have.size() < m.snapshot_size) {
    SendSnapshotResponse(m.from, meta.index, /*reject=*/false);
    return;
  }
  Snapshot full = std::move(*partial_snapshot_);
  partial_snapshot_.reset();
  if (validate_snapshot_) {
    absl::Status valid = validate_snapshot_(full);
    if (!valid.ok()) {
      // An image the state machine cannot restore is never installed: our
      // log and state stay as they are, and the transfer starts over.
      (void)Refuse(InvalidMessageError(
          m, absl::StrCat("snapshot refused: ", valid.message())));
      SendSnapshotResponse(m.from, meta.index, /*reject=*/true);
      return;
    }
  }
  done.index = Restore(full) ? log_.LastIndex() : log_.committed();
  Send(std::move(done));
}

void Raft::HandleSnapshotIntoSink(const Message& m) {
  const SnapshotMetadata& meta = m.snapshot->metadata;
  SnapshotSink& sink = *snapshot_sink_;
  // Chunks of another image at the same index may differ byte for byte
  // (SQLite page layout): a transfer resumes only with its sender (the
  // sink holds it for that sender alone), in the term it began. An image
  // taken whole is one sender's in one term, and is finished when that
  // sender asks again in a later one rather than received again.
  std::optional<uint64_t> held = sink.Held(meta, m.from, m.snapshot_size);
  if (partial_snapshot_term_ != m.term && held.has_value() &&
      *held < m.snapshot_size) {
    held.reset();
  }
  if (!held.has_value()) {
    // A new transfer must start at the beginning: the sender hears that we
    // hold none of its image (not what we hold of another one, which it
    // would send on from, and we refuse again).
    if (m.snapshot_offset != 0) {
      SendSnapshotResponse(m.from, meta.index, /*reject=*/true, 0);
      return;
    }
    if (!sink.Begin(meta, m.from, m.snapshot_size).ok()) {
      SendSnapshotResponse(m.from, meta.index, /*reject=*/true);
      return;
    }
    held = 0;
    partial_snapshot_from_ = m.from;
    partial_snapshot_term_ = m.term;
    partial_snapshot_size_ = m.snapshot_size;
    partial_snapshot_meta_ = meta;
  }
  if (m.snapshot_offset > *held) {
    SendSnapshotResponse(m.from, meta.index, /*reject=*/true);  // A gap.
    return;
  }
  // Append what this chunk adds beyond what we hold (chunks may repeat).
  const std::string& chunk = m.snapshot->data;
  const uint64_t skip = *held - m.snapshot_offset;
  if (skip < chunk.size()) {
    const absl::Status taken =
        sink.Append(absl::string_view(chunk).substr(skip));
    if (absl::IsResourceExhausted(taken)) {
      // Not taken: the leader hears what is stored, and sends on from it.
      SendSnapshotResponse(m.from, meta.index, /*reject=*/false);
      return;
    }
    if (!taken.ok()) {
      sink.Drop();
      SendSnapshotResponse(m.from, meta.index, /*reject=*/true);
      return;
    }
    held = *held + (chunk.size() - skip);
  }
  // ValidateNetworkMessage: a chunk never reaches past the snapshot's size.
  CHECK_LE(*held, m.snapshot_size);
  if (*held < m.snapshot_size) {
    SendSnapshotResponse(m.from, meta.index, /*reject=*/false);
    return;
  }
  FinishSnapshotIntoSink(m.from, meta);
}

void Raft::FinishSnapshotIntoSink(uint64_t from, const SnapshotMetadata& meta) {
  SnapshotSink& sink = *snapshot_sink_;
  const absl::Status finished = sink.Finish();
  if (absl::IsUnavailable(finished)) {
    // Being stored or checked: the sink's progress, or the leader's next
    // chunk (it sends one with each heartbeat response while it waits),
    // asks again.
    SendSnapshotResponse(from, meta.index, /*reject=*/false);
    return;
  }
  if (absl::IsAborted(finished)) {
    sink.Drop();
    SendSnapshotResponse(from, meta.index, /*reject=*/true);
    return;
  }
  if (!finished.ok()) {
    // An image the state machine cannot restore is never installed: our
    // log and state stay as they are, and the transfer starts over.
    sink.Drop();
    Message about;
    about.type = MessageType::kSnap;
    about.from = from;
    (void)Refuse(InvalidMessageError(
        about, absl::StrCat("snapshot refused: ", finished.message())));
    SendSnapshotResponse(from, meta.index, /*reject=*/true);
    return;
  }
  Message done;
  done.type = MessageType::kAppResp;
  done.to = from;
  if (Restore(Snapshot{meta, sink.Reference()})) {
    sink.Installed();
    done.index = log_.LastIndex();
  } else {
    sink.Drop();  // Not needed after all.
    done.index = log_.committed();
  }
  Send(std::move(done));
}

void Raft::SnapshotSinkProgressed() {
  if (snapshot_sink_ == nullptr || state_ != StateType::kFollower ||
      partial_snapshot_from_ == kNone) {
    return;
  }
  SnapshotSink& sink = *snapshot_sink_;
  const std::optional<uint64_t> taken = sink.Held(
      partial_snapshot_meta_, partial_snapshot_from_, partial_snapshot_size_);
  if (!taken.has_value()) return;  // No transfer, or an installed image.
  if (partial_snapshot_meta_.index <= log_.committed()) {
    return;  // Not needed: the leader's next chunk hears so.
  }
  if (*taken == partial_snapshot_size_) {
    FinishSnapshotIntoSink(partial_snapshot_from_, partial_snapshot_meta_);
  } else if (sink.held() != sink_reported_) {
    SendSnapshotResponse(partial_snapshot_from_, partial_snapshot_meta_.index,
                         /*reject=*/false);
  }
}

void Raft::SendSnapshotResponse(uint64_t to, uint64_t index, bool reject,
                                std::optional<uint64_t> held) {
  Message resp;
  resp.type = MessageType::kSnapResp;
  resp.to = to;
  resp.index = index;
  resp.reject = reject;
  if (held.has_value()) {
    resp.snapshot_offset = *held;
    if (snapshot_sink_ != nullptr) sink_reported_ = *held;
  } else if (snapshot_sink_ != nullptr) {
    resp.snapshot_offset = snapshot_sink_->held();
    sink_reported_ = resp.snapshot_offset;
  } else {
    resp.snapshot_offset =
        partial_snapshot_.has_value() ? partial_snapshot_->data.size() : 0;
  }
  Send(std::move(resp));
}

bool Raft::Restore(const Snapshot& snapshot) {
  CHECK(state_ == StateType::kFollower);
  const SnapshotMetadata& meta = snapshot.metadata;
  if (meta.index <= log_.committed()) return false;
  if (log_.MatchTerm(meta.index, meta.term)) {
    // We already hold the snapshot's last entry, so by Log Matching the whole
    // prefix: just move the commit index forward.
    log_.CommitTo(meta.index);
    return false;
  }
  log_.Restore(snapshot);
  tracker_.Configure(meta.conf_state, log_.LastIndex() + 1);
  CHECK_EQ(log_.LastIndex(), meta.index);
  return true;
}

}  // namespace raftsql::core
