// SimNetwork: delivers Raft messages between simulated nodes after a random
// latency, with drops, duplicates, reordering (independent delays), rare long
// delays, and partitions given as a set of cut directed links.
#ifndef RAFTSQL_SIM_SIM_NETWORK_H_
#define RAFTSQL_SIM_SIM_NETWORK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "core/prng.h"
#include "core/types.h"
#include "sim/event_queue.h"

namespace raftsql::sim {

struct NetworkFaults {
  Time latency_min = 50;
  Time latency_max = 1 * kMillisecond;
  double drop_probability = 0;
  double duplicate_probability = 0;
  double long_delay_probability = 0;
  Time long_delay_max = 300 * kMillisecond;
  // Raft's messages (not Latency()'s other users) held for a tenth of
  // hold_max to hold_max: across several elections
  // (10 to 100 election timeouts), so that answers reach a later term.
  double hold_probability = 0;
  Time hold_max = 10 * kSecond;
};

struct NetworkStats {
  uint64_t sent = 0;
  uint64_t dropped = 0;
  uint64_t duplicated = 0;
  uint64_t delayed = 0;
  uint64_t held = 0;
  uint64_t cut = 0;
};

class SimNetwork {
 public:
  using Deliver = std::function<void(core::Message)>;

  // `queue` and `rng` are borrowed. `deliver` hands a message to its node
  // (which may be down by then).
  SimNetwork(EventQueue* queue, core::Prng rng, NetworkFaults faults,
             Deliver deliver);

  void Send(core::Message m);
  // Called for every message the network loses (drop, cut link).
  void SetLostHandler(std::function<void(const core::Message&)> lost) {
    lost_ = std::move(lost);
  }
  void Cut(uint64_t from, uint64_t to) { cut_.insert({from, to}); }
  void Restore(uint64_t from, uint64_t to) { cut_.erase({from, to}); }
  bool IsCut(uint64_t from, uint64_t to) const {
    return cut_.count({from, to}) > 0;
  }
  // Messages sent from `from` to `to` before `release` arrive after it,
  // spread over `spread`, as a congested link or a buffering middlebox
  // delivers them.
  void HoldLink(uint64_t from, uint64_t to, Time release, Time spread) {
    held_links_[{from, to}] = {release, spread};
  }
  void HealAll() {
    cut_.clear();
    held_links_.clear();
  }
  size_t cut_links() const { return cut_.size(); }
  // Faults stop for the liveness phase.
  void SetFaults(NetworkFaults faults) { faults_ = faults; }
  const NetworkStats& stats() const { return stats_; }
  Time Latency();

 private:
  void Schedule(core::Message m, Time delay);

  EventQueue* queue_;
  core::Prng rng_;
  NetworkFaults faults_;
  Deliver deliver_;
  std::function<void(const core::Message&)> lost_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  // HoldLink's: (release, spread) by link.
  std::map<std::pair<uint64_t, uint64_t>, std::pair<Time, Time>> held_links_;
  NetworkStats stats_;
};

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_SIM_NETWORK_H_
