#include "sm/state_syncer.h"

#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace raftsql::sm {
namespace {

// Records each sync's argument; fails while `fail` is set.
struct Recorder {
  std::vector<bool> calls;
  bool fail = false;
  StateSyncer::SyncFn fn() {
    return [this](bool after_swap) {
      calls.push_back(after_swap);
      return fail ? absl::DataLossError("the disk") : absl::OkStatus();
    };
  }
};

uint64_t DurableOf(const StateSyncer& s) {
  absl::StatusOr<uint64_t> d = s.Durable();
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : 0;
}

TEST(StateSyncer, UnthreadedSyncsOnlyWhenPolled) {
  Recorder r;
  StateSyncer syncer(4, r.fn(), /*threaded=*/false);
  EXPECT_EQ(DurableOf(syncer), 4u);
  syncer.Request(9, 0);
  EXPECT_EQ(DurableOf(syncer), 4u);  // Asked, not yet synced.
  EXPECT_TRUE(r.calls.empty());
  syncer.Poll();
  EXPECT_EQ(DurableOf(syncer), 9u);
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_FALSE(r.calls[0]);
  syncer.Poll();  // Nothing asked: no sync.
  EXPECT_EQ(r.calls.size(), 1u);
}

TEST(StateSyncer, RequestsBeforeASyncCoalesce) {
  Recorder r;
  StateSyncer syncer(0, r.fn(), /*threaded=*/false);
  syncer.Request(5, 0);
  syncer.Request(7, 0);
  syncer.Request(6, 0);  // Below what is asked: nothing new.
  syncer.Poll();
  EXPECT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(DurableOf(syncer), 7u);
}

TEST(StateSyncer, TheFirstSyncAfterASwapSyncsTheDirectory) {
  Recorder r;
  StateSyncer syncer(0, r.fn(), /*threaded=*/false);
  syncer.Request(3, 1);
  syncer.Poll();
  syncer.Request(4, 1);
  syncer.Poll();
  syncer.Request(5, 2);
  syncer.Poll();
  EXPECT_EQ(r.calls, (std::vector<bool>{true, false, true}));
}

TEST(StateSyncer, ASyncByTheCallerCoversWhatWasAsked) {
  Recorder r;
  StateSyncer syncer(0, r.fn(), /*threaded=*/false);
  syncer.Request(5, 1);
  syncer.Synced(6, 1);
  syncer.Poll();
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(DurableOf(syncer), 6u);
  syncer.Request(8, 1);  // The swap was covered by the caller's sync.
  syncer.Poll();
  EXPECT_EQ(r.calls, std::vector<bool>{false});
}

TEST(StateSyncer, AFailedSyncIsTheDurableIndexFromThenOn) {
  Recorder r;
  r.fail = true;
  StateSyncer syncer(2, r.fn(), /*threaded=*/false);
  syncer.Request(5, 0);
  syncer.Poll();
  EXPECT_TRUE(absl::IsDataLoss(syncer.Durable().status()));
  r.fail = false;
  syncer.Request(6, 0);
  syncer.Poll();
  EXPECT_EQ(r.calls.size(), 1u);  // No sync after the failure.
  EXPECT_TRUE(absl::IsDataLoss(syncer.Durable().status()));
}

// Waits (bounded) for the syncer's thread to make `index` durable.
bool WaitForDurable(const StateSyncer& s, uint64_t index) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    absl::StatusOr<uint64_t> d = s.Durable();
    if (d.ok() && *d >= index) return true;
    std::this_thread::yield();
  }
  return false;
}

TEST(StateSyncer, TheThreadSyncsWhileTheCallerGoesOnAndThenAgain) {
  std::promise<void> started;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  int calls = 0;
  StateSyncer syncer(
      0,
      [&](bool) {
        if (++calls == 1) {
          started.set_value();
          released.wait();
        }
        return absl::OkStatus();
      },
      /*threaded=*/true);
  syncer.Request(9, 0);
  started.get_future().wait();
  // The sync is under way on the thread: nothing durable yet, and a
  // request made meanwhile is not covered by it.
  EXPECT_EQ(DurableOf(syncer), 0u);
  syncer.Request(12, 0);
  release.set_value();
  ASSERT_TRUE(WaitForDurable(syncer, 12));
  EXPECT_EQ(syncer.syncs(), 2u);
}

}  // namespace
}  // namespace raftsql::sm
