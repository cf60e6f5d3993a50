#include "sim/sim_disk.h"

#include "core/codec.h"
#include "core/prng.h"
#include "gtest/gtest.h"
#include "sim/event_queue.h"
#include "sim/sim_log_store.h"

namespace raftsql::sim {
namespace {

core::Entry E(uint64_t term, uint64_t index) {
  return core::Entry{term, index, core::EntryType::kNormal, "data"};
}

TEST(SimDisk, UnsyncedWritesAreLostOnCrash) {
  SimDisk disk(DiskFaults{.partial_write_probability = 0});
  core::Prng rng(1);
  disk.Write("durable");
  ASSERT_TRUE(disk.Sync(rng).ok());
  disk.Write("volatile");
  CrashReport r = disk.Crash(rng);
  EXPECT_EQ(r.lost_bytes, 8u);
  EXPECT_EQ(disk.Contents(), "durable");
}

TEST(SimDisk, LyingFsyncLosesAcknowledgedData) {
  SimDisk disk(
      DiskFaults{.partial_write_probability = 0, .lie_about_fsync = true});
  core::Prng rng(1);
  disk.Write("acked");
  ASSERT_TRUE(disk.Sync(rng).ok());
  disk.Crash(rng);
  EXPECT_EQ(disk.Contents(), "");
}

TEST(SimDisk, FailedFsyncIsReported) {
  SimDisk disk(DiskFaults{.fsync_failure_probability = 1});
  core::Prng rng(1);
  disk.Write("x");
  EXPECT_EQ(disk.Sync(rng).code(), absl::StatusCode::kDataLoss);
}

// Recovery keeps every synced record and a valid prefix of the rest, whatever
// a crash tore or corrupted.
TEST(SimLogStore, RecoveryKeepsSyncedRecordsAndAValidPrefix) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SimDisk disk(DiskFaults{.partial_write_probability = 0.9,
                            .corrupt_sector_probability = 0.5});
    EventQueue queue;
    core::Prng rng(seed);
    uint64_t synced_last = 0;
    {
      SimLogStore store(&disk, &queue, &rng, DiskLatency{});
      store.Bootstrap(core::ConfState{{1, 2, 3}, {}});
      for (uint64_t i = 1; i <= 20; ++i) {
        core::LogWrite w;
        w.entries = {E(1, i)};
        w.hard_state = core::HardState{1, 1, i > 2 ? i - 2 : 0};
        w.sync = i <= 10 || rng.Chance(0.3);
        const bool sync = w.sync;
        store.Submit(std::move(w), [&, i, sync](absl::Status s) {
          ASSERT_TRUE(s.ok());
          if (sync) synced_last = i;
        });
      }
      // Run part of the completions, then crash.
      const uint64_t run = rng.Uniform(25);
      for (uint64_t k = 0; k < run && queue.RunOne(); ++k) {
      }
    }
    disk.Crash(rng);
    SimLogStore recovered(&disk, &queue, &rng, DiskLatency{});
    RecoveryReport report = recovered.Recover();
    EXPECT_GE(report.records, 1u) << "seed " << seed;
    EXPECT_GE(recovered.LastIndex(), synced_last) << "seed " << seed;
    for (uint64_t i = 1; i <= recovered.LastIndex(); ++i) {
      absl::StatusOr<uint64_t> t = recovered.Term(i);
      ASSERT_TRUE(t.ok());
      EXPECT_EQ(*t, 1u);
    }
    absl::StatusOr<core::InitialState> st = recovered.GetInitialState();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->conf_state.voters.size(), 3u);
    // A second recovery finds exactly the same, with nothing to cut.
    SimLogStore again(&disk, &queue, &rng, DiskLatency{});
    EXPECT_EQ(again.Recover().truncated_bytes, 0u);
    EXPECT_EQ(again.LastIndex(), recovered.LastIndex());
  }
}

TEST(Codec, TornRecordIsDetected) {
  std::string bytes;
  core::AppendRecord(bytes, 3, "payload");
  std::string_view whole(bytes);
  ASSERT_TRUE(core::ReadRecord(whole).has_value());
  std::string torn = bytes.substr(0, bytes.size() - 1);
  std::string_view in(torn);
  EXPECT_FALSE(core::ReadRecord(in).has_value());
  bytes[9] ^= 1;
  std::string_view flipped(bytes);
  EXPECT_FALSE(core::ReadRecord(flipped).has_value());
}

}  // namespace
}  // namespace raftsql::sim
