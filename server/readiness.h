// Whether a node is ready to serve, the one judgement behind the HTTP
// API's /readyz and gRPC's health service: not while it has stopped on a
// log store failure, has diverged, knows no leader, or has applied more
// than ServerOptions::ready_max_lag entries fewer than it knows committed.
#ifndef RAFTSQL_SERVER_READINESS_H_
#define RAFTSQL_SERVER_READINESS_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "server/raft_server.h"

namespace raftsql::server {

struct Readiness {
  bool ready = false;
  // One line per check, as Kubernetes' probes print them: "[+]leader ok",
  // "[-]store not ok: <why>".
  std::string report;
};

// `need_leader` false skips the leader check (rqlite's /readyz?noleader).
Readiness AssessReadiness(const NodeState& state, uint64_t max_lag,
                          bool need_leader);

// Asks the node how it is every `interval_ms` and calls `on_change` with
// its readiness when that changes (and once at first). A node that does
// not answer within a second (stopped, or its loop stuck) is not ready.
// Stops, and waits for its thread, when destroyed.
class ReadinessWatcher {
 public:
  ReadinessWatcher(RaftServer* node, std::function<void(bool)> on_change,
                   int interval_ms = 500);
  ~ReadinessWatcher();

 private:
  void Run();

  RaftServer* const node_;
  const std::function<void(bool)> on_change_;
  const int interval_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // Guarded by mu_.
  std::thread thread_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_READINESS_H_
