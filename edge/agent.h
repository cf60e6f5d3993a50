// The edge agent (DESIGN.md §6): reads its sources into the local store,
// uploads what the hub has not acknowledged over one session at a time, and
// runs the hub's commands through its actuator, at most once each.
//
// Sessions go to the hub's nodes in turn (any node serves a device); a
// broken or refused session is retried on the next node after the core's
// back-off. All decisions are AgentCore's (edge/agent_core.h); this class
// adds the gRPC stream, a reader thread and the wall clock.
#ifndef RAFTSQL_EDGE_AGENT_H_
#define RAFTSQL_EDGE_AGENT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "edge/actuator.h"
#include "edge/agent_core.h"
#include "edge/edge_store.h"
#include "edge/sensors.h"
#include "net/tls.h"

namespace raftsql::edge {

struct AgentOptions {
  std::vector<std::string> hubs;  // host:port of the hub's nodes
  std::string device;
  std::string token;
  // The cluster's CA (and a device certificate, if it has one); plaintext
  // without a CA.
  net::Tls tls;
  AgentCoreOptions core;
  // Once the sources are done and the store is empty, stop.
  bool stop_when_drained = false;
};

class Agent {
 public:
  // `store` and `actuator` must outlive this.
  Agent(AgentOptions options, EdgeStore* store,
        std::vector<std::unique_ptr<Source>> sources, Actuator* actuator);
  ~Agent();

  // Runs until Stop (or drained, with stop_when_drained).
  void Run();
  // Any thread; Run returns soon after.
  void Stop();
  AgentStats stats();
  int64_t sample_ms();

 private:
  // One session with `hub`; OK if it ended because of Stop or drain.
  absl::Status RunSession(const std::string& hub);
  bool Drained();
  // Publishes the core's figures (loop thread).
  void Publish();

  const AgentOptions options_;
  AgentCore core_;  // The loop thread's.
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;  // Wakes the loop (Stop, a message).
  AgentStats stats_;            // Under mu_: the core's, last published.
  int64_t sample_ms_;           // Under mu_.
};

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_AGENT_H_
