#include "storage/rocksdb_log_store.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/codec.h"
#include "obs/loop_phases.h"
#include "obs/write_trace.h"

namespace raftsql::storage {
namespace {

const char kHardStateKey[] = "mhardstate";
const char kConfStateKey[] = "mconfstate";
const char kSnapshotKey[] = "msnapshot";

std::string EntryKey(uint64_t index) {
  std::string key = "e";
  for (int i = 7; i >= 0; --i)
    key.push_back(static_cast<char>(index >> (8 * i)));
  return key;
}

uint64_t IndexOfKey(const rocksdb::Slice& key) {
  uint64_t index = 0;
  for (size_t i = 1; i < 9; ++i) {
    index = (index << 8) | static_cast<unsigned char>(key[i]);
  }
  return index;
}

// The platform's files, except that space preallocated for the WAL counts
// in its size (fallocate without FALLOC_FL_KEEP_SIZE): a synced append
// within it then need not write the inode's new size too. 200 bytes
// appended and fdatasync'd: 105 us within a sized file, 157 us to a
// growing one (log_store_benchmark, BM_RawAppendSync). After a crash the
// WAL ends in zeros up to its preallocated size, which RocksDB's reader
// skips (records of type zero are what preallocation leaves); a closed
// WAL is truncated to what was written.
class SizedWalFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  SizedWalFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "RaftsqlSizedWal"; }
  rocksdb::FileOptions OptimizeForLogWrite(
      const rocksdb::FileOptions& options,
      const rocksdb::DBOptions& db_options) const override {
    rocksdb::FileOptions out =
        target()->OptimizeForLogWrite(options, db_options);
    out.fallocate_with_keep_size = false;
    return out;
  }
};

rocksdb::Env* SizedWalEnv() {
  static rocksdb::Env* const env =
      rocksdb::NewCompositeEnv(std::make_shared<SizedWalFileSystem>())
          .release();
  return env;
}

absl::Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsCorruption()) return absl::DataLossError(s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(s.ToString());
  return absl::UnavailableError(s.ToString());
}

constexpr size_t kMemtableBytes = size_t{32} << 20;
constexpr int kMemtables = 2;

}  // namespace

RocksDbLogStore::RocksDbLogStore(rocksdb::DB* db) : db_(db) {}

RocksDbLogStore::~RocksDbLogStore() = default;

absl::StatusOr<std::unique_ptr<RocksDbLogStore>> RocksDbLogStore::Open(
    const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  // The WAL is what makes a synced write durable; keep it whole.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  options.max_background_jobs = 2;
  options.env = SizedWalEnv();
  // The log's entries stay in a memtable until it is flushed: at most
  // kMemtables of kMemtableBytes each (RocksDB's default, 64 MiB, was
  // most of a node's RSS when entries were large).
  options.write_buffer_size = kMemtableBytes;
  options.max_write_buffer_number = kMemtables;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &db);
  if (!s.ok()) return FromRocks(s);
  std::unique_ptr<RocksDbLogStore> store(new RocksDbLogStore(db));
  absl::Status loaded = store->Load();
  if (!loaded.ok()) return loaded;
  return store;
}

absl::Status RocksDbLogStore::Load() {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kSnapshotKey, &value);
  if (s.ok()) {
    std::string_view in(value);
    std::optional<core::Snapshot> snap = core::DecodeSnapshot(in);
    if (!snap) return absl::DataLossError("undecodable snapshot");
    if (absl::Status a = mirror_.ApplySnapshot(*snap); !a.ok()) return a;
  } else if (!s.IsNotFound()) {
    return FromRocks(s);
  }
  s = db_->Get(rocksdb::ReadOptions(), kConfStateKey, &value);
  if (s.ok() && mirror_.GetSnapshot()->IsEmpty()) {
    std::string_view in(value);
    std::optional<core::ConfState> cs = core::DecodeConfState(in);
    if (!cs) return absl::DataLossError("undecodable configuration");
    mirror_.SetConfState(*cs);
  }
  s = db_->Get(rocksdb::ReadOptions(), kHardStateKey, &value);
  if (s.ok()) {
    std::string_view in(value);
    std::optional<core::HardState> hs = core::DecodeHardState(in);
    if (!hs) return absl::DataLossError("undecodable hard state");
    mirror_.SetHardState(*hs);
  }
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  std::vector<core::Entry> entries;
  const uint64_t first = mirror_.FirstIndex();
  for (it->Seek(EntryKey(first)); it->Valid() && it->key().starts_with("e");
       it->Next()) {
    std::string_view in(it->value().data(), it->value().size());
    std::optional<core::Entry> e = core::DecodeEntry(in);
    if (!e || e->index != IndexOfKey(it->key())) {
      return absl::DataLossError(
          absl::StrCat("undecodable entry at ", IndexOfKey(it->key())));
    }
    if (!entries.empty() && e->index != entries.back().index + 1) {
      return absl::DataLossError(
          absl::StrCat("gap in the log before ", e->index));
    }
    entries.push_back(std::move(*e));
  }
  if (!it->status().ok()) return FromRocks(it->status());
  if (!entries.empty() && entries.front().index != first) {
    return absl::DataLossError("log does not start after the snapshot");
  }
  mirror_.Append(entries);
  return absl::OkStatus();
}

absl::Status RocksDbLogStore::Bootstrap(const core::ConfState& cs) {
  std::string value;
  core::EncodeConfState(value, cs);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  absl::Status s = FromRocks(db_->Put(wo, kConfStateKey, value));
  if (s.ok()) mirror_.SetConfState(cs);
  return s;
}

void RocksDbLogStore::Count(const rocksdb::WriteBatch& batch, bool synced) {
  writes_.fetch_add(1, std::memory_order_relaxed);
  if (synced) syncs_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(batch.GetDataSize(), std::memory_order_relaxed);
}

void RocksDbLogStore::Submit(core::LogWrite write,
                             std::function<void(absl::Status)> done) {
  if (!failed_.ok()) return done(failed_);
  rocksdb::WriteBatch batch;
  std::string value;
  if (write.snapshot.has_value()) {
    core::EncodeSnapshot(value, *write.snapshot);
    batch.Put(kSnapshotKey, value);
    // The installed snapshot replaces the whole log.
    batch.DeleteRange(EntryKey(0), EntryKey(UINT64_MAX));
  }
  if (!write.entries.empty()) {
    // Truncate a conflicting suffix, then write the new entries.
    const uint64_t first_new = write.entries.front().index;
    if (first_new <= mirror_.LastIndex()) {
      batch.DeleteRange(EntryKey(first_new), EntryKey(mirror_.LastIndex() + 1));
    }
    for (const core::Entry& e : write.entries) {
      value.clear();
      core::EncodeEntry(value, e);
      batch.Put(EntryKey(e.index), value);
    }
  }
  if (write.hard_state.has_value()) {
    value.clear();
    core::EncodeHardState(value, *write.hard_state);
    batch.Put(kHardStateKey, value);
  }
  if (batch.Count() == 0 && !write.sync) {
    return done(absl::OkStatus());  // A Ready with messages only.
  }
  rocksdb::WriteOptions wo;
  wo.sync = write.sync;
  absl::Status s;
  const uint64_t last = write.entries.empty() ? 0 : write.entries.back().index;
  obs::TraceWrite(last, obs::WriteStage::kLogWriteStart);
  {
    obs::PhaseTimer timer(obs::Phase::kLog);  // Not `done`'s work.
    s = FromRocks(db_->Write(wo, &batch));
  }
  obs::TraceWrite(last, obs::WriteStage::kLogWriteEnd);
  if (!s.ok()) {
    failed_ = s;
    return done(s);
  }
  Count(batch, wo.sync);
  if (write.snapshot.has_value())
    CHECK(mirror_.ApplySnapshot(*write.snapshot).ok());
  mirror_.Append(write.entries);
  if (write.hard_state.has_value()) mirror_.SetHardState(*write.hard_state);
  done(absl::OkStatus());
}

absl::Status RocksDbLogStore::Compact(const core::Snapshot& snapshot) {
  obs::PhaseTimer timer(obs::Phase::kLog);
  if (!failed_.ok()) return failed_;
  const uint64_t index = snapshot.metadata.index;
  if (index <= mirror_.GetSnapshot()->metadata.index) {
    return absl::FailedPreconditionError("snapshot is not newer than ours");
  }
  if (index > mirror_.LastIndex()) {
    return absl::InvalidArgumentError("snapshot beyond the last entry");
  }
  std::string value;
  core::EncodeSnapshot(value, snapshot);
  rocksdb::WriteBatch batch;
  batch.Put(kSnapshotKey, value);
  batch.DeleteRange(EntryKey(0), EntryKey(index + 1));
  rocksdb::WriteOptions wo;
  wo.sync = true;  // Rule 5: durable before anything below it is gone.
  absl::Status s = FromRocks(db_->Write(wo, &batch));
  if (!s.ok()) {
    failed_ = s;
    return s;
  }
  Count(batch, wo.sync);
  absl::StatusOr<core::Snapshot> made = mirror_.CreateSnapshot(
      index, snapshot.metadata.conf_state, snapshot.data);
  CHECK(made.ok());
  CHECK(mirror_.Compact(index).ok());
  return absl::OkStatus();
}

}  // namespace raftsql::storage
