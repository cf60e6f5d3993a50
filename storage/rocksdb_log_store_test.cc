#include "storage/rocksdb_log_store.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/prng.h"
#include "gtest/gtest.h"
#include "storage/log_store_conformance.h"

namespace raftsql::storage {
namespace {

std::string TempDir() {
  char dir[] = "/tmp/raftsql-rocks-XXXXXX";
  if (mkdtemp(dir) == nullptr) std::abort();
  return dir;
}

class RocksDbHarness final : public LogStoreHarness {
 public:
  RocksDbHarness() : dir_(TempDir()) {
    Open();
    EXPECT_TRUE(store_->Bootstrap(core::ConfState{{1, 2, 3}, {}}).ok());
  }
  ~RocksDbHarness() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  core::LogStore& store() override { return *store_; }
  void Settle() override {}  // RocksDB writes complete before Submit returns.
  void Reopen() override {
    store_.reset();
    Open();
  }

 private:
  void Open() {
    absl::StatusOr<std::unique_ptr<RocksDbLogStore>> s =
        RocksDbLogStore::Open(dir_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  std::string dir_;
  std::unique_ptr<RocksDbLogStore> store_;
};

std::unique_ptr<LogStoreHarness> MakeRocksDbHarness() {
  return std::make_unique<RocksDbHarness>();
}

INSTANTIATE_TEST_SUITE_P(RocksDb, LogStoreConformance,
                         ::testing::Values(&MakeRocksDbHarness));

// A child appends and syncs entries, reporting each synced index on a pipe;
// the parent SIGKILLs it at a random point. Reopened, the store must hold
// every entry reported synced, and a gap-free prefix of valid entries.
TEST(RocksDbCrash, SigkilledWriterLosesNoSyncedEntry) {
  core::Prng rng(2026);
  constexpr int kRounds = 40;
  for (int round = 0; round < kRounds; ++round) {
    const std::string dir = TempDir();
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      auto store = RocksDbLogStore::Open(dir);
      if (!store.ok()) _exit(2);
      for (uint64_t i = 1; i <= 100000; ++i) {
        core::LogWrite w;
        w.entries.push_back(core::Entry{1, i, core::EntryType::kNormal,
                                        std::string(100 + i % 50, 'x')});
        w.hard_state = core::HardState{1, 1, i};
        w.sync = i % 3 != 0;  // Some writes unsynced: they may be lost.
        const bool sync = w.sync;
        (*store)->Submit(std::move(w), [&](absl::Status s) {
          if (!s.ok()) _exit(3);
          if (sync && write(fds[1], &i, sizeof(i)) != sizeof(i)) _exit(4);
        });
      }
      _exit(0);
    }
    close(fds[1]);
    const uint64_t kill_after = 1 + rng.Uniform(300);
    uint64_t synced = 0;
    for (uint64_t n = 0; n < kill_after; ++n) {
      uint64_t index = 0;
      if (read(fds[0], &index, sizeof(index)) != sizeof(index)) break;
      synced = index;
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    close(fds[0]);
    absl::StatusOr<std::unique_ptr<RocksDbLogStore>> store =
        RocksDbLogStore::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_GE((*store)->LastIndex(), synced) << "round " << round;
    for (uint64_t i = 1; i <= (*store)->LastIndex(); ++i) {
      absl::StatusOr<std::vector<core::Entry>> e =
          (*store)->Entries(i, i + 1, UINT64_MAX);
      ASSERT_TRUE(e.ok());
      ASSERT_EQ((*e)[0].data.size(), 100 + i % 50);
    }
    EXPECT_GE((*store)->GetInitialState()->hard_state.commit, synced);
    store->reset();
    std::filesystem::remove_all(dir);
  }
}

// The WAL's preallocated space counts in its size (a synced append then
// writes no new size); a copy taken while the store is open, as a power
// cut leaves it (zeros after the last record), reopens with every entry.
TEST(RocksDbLogStore, AnOpenWalIsSizedAheadAndItsZeroTailIsSkipped) {
  const std::string dir = TempDir();
  auto store = RocksDbLogStore::Open(dir);
  ASSERT_TRUE(store.ok());
  for (uint64_t i = 1; i <= 100; ++i) {
    core::LogWrite w;
    w.entries.push_back(
        core::Entry{1, i, core::EntryType::kNormal, std::string(200, 'x')});
    w.hard_state = core::HardState{1, 1, i};
    w.sync = true;
    (*store)->Submit(std::move(w),
                     [](absl::Status s) { EXPECT_TRUE(s.ok()) << s; });
  }
  uint64_t wal_bytes = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() == ".log") wal_bytes += f.file_size();
  }
  EXPECT_GT(wal_bytes, uint64_t{1} << 20);  // About 30 KB written.
  const std::string copy = TempDir();
  std::filesystem::copy(dir, copy,
                        std::filesystem::copy_options::recursive |
                            std::filesystem::copy_options::overwrite_existing);
  store->reset();
  std::filesystem::remove_all(dir);
  auto reopened = RocksDbLogStore::Open(copy);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->LastIndex(), 100u);
  EXPECT_EQ((*reopened)->GetInitialState()->hard_state.commit, 100u);
  reopened->reset();
  std::filesystem::remove_all(copy);
}

TEST(RocksDbLogStore, SecondOpenOfTheSameDirectoryIsRefused) {
  const std::string dir = TempDir();
  auto store = RocksDbLogStore::Open(dir);
  ASSERT_TRUE(store.ok());
  // A second open of the same directory is refused by RocksDB's lock.
  auto second = RocksDbLogStore::Open(dir);
  EXPECT_FALSE(second.ok());
  store->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace raftsql::storage
