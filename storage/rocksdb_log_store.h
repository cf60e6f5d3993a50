// RocksDbLogStore: the production LogStore. Keys (big-endian indexes, so
// entries sort by index):
//   'e' + index(8 bytes BE)  -> an encoded Entry
//   'm' + "hardstate"        -> HardState
//   'm' + "confstate"        -> the bootstrap ConfState
//   'm' + "snapshot"         -> the latest Snapshot (metadata + image)
// Each Submit is one WriteBatch (a whole Ready: group commit in one fsync
// when it must sync). An in-memory mirror of the retained log serves reads.
//
// Thread-safety: not thread-safe; the Raft loop thread owns it.
#ifndef RAFTSQL_STORAGE_ROCKSDB_LOG_STORE_H_
#define RAFTSQL_STORAGE_ROCKSDB_LOG_STORE_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/interfaces.h"
#include "core/mirrored_log_store.h"

namespace rocksdb {
class WriteBatch;
class DB;
}  // namespace rocksdb

namespace raftsql::storage {

class RocksDbLogStore final : public core::MirroredLogStore {
 public:
  // Opens (creating if missing) the store in `dir`. DataLoss if what is on
  // disk does not decode.
  static absl::StatusOr<std::unique_ptr<RocksDbLogStore>> Open(
      const std::string& dir);
  ~RocksDbLogStore() override;

  // Durably records the initial membership of a new cluster.
  absl::Status Bootstrap(const core::ConfState& cs);

  void Submit(core::LogWrite write,
              std::function<void(absl::Status)> done) override;
  absl::Status Compact(const core::Snapshot& snapshot) override;

  // Writes since the store opened (any thread): how many, how many were
  // synced (fsync), and their bytes.
  struct Stats {
    uint64_t writes = 0;
    uint64_t syncs = 0;
    uint64_t bytes = 0;
  };
  Stats stats() const { return {writes_.load(), syncs_.load(), bytes_.load()}; }

 private:
  explicit RocksDbLogStore(rocksdb::DB* db);
  absl::Status Load();
  void Count(const rocksdb::WriteBatch& batch, bool synced);

  std::unique_ptr<rocksdb::DB> db_;
  // Set after a failed write: everything after it is refused (the caller
  // must stop; nothing is retried as if it had not failed).
  absl::Status failed_;
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace raftsql::storage

#endif  // RAFTSQL_STORAGE_ROCKSDB_LOG_STORE_H_
