#include "sim/sim_network.h"

#include <algorithm>
#include <utility>

namespace raftsql::sim {

SimNetwork::SimNetwork(EventQueue* queue, core::Prng rng, NetworkFaults faults,
                       Deliver deliver)
    : queue_(queue), rng_(rng), faults_(faults), deliver_(std::move(deliver)) {}

Time SimNetwork::Latency() {
  Time t = rng_.Range(faults_.latency_min, faults_.latency_max);
  if (faults_.long_delay_probability > 0 &&
      rng_.Chance(faults_.long_delay_probability)) {
    t += rng_.Uniform(faults_.long_delay_max);
    ++stats_.delayed;
  }
  return t;
}

void SimNetwork::Send(core::Message m) {
  ++stats_.sent;
  // A cut link loses the message at send time (a partition that heals later
  // does not resurrect it).
  if (IsCut(m.from, m.to)) {
    ++stats_.cut;
    if (lost_) lost_(m);
    return;
  }
  if (faults_.drop_probability > 0 && rng_.Chance(faults_.drop_probability)) {
    ++stats_.dropped;
    if (lost_) lost_(m);
    return;
  }
  if (faults_.duplicate_probability > 0 &&
      rng_.Chance(faults_.duplicate_probability)) {
    ++stats_.duplicated;
    Schedule(m, Latency());
  }
  Time delay = Latency();
  // Only Raft's messages are held (a stream's, such as an edge session's,
  // stay in order: Latency() is theirs).
  if (faults_.hold_probability > 0 && rng_.Chance(faults_.hold_probability)) {
    delay += rng_.Range(faults_.hold_max / 10, faults_.hold_max);
    ++stats_.held;
  }
  if (auto held = held_links_.find({m.from, m.to});
      held != held_links_.end() && queue_->now() < held->second.first) {
    const auto [release, spread] = held->second;
    delay += release - queue_->now() + rng_.Uniform(std::max<Time>(spread, 1));
    ++stats_.held;
  }
  Schedule(std::move(m), delay);
}

void SimNetwork::Schedule(core::Message m, Time delay) {
  const uint64_t tag = (static_cast<uint64_t>(m.type) << 56) ^ (m.from << 40) ^
                       (m.to << 32) ^ m.term ^ (m.index << 8);
  queue_->After(delay, tag, [this, m = std::move(m)]() mutable {
    // Also cut if the partition began while the message was in flight.
    if (IsCut(m.from, m.to)) {
      ++stats_.cut;
      if (lost_) lost_(m);
      return;
    }
    deliver_(std::move(m));
  });
}

}  // namespace raftsql::sim
