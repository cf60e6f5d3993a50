// RocksDbLogStore synced append throughput: one Ready per Submit with 1 or 64
// entries of 128 bytes, fsynced (group commit: one sync per Ready); and
// three stores at once.
//
//   ./bazelw run -c opt //bench:log_store_benchmark
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "benchmark/benchmark.h"
#include "storage/rocksdb_log_store.h"

namespace raftsql::storage {
namespace {

void BM_SyncedAppend(benchmark::State& state) {
  const int per_sync = static_cast<int>(state.range(0));
  char dir[] = "/tmp/raftsql-logbench-XXXXXX";
  if (mkdtemp(dir) == nullptr) std::abort();
  auto store = RocksDbLogStore::Open(dir);
  if (!store.ok()) {
    state.SkipWithError("open failed");
    return;
  }
  uint64_t index = 0;
  int64_t entries = 0;
  bool failed = false;
  for (auto _ : state) {
    core::LogWrite w;
    for (int i = 0; i < per_sync; ++i) {
      w.entries.push_back(core::Entry{1, ++index, core::EntryType::kNormal,
                                      std::string(128, 'x')});
    }
    w.hard_state = core::HardState{1, 1, index};
    w.sync = true;
    (*store)->Submit(std::move(w), [&](absl::Status s) { failed |= !s.ok(); });
    entries += per_sync;
  }
  if (failed) state.SkipWithError("a write failed");
  state.counters["entries/s"] = benchmark::Counter(static_cast<double>(entries),
                                                   benchmark::Counter::kIsRate);
  state.counters["syncs/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  // Seconds a synced append took, each store's (with threads, the mean).
  state.counters["s/sync"] = benchmark::Counter(
      static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kAvgThreads |
          benchmark::Counter::kInvert);
  store->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SyncedAppend)
    ->Arg(1)
    ->Arg(64)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
// Three stores syncing at once on one disk, as a 3-node cluster on one
// machine does at one client (each replica writes the same entry at about
// the same time): the floor under a write there is this, not one sync.
BENCHMARK(BM_SyncedAppend)
    ->Arg(1)
    ->Threads(3)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The floor under a synced append: 200 bytes written and fdatasync'd, to
// a file that grows with each write (0), within one whose size was set
// beforehand (1: fdatasync then need not write the inode's size, but the
// first write to each block turns it from unwritten to written, which
// the journal records), or within one written before (2: as a recycled
// WAL is).
void BM_RawAppendSync(benchmark::State& state) {
  const int64_t mode = state.range(0);
  char path[] = "/tmp/raftsql-syncbench-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) std::abort();
  constexpr off_t kFileBytes = 256 << 20;
  if (mode == 1 && fallocate(fd, 0, 0, kFileBytes) != 0) {
    state.SkipWithError("fallocate failed");
  }
  if (mode == 2) {
    const std::string zeros(1 << 20, '\0');
    for (off_t at = 0; at < kFileBytes; at += zeros.size()) {
      if (pwrite(fd, zeros.data(), zeros.size(), at) !=
          static_cast<ssize_t>(zeros.size())) {
        state.SkipWithError("write failed");
      }
    }
    if (fsync(fd) != 0) state.SkipWithError("fsync failed");
  }
  const std::string record(200, 'x');
  off_t at = 0;
  for (auto _ : state) {
    if (pwrite(fd, record.data(), record.size(), at) !=
            static_cast<ssize_t>(record.size()) ||
        fdatasync(fd) != 0) {
      state.SkipWithError("write failed");
      break;
    }
    at = (at + static_cast<off_t>(record.size())) % kFileBytes;
  }
  close(fd);
  unlink(path);
}
BENCHMARK(BM_RawAppendSync)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace raftsql::storage
