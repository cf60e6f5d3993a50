// The LogStore conformance suite, run against the simulator's SimDisk store.
#include <memory>

#include "core/prng.h"
#include "sim/event_queue.h"
#include "sim/sim_disk.h"
#include "sim/sim_log_store.h"
#include "storage/log_store_conformance.h"

namespace raftsql::sim {
namespace {

class SimHarness final : public storage::LogStoreHarness {
 public:
  SimHarness() : disk_(DiskFaults{.partial_write_probability = 0}), rng_(7) {
    Open();
    store_->Bootstrap(core::ConfState{{1, 2, 3}, {}});
  }
  core::LogStore& store() override { return *store_; }
  void Settle() override {
    while (queue_.RunOne()) {
    }
  }
  void Reopen() override {
    store_.reset();
    disk_.Crash(rng_);  // Reopening after a stop loses only unsynced bytes.
    Open();
    store_->Recover();
  }

 private:
  void Open() {
    store_ =
        std::make_unique<SimLogStore>(&disk_, &queue_, &rng_, DiskLatency{});
  }
  SimDisk disk_;
  EventQueue queue_;
  core::Prng rng_;
  std::unique_ptr<SimLogStore> store_;
};

}  // namespace

// Not in the anonymous namespace: the instantiation below names it.
std::unique_ptr<storage::LogStoreHarness> MakeSimHarness();
std::unique_ptr<storage::LogStoreHarness> MakeSimHarness() {
  return std::make_unique<SimHarness>();
}

}  // namespace raftsql::sim

namespace raftsql::storage {
INSTANTIATE_TEST_SUITE_P(SimDisk, LogStoreConformance,
                         ::testing::Values(&sim::MakeSimHarness));
}  // namespace raftsql::storage
