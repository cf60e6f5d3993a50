// RaftLog: the stable entries in Storage plus the unstable tail not yet handed
// to the runtime for persistence (etcd's raftLog + unstable).
//
//   snapshot/first .... applied .... committed .... stable last .... last
//   Invariant: applied <= committed <= LastIndex().
//   Invariant: committed never decreases; an entry at or below committed is
//   never overwritten (Raft §5.3 Log Matching + §5.4 Leader Completeness).
#ifndef RAFTSQL_CORE_LOG_H_
#define RAFTSQL_CORE_LOG_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/storage.h"
#include "core/types.h"

namespace raftsql::core {

// Entries and an optional incoming snapshot that are not yet durable.
// Invariant: if entries are present, entries[i].index == offset + i.
class Unstable {
 public:
  std::optional<uint64_t> MaybeFirstIndex() const;
  std::optional<uint64_t> MaybeLastIndex() const;
  std::optional<uint64_t> MaybeTerm(uint64_t i) const;

  // The runtime persisted everything up to (i, t).
  void StableTo(uint64_t i, uint64_t t);
  void StableSnapTo(uint64_t i);
  void Restore(const Snapshot& snapshot);
  void TruncateAndAppend(const std::vector<Entry>& entries);
  // Entries in [lo, hi). Precondition: offset <= lo <= hi <= offset + size.
  std::vector<Entry> Slice(uint64_t lo, uint64_t hi) const;

  const std::optional<Snapshot>& snapshot() const { return snapshot_; }
  const std::vector<Entry>& entries() const { return entries_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

 private:
  std::optional<Snapshot> snapshot_;
  std::vector<Entry> entries_;
  uint64_t offset_ = 0;
};

class RaftLog {
 public:
  // `storage` is borrowed and must outlive the log.
  RaftLog(const Storage* storage, uint64_t max_apply_bytes);

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  uint64_t LastTerm() const;
  // Term of entry i; an error if i is compacted (IsCompacted) or beyond the
  // log (IsEntryUnavailable).
  absl::StatusOr<uint64_t> Term(uint64_t i) const;
  uint64_t ZeroTermOnError(uint64_t i) const;
  bool MatchTerm(uint64_t i, uint64_t term) const;

  // Raft §5.4.1: is a log ending at (last_index, term) at least as up-to-date
  // as ours?
  bool IsUpToDate(uint64_t last_index, uint64_t term) const;

  // Follower side of AppendEntries (Raft §5.3). Returns the new last index if
  // our entry at `index` has `log_term`, nullopt if it does not.
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term,
                                      uint64_t committed,
                                      const std::vector<Entry>& entries);
  uint64_t Append(const std::vector<Entry>& entries);
  uint64_t FindConflict(const std::vector<Entry>& entries) const;
  // Fault injection (Config::unsafe_conflict_by_index): FindConflict sees
  // only entries beyond our last index.
  bool unsafe_conflict_by_index = false;
  // Largest index <= `index` whose term is <= `term` (fast back-off).
  std::pair<uint64_t, uint64_t> FindConflictByTerm(uint64_t index,
                                                   uint64_t term) const;

  // Entries in [i, LastIndex()], at most max_bytes (at least one).
  absl::StatusOr<std::vector<Entry>> EntriesFrom(uint64_t i,
                                                 uint64_t max_bytes) const;
  absl::StatusOr<std::vector<Entry>> Slice(uint64_t lo, uint64_t hi,
                                           uint64_t max_bytes) const;
  std::vector<Entry> UnstableEntries() const { return unstable_.entries(); }
  const std::optional<Snapshot>& UnstableSnapshot() const {
    return unstable_.snapshot();
  }
  // Committed entries not yet applied, bounded by max_apply_bytes.
  std::vector<Entry> NextCommittedEntries() const;
  bool HasNextCommittedEntries() const;
  absl::StatusOr<Snapshot> GetSnapshot() const;

  // Raft §5.4.2: commit `max_index` only if its entry is of `term`.
  bool MaybeCommit(uint64_t max_index, uint64_t term);
  void CommitTo(uint64_t index);
  void AppliedTo(uint64_t index);
  void StableTo(uint64_t i, uint64_t t) { unstable_.StableTo(i, t); }
  void StableSnapTo(uint64_t i) { unstable_.StableSnapTo(i); }
  void Restore(const Snapshot& snapshot);

  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }

  void CheckInvariants() const;

 private:
  const Storage* storage_;
  Unstable unstable_;
  uint64_t committed_ = 0;  // Invariant: applied_ <= committed_ <= LastIndex().
  uint64_t applied_ = 0;
  uint64_t max_apply_bytes_;
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_LOG_H_
