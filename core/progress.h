// The leader's view of each follower's log (etcd's tracker.Progress) and the
// flow control that bounds what is in flight to it.
#ifndef RAFTSQL_CORE_PROGRESS_H_
#define RAFTSQL_CORE_PROGRESS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/quorum.h"
#include "core/types.h"

namespace raftsql::core {

// A ring of the last indexes of in-flight MsgApps, bounded by count.
class Inflights {
 public:
  explicit Inflights(size_t capacity);
  void Add(uint64_t index);
  // Frees every in-flight message whose last index is <= `index`.
  void FreeLE(uint64_t index);
  // Frees the oldest in-flight message (lost messages must not stall a
  // follower forever).
  void FreeFirstOne();
  bool Full() const { return count_ == capacity_; }
  size_t count() const { return count_; }
  void Reset() { start_ = count_ = 0; }
  size_t capacity() const { return capacity_; }

 private:
  size_t capacity_;
  size_t start_ = 0;
  size_t count_ = 0;  // Invariant: count_ <= capacity_.
  std::vector<uint64_t> buffer_;
};

enum class ProgressState : uint8_t {
  kProbe,      // one MsgApp at a time until we find the match point
  kReplicate,  // optimistic pipelining, bounded by Inflights
  kSnapshot,   // a snapshot is in flight; nothing else is sent
};

const char* ProgressStateName(ProgressState state);

struct Progress {
  explicit Progress(size_t max_inflight) : inflights(max_inflight) {}

  // Invariant: match < next.
  uint64_t match = 0;
  uint64_t next = 1;
  ProgressState state = ProgressState::kProbe;
  // Probe: a MsgApp was sent since the last heartbeat response; wait.
  bool probe_sent = false;
  uint64_t pending_snapshot = 0;
  // Snapshot: bytes of the image the follower has confirmed, and sent (the
  // chunks between are in flight).
  uint64_t snapshot_offset = 0;
  uint64_t snapshot_sent = 0;
  // Snapshot: snapshot_offset at the last heartbeat response (no progress
  // over a heartbeat round trip: chunks were lost, send them again).
  uint64_t snapshot_offset_at_beat = 0;
  int snapshot_stalled_beats = 0;  // Heartbeat responses since.
  // Snapshot: where the last single-chunk resend began.
  uint64_t snapshot_resent_from = UINT64_MAX;
  // Snapshot: a chunk is due but the tick's budget is spent.
  bool snapshot_waiting = false;
  // Snapshot: a chunk is due but the snapshot source has not read it yet.
  bool snapshot_source_waiting = false;
  // Snapshot: the image's size, as last sent.
  uint64_t snapshot_size = 0;
  // Heard from since the last CheckQuorum.
  bool recent_active = false;
  bool is_learner = false;
  Inflights inflights;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(uint64_t snapshot_index);
  // The follower acknowledged `n`. Returns false if it was stale.
  bool MaybeUpdate(uint64_t n);
  // The follower rejected a MsgApp at `rejected`; `match_hint` is the largest
  // index it may share with us. Returns false if the rejection is stale.
  bool MaybeDecrTo(uint64_t rejected, uint64_t match_hint);
  // Bookkeeping after sending `count` entries ending at `last` (count may be
  // 0).
  void SentEntries(size_t count, uint64_t last);
  bool IsPaused() const;
  std::string DebugString() const;
};

// Progress of every member, the voter set, and votes of the current election.
class ProgressTracker {
 public:
  explicit ProgressTracker(size_t max_inflight) : max_inflight_(max_inflight) {}

  // Replaces the configuration; progress for new members starts at `next`.
  void Configure(const ConfState& cs, uint64_t next);
  void AddVoter(uint64_t id, uint64_t next);
  void AddLearner(uint64_t id, uint64_t next);
  void Remove(uint64_t id);
  ConfState GetConfState() const;

  Progress* Get(uint64_t id);
  const Progress* Get(uint64_t id) const;
  std::map<uint64_t, Progress>& progress() { return progress_; }
  const std::map<uint64_t, Progress>& progress() const { return progress_; }
  const std::set<uint64_t>& voters() const { return voters_; }
  bool IsVoter(uint64_t id) const { return voters_.count(id) > 0; }
  bool IsSingleton() const { return voters_.size() == 1; }

  // The largest index replicated on a majority of voters.
  uint64_t Committed() const;
  // True if a majority of voters was recently active.
  bool QuorumActive() const;

  void ResetVotes() { votes_.clear(); }
  // Records a vote (the first one from each voter counts) and tallies.
  VoteResult RecordVote(uint64_t id, bool granted);
  VoteResult TallyVotesNow() const { return TallyVotes(voters_, votes_); }

  // Every voter has a progress and each progress is a voter's or a
  // learner's, as its flag says; match < next; in-flight messages within
  // their bound; a snapshot state names its snapshot and has had no more
  // confirmed than it sent.
  void CheckInvariants() const;

 private:
  size_t max_inflight_;
  std::map<uint64_t, Progress> progress_;  // Ordered: deterministic fan-out.
  std::set<uint64_t> voters_;              // Invariant: voters_ ⊆ keys.
  std::map<uint64_t, bool> votes_;
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_PROGRESS_H_
