#include "core/log.h"

#include <algorithm>

#include "core/check.h"

namespace raftsql::core {

std::optional<uint64_t> Unstable::MaybeFirstIndex() const {
  if (snapshot_.has_value()) return snapshot_->metadata.index + 1;
  return std::nullopt;
}

std::optional<uint64_t> Unstable::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + entries_.size() - 1;
  if (snapshot_.has_value()) return snapshot_->metadata.index;
  return std::nullopt;
}

std::optional<uint64_t> Unstable::MaybeTerm(uint64_t i) const {
  if (i < offset_) {
    if (snapshot_.has_value() && snapshot_->metadata.index == i) {
      return snapshot_->metadata.term;
    }
    return std::nullopt;
  }
  const std::optional<uint64_t> last = MaybeLastIndex();
  if (!last.has_value() || i > *last) return std::nullopt;
  if (entries_.empty()) return std::nullopt;  // i == snapshot index, handled.
  return entries_[i - offset_].term;
}

void Unstable::StableTo(uint64_t i, uint64_t t) {
  const std::optional<uint64_t> term = MaybeTerm(i);
  // Only drop entries if the persisted one is still ours: a newer leader may
  // have replaced it in between (then the runtime will persist that too).
  if (!term.has_value() || *term != t || i < offset_) return;
  entries_.erase(entries_.begin(), entries_.begin() + (i + 1 - offset_));
  offset_ = i + 1;
}

void Unstable::StableSnapTo(uint64_t i) {
  if (snapshot_.has_value() && snapshot_->metadata.index == i) {
    snapshot_.reset();
  }
}

void Unstable::Restore(const Snapshot& snapshot) {
  offset_ = snapshot.metadata.index + 1;
  entries_.clear();
  snapshot_ = snapshot;
}

void Unstable::TruncateAndAppend(const std::vector<Entry>& entries) {
  CHECK(!entries.empty());
  const uint64_t after = entries.front().index;
  if (after == offset_ + entries_.size()) {
    entries_.insert(entries_.end(), entries.begin(), entries.end());
  } else if (after <= offset_) {
    // Replaces everything unstable; storage entries >= after are shadowed.
    offset_ = after;
    entries_ = entries;
  } else {
    entries_.resize(after - offset_);
    entries_.insert(entries_.end(), entries.begin(), entries.end());
  }
}

std::vector<Entry> Unstable::Slice(uint64_t lo, uint64_t hi) const {
  CHECK_LE(lo, hi);
  CHECK_LE(offset_, lo);
  CHECK_LE(hi, offset_ + entries_.size());
  return std::vector<Entry>(entries_.begin() + (lo - offset_),
                            entries_.begin() + (hi - offset_));
}

RaftLog::RaftLog(const Storage* storage, uint64_t max_apply_bytes)
    : storage_(storage), max_apply_bytes_(max_apply_bytes) {
  CHECK(storage != nullptr);
  const uint64_t first = storage->FirstIndex();
  unstable_.set_offset(storage->LastIndex() + 1);
  // The log starts at the storage's snapshot: everything there is applied.
  committed_ = first - 1;
  applied_ = first - 1;
}

uint64_t RaftLog::FirstIndex() const {
  if (auto i = unstable_.MaybeFirstIndex()) return *i;
  return storage_->FirstIndex();
}

uint64_t RaftLog::LastIndex() const {
  if (auto i = unstable_.MaybeLastIndex()) return *i;
  return storage_->LastIndex();
}

uint64_t RaftLog::LastTerm() const {
  absl::StatusOr<uint64_t> t = Term(LastIndex());
  CHECK(t.ok());
  return *t;
}

absl::StatusOr<uint64_t> RaftLog::Term(uint64_t i) const {
  // The valid range is [FirstIndex()-1, LastIndex()]: the entry before the
  // first is the snapshot's, whose term we still know.
  if (i + 1 < FirstIndex()) return CompactedError();
  if (i > LastIndex()) return EntryUnavailableError();
  if (auto t = unstable_.MaybeTerm(i)) return *t;
  absl::StatusOr<uint64_t> t = storage_->Term(i);
  CHECK(t.ok() || IsCompacted(t.status()) || IsEntryUnavailable(t.status()));
  return t;
}

uint64_t RaftLog::ZeroTermOnError(uint64_t i) const {
  absl::StatusOr<uint64_t> t = Term(i);
  return t.ok() ? *t : 0;
}

bool RaftLog::MatchTerm(uint64_t i, uint64_t term) const {
  absl::StatusOr<uint64_t> t = Term(i);
  return t.ok() && *t == term;
}

bool RaftLog::IsUpToDate(uint64_t last_index, uint64_t term) const {
  // Raft §5.4.1: compare the terms of the last entries first; with equal
  // terms, the longer log is more up-to-date.
  const uint64_t our_term = LastTerm();
  return term > our_term || (term == our_term && last_index >= LastIndex());
}

std::optional<uint64_t> RaftLog::MaybeAppend(
    uint64_t index, uint64_t log_term, uint64_t committed,
    const std::vector<Entry>& entries) {
  // Raft §5.3: reject unless our log holds an entry at `index` of `log_term`.
  if (!MatchTerm(index, log_term)) return std::nullopt;
  const uint64_t last_new = index + entries.size();
  const uint64_t conflict = FindConflict(entries);
  if (conflict != 0) {
    // An entry at or below committed can never conflict: it is on a quorum
    // and every later leader has it (Leader Completeness).
    CHECK_GT(conflict, committed_);
    CHECK_GT(conflict, index);
    const uint64_t skip = conflict - (index + 1);
    Append(std::vector<Entry>(entries.begin() + skip, entries.end()));
  }
  // Only commit what this message proved we share with the leader.
  CommitTo(std::min(committed, last_new));
  return last_new;
}

uint64_t RaftLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return LastIndex();
  const uint64_t after = entries.front().index - 1;
  CHECK_GE(after, committed_);   // Never overwrite committed entries.
  CHECK_LE(after, LastIndex());  // No gaps.
  unstable_.TruncateAndAppend(entries);
  return LastIndex();
}

uint64_t RaftLog::FindConflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (unsafe_conflict_by_index ? e.index > LastIndex()
                                 : !MatchTerm(e.index, e.term)) {
      return e.index;
    }
  }
  return 0;
}

std::pair<uint64_t, uint64_t> RaftLog::FindConflictByTerm(uint64_t index,
                                                          uint64_t term) const {
  for (; index > 0; --index) {
    absl::StatusOr<uint64_t> our_term = Term(index);
    // Unknown term (compacted or beyond our log): it may match; stop here.
    if (!our_term.ok()) return {index, 0};
    if (*our_term <= term) return {index, *our_term};
  }
  return {0, 0};
}

absl::StatusOr<std::vector<Entry>> RaftLog::EntriesFrom(
    uint64_t i, uint64_t max_bytes) const {
  if (i > LastIndex()) return std::vector<Entry>();
  return Slice(i, LastIndex() + 1, max_bytes);
}

absl::StatusOr<std::vector<Entry>> RaftLog::Slice(uint64_t lo, uint64_t hi,
                                                  uint64_t max_bytes) const {
  CHECK_LE(lo, hi);
  if (lo < FirstIndex()) return CompactedError();
  CHECK_LE(hi, LastIndex() + 1);
  if (lo == hi) return std::vector<Entry>();
  std::vector<Entry> out;
  const uint64_t offset = unstable_.offset();
  if (lo < offset) {
    absl::StatusOr<std::vector<Entry>> stored =
        storage_->Entries(lo, std::min(hi, offset), max_bytes);
    if (!stored.ok()) {
      CHECK(IsCompacted(stored.status()));
      return stored.status();
    }
    out = std::move(*stored);
    // Storage stopped early for the size limit: don't add unstable entries.
    if (out.size() < std::min(hi, offset) - lo) return out;
  }
  if (hi > offset) {
    std::vector<Entry> tail = unstable_.Slice(std::max(lo, offset), hi);
    out.insert(out.end(), tail.begin(), tail.end());
  }
  LimitSize(out, max_bytes);
  return out;
}

std::vector<Entry> RaftLog::NextCommittedEntries() const {
  const uint64_t lo = std::max(applied_ + 1, FirstIndex());
  if (committed_ + 1 <= lo) return {};
  absl::StatusOr<std::vector<Entry>> ents =
      Slice(lo, committed_ + 1, max_apply_bytes_);
  CHECK(ents.ok());
  return std::move(*ents);
}

bool RaftLog::HasNextCommittedEntries() const {
  return committed_ + 1 > std::max(applied_ + 1, FirstIndex());
}

absl::StatusOr<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_.snapshot().has_value()) return *unstable_.snapshot();
  return storage_->GetSnapshot();
}

bool RaftLog::MaybeCommit(uint64_t max_index, uint64_t term) {
  // Raft §5.4.2: a leader only commits entries of its current term by counting
  // replicas; earlier entries commit indirectly with them (Figure 8).
  if (max_index > committed_ && ZeroTermOnError(max_index) == term) {
    CommitTo(max_index);
    return true;
  }
  return false;
}

void RaftLog::CommitTo(uint64_t index) {
  if (index <= committed_) return;  // Commit never decreases.
  CHECK_LE(index, LastIndex());
  committed_ = index;
}

void RaftLog::AppliedTo(uint64_t index) {
  if (index == 0) return;
  CHECK_LE(index, committed_);
  CHECK_GE(index, applied_);
  applied_ = index;
}

void RaftLog::Restore(const Snapshot& snapshot) {
  CHECK_GT(snapshot.metadata.index, committed_);
  committed_ = snapshot.metadata.index;
  unstable_.Restore(snapshot);
}

void RaftLog::CheckInvariants() const {
  CHECK_LE(applied_, committed_);
  CHECK_LE(committed_, LastIndex());
  CHECK_LE(FirstIndex(), LastIndex() + 1);
  CHECK_LE(unstable_.offset(), LastIndex() + 1);
  const std::vector<Entry>& ents = unstable_.entries();
  for (size_t i = 0; i < ents.size(); ++i) {
    CHECK_EQ(ents[i].index, unstable_.offset() + i);
    if (i > 0) CHECK_GE(ents[i].term, ents[i - 1].term);
  }
}

}  // namespace raftsql::core
