// Where a thread's time goes, by phase (issue 14's bounded stall): the
// Raft loop's slow iterations are split into the log's writes, applying,
// snapshot work (compaction's sync, images made, sent, received,
// restored), the WAL checkpoints the writer runs and sending, so that a
// stall is attributed to its cause rather than guessed at.
//
// A PhaseTimer counts the time its scope lasts toward its phase on the
// calling thread; a nested timer's time counts toward its own phase only.
// Accounts are per thread (thread_local): no locks, two clock reads per
// timer. Not in core/: the core reads no clock.
#ifndef RAFTSQL_OBS_LOOP_PHASES_H_
#define RAFTSQL_OBS_LOOP_PHASES_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

namespace raftsql::obs {

enum class Phase {
  kLog,         // The Raft log's writes and syncs.
  kApply,       // Applying committed entries.
  kSnapshot,    // Compaction's sync; images requested, read, received,
                // checked, restored.
  kCheckpoint,  // WAL checkpoints the writer runs itself.
  kSend,        // The transport's Flush: messages serialized and written
                // (Send only queues them).
  kCount,
};

// The calling thread's time in each phase since its last Take().
using PhaseMicros = std::array<int64_t, static_cast<size_t>(Phase::kCount)>;

// Returns the calling thread's account and starts a new one.
PhaseMicros TakePhaseMicros();

// "log", "apply", "snapshots", "checkpoints", "sends".
const char* PhaseName(Phase phase);

// "log 12 ms, apply 3 ms, ..." for the phases that took 1 ms or more;
// "none" if none did.
std::string DescribePhases(const PhaseMicros& micros);

class PhaseTimer {
 public:
  explicit PhaseTimer(Phase phase);
  ~PhaseTimer();
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  const Phase phase_;
  PhaseTimer* const outer_;
  std::chrono::steady_clock::time_point since_;
};

}  // namespace raftsql::obs

#endif  // RAFTSQL_OBS_LOOP_PHASES_H_
