// Issue 17's critical-path breakdown: one write's time by stage, from the
// load generator's send and receive times and each node's --trace_writes
// file (obs/write_trace.h), joined by log index.
#ifndef RAFTSQL_BENCH_BREAKDOWN_H_
#define RAFTSQL_BENCH_BREAKDOWN_H_

#include <cstdint>
#include <string>
#include <vector>

namespace raftsql::bench {

// One acknowledged write as the client saw it (steady clock, ns).
struct ClientWrite {
  uint64_t index = 0;
  int64_t sent_ns = 0;
  int64_t answered_ns = 0;
};

// Prints, for each stage, the median and p90 of its time since the client
// sent the write, and the median step from the stage before, over the
// writes every stage was seen for. The leader of a write is the node that
// proposed it; its follower is the one whose acknowledgement went out
// first. `traces` are the nodes' trace files. Returns how many writes it
// joined.
size_t PrintBreakdown(const std::vector<ClientWrite>& writes,
                      const std::vector<std::string>& traces);

// The value at rank p (0..1, nearest) of `sorted`; 0 if empty.
double Percentile(const std::vector<double>& sorted, double p);

// The physical floor's parts, measured here: fdatasync of a 4 KiB write
// in `dir` (median of `n`).
double FsyncMicros(const std::string& dir, int n);

}  // namespace raftsql::bench

#endif  // RAFTSQL_BENCH_BREAKDOWN_H_
