// Simulated edges (DESIGN.md §4, §6): edge devices running the real agent
// logic (edge::AgentCore) with their buffer (edge::EdgeStore) on a SimFs,
// sessions to the hub's nodes over simulated streams, hub sessions that
// speak the protocol through the shared edge/hub_proto and edge/hub_sql
// code and write through Raft, an operator issuing commands and desired
// twins, and the leader's expiry sweep. Faults: edge crashes (unsynced
// writes lost), wiped edge disks, edge-hub partitions, broken streams, on
// top of the cluster's own (node crashes, leader changes, partitions).
//
// Checkers, once everything settled after the faults healed:
// - every reading an edge stored durably (and did not lose with a wiped
//   disk, drop under its full-buffer policy, or see deleted by the hub's
//   retention) is in the hub exactly once, with its value; the hub holds no
//   reading the edge did not make durable; a crash takes nothing durable
//   (the store syncs before it uploads: what was not synced may be lost,
//   as the store documents);
// - each command ran at most once on its device, never at or after its
//   expiry; a done command ran exactly once; a command issued after the
//   faults healed, or whose expiry came well after, ended answered (done,
//   failed or rejected), unless it ran out of attempts or its store was
//   gone while faults lasted;
// - every device's reported twin reflects its desired version.
#ifndef RAFTSQL_SIM_EDGE_WORLD_H_
#define RAFTSQL_SIM_EDGE_WORLD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/prng.h"
#include "edge/hub_session.h"
#include "edge/hub_sql.h"
#include "sim/event_queue.h"
#include "sm/command.h"

namespace raftsql::sim {

// What the edges see of the hub's cluster (the Simulation).
class HubCluster {
 public:
  using WriteDone = std::function<void(absl::StatusOr<sm::CommandResult>)>;
  virtual ~HubCluster() = default;
  virtual uint64_t nodes() const = 0;
  // 0 while `node` is down, else how many times it started.
  virtual uint64_t NodeIncarnation(uint64_t node) const = 0;
  virtual bool IsLeader(uint64_t node) const = 0;
  // Whether `node` is up and in contact with a leader
  // (core::Raft::InContactWithLeader).
  virtual bool InContactWithLeader(uint64_t node) const = 0;
  // A write through `node`, forwarded to the leader it knows. `done` runs
  // at most once, later; never if a node on the way crashes.
  virtual void Write(uint64_t node, sm::Command c, WriteDone done) = 0;
  // A local (stale-allowed) read on `node`.
  virtual absl::StatusOr<sm::QueryResult> Read(uint64_t node,
                                               const sm::Statement& s) = 0;
  // Whether `node` leads and has applied everything committed before its
  // term (it committed an entry of its own term and applied through its
  // commit index): its local reads are then as good as linearizable ones
  // for what committed before (as the server's ReadIndex at a new leader).
  virtual bool LeaderReady(uint64_t node) const = 0;
  // The index `node`'s state machine applied through, and the index its
  // Raft log knows committed (0 while it is down).
  virtual uint64_t Applied(uint64_t node) const = 0;
  virtual uint64_t Committed(uint64_t node) const = 0;
  virtual Time Latency() = 0;
  virtual void Trace(const std::string& line) = 0;
  virtual void Violation(const std::string& what) = 0;
  virtual uint64_t& Fault(const std::string& kind) = 0;
};

// A write that waits longer than this is answered DEADLINE_EXCEEDED (its
// outcome unknown), as the server's forwarded writes are.
inline constexpr Time kWriteTimeout = 3 * kSecond;

// Virtual time as the edges' and the hub's clocks read it.
inline int64_t Ms(Time t) { return static_cast<int64_t>(t / kMillisecond); }

// A write through `node`; `done` runs once, with DEADLINE_EXCEEDED if no
// answer came within kWriteTimeout.
void TimedWrite(EventQueue* queue, HubCluster* hub, uint64_t node,
                sm::Command c, HubCluster::WriteDone done);

class DecisionWorld;

struct EdgeWorldOptions {
  int edges = 3;
  uint64_t seed = 1;
  double fault_intensity = 1.0;
  int64_t lock_ms = 1000;  // Hub: a delivered command's lock.
  int64_t sweep_ms = 500;  // Hub: the leader's expiry sweep.
  int64_t poll_ms = 200;   // Hub sessions look for commands and twins.
  // A node that knows no leader this long ends its sessions (as the
  // server's EdgeOptions::no_leader_ms).
  int64_t no_leader_ms = 2000;
  // A command whose expiry is this long after the faults healed must end
  // done (the edge was reachable long enough).
  int64_t reach_ms = 15'000;
  // Retention (the leader keeps each device's newest this many readings;
  // 0: all), and the share of edges with a small buffer that drops its
  // oldest readings when full: both drawn from the seed by Simulation.
  int64_t readings_max_per_device = 0;
  double small_buffer_share = 0;
  // The checkers' self-test: the edges' disks acknowledge syncs and keep
  // nothing.
  bool broken_fsync = false;
  // With the DecisionMaker's scenario (sim/decision_world.h): its labelled
  // sensors replace the edges' own, and it duplicates uploads when its
  // labels say so.
  DecisionWorld* decisions = nullptr;
};

class EdgeWorld {
 public:
  EdgeWorld(const EdgeWorldOptions& options, EventQueue* queue, core::Prng rng,
            HubCluster* hub);
  ~EdgeWorld();

  void Start();
  // One edge fault, drawn from the seed (the cluster's chaos calls it).
  void Chaos();
  // The faults end: sensors stop, cuts heal, crashed edges restart.
  void Heal();
  // After Heal: every edge drained and acknowledged, no command open, every
  // twin reported. Reads the hub at `node` (the leader).
  bool Settled(uint64_t node);
  // What kept the last Settled() false.
  const std::string& unsettled() const { return unsettled_; }
  // Runs the checkers against the hub's tables at `node`.
  void Check(uint64_t node);

  struct Edge;
  struct Session;

 private:
  // Edges.
  void Boot(Edge& e);
  void Crash(Edge& e, bool wipe);
  void Tick(Edge& e, uint64_t boot);
  void Record(Edge& e);
  // Marks the ledger's readings the store dropped for room.
  void MarkDropped(Edge& e);
  void Connect(Edge& e);
  void EndSession(Edge& e, const char* why);
  void Pump(Edge& e);
  void SendUp(Edge& e, std::string bytes);
  // When a message sent now arrives on a stream whose last one arrives at
  // `*last` (a stream keeps order); moves `*last` there.
  Time InOrder(Time* last);
  void Deliver(Edge& e, uint64_t session, const std::string& bytes);

  // Hub sessions.
  void HubReceive(Edge& e, uint64_t session, const std::string& bytes);
  void HubSend(Session& s, std::string bytes);
  void HubEnd(Session& s, const std::string& why);
  // Carries out what session `session`'s core asked for.
  void HubRun(uint64_t session, edge::HubEffects fx);
  // A write of session `session` (through its node), answered only while
  // the session lives; DEADLINE_EXCEEDED after kWriteTimeout.
  void HubWrite(uint64_t session, sm::Command c, HubCluster::WriteDone done);
  void PollSessions();
  Session* Live(uint64_t session);

  // The operator and the leader's sweep.
  void Operate();
  void Issue(uint64_t n, int tries);
  void Sweep();
  uint64_t Leader() const;

  const EdgeWorldOptions options_;
  EventQueue* const queue_;
  core::Prng rng_;
  HubCluster* const hub_;
  std::vector<std::unique_ptr<Edge>> edges_;
  std::map<uint64_t, std::unique_ptr<Session>> sessions_;
  uint64_t next_session_ = 1;
  std::map<uint64_t, uint64_t> schema_ready_;  // node -> its incarnation
  std::map<uint64_t, Time> no_leader_since_;   // node -> since when
  std::map<uint64_t, uint64_t> forgot_;     // node -> incarnation that forgot
  std::set<std::pair<int, uint64_t>> cut_;  // (edge, node)
  bool healed_ = false;
  Time heal_time_ = 0;
  uint64_t commands_issued_ = 0;
  std::map<std::string, edge::HubCommand> issued_;  // By id, for retries.
  // The operator's writes not yet answered (or timed out): one landing
  // after the run settled would go unchecked.
  int operator_writes_ = 0;
  // Issued once the faults healed: not yet known to be in the hub, and in.
  std::set<std::string> must_complete_;
  std::set<std::string> must_run_;
  bool settled_ = false;
  std::string unsettled_;

  // What the checkers compare against the hub.
  struct Produced {
    double value;
    int64_t device_time_ms;
  };
  // (incarnation, seq) -> the reading the edge stored durably.
  std::map<std::pair<std::string, uint64_t>, Produced> produced_;
  std::set<std::string> wiped_;
  // Readings an edge dropped (full buffer, its documented policy).
  std::set<std::pair<std::string, uint64_t>> dropped_;
  uint64_t retention_cursor_ = 0;
  struct Run {
    int edge;
    Time at;
  };
  std::map<std::string, std::vector<Run>> runs_;  // command id -> runs
};

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_EDGE_WORLD_H_
