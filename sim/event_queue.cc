#include "sim/event_queue.h"

#include <algorithm>
#include <utility>

#include "core/check.h"

namespace raftsql::sim {

void EventQueue::At(Time at, uint64_t tag, std::function<void()> fn) {
  CHECK_GE(at, now_);  // Events never go back in time.
  heap_.push_back(Event{at, seq_++, tag, std::move(fn)});
  std::push_heap(heap_.begin(), heap_.end(), Later);
}

bool EventQueue::RunOne() {
  if (heap_.empty()) return false;
  std::pop_heap(heap_.begin(), heap_.end(), Later);
  Event e = std::move(heap_.back());
  heap_.pop_back();
  CHECK_GE(e.time, now_);
  now_ = e.time;
  ++executed_;
  Mix(e.time);
  Mix(e.tag);
  e.fn();
  return true;
}

void EventQueue::Mix(uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    hash_ ^= (v >> (8 * i)) & 0xff;
    hash_ *= 0x100000001b3ull;
  }
}

}  // namespace raftsql::sim
