#include "core/memory_storage.h"

#include <utility>

#include "core/check.h"

namespace raftsql::core {

absl::Status CompactedError() {
  return absl::OutOfRangeError("requested index is compacted away");
}
absl::Status EntryUnavailableError() {
  return absl::UnavailableError("requested entry is not yet in the log");
}
bool IsCompacted(const absl::Status& status) {
  return status.code() == absl::StatusCode::kOutOfRange;
}
bool IsEntryUnavailable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable;
}

void LimitSize(std::vector<Entry>& entries, uint64_t max_bytes) {
  if (entries.empty()) return;
  uint64_t size = entries[0].Size();
  size_t limit = 1;
  for (; limit < entries.size(); ++limit) {
    size += entries[limit].Size();
    if (size > max_bytes) break;
  }
  entries.resize(limit);
}

MemoryStorage::MemoryStorage() : entries_(1) {}

absl::StatusOr<InitialState> MemoryStorage::GetInitialState() const {
  return InitialState{hard_state_, snapshot_.metadata.conf_state};
}

absl::StatusOr<std::vector<Entry>> MemoryStorage::Entries(
    uint64_t lo, uint64_t hi, uint64_t max_bytes) const {
  const uint64_t offset = entries_[0].index;
  if (lo <= offset) return CompactedError();
  if (hi > LastIndex() + 1) return EntryUnavailableError();
  CHECK_LE(lo, hi);
  // Copy only what fits: a follower far behind must not cost a copy of the
  // whole log per message.
  std::vector<Entry> out;
  uint64_t size = 0;
  for (uint64_t i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - offset];
    size += e.Size();
    if (!out.empty() && size > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<uint64_t> MemoryStorage::Term(uint64_t i) const {
  const uint64_t offset = entries_[0].index;
  if (i < offset) return CompactedError();
  if (i - offset >= entries_.size()) return EntryUnavailableError();
  return entries_[i - offset].term;
}

uint64_t MemoryStorage::FirstIndex() const { return entries_[0].index + 1; }

uint64_t MemoryStorage::LastIndex() const {
  return entries_[0].index + entries_.size() - 1;
}

absl::StatusOr<Snapshot> MemoryStorage::GetSnapshot() const {
  return snapshot_;
}

void MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const uint64_t first = FirstIndex();
  const uint64_t last = entries.back().index;
  if (last < first) return;  // Entirely compacted: nothing new.
  // Skip the part already compacted away.
  size_t skip =
      entries.front().index < first ? first - entries.front().index : 0;
  const uint64_t start = entries[skip].index;
  const uint64_t offset = start - entries_[0].index;
  CHECK_LE(offset, entries_.size());  // No gap.
  entries_.resize(offset);
  entries_.insert(entries_.end(), entries.begin() + skip, entries.end());
  // Contiguous indexes (only the new part: the rest was checked before, and
  // a check over the whole log made every append O(log length)).
  for (size_t i = offset; i < entries_.size(); ++i) {
    DCHECK(entries_[i].index == entries_[0].index + i);
  }
}

absl::Status MemoryStorage::ApplySnapshot(const Snapshot& snapshot) {
  if (snapshot.metadata.index <= snapshot_.metadata.index &&
      snapshot_.metadata.index != 0) {
    return absl::FailedPreconditionError("snapshot is out of date");
  }
  snapshot_ = snapshot;
  entries_.assign(1, Entry{snapshot.metadata.term, snapshot.metadata.index,
                           EntryType::kNormal, ""});
  return absl::OkStatus();
}

absl::StatusOr<Snapshot> MemoryStorage::CreateSnapshot(uint64_t index,
                                                       const ConfState& cs,
                                                       std::string data) {
  if (index <= snapshot_.metadata.index) {
    return absl::FailedPreconditionError("snapshot is out of date");
  }
  if (index > LastIndex()) {
    return absl::InvalidArgumentError("snapshot index beyond the last entry");
  }
  const uint64_t offset = entries_[0].index;
  snapshot_.metadata.index = index;
  snapshot_.metadata.term = entries_[index - offset].term;
  snapshot_.metadata.conf_state = cs;
  snapshot_.data = std::move(data);
  return snapshot_;
}

absl::Status MemoryStorage::Compact(uint64_t compact_index) {
  const uint64_t offset = entries_[0].index;
  if (compact_index <= offset) return CompactedError();
  if (compact_index > LastIndex()) {
    return absl::InvalidArgumentError("compact index beyond the last entry");
  }
  const uint64_t i = compact_index - offset;
  std::vector<Entry> kept(entries_.begin() + i, entries_.end());
  kept[0].data.clear();
  kept[0].type = EntryType::kNormal;
  entries_ = std::move(kept);
  return absl::OkStatus();
}

}  // namespace raftsql::core
