// The Raft state machine (Ongaro's thesis; the shape of etcd's raft.go).
//
// Pure: no I/O, threads, clock or global randomness. Time arrives as Tick(),
// network input as Step(), and everything the outside world must do comes
// back as messages in msgs_ and state the RawNode turns into a Ready.
// Not thread-safe: one owner drives it.
#ifndef RAFTSQL_CORE_RAFT_H_
#define RAFTSQL_CORE_RAFT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/log.h"
#include "core/prng.h"
#include "core/progress.h"
#include "core/read_only.h"
#include "core/storage.h"
#include "core/types.h"

namespace raftsql::core {

// A snapshot on its way, as Status shows it.
struct SnapshotTransfer {
  uint64_t peer = 0;  // The follower (sending) or the leader (receiving).
  uint64_t index = 0;
  uint64_t bytes_done = 0;  // Confirmed by the follower, or received.
  uint64_t bytes_total = 0;
  bool sending = false;
};

struct Config {
  uint64_t id = kNone;
  // A follower that hears nothing for a randomized timeout in
  // [election_ticks, 2*election_ticks) campaigns. Must exceed heartbeat_ticks.
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  // Borrowed; must outlive the Raft.
  const Storage* storage = nullptr;
  // A durable state machine's images (borrowed): snapshots for followers
  // come from it, not from storage's snapshot, which then holds no data.
  const SnapshotSource* snapshot_source = nullptr;
  // ... and where its images from a leader go (borrowed): to disk, checked
  // there, installed by reference. Null: in memory, then validate_snapshot.
  SnapshotSink* snapshot_sink = nullptr;
  // The state machine's applied index at start (0 = start from storage).
  uint64_t applied = 0;
  uint64_t max_size_per_msg = 1 << 20;
  uint64_t max_committed_size_per_ready = 16 << 20;
  // Snapshots travel in chunks of at most this many bytes; a transfer
  // resumes from the last chunk the follower holds.
  uint64_t max_snapshot_chunk_bytes = 1 << 20;
  // A leader keeps up to this many chunks of one transfer in flight (sent,
  // not yet confirmed), so that a transfer is not one round trip per chunk.
  uint64_t max_snapshot_chunks_in_flight = 16;
  // A leader sends at most about this many snapshot bytes per tick, to all
  // followers together (0: no limit), so that catch-up leaves the disk and
  // the network to writes. A chunk waits for the next tick's budget.
  uint64_t snapshot_bytes_per_tick = 0;
  // The largest snapshot image a follower accepts (in memory while it
  // arrives, or on disk with a snapshot sink); a larger one is refused as
  // invalid.
  uint64_t max_snapshot_bytes = uint64_t{4} << 30;
  // Checks a received snapshot's image before the follower installs it: an
  // image the state machine cannot restore is refused (the follower keeps
  // its log and state) instead of being installed. Optional; pure.
  std::function<absl::Status(const Snapshot&)> validate_snapshot;
  size_t max_inflight_msgs = 256;
  // Thesis §6.2: a leader steps down if it has not heard from a quorum within
  // an election timeout; followers ignore votes while they hear a leader.
  bool check_quorum = true;
  // After the commit index moves, a follower that lacks no entries hears
  // of it at the next tick (or from the next entries or a heartbeat), not
  // in an append of its own at once: one message to each follower fewer
  // per write at low concurrency, and followers apply up to a tick later
  // when writes pause. Off: announced at once, as etcd does.
  bool announce_commit_at_tick = false;
  // Fault injection for the simulator's self-tests: commit entries of
  // earlier terms by counting replicas (the bug of Raft's Figure 8).
  bool unsafe_commit_earlier_terms = false;
  // ... or count learners toward the commit quorum.
  bool unsafe_learners_in_quorum = false;
  // ... or answer ReadIndex without confirming leadership with a quorum of
  // heartbeats (a deposed leader serves stale reads).
  bool unsafe_read_index_without_quorum = false;
  // ... or count an append acknowledgement from an earlier term (a
  // response to what this node sent when it led before).
  bool unsafe_stale_append_acks = false;
  // ... or grant votes without the election restriction (§5.4.1: the
  // candidate's log at least as up to date as ours).
  bool unsafe_vote_without_log_check = false;
  // ... or tell a follower in heartbeats to commit up to the leader's
  // commit index, not only as far as it is known to match.
  bool unsafe_heartbeat_full_commit = false;
  // ... or grant a vote to a second candidate of a term while no leader is
  // known (the vote's guard written with || for &&).
  bool unsafe_double_vote = false;
  // ... or answer ReadIndex before an entry of the leader's term committed
  // (Thesis §6.4 step 1: until then its commit index may be behind).
  bool unsafe_read_index_before_term_commit = false;
  // ... or, as a follower, take an entry at an index it holds for a match
  // without comparing terms (stale entries of an old term stay).
  bool unsafe_conflict_by_index = false;
  // ... or, as a leader, take an append acknowledgement for everything sent
  // to the follower so far, not for the index it names.
  bool unsafe_match_what_was_sent = false;
  // Thesis §9.6: a candidate first checks it could win before bumping terms.
  bool pre_vote = true;
  // Seeds the randomized election timeout; the only source of randomness.
  uint64_t seed = 1;

  absl::Status Validate() const;
};

// Returned by Propose/ReadIndex/TransferLeadership when there is nobody to
// take the request (no leader known, a transfer in progress, not a member).
absl::Status ProposalDroppedError(const char* why);
bool IsProposalDropped(const absl::Status& status);

class Raft {
 public:
  explicit Raft(const Config& config);

  void Tick();
  // Feeds a message (from the network, or a local one). Errors only for
  // requests that were dropped (IsProposalDropped).
  absl::Status Step(Message m);
  // Step for a message that arrived from the network: it is validated first
  // (core/message_validation.h, and against our own state inside Step);
  // INVALID_ARGUMENT, counted in invalid_messages(), for one that no honest
  // peer sends. A refused message changes nothing.
  absl::Status StepNetwork(Message m);
  // Applies a committed membership change; returns the new configuration.
  ConfState ApplyConfChange(const ConfChange& cc);

  uint64_t id() const { return id_; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t lead() const { return lead_; }
  // Whether this node leads, or follows a leader it heard from within two
  // election timeouts. A node removed from the configuration keeps its
  // last leader in lead() (it no longer campaigns) but stops hearing from
  // it: its reads go stale, and it is no longer in contact.
  bool InContactWithLeader() const {
    return lead_ != kNone && (state_ == StateType::kLeader ||
                              election_elapsed_ < 2 * election_ticks_);
  }
  // Ticks since a follower last heard from its leader (or since the last
  // election event); a leader counts its own heartbeat interval.
  int election_elapsed() const { return election_elapsed_; }
  StateType state() const { return state_; }
  uint64_t lead_transferee() const { return lead_transferee_; }
  HardState GetHardState() const;
  SoftState GetSoftState() const;
  RaftLog& log() { return log_; }
  const RaftLog& log() const { return log_; }
  const ProgressTracker& tracker() const { return tracker_; }
  std::vector<Message>& msgs() { return msgs_; }
  const std::vector<Message>& msgs() const { return msgs_; }
  std::vector<ReadState>& read_states() { return read_states_; }
  const std::vector<ReadState>& read_states() const { return read_states_; }
  bool Promotable() const;
  // A follower needs a snapshot and the snapshot source has none that
  // covers the log's start: the runtime asks it for one (Request) and
  // clears this.
  bool snapshot_wanted() const { return snapshot_wanted_; }
  // Snapshots this node sends (leader) or receives (follower) now.
  std::vector<SnapshotTransfer> SnapshotTransfers() const;
  // The snapshot sink stored more of the image it takes, or checked it
  // (SnapshotSink::held): the leader hears how much it holds, or the image
  // is installed.
  void SnapshotSinkProgressed();
  // The snapshot source read chunks it had said were not read yet
  // (SnapshotSource::Read: Unavailable): the leader sends them.
  void SnapshotSourceProgressed();
  void ClearSnapshotWanted() { snapshot_wanted_ = false; }
  // Network messages refused as invalid, and why the latest one was.
  uint64_t invalid_messages() const { return invalid_messages_; }
  const std::string& last_invalid_message() const {
    return last_invalid_message_;
  }

  // Aborts on any broken invariant; called after every step in tests and the
  // simulator.
  void CheckInvariants() const;

 private:
  enum class CampaignType { kPreElection, kElection, kTransfer };

  // Role changes (raft.cc).
  void Reset(uint64_t term);
  void BecomeFollower(uint64_t term, uint64_t lead);
  void BecomeCandidate();
  void BecomePreCandidate();
  void BecomeLeader();
  void ResetRandomizedElectionTimeout();

  // Elections (raft_election.cc).
  void TickElection();
  void Hup(CampaignType type);
  void Campaign(CampaignType type);
  VoteResult Poll(uint64_t id, MessageType type, bool granted);
  bool StepByTerm(const Message& m);
  void HandleVoteRequest(const Message& m);
  absl::Status StepCandidate(const Message& m);
  absl::Status StepFollower(Message m);
  bool HasUnappliedConfChanges() const;

  // Leader (raft_leader.cc).
  void TickHeartbeat();
  absl::Status StepLeader(Message m);
  absl::Status LeaderPropose(Message& m);
  absl::Status CheckConfChange(const Entry& entry) const;
  void LeaderReadIndex(const Message& m);
  void HandleAppendResponse(const Message& m, Progress& pr);
  void HandleHeartbeatResponse(const Message& m, Progress& pr);
  void HandleTransferLeader(const Message& m, Progress& pr);
  bool AppendEntries(std::vector<Entry> entries);
  bool MaybeCommit();
  void SendAppend(uint64_t to) { MaybeSendAppend(to, true); }
  bool MaybeSendAppend(uint64_t to, bool send_if_empty);
  bool MaybeSendSnapshot(uint64_t to, Progress& pr);
  // kFill: chunks from what was sent up to the window, at most
  // kMaxSnapshotChunksPerSend at once (each is read on the loop: the window
  // fills over a few round trips). kResendOne: one chunk from what the
  // follower confirmed.
  enum class ChunkSend { kFill, kResendOne };
  static constexpr int kMaxSnapshotChunksPerSend = 4;
  void SendSnapshotChunks(uint64_t to, Progress& pr, ChunkSend how);
  // Fills the window of each transfer whose `waiting` flag is set.
  void SendWaitingChunks(bool Progress::*waiting);
  // Heartbeat round trips without progress before a chunk is sent again.
  int SnapshotResendBeats() const;
  void LoseSnapshotTransfer(Progress& pr);
  // The image a follower gets: storage's snapshot, or the snapshot
  // source's latest if it covers the log's start (else Unavailable, and
  // snapshot_wanted_ is set).
  absl::StatusOr<ImageInfo> ImageToSend();
  absl::StatusOr<std::string> ImageChunk(uint64_t index, uint64_t offset);
  void HandleSnapshotResponse(const Message& m, Progress& pr);
  void SendHeartbeat(uint64_t to, const std::string& ctx);
  // After the commit index moved: sends what followers lack; tells the
  // others at the next tick (commit_unannounced_).
  void AnnounceCommit();
  void BroadcastAppend();
  void BroadcastHeartbeat(const std::string& ctx);
  void SendTimeoutNow(uint64_t to);
  void AbortLeaderTransfer() { lead_transferee_ = kNone; }
  bool CommittedEntryInCurrentTerm() const;
  void RespondToReadIndex(const Message& request, uint64_t index);
  void ReleasePendingReadIndexMessages();

  // Follower side of replication (raft_follower.cc).
  void HandleAppendEntries(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  // HandleSnapshot for a follower with a snapshot sink.
  void HandleSnapshotIntoSink(const Message& m);
  // The sink took every byte of the image `from` sends: install it once it
  // is stored and checked, or tell `from` how much is stored.
  void FinishSnapshotIntoSink(uint64_t from, const SnapshotMetadata& meta);
  // Tells `to` how much of its image we hold: `held` if given, else what
  // we hold of whatever image is arriving.
  void SendSnapshotResponse(uint64_t to, uint64_t index, bool reject,
                            std::optional<uint64_t> held = std::nullopt);
  bool Restore(const Snapshot& snapshot);

  void Send(Message m);
  // Counts a refused network message (`error`, an InvalidMessageError) and
  // returns the error.
  absl::Status Refuse(absl::Status error);
  // INVALID_ARGUMENT for a message our own state shows no honest peer
  // sends; OK otherwise.
  absl::Status CheckAgainstState(const Message& m) const;

  const uint64_t id_;
  const int election_ticks_;
  const int heartbeat_ticks_;
  const uint64_t max_size_per_msg_;
  const uint64_t max_snapshot_chunk_bytes_;
  const uint64_t snapshot_window_bytes_;
  const uint64_t max_snapshot_bytes_;
  const uint64_t snapshot_bytes_per_tick_;
  // Leader: what this tick may still send (may go negative by a chunk).
  int64_t snapshot_budget_ = 0;
  const SnapshotSource* const snapshot_source_;
  SnapshotSink* const snapshot_sink_;
  bool snapshot_wanted_ = false;
  const std::function<absl::Status(const Snapshot&)> validate_snapshot_;
  const bool check_quorum_;
  const bool announce_commit_at_tick_;
  // The commit index moved since some follower last heard it.
  bool commit_unannounced_ = false;
  const bool unsafe_commit_earlier_terms_;
  const bool unsafe_learners_in_quorum_;
  const bool unsafe_read_index_without_quorum_;
  const bool unsafe_stale_append_acks_;
  const bool unsafe_vote_without_log_check_;
  const bool unsafe_heartbeat_full_commit_;
  const bool unsafe_double_vote_;
  const bool unsafe_read_index_before_term_commit_;
  const bool unsafe_match_what_was_sent_;
  const bool pre_vote_;

  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  uint64_t lead_ = kNone;
  StateType state_ = StateType::kFollower;
  RaftLog log_;
  ProgressTracker tracker_;
  Prng prng_;

  // Leader: the target of an ongoing leadership transfer.
  uint64_t lead_transferee_ = kNone;
  // Leader: index of the latest conf change proposed; a new one waits until
  // it is applied (one change at a time).
  uint64_t pending_conf_index_ = 0;
  ReadOnly read_only_;
  // ReadIndex requests held until an entry of this term commits.
  std::vector<Message> pending_read_index_messages_;

  // Ticks since the last election timeout reset (all roles) and since the
  // last heartbeat (leader). Invariant: both >= 0.
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;

  // Follower: the snapshot being received, chunk by chunk. Volatile: a
  // restart begins the transfer again. Invariant: its data is a prefix of
  // the leader's image.
  std::optional<Snapshot> partial_snapshot_;
  // Whose image it is (the sender, and the term it led), its metadata and
  // its full size: chunks of another node's image at the same index may
  // differ byte for byte (SQLite page layout), and so may the same node's
  // after it restarted (it recovered its database and applied again), so a
  // transfer only resumes with the same sender in the same term (a node
  // that restarts leads again only in a later term).
  uint64_t partial_snapshot_from_ = kNone;  // kNone: none arriving.
  uint64_t partial_snapshot_term_ = 0;
  uint64_t partial_snapshot_size_ = 0;
  SnapshotMetadata partial_snapshot_meta_;
  // With a sink: how much the leader last heard the sink stores.
  uint64_t sink_reported_ = 0;

  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;

  uint64_t invalid_messages_ = 0;
  std::string last_invalid_message_;
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_RAFT_H_
