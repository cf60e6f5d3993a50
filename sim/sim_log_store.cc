#include "sim/sim_log_store.h"

#include <algorithm>

#include "core/check.h"
#include "core/codec.h"

namespace raftsql::sim {
namespace {

enum RecordType : uint8_t {
  kConfStateRecord = 1,
  kHardStateRecord = 2,
  kEntriesRecord = 3,
  kSnapshotRecord = 4,
  kCompactRecord = 5,
  kReadyRecord = 6,  // snapshot?, entries, hard state? of one Ready
};

}  // namespace

SimLogStore::SimLogStore(SimDisk* disk, EventQueue* queue, core::Prng* rng,
                         DiskLatency latency)
    : disk_(disk), queue_(queue), rng_(rng), latency_(latency) {}

void SimLogStore::Bootstrap(const core::ConfState& cs) {
  std::string payload;
  core::EncodeConfState(payload, cs);
  std::string rec;
  core::AppendRecord(rec, kConfStateRecord, payload);
  disk_->Write(rec);
  disk_->ForceSync();
  mirror_.SetConfState(cs);
}

RecoveryReport SimLogStore::Recover() {
  RecoveryReport report;
  const std::string contents = disk_->Contents();
  std::string_view in = contents;
  while (std::optional<core::Record> rec = core::ReadRecord(in)) {
    ApplyRecord(rec->type, rec->payload);
    ++report.records;
  }
  // Everything after the last valid record is a torn or corrupt tail.
  report.truncated_bytes = in.size();
  disk_->Truncate(contents.size() - in.size());
  return report;
}

void SimLogStore::ApplyRecord(uint8_t type, std::string_view payload) {
  switch (type) {
    case kConfStateRecord: {
      std::optional<core::ConfState> cs = core::DecodeConfState(payload);
      CHECK(cs.has_value());  // The checksum matched: the bytes are ours.
      mirror_.SetConfState(*cs);
      break;
    }
    case kHardStateRecord: {
      std::optional<core::HardState> hs = core::DecodeHardState(payload);
      CHECK(hs.has_value());
      mirror_.SetHardState(*hs);
      break;
    }
    case kEntriesRecord: {
      std::vector<core::Entry> entries;
      while (!payload.empty()) {
        std::optional<core::Entry> e = core::DecodeEntry(payload);
        CHECK(e.has_value());
        entries.push_back(std::move(*e));
      }
      mirror_.Append(entries);
      break;
    }
    case kSnapshotRecord: {
      std::optional<core::Snapshot> s = core::DecodeSnapshot(payload);
      CHECK(s.has_value());
      CHECK(mirror_.ApplySnapshot(*s).ok());
      break;
    }
    case kReadyRecord: {
      CHECK(!payload.empty());
      const auto flags = static_cast<uint8_t>(payload[0]);
      payload.remove_prefix(1);
      if (flags & 1) {
        std::optional<std::string_view> snap = core::GetBytes(payload);
        CHECK(snap.has_value());
        ApplyRecord(kSnapshotRecord, *snap);
      }
      std::optional<std::string_view> ents = core::GetBytes(payload);
      CHECK(ents.has_value());
      if (!ents->empty()) ApplyRecord(kEntriesRecord, *ents);
      if (flags & 2) ApplyRecord(kHardStateRecord, payload);
      break;
    }
    case kCompactRecord: {
      std::optional<core::Snapshot> s = core::DecodeSnapshot(payload);
      CHECK(s.has_value());
      CompactMirror(*s);
      break;
    }
    default:
      CHECK(false);
  }
}

void SimLogStore::CompactMirror(const core::Snapshot& s) {
  CHECK(mirror_.CreateSnapshot(s.metadata.index, s.metadata.conf_state, s.data)
            .ok());
  CHECK(mirror_.Compact(s.metadata.index).ok());
}

absl::Status SimLogStore::Compact(const core::Snapshot& snapshot) {
  if (snapshot.metadata.index <= mirror_.GetSnapshot()->metadata.index) {
    return absl::FailedPreconditionError("snapshot is not newer than ours");
  }
  if (snapshot.metadata.index > mirror_.LastIndex()) {
    return absl::InvalidArgumentError("snapshot beyond the last entry");
  }
  std::string payload;
  core::EncodeSnapshot(payload, snapshot);
  std::string rec;
  core::AppendRecord(rec, kCompactRecord, payload);
  disk_->Write(rec);
  // Rule 5: durable before the entries below it are dropped.
  absl::Status s = disk_->Sync(*rng_);
  if (!s.ok()) return s;
  CompactMirror(snapshot);
  Checkpoint();
  return absl::OkStatus();
}

void SimLogStore::Checkpoint() {
  // Rewrite the file as snapshot + retained entries + hard state, so that
  // recovery replays only what the log still holds.
  std::string file;
  std::string payload;
  core::EncodeSnapshot(payload, *mirror_.GetSnapshot());
  core::AppendRecord(file, kSnapshotRecord, payload);
  if (mirror_.LastIndex() >= mirror_.FirstIndex()) {
    absl::StatusOr<std::vector<core::Entry>> ents = mirror_.Entries(
        mirror_.FirstIndex(), mirror_.LastIndex() + 1, UINT64_MAX);
    CHECK(ents.ok());
    payload.clear();
    for (const core::Entry& e : *ents) core::EncodeEntry(payload, e);
    core::AppendRecord(file, kEntriesRecord, payload);
  }
  payload.clear();
  core::EncodeHardState(payload, mirror_.hard_state());
  core::AppendRecord(file, kHardStateRecord, payload);
  disk_->ReplaceDurable(std::move(file));
}

void SimLogStore::Submit(core::LogWrite write,
                         std::function<void(absl::Status)> done) {
  if (entries_hook_ && !write.entries.empty()) entries_hook_(write.entries);
  // One Ready, one record under one checksum: a torn write loses all of it
  // or none. (Seed 462 found that separate records let a crash keep a
  // Ready's entries but lose its HardState, leaving entries of a term newer
  // than the node's.)
  std::string payload;
  payload.push_back(static_cast<char>((write.snapshot.has_value() ? 1 : 0) |
                                      (write.hard_state.has_value() ? 2 : 0)));
  if (write.snapshot.has_value()) {
    std::string snap;
    core::EncodeSnapshot(snap, *write.snapshot);
    core::PutBytes(payload, snap);
  }
  std::string ents;
  for (const core::Entry& e : write.entries) core::EncodeEntry(ents, e);
  core::PutBytes(payload, ents);
  if (write.hard_state.has_value()) {
    core::EncodeHardState(payload, *write.hard_state);
  }
  std::string bytes;
  core::AppendRecord(bytes, kReadyRecord, payload);
  ApplyRecord(kReadyRecord, payload);
  disk_->Write(bytes);
  if (latency_.synchronous) {
    // The write and its fsync happen within this event; a crash inside
    // them leaves the write in the page cache, which the crash may lose.
    if (submit_hook_ && submit_hook_(queue_->now())) {
      return done(absl::AbortedError("the process died inside a log write"));
    }
    return done(write.sync ? disk_->Sync(*rng_) : absl::OkStatus());
  }
  Time delay = rng_->Range(latency_.write_min, latency_.write_max);
  if (write.sync) delay += rng_->Range(latency_.fsync_min, latency_.fsync_max);
  delay *= latency_.slowdown;
  const Time at = std::max(queue_->now() + delay, last_completion_);
  last_completion_ = at;
  if (submit_hook_) submit_hook_(at);
  std::weak_ptr<bool> alive = alive_;
  const bool sync = write.sync;
  queue_->At(at, 0xd15c, [this, alive, sync, done = std::move(done)] {
    if (alive.expired()) return;  // The node crashed meanwhile.
    done(sync ? disk_->Sync(*rng_) : absl::OkStatus());
  });
}

}  // namespace raftsql::sim
