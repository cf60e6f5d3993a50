#include "sim/event_queue.h"

#include <algorithm>
#include <utility>

#include "core/check.h"

namespace raftsql::sim {

void EventQueue::At(Time at, uint64_t tag, std::function<void()> fn) {
  CHECK_GE(at, now_);  // Events never go back in time.
  uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  slots_[slot].tag = tag;
  slots_[slot].fn = std::move(fn);
  heap_.push_back(Key{at, seq_++, slot});
  std::push_heap(heap_.begin(), heap_.end(), Later);
}

bool EventQueue::RunOne() {
  if (heap_.empty()) return false;
  std::pop_heap(heap_.begin(), heap_.end(), Later);
  const Key key = heap_.back();
  heap_.pop_back();
  CHECK_GE(key.time, now_);
  now_ = key.time;
  ++executed_;
  Mix(key.time);
  Mix(slots_[key.slot].tag);
  // Move the callback out first: it may schedule events (and grow slots_).
  std::function<void()> fn = std::move(slots_[key.slot].fn);
  free_slots_.push_back(key.slot);
  fn();
  return true;
}

void EventQueue::Mix(uint64_t v) {
  // A 64-bit mix per word (splitmix64's finalizer over the running hash).
  uint64_t z =
      hash_ ^ (v + 0x9e3779b97f4a7c15ull + (hash_ << 6) + (hash_ >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  hash_ = z ^ (z >> 31);
}

}  // namespace raftsql::sim
