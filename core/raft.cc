// Construction, role changes, the top-level Step dispatch and invariants.
// Elections live in raft_election.cc, the leader in raft_leader.cc and the
// follower side of replication in raft_follower.cc.
#include "core/raft.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace raftsql::core {

absl::Status Config::Validate() const {
  if (id == kNone) return absl::InvalidArgumentError("id must be positive");
  if (heartbeat_ticks <= 0) {
    return absl::InvalidArgumentError("heartbeat_ticks must be positive");
  }
  if (election_ticks <= heartbeat_ticks) {
    return absl::InvalidArgumentError(
        "election_ticks must be greater than heartbeat_ticks");
  }
  if (storage == nullptr) return absl::InvalidArgumentError("storage is null");
  if (max_snapshot_chunk_bytes == 0) {
    return absl::InvalidArgumentError(
        "max_snapshot_chunk_bytes must be positive");
  }
  if (max_snapshot_chunks_in_flight == 0) {
    return absl::InvalidArgumentError(
        "max_snapshot_chunks_in_flight must be positive");
  }
  if (max_inflight_msgs == 0) {
    return absl::InvalidArgumentError("max_inflight_msgs must be positive");
  }
  return absl::OkStatus();
}

absl::Status ProposalDroppedError(const char* why) {
  return absl::UnavailableError(absl::StrCat("raft proposal dropped: ", why));
}

bool IsProposalDropped(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable &&
         absl::StartsWith(status.message(), "raft proposal dropped");
}

Raft::Raft(const Config& config)
    : id_(config.id),
      election_ticks_(config.election_ticks),
      heartbeat_ticks_(config.heartbeat_ticks),
      max_size_per_msg_(config.max_size_per_msg),
      max_snapshot_chunk_bytes_(config.max_snapshot_chunk_bytes),
      snapshot_window_bytes_(config.max_snapshot_chunk_bytes *
                             config.max_snapshot_chunks_in_flight),
      max_snapshot_bytes_(config.max_snapshot_bytes),
      snapshot_bytes_per_tick_(config.snapshot_bytes_per_tick),
      snapshot_budget_(static_cast<int64_t>(config.snapshot_bytes_per_tick)),
      snapshot_source_(config.snapshot_source),
      snapshot_sink_(config.snapshot_sink),
      validate_snapshot_(config.validate_snapshot),
      check_quorum_(config.check_quorum),
      announce_commit_at_tick_(config.announce_commit_at_tick),
      unsafe_commit_earlier_terms_(config.unsafe_commit_earlier_terms),
      unsafe_learners_in_quorum_(config.unsafe_learners_in_quorum),
      unsafe_read_index_without_quorum_(
          config.unsafe_read_index_without_quorum),
      unsafe_stale_append_acks_(config.unsafe_stale_append_acks),
      unsafe_vote_without_log_check_(config.unsafe_vote_without_log_check),
      unsafe_heartbeat_full_commit_(config.unsafe_heartbeat_full_commit),
      unsafe_double_vote_(config.unsafe_double_vote),
      unsafe_read_index_before_term_commit_(
          config.unsafe_read_index_before_term_commit),
      unsafe_match_what_was_sent_(config.unsafe_match_what_was_sent),
      pre_vote_(config.pre_vote),
      log_(config.storage, config.max_committed_size_per_ready),
      tracker_(config.max_inflight_msgs),
      prng_(config.seed ^ (config.id * 0x9e3779b97f4a7c15ull)) {
  CHECK(config.Validate().ok());
  log_.unsafe_conflict_by_index = config.unsafe_conflict_by_index;
  absl::StatusOr<InitialState> initial = config.storage->GetInitialState();
  CHECK(initial.ok());
  tracker_.Configure(initial->conf_state, log_.LastIndex() + 1);
  const HardState& hs = initial->hard_state;
  if (!hs.IsEmpty()) {
    CHECK_LE(hs.commit, log_.LastIndex());
    term_ = hs.term;
    vote_ = hs.vote;
    log_.CommitTo(hs.commit);
  }
  if (config.applied > log_.committed()) {
    // A durable state machine can be ahead of the commit index on disk (a
    // Ready that only moves the commit index writes nothing): what it applied
    // was committed, and its entries are in the log (they were made durable
    // before they were applied).
    CHECK_LE(config.applied, log_.LastIndex());
    log_.CommitTo(config.applied);
  }
  if (config.applied > 0) log_.AppliedTo(config.applied);
  BecomeFollower(term_, kNone);
}

HardState Raft::GetHardState() const {
  return HardState{term_, vote_, log_.committed()};
}

SoftState Raft::GetSoftState() const { return SoftState{lead_, state_}; }

bool Raft::Promotable() const {
  // Only voters campaign; a node that holds a pending snapshot waits for it.
  return tracker_.IsVoter(id_) && !log_.UnstableSnapshot().has_value();
}

void Raft::Tick() {
  if (state_ == StateType::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::Reset(uint64_t term) {
  if (term_ != term) {
    CHECK_GT(term, term_);  // Terms never go back (Raft §5.1).
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  tracker_.ResetVotes();
  const uint64_t last = log_.LastIndex();
  for (auto& [id, pr] : tracker_.progress()) {
    pr.match = id == id_ ? last : 0;
    pr.next = last + 1;
    pr.state = ProgressState::kProbe;
    pr.probe_sent = false;
    pr.pending_snapshot = 0;
    pr.recent_active = false;
    pr.inflights.Reset();
  }
  pending_conf_index_ = 0;
  read_only_ = ReadOnly();
  pending_read_index_messages_.clear();
}

void Raft::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      election_ticks_ + static_cast<int>(prng_.Uniform(election_ticks_));
}

void Raft::BecomeFollower(uint64_t term, uint64_t lead) {
  Reset(term);
  lead_ = lead;
  state_ = StateType::kFollower;
}

void Raft::BecomeCandidate() {
  CHECK(state_ != StateType::kLeader);
  Reset(term_ + 1);
  vote_ = id_;
  state_ = StateType::kCandidate;
}

void Raft::BecomePreCandidate() {
  CHECK(state_ != StateType::kLeader);
  // Thesis §9.6: a pre-candidate changes neither term nor vote, so a node
  // that cannot win does not disrupt the cluster.
  tracker_.ResetVotes();
  lead_ = kNone;
  state_ = StateType::kPreCandidate;
}

void Raft::BecomeLeader() {
  CHECK(state_ != StateType::kFollower);
  CHECK(state_ != StateType::kPreCandidate);
  Reset(term_);
  lead_ = id_;
  state_ = StateType::kLeader;
  Progress* self = tracker_.Get(id_);
  CHECK(self != nullptr);
  self->BecomeReplicate();
  self->recent_active = true;
  // Conservatively treat the whole uncommitted tail as possibly holding a
  // conf change: none may be proposed until it is applied.
  pending_conf_index_ = log_.LastIndex();
  // Raft §8 / thesis §6.4: a no-op of the new term lets the leader learn the
  // commit index (and so serve reads) and commits earlier terms' entries.
  CHECK(AppendEntries({Entry{}}));
}

absl::Status Raft::Step(Message m) {
  if (!StepByTerm(m)) return absl::OkStatus();
  switch (m.type) {
    case MessageType::kHup:
      Hup(pre_vote_ ? CampaignType::kPreElection : CampaignType::kElection);
      return absl::OkStatus();
    case MessageType::kVote:
    case MessageType::kPreVote:
      HandleVoteRequest(m);
      return absl::OkStatus();
    default:
      break;
  }
  switch (state_) {
    case StateType::kLeader:
      return StepLeader(std::move(m));
    case StateType::kCandidate:
    case StateType::kPreCandidate:
      return StepCandidate(m);
    case StateType::kFollower:
      return StepFollower(std::move(m));
  }
  return absl::OkStatus();
}

void Raft::Send(Message m) {
  m.from = id_;
  const bool is_vote =
      m.type == MessageType::kVote || m.type == MessageType::kVoteResp ||
      m.type == MessageType::kPreVote || m.type == MessageType::kPreVoteResp;
  if (is_vote) {
    // Vote messages carry the term being campaigned for, which may differ
    // from ours (a pre-vote asks for term+1); the caller sets it.
    CHECK_NE(m.term, 0u);
  } else {
    CHECK_EQ(m.term, 0u);
    // Forwarded proposals and reads carry no term: the leader treats them as
    // local requests.
    if (m.type != MessageType::kProp && m.type != MessageType::kReadIndex) {
      m.term = term_;
    }
  }
  CHECK(!IsLocalMessage(m.type));
  CHECK_NE(m.to, id_);
  msgs_.push_back(std::move(m));
}

ConfState Raft::ApplyConfChange(const ConfChange& cc) {
  const uint64_t next = log_.LastIndex() + 1;
  switch (cc.type) {
    case ConfChange::Type::kAddVoter:
      tracker_.AddVoter(cc.node_id, next);
      break;
    case ConfChange::Type::kAddLearner:
      if (!tracker_.IsVoter(cc.node_id)) tracker_.AddLearner(cc.node_id, next);
      break;
    case ConfChange::Type::kRemoveNode:
      tracker_.Remove(cc.node_id);
      break;
  }
  if (state_ == StateType::kLeader) {
    if (!tracker_.IsVoter(id_)) {
      // A leader that removed itself steps down; the rest elect a new one.
      BecomeFollower(term_, kNone);
    } else {
      if (lead_transferee_ != kNone &&
          tracker_.Get(lead_transferee_) == nullptr) {
        AbortLeaderTransfer();
      }
      // A smaller quorum may commit more; new members need entries.
      if (MaybeCommit()) ReleasePendingReadIndexMessages();
      BroadcastAppend();
    }
  }
  // The change took effect: a voter added is one, a learner added is one
  // unless it was a voter already, and a node removed has no progress.
  switch (cc.type) {
    case ConfChange::Type::kAddVoter:
      CHECK(tracker_.IsVoter(cc.node_id));
      break;
    case ConfChange::Type::kAddLearner:
      CHECK(tracker_.Get(cc.node_id) != nullptr);
      break;
    case ConfChange::Type::kRemoveNode:
      CHECK(tracker_.Get(cc.node_id) == nullptr);
      break;
  }
  // A leader that is no longer a voter has stepped down.
  CHECK(state_ != StateType::kLeader || tracker_.IsVoter(id_));
  return tracker_.GetConfState();
}

void Raft::CheckInvariants() const {
  log_.CheckInvariants();
  CHECK_GE(term_, log_.LastTerm());
  CHECK_GE(election_elapsed_, 0);
  CHECK_GE(heartbeat_elapsed_, 0);
  switch (state_) {
    case StateType::kLeader: {
      CHECK_EQ(lead_, id_);
      CHECK_EQ(vote_, id_);  // A leader voted for itself in its own term.
      // A follower's progress is not used until it leads.
      tracker_.CheckInvariants();  // match < next among them.
      const uint64_t last = log_.LastIndex();
      for (const auto& [id, pr] : tracker_.progress()) {
        CHECK_LE(pr.match, last);
        CHECK_LE(pr.next, last + 1);
        if (id == id_) CHECK_EQ(pr.match, last);
      }
      break;
    }
    case StateType::kCandidate:
      CHECK_EQ(vote_, id_);
      CHECK_EQ(lead_, kNone);
      break;
    case StateType::kPreCandidate:
      CHECK_EQ(lead_, kNone);
      break;
    case StateType::kFollower:
      CHECK_NE(lead_, id_);
      CHECK_EQ(lead_transferee_, kNone);
      break;
  }
  if (state_ != StateType::kLeader) CHECK_EQ(read_only_.size(), 0u);
}

}  // namespace raftsql::core
