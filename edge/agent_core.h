// The edge agent's logic with no transport, thread or clock of its own
// (DESIGN.md §6): what to send when a session begins, what to do with each
// message from the hub, which uploads and reports are due, how long to back
// off after a session ends. The production Agent drives it over a gRPC
// stream with the wall clock; the simulator drives the same code over its
// simulated network, disk and clock.
//
// - Uploads: batches of at most batch_max readings, sent once batch_max are
//   waiting or the oldest has waited batch_ms; at most `window` batches in
//   flight. The Welcome's and each Ack's acked sequence drop what the hub
//   holds from the store; after a retriable refusal (no leader, the hub's
//   bound) the core waits retry_after_ms and sends again from the acked
//   sequence (the hub stores each sequence once). kMaxRefusalsInARow such
//   refusals with no upload stored in between end the session (the node
//   may be cut from its leader, or removed from the cluster: another node
//   may serve). A batch the hub refuses for good (INVALID_ARGUMENT) leaves
//   the store, counted.
// - Readings are uploaded only once they are durable in the store
//   (EdgeStore::MakeDurable before each batch): a reading the hub holds
//   must survive the edge's crash, or the edge would give its sequence to
//   another reading that the hub then takes for a duplicate.
// - Commands: one whose expiry has passed (hub time, by this device's
//   clock) is rejected without running; others run through
//   EdgeStore::ExecuteOnce, and the outcome is sent (again, for a
//   redelivered one).
// - Twin: it applies the desired document's sample_ms, batch_ms and
//   batch_max over its options (edge/twin_settings.h) and reports what it
//   runs with, what it refused and why, with the desired version.
// - Back-off between sessions: exponential (backoff_min_ms doubling to
//   backoff_max_ms) with full jitter, reset by a session that got its
//   Welcome.
#ifndef RAFTSQL_EDGE_AGENT_CORE_H_
#define RAFTSQL_EDGE_AGENT_CORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "edge/actuator.h"
#include "edge/edge_store.h"
#include "edge/sensors.h"
#include "edge/twin_settings.h"
#include "net/edge.pb.h"

namespace raftsql::edge {

// Retriable refusals in a row after which a session is given up.
inline constexpr int kMaxRefusalsInARow = 5;

struct AgentCoreOptions {
  size_t batch_max = 100;  // Readings per upload (<= kMaxReadingsPerUpload).
  int64_t batch_ms = 200;
  size_t window = 4;  // Uploads in flight.
  int64_t sample_ms = 100;
  int64_t backoff_min_ms = 100;
  int64_t backoff_max_ms = 10'000;
  uint64_t seed = 1;  // For the back-off's jitter.
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

class AgentCore {
 public:
  using Out = std::vector<v1::EdgeUp>;

  // `store` and `actuator` must outlive this.
  AgentCore(const AgentCoreOptions& options, EdgeStore* store,
            std::vector<std::unique_ptr<Source>> sources, Actuator* actuator);

  // Reads every source into the store, if a sample is due at now_ms.
  void Sample(int64_t now_ms);
  // The session's first message.
  v1::EdgeUp Hello() const;
  // The hub's Welcome: it holds everything up to `acked`.
  void Welcomed(uint64_t acked, Out* out);
  // A message from the hub, after the Welcome.
  void OnMessage(const v1::EdgeDown& down, int64_t now_ms, Out* out);
  // Uploads and reports due at now_ms; false if the store failed (the
  // session should end).
  bool Flush(int64_t now_ms, Out* out);
  // The session should end (its node keeps refusing): the driver ends it.
  bool GiveUp() const { return refusals_in_row_ >= kMaxRefusalsInARow; }
  // The session ended: how long to wait before the next one.
  int64_t SessionEnded(bool welcomed);

  bool SourcesDone() const;
  // Nothing left to read or to upload, nothing in flight.
  bool Drained() const;
  // How long the driver may sleep at most before calling Sample/Flush.
  int64_t WakeEveryMs() const;
  int64_t sample_ms() const { return settings_.sample_ms; }
  const TwinSettings& settings() const { return settings_; }
  const AgentStats& stats() const { return stats_; }

 private:
  void OnAck(const v1::Ack& a, int64_t now_ms);
  void OnCommand(const v1::Command& c, int64_t now_ms, Out* out);
  void OnDesired(const v1::DesiredTwin& d, Out* out);
  void ReportTwin(Out* out);

  struct Sent {
    uint64_t batch;
    uint64_t first;
    uint64_t last;
  };

  const AgentCoreOptions options_;
  EdgeStore* const store_;
  std::vector<std::unique_ptr<Source>> sources_;
  Actuator* const actuator_;
  AgentStats stats_;
  TwinSettings settings_;
  int64_t next_sample_ms_ = 0;
  int64_t backoff_ms_;
  uint64_t rng_;
  // The session's.
  std::deque<Sent> in_flight_;
  uint64_t acked_ = 0;
  uint64_t sent_up_to_ = 0;
  uint64_t next_batch_ = 1;
  int64_t resend_at_ = 0;  // After a retriable refusal.
  int refusals_in_row_ = 0;
  uint64_t twin_version_reported_ = ~uint64_t{0};
};

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_AGENT_CORE_H_
