#include "server/metrics.h"

#include <deque>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace raftsql::server {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Families in the order first declared; a family's samples are added
// through the reference Declare returns (stable: a deque).
class Families {
 public:
  using Labels = std::vector<ClientMetric::Label>;

  MetricFamily& Declare(const std::string& name, const std::string& help,
                        MetricType type) {
    for (MetricFamily& f : families_) {
      if (f.name == name) return f;
    }
    families_.push_back(MetricFamily{name, help, type, {}});
    return families_.back();
  }
  // A gauge's or counter's sample (as the family's type says).
  static void Add(MetricFamily& family, double value, Labels labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    (family.type == MetricType::Counter ? m.counter.value : m.gauge.value) =
        value;
    family.metric.push_back(std::move(m));
  }
  static void Add(MetricFamily& family, const obs::Histogram::Counts& counts,
                  Labels labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    m.histogram.sample_count = counts.count;
    m.histogram.sample_sum = counts.sum_seconds;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < obs::Histogram::kBounds; ++i) {
      cumulative += counts.buckets[i];
      m.histogram.bucket.push_back({cumulative, obs::Histogram::UpperBound(i)});
    }
    m.histogram.bucket.push_back(
        {counts.count, std::numeric_limits<double>::infinity()});
    family.metric.push_back(std::move(m));
  }
  // A family of one unlabelled sample.
  void Gauge(const std::string& name, const std::string& help, double value) {
    Add(Declare(name, help, MetricType::Gauge), value);
  }
  void Counter(const std::string& name, const std::string& help, double value) {
    Add(Declare(name, help, MetricType::Counter), value);
  }

  std::string Text() const {
    return prometheus::TextSerializer().Serialize(
        std::vector<MetricFamily>(families_.begin(), families_.end()));
  }

 private:
  std::deque<MetricFamily> families_;
};

}  // namespace

std::string PrometheusText(const NodeMetrics& node,
                           const std::map<obs::RequestMetrics::Key,
                                          obs::Histogram::Counts>& requests) {
  Families f;
  const NodeState& s = node.state;
  // Raft.
  f.Gauge("raftsql_raft_term", "The node's current term.", s.term);
  MetricFamily& roles =
      f.Declare("raftsql_raft_role", "1 for the node's role, 0 for the others.",
                MetricType::Gauge);
  for (const char* role :
       {"Follower", "Candidate", "PreCandidate", "Leader", "Stopped"}) {
    Families::Add(roles, s.role == role ? 1 : 0, {{"role", role}});
  }
  f.Gauge("raftsql_raft_leader_id", "The leader the node knows (0: none).",
          s.leader);
  f.Gauge("raftsql_raft_commit_index", "The highest index known committed.",
          s.commit);
  f.Gauge("raftsql_raft_applied_index", "The highest index applied.",
          s.applied);
  f.Gauge("raftsql_raft_last_index", "The last index in the node's log.",
          s.last_index);
  f.Gauge("raftsql_raft_snapshot_index",
          "The index the log was last compacted through.", s.snapshot_index);
  int voters = 0;
  int learners = 0;
  for (const Member& m : s.members) (m.voter ? voters : learners)++;
  MetricFamily& members =
      f.Declare("raftsql_raft_members", "Members of the cluster, by suffrage.",
                MetricType::Gauge);
  Families::Add(members, voters, {{"suffrage", "voter"}});
  Families::Add(members, learners, {{"suffrage", "learner"}});
  f.Counter("raftsql_raft_leader_changes_total",
            "Times the node learned of a new leader.", node.leader_changes);
  f.Counter("raftsql_raft_proposals_total",
            "Writes this node proposed to Raft.", node.proposals);
  f.Counter("raftsql_raft_proposals_refused_total",
            "Writes Raft refused to take (no leader, a full queue).",
            node.proposals_refused);
  MetricFamily& early =
      f.Declare("raftsql_linearizable_early_reads_total",
                "Linearizable reads run before their read index, by outcome: "
                "kept (the answer) or redone (the index had moved past it).",
                MetricType::Counter);
  Families::Add(early, node.early_reads_kept, {{"outcome", "kept"}});
  Families::Add(early, node.early_reads_redone, {{"outcome", "redone"}});
  MetricFamily& transfers =
      f.Declare("raftsql_raft_snapshot_transfer_bytes",
                "Snapshot bytes confirmed (sending) or received, by peer.",
                MetricType::Gauge);
  for (const core::SnapshotTransfer& t : s.snapshot_transfers) {
    Families::Add(transfers, t.bytes_done,
                  {{"peer", std::to_string(t.peer)},
                   {"direction", t.sending ? "send" : "receive"}});
  }
  // The Raft loop.
  Families::Add(
      f.Declare("raftsql_loop_iteration_seconds",
                "Raft-loop iterations (requests, a tick, one Ready: persist, "
                "send, apply); heartbeats wait for them.",
                MetricType::Histogram),
      node.loop_seconds);
  MetricFamily& phases = f.Declare(
      "raftsql_loop_phase_seconds",
      "Time one Raft-loop iteration spent in a phase (log: writes and "
      "fsyncs; apply; snapshots; checkpoints: WAL checkpoints; sends), "
      "iterations that spent any.",
      MetricType::Histogram);
  for (const auto& [phase, counts] : node.phase_seconds) {
    Families::Add(phases, counts, {{"phase", phase}});
  }
  // The log store.
  f.Counter("raftsql_log_writes_total", "RocksDB write batches.",
            node.log.writes);
  f.Counter("raftsql_log_syncs_total", "RocksDB writes synced (fsync).",
            node.log.syncs);
  f.Counter("raftsql_log_bytes_total", "Bytes of RocksDB write batches.",
            node.log.bytes);
  // The state machine.
  if (node.wal_bytes >= 0) {
    f.Gauge("raftsql_sqlite_wal_bytes", "The SQLite WAL file's size.",
            node.wal_bytes);
  }
  f.Counter("raftsql_sqlite_vacuums_total", "VACUUMs completed.",
            s.vacuums_done);
  f.Gauge("raftsql_change_log_bytes", "Bytes the Watch change log holds.",
          s.change_log_bytes);
  f.Gauge("raftsql_longest_loop_seconds",
          "The longest Raft-loop iteration since the node started.",
          static_cast<double>(s.longest_loop_us) / 1e6);
  // The transport.
  f.Counter("raftsql_transport_messages_sent_total", "Raft messages sent.",
            node.messages_sent);
  f.Counter("raftsql_transport_messages_dropped_total",
            "Raft messages dropped (a full queue, an unknown peer).",
            node.messages_dropped);
  f.Counter("raftsql_transport_broken_streams_total",
            "Streams to peers that broke.", node.broken_streams);
  MetricFamily& queues = f.Declare(
      "raftsql_transport_send_queue_messages",
      "Messages queued for a peer, not yet written.", MetricType::Gauge);
  for (const auto& [peer, depth] : node.send_queue) {
    Families::Add(queues, depth, {{"peer", std::to_string(peer)}});
  }
  MetricFamily& unreachable =
      f.Declare("raftsql_transport_unreachable_total",
                "Times a peer was reported unreachable.", MetricType::Counter);
  for (const auto& [peer, n] : node.unreachable) {
    Families::Add(unreachable, n, {{"peer", std::to_string(peer)}});
  }
  // Requests.
  MetricFamily& requests_seconds =
      f.Declare("raftsql_request_seconds",
                "Requests served, by protocol, method and outcome.",
                MetricType::Histogram);
  for (const auto& [key, counts] : requests) {
    Families::Add(requests_seconds, counts,
                  {{"protocol", key.protocol},
                   {"method", key.method},
                   {"code", key.code}});
  }
  return f.Text();
}

}  // namespace raftsql::server
