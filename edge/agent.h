// The edge agent (DESIGN.md §6): reads its sources into the local store,
// uploads what the hub has not acknowledged over one session at a time, and
// runs the hub's commands through its actuator, at most once each.
//
// - Sessions: the hub's nodes in turn (any node serves a device); a broken
//   or refused session is retried on the next node after an exponential
//   back-off with full jitter (backoff_min_ms doubling to backoff_max_ms),
//   reset by a session that got its Welcome.
// - Uploads: batches of at most batch_max readings, sent once batch_max are
//   waiting or the oldest has waited batch_ms; at most `window` batches in
//   flight. The Welcome's and each Ack's acked sequence drop what the hub
//   holds from the store; after a retriable refusal (no leader, the hub's
//   bound) the agent waits retry_after_ms and sends again from the acked
//   sequence (the hub stores each sequence once). A batch the hub refuses
//   for good (INVALID_ARGUMENT) leaves the store, counted.
// - Commands: one whose expiry has passed (hub time, by this device's
//   clock) is rejected without running; others run through
//   EdgeStore::ExecuteOnce, and the outcome is sent (again, for a
//   redelivered one).
// - Twin: it understands "sample_ms" (how often it polls its sources, 10 to
//   3,600,000); it reports what it applied, with the desired version.
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
  size_t batch_max = 100;  // Readings per upload (<= kMaxReadingsPerUpload).
  int64_t batch_ms = 200;
  size_t window = 4;  // Uploads in flight.
  int64_t sample_ms = 100;
  int64_t backoff_min_ms = 100;
  int64_t backoff_max_ms = 10'000;
  uint64_t seed = 1;  // For the back-off's jitter.
  // Once the sources are done and the store is empty, stop.
  bool stop_when_drained = false;
};

struct AgentStats {
  uint64_t sessions = 0;  // Welcomed.
  uint64_t session_failures = 0;
  uint64_t uploads = 0;       // Batches sent.
  uint64_t acked = 0;         // The hub's acked sequence, last seen.
  uint64_t retries = 0;       // Retriable refusals.
  uint64_t commands_run = 0;  // Runs (not answers from the record).
  uint64_t commands_answered = 0;
  uint64_t commands_expired = 0;
  uint64_t twin_reports = 0;
  uint64_t backlog = 0;  // The store's, at the last sample.
  uint64_t dropped = 0;
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

  struct Session;

 private:
  // One session with `hub`; OK if it ended because of Stop or drain.
  absl::Status RunSession(const std::string& hub);
  // Reads every source into the store.
  void Sample(int64_t now_ms);
  bool Drained();
  bool SourcesDone() const;

  const AgentOptions options_;
  EdgeStore* const store_;
  std::vector<std::unique_ptr<Source>> sources_;
  Actuator* const actuator_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;  // Wakes the loop (Stop, a message).
  AgentStats stats_;            // Under mu_.
  std::atomic<int64_t> sample_ms_;
  int64_t next_sample_ms_ = 0;
  uint64_t rng_;
};

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_AGENT_H_
