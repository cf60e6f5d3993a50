// The load generator's HTTP side (issue 16: the HTTP API's throughput
// beside gRPC's, in one run): `concurrency` threads, each with a
// keep-alive connection of its own to one node's rqlite-compatible API,
// send the mix's requests one at a time (a closed loop, as the gRPC
// clients do) until `ops` are done or the deadline passes.
#ifndef RAFTSQL_BENCH_HTTP_LOAD_H_
#define RAFTSQL_BENCH_HTTP_LOAD_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace raftsql::bench {

struct HttpLoadOptions {
  std::string endpoint;  // host:port, plain HTTP.
  int concurrency = 1;
  int64_t ops = 0;
  int64_t key_base = 0;  // Inserted keys start above it, as over gRPC.
  // insert | batch (100 rows) | select (level=none) | select_weak |
  // select_lin (linearizable) | select_strong, weighted.
  std::vector<std::pair<std::string, int>> mix;
  std::chrono::steady_clock::time_point deadline;
};

struct HttpLoadResult {
  std::vector<double> latencies_us;  // Of the requests that succeeded.
  int64_t errors = 0;
  std::string first_error;
};

// One result per client thread.
std::vector<HttpLoadResult> RunHttpLoad(const HttpLoadOptions& o);

// Through `endpoint`'s API (raftsql's or rqlite's own): creates the bench
// table if it is not there, with the same columns as over gRPC, and
// returns its largest key (inserted keys start above it).
absl::StatusOr<int64_t> PrepareHttpTable(const std::string& endpoint);

}  // namespace raftsql::bench

#endif  // RAFTSQL_BENCH_HTTP_LOAD_H_
