// The simulator's single event queue: everything that happens in a run —
// message deliveries, ticks, disk completions, crashes, client operations —
// is an event ordered by (virtual time, sequence number). Single-threaded.
#ifndef RAFTSQL_SIM_EVENT_QUEUE_H_
#define RAFTSQL_SIM_EVENT_QUEUE_H_

#include <cstdint>
#include <functional>
#include <vector>

namespace raftsql::sim {

// Virtual time in microseconds.
using Time = uint64_t;
inline constexpr Time kMillisecond = 1000;
inline constexpr Time kSecond = 1000 * kMillisecond;

class EventQueue {
 public:
  // Schedules `fn` at virtual time `at` (>= now). `tag` feeds the trace hash.
  void At(Time at, uint64_t tag, std::function<void()> fn);
  void After(Time delay, uint64_t tag, std::function<void()> fn) {
    At(now_ + delay, tag, std::move(fn));
  }
  // Runs the earliest event. Returns false if the queue is empty.
  bool RunOne();
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  Time now() const { return now_; }
  uint64_t executed() const { return executed_; }
  // A running hash over (time, tag) of every event run, plus whatever Mix()
  // adds:
  // two runs of the same seed must end with the same hash.
  uint64_t trace_hash() const { return hash_; }
  void Mix(uint64_t v);

 private:
  // The heap holds small keys; the callbacks stay put in `slots_` (moving a
  // std::function at every heap step was a tenth of the simulator's time).
  struct Key {
    Time time;
    uint64_t seq;
    uint32_t slot;
  };
  struct Slot {
    uint64_t tag = 0;
    std::function<void()> fn;
  };
  static bool Later(const Key& a, const Key& b) {
    return a.time != b.time ? a.time > b.time : a.seq > b.seq;
  }

  std::vector<Key> heap_;  // A min-heap under Later.
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  Time now_ = 0;
  uint64_t seq_ = 0;
  uint64_t executed_ = 0;
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_EVENT_QUEUE_H_
