// Elections: timeouts, PreVote (thesis §9.6), CheckQuorum leases (thesis
// §6.2 / §4.2.3), votes (Raft §5.2, §5.4.1) and term handling (Raft §5.1).
#include <utility>

#include "core/check.h"
#include "core/raft.h"

namespace raftsql::core {
namespace {

// Marks the vote requests of a leadership transfer: they must not be ignored
// by followers that still consider the old leader alive.
constexpr char kCampaignTransfer[] = "raft-campaign-transfer";

MessageType VoteResponseType(MessageType request) {
  return request == MessageType::kVote ? MessageType::kVoteResp
                                       : MessageType::kPreVoteResp;
}

}  // namespace

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    Message hup;
    hup.type = MessageType::kHup;
    hup.from = id_;
    (void)Step(std::move(hup));
  }
}

bool Raft::HasUnappliedConfChanges() const {
  if (log_.applied() >= log_.committed()) return false;
  absl::StatusOr<std::vector<Entry>> ents =
      log_.Slice(log_.applied() + 1, log_.committed() + 1, UINT64_MAX);
  CHECK(ents.ok());
  for (const Entry& e : *ents) {
    if (e.type == EntryType::kConfChange) return true;
  }
  return false;
}

void Raft::Hup(CampaignType type) {
  if (state_ == StateType::kLeader) return;
  if (!Promotable()) return;
  // A node must not campaign on a configuration it has not applied yet: it
  // could count votes under the wrong membership.
  if (HasUnappliedConfChanges()) return;
  Campaign(type);
}

void Raft::Campaign(CampaignType type) {
  uint64_t term = 0;
  MessageType vote_type;
  if (type == CampaignType::kPreElection) {
    BecomePreCandidate();
    vote_type = MessageType::kPreVote;
    // Pre-votes ask for the term we would campaign in, without taking it.
    term = term_ + 1;
  } else {
    BecomeCandidate();
    vote_type = MessageType::kVote;
    term = term_;
  }
  if (Poll(id_, VoteResponseType(vote_type), true) == VoteResult::kWon) {
    // A single-voter cluster wins at once.
    if (type == CampaignType::kPreElection) {
      Campaign(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (uint64_t id : tracker_.voters()) {
    if (id == id_) continue;
    Message m;
    m.type = vote_type;
    m.to = id;
    m.term = term;
    m.index = log_.LastIndex();
    m.log_term = log_.LastTerm();
    if (type == CampaignType::kTransfer) m.context = kCampaignTransfer;
    Send(std::move(m));
  }
}

VoteResult Raft::Poll(uint64_t id, MessageType type, bool granted) {
  CHECK(type == MessageType::kVoteResp || type == MessageType::kPreVoteResp);
  CHECK(state_ == StateType::kCandidate || state_ == StateType::kPreCandidate);
  return tracker_.RecordVote(id, granted);
}

bool Raft::StepByTerm(const Message& m) {
  if (m.term == 0) return true;  // Local messages and forwarded requests.
  if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      const bool force = m.context == kCampaignTransfer;
      // Thesis §4.2.3: while we hear from a leader, a vote request from a
      // node that was partitioned away must not depose it.
      const bool in_lease = check_quorum_ && lead_ != kNone &&
                            election_elapsed_ < election_ticks_;
      if (!force && in_lease) return false;
    }
    if (m.type == MessageType::kPreVote) {
      // A pre-vote never changes our term (thesis §9.6).
    } else if (m.type == MessageType::kPreVoteResp && !m.reject) {
      // The pre-vote's future term: we take it only once we win the quorum.
    } else if (m.type == MessageType::kApp ||
               m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnap) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNone);  // Raft §5.1: adopt the newer term.
    }
    return true;
  }
  if (m.term < term_) {
    if (unsafe_stale_append_acks_ && m.type == MessageType::kAppResp &&
        state_ == StateType::kLeader && !m.reject) {
      return true;  // The planted bug: counted as if of this term.
    }
    if ((check_quorum_ || pre_vote_) &&
        (m.type == MessageType::kHeartbeat || m.type == MessageType::kApp)) {
      // A stale leader (e.g. healed from a partition) would otherwise never
      // learn of the new term: with CheckQuorum or PreVote nobody bumps its
      // term by campaigning against it. The response carries our term.
      Message resp;
      resp.type = MessageType::kAppResp;
      resp.to = m.from;
      Send(std::move(resp));
    } else if (m.type == MessageType::kPreVote) {
      Message resp;
      resp.type = MessageType::kPreVoteResp;
      resp.to = m.from;
      resp.term = term_;
      resp.reject = true;
      Send(std::move(resp));
    }
    return false;  // Raft §5.1: stale-term requests are ignored.
  }
  return true;
}

void Raft::HandleVoteRequest(const Message& m) {
  CHECK(m.type == MessageType::kVote || m.type == MessageType::kPreVote);
  // We can vote for a candidate we already voted for (a retry), or if we
  // have not voted and know no leader in this term. A pre-vote for a future
  // term is always considered: it binds nothing.
  const bool unvoted = unsafe_double_vote_ ? (vote_ == kNone || lead_ == kNone)
                                           : (vote_ == kNone && lead_ == kNone);
  const bool can_vote = vote_ == m.from || unvoted ||
                        (m.type == MessageType::kPreVote && m.term > term_);
  Message resp;
  resp.type = VoteResponseType(m.type);
  resp.to = m.from;
  // Raft §5.4.1 election restriction: only vote for a candidate whose log is
  // at least as up-to-date as ours.
  if (can_vote && (unsafe_vote_without_log_check_ ||
                   log_.IsUpToDate(m.index, m.log_term))) {
    resp.term = m.term;
    if (m.type == MessageType::kVote) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    resp.term = term_;
    resp.reject = true;
  }
  Send(std::move(resp));
}

absl::Status Raft::StepCandidate(const Message& m) {
  CHECK(state_ == StateType::kCandidate || state_ == StateType::kPreCandidate);
  CHECK_EQ(lead_, kNone);
  const MessageType my_response = state_ == StateType::kPreCandidate
                                      ? MessageType::kPreVoteResp
                                      : MessageType::kVoteResp;
  switch (m.type) {
    case MessageType::kProp:
      return ProposalDroppedError("no leader");
    case MessageType::kReadIndex:
      return ProposalDroppedError("no leader");
    case MessageType::kTransferLeader:
      return ProposalDroppedError("no leader");
    case MessageType::kApp:
      BecomeFollower(m.term, m.from);  // Raft §5.2: a leader of our term won.
      HandleAppendEntries(m);
      return absl::OkStatus();
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      return absl::OkStatus();
    case MessageType::kSnap:
      BecomeFollower(m.term, m.from);
      HandleSnapshot(m);
      return absl::OkStatus();
    default:
      break;
  }
  if (m.type != my_response) return absl::OkStatus();
  switch (Poll(m.from, m.type, !m.reject)) {
    case VoteResult::kWon:
      if (state_ == StateType::kPreCandidate) {
        Campaign(CampaignType::kElection);
      } else {
        BecomeLeader();
        BroadcastAppend();
      }
      break;
    case VoteResult::kLost:
      BecomeFollower(term_, kNone);
      break;
    case VoteResult::kPending:
      break;
  }
  return absl::OkStatus();
}

}  // namespace raftsql::core
