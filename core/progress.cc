#include "core/progress.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "core/check.h"

namespace raftsql::core {

Inflights::Inflights(size_t capacity) : capacity_(capacity) {
  CHECK_GT(capacity, 0u);
  buffer_.resize(capacity);
}

void Inflights::Add(uint64_t index) {
  CHECK(!Full());
  if (count_ > 0) {
    // In-flight indexes only grow: each MsgApp ends after the previous one.
    CHECK_GT(index, buffer_[(start_ + count_ - 1) % capacity_]);
  }
  buffer_[(start_ + count_) % capacity_] = index;
  ++count_;
}

void Inflights::FreeLE(uint64_t index) {
  while (count_ > 0 && buffer_[start_] <= index) {
    start_ = (start_ + 1) % capacity_;
    --count_;
  }
  if (count_ == 0) start_ = 0;
}

void Inflights::FreeFirstOne() {
  if (count_ == 0) return;
  start_ = (start_ + 1) % capacity_;
  --count_;
  if (count_ == 0) start_ = 0;
}

const char* ProgressStateName(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe:
      return "Probe";
    case ProgressState::kReplicate:
      return "Replicate";
    case ProgressState::kSnapshot:
      return "Snapshot";
  }
  return "Unknown";
}

void Progress::BecomeProbe() {
  // After a snapshot, the follower has at least the snapshot's index.
  if (state == ProgressState::kSnapshot) {
    const uint64_t pending = pending_snapshot;
    state = ProgressState::kProbe;
    next = std::max(match + 1, pending + 1);
  } else {
    state = ProgressState::kProbe;
    next = match + 1;
  }
  probe_sent = false;
  pending_snapshot = 0;
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  probe_sent = false;
  pending_snapshot = 0;
  inflights.Reset();
}

void Progress::BecomeSnapshot(uint64_t snapshot_index) {
  state = ProgressState::kSnapshot;
  probe_sent = false;
  pending_snapshot = snapshot_index;
  snapshot_offset = 0;
  snapshot_sent = 0;
  snapshot_offset_at_beat = 0;
  snapshot_stalled_beats = 0;
  snapshot_resent_from = UINT64_MAX;
  snapshot_waiting = false;
  snapshot_source_waiting = false;
  inflights.Reset();
}

bool Progress::MaybeUpdate(uint64_t n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  CHECK_LT(match, next);
  return updated;
}

bool Progress::MaybeDecrTo(uint64_t rejected, uint64_t match_hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection at or below match is a reordered old response.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe state only the latest probe (at next-1) may be rejected, and
  // never at or below match: that would mean the follower lost entries it
  // acknowledged as durable. Ignoring it keeps such a follower (a broken
  // disk) from turning every duplicate rejection into a new probe; the
  // heartbeat round still retries.
  if (next == 0 || next - 1 != rejected || rejected <= match) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  CHECK_GE(next, 1u);
  probe_sent = false;
  return true;
}

void Progress::SentEntries(size_t count, uint64_t last) {
  switch (state) {
    case ProgressState::kReplicate:
      if (count > 0) {
        CHECK_GE(last, next);
        next = last + 1;
        inflights.Add(last);
      }
      break;
    case ProgressState::kProbe:
      // One probe per heartbeat interval until the follower answers.
      probe_sent = true;
      break;
    case ProgressState::kSnapshot:
      CHECK(false);  // Nothing is sent while a snapshot is in flight.
  }
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
      return probe_sent;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

std::string Progress::DebugString() const {
  return absl::StrFormat("%s match=%d next=%d%s%s", ProgressStateName(state),
                         match, next, is_learner ? " learner" : "",
                         probe_sent ? " paused" : "");
}

void ProgressTracker::Configure(const ConfState& cs, uint64_t next) {
  progress_.clear();
  voters_.clear();
  votes_.clear();
  for (uint64_t id : cs.voters) AddVoter(id, next);
  for (uint64_t id : cs.learners) AddLearner(id, next);
}

void ProgressTracker::AddVoter(uint64_t id, uint64_t next) {
  CHECK_NE(id, kNone);
  auto it = progress_.find(id);
  if (it == progress_.end()) {
    it = progress_.emplace(id, Progress(max_inflight_)).first;
    it->second.next = next;
    // A new member counts as active until the next CheckQuorum round, so
    // adding it cannot make the leader step down at once.
    it->second.recent_active = true;
  }
  it->second.is_learner = false;
  voters_.insert(id);
}

void ProgressTracker::AddLearner(uint64_t id, uint64_t next) {
  CHECK_NE(id, kNone);
  CHECK(voters_.count(id) == 0);  // Demotion is not supported.
  auto it = progress_.find(id);
  if (it == progress_.end()) {
    it = progress_.emplace(id, Progress(max_inflight_)).first;
    it->second.next = next;
    it->second.recent_active = true;
  }
  it->second.is_learner = true;
}

void ProgressTracker::Remove(uint64_t id) {
  progress_.erase(id);
  voters_.erase(id);
  votes_.erase(id);
}

ConfState ProgressTracker::GetConfState() const {
  ConfState cs;
  for (const auto& [id, pr] : progress_) {
    (pr.is_learner ? cs.learners : cs.voters).push_back(id);
  }
  return cs;
}

Progress* ProgressTracker::Get(uint64_t id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

const Progress* ProgressTracker::Get(uint64_t id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

uint64_t ProgressTracker::Committed() const {
  std::map<uint64_t, uint64_t> match;
  for (uint64_t id : voters_) match[id] = progress_.at(id).match;
  return CommittedIndex(voters_, match);
}

bool ProgressTracker::QuorumActive() const {
  std::map<uint64_t, bool> active;
  for (uint64_t id : voters_) active[id] = progress_.at(id).recent_active;
  return TallyVotes(voters_, active) == VoteResult::kWon;
}

VoteResult ProgressTracker::RecordVote(uint64_t id, bool granted) {
  votes_.emplace(id, granted);  // Only the first answer from `id` counts.
  return TallyVotes(voters_, votes_);
}

void ProgressTracker::CheckInvariants() const {
  // Both sets are ordered by id: one walk over each (it runs after every
  // event in the simulator).
  auto voter = voters_.begin();
  for (const auto& [id, pr] : progress_) {
    CHECK_NE(id, 0u);
    const bool is_voter = voter != voters_.end() && *voter == id;
    if (is_voter) ++voter;
    CHECK_EQ(pr.is_learner, !is_voter);
    CHECK_LT(pr.match, pr.next);
    CHECK_LE(pr.inflights.count(), pr.inflights.capacity());
    if (pr.state == ProgressState::kSnapshot) {
      CHECK_GT(pr.pending_snapshot, 0u);
      CHECK_LE(pr.snapshot_offset, pr.snapshot_sent);
    }
  }
  CHECK(voter == voters_.end());  // Every voter has a progress.
}

}  // namespace raftsql::core
