// A node's metrics in Prometheus' text format (the HTTP API's /metrics):
// Raft's state and counters, the log store's writes, the Raft loop's
// iteration and per-phase times (log writes, apply, snapshot work, WAL
// checkpoints, sends), the transport's queues and unreachable reports, the
// WAL's size, and requests by protocol, method and code with latencies.
// Made with prometheus-cpp's data model and serializer when scraped.
#ifndef RAFTSQL_SERVER_METRICS_H_
#define RAFTSQL_SERVER_METRICS_H_

#include <map>
#include <string>

#include "obs/metrics.h"
#include "server/raft_server.h"

namespace raftsql::server {

std::string PrometheusText(
    const NodeMetrics& node,
    const std::map<obs::RequestMetrics::Key, obs::Histogram::Counts>& requests);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_METRICS_H_
