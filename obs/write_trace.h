// Where one write's time goes (issue 17's critical-path breakdown): with
// --trace_writes, each process keeps the steady-clock time at which a log
// index passes each stage below, and writes them to a file at exit; the
// load generator (bench/load.cc --breakdown) joins the nodes' files with
// its own send and receive times by index. Every process on one machine
// reads the same CLOCK_MONOTONIC, so the times compare across processes.
//
// Off by default: then TraceWrite is one relaxed atomic load.
#ifndef RAFTSQL_OBS_WRITE_TRACE_H_
#define RAFTSQL_OBS_WRITE_TRACE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "core/types.h"

namespace raftsql::obs {

// In the order a write passes them at its leader (L) and a follower (F).
enum class WriteStage : uint8_t {
  kReceived,        // L: the request reached the service
  kProposed,        // L: the Raft loop proposed it (its index is known)
  kLogWriteStart,   // L and F: the log write holding it began
  kLogWriteEnd,     // ... and ended (durable)
  kAppendSent,      // L: an append carrying it was handed to the transport
  kAppendReceived,  // F: that append arrived
  kAckSent,         // F: its acknowledgement went out
  kAckReceived,     // L: the acknowledgement arrived
  kCommitted,       // L: the commit index reached it
  kApplyStart,      // L and F: the state machine's batch holding it began
  kApplied,         // L and F: the state machine applied it
  kAnswered,        // L: the client's answer was handed to gRPC
  kCount,
};
const char* WriteStageName(WriteStage stage);

// At most this many (index, stage, time) records are kept; later ones are
// dropped (and counted in the file's first line).
inline constexpr size_t kMaxWriteTraceRecords = 1 << 18;

// Starts keeping records, to be written to `path` by FlushWriteTrace.
void EnableWriteTrace(std::string path);

namespace internal {
extern std::atomic<bool> write_trace_on;
void RecordWrite(uint64_t index, WriteStage stage, int64_t at_ns);
}  // namespace internal

// The steady clock, in ns.
int64_t SteadyNs();

inline bool WriteTraceOn() {
  return internal::write_trace_on.load(std::memory_order_relaxed);
}
// Records that `index` reached `stage` now (or at `at_ns`).
inline void TraceWrite(uint64_t index, WriteStage stage, int64_t at_ns = 0) {
  if (!WriteTraceOn() || index == 0) return;
  internal::RecordWrite(index, stage, at_ns != 0 ? at_ns : SteadyNs());
}

// Records what a Raft message shows of a write: an append carrying
// entries (sent, or received) and an accepting acknowledgement (sent, or
// received). A no-op when off.
void TraceMessage(const core::Message& m, bool received);

// Writes the records (one "index stage ns" line each, after a "# dropped N"
// line) to the path given to EnableWriteTrace; a no-op when off.
absl::Status FlushWriteTrace();

}  // namespace raftsql::obs

#endif  // RAFTSQL_OBS_WRITE_TRACE_H_
