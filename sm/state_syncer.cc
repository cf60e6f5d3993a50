#include "sm/state_syncer.h"

#include <algorithm>
#include <utility>

namespace raftsql::sm {

StateSyncer::StateSyncer(uint64_t durable, SyncFn sync, bool threaded)
    : sync_(std::move(sync)), durable_(durable), wanted_(durable) {
  if (threaded) thread_ = std::thread([this] { Run(); });
}

StateSyncer::~StateSyncer() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StateSyncer::Request(uint64_t index, uint64_t swaps) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (index <= wanted_ || !error_.ok()) return;
    wanted_ = index;
    wanted_swaps_ = std::max(wanted_swaps_, swaps);
  }
  cv_.notify_one();
}

void StateSyncer::Poll() {
  if (thread_.joinable()) return;
  std::unique_lock<std::mutex> l(mu_);
  if (wanted_ > durable_ && error_.ok()) SyncOnce(l);
}

void StateSyncer::Synced(uint64_t index, uint64_t swaps) {
  std::lock_guard<std::mutex> l(mu_);
  durable_ = std::max(durable_, index);
  wanted_ = std::max(wanted_, index);
  synced_swaps_ = std::max(synced_swaps_, swaps);
}

absl::StatusOr<uint64_t> StateSyncer::Durable() const {
  std::lock_guard<std::mutex> l(mu_);
  if (!error_.ok()) return error_;
  return durable_;
}

uint64_t StateSyncer::syncs() const {
  std::lock_guard<std::mutex> l(mu_);
  return syncs_;
}

void StateSyncer::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l,
             [this] { return stop_ || (wanted_ > durable_ && error_.ok()); });
    if (stop_) return;
    SyncOnce(l);
  }
}

void StateSyncer::SyncOnce(std::unique_lock<std::mutex>& l) {
  // What was committed before this point is what the sync covers: the
  // index and swaps asked for so far, not any asked for meanwhile.
  const uint64_t index = wanted_;
  const uint64_t swaps = wanted_swaps_;
  const bool after_swap = swaps > synced_swaps_;
  l.unlock();
  const absl::Status s = sync_(after_swap);
  l.lock();
  ++syncs_;
  if (!s.ok()) {
    if (error_.ok()) error_ = s;
    return;
  }
  durable_ = std::max(durable_, index);
  synced_swaps_ = std::max(synced_swaps_, swaps);
}

}  // namespace raftsql::sm
