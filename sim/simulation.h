// One seeded simulation run: a cluster of core::Node runtimes on SimDisks and
// a SimNetwork, a key/register workload from simulated clients, faults drawn
// per seed ("swarm" style), safety checks on every event, a linearizability
// check of the client history at the end, and a liveness phase after every
// fault heals. A run is a pure function of (options, build): it prints the
// same trace and ends with the same trace hash every time.
#ifndef RAFTSQL_SIM_SIMULATION_H_
#define RAFTSQL_SIM_SIMULATION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/node.h"
#include "core/prng.h"
#include "core/testing/safety.h"
#include "sim/decision_world.h"
#include "sim/edge_world.h"
#include "sim/event_queue.h"
#include "sim/kv_state_machine.h"
#include "sim/linearizability.h"
#include "sim/sim_disk.h"
#include "sim/sim_log_store.h"
#include "sim/sim_machine.h"
#include "sim/sim_network.h"
#include "sm/file_swap.h"

namespace raftsql::sim {

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 5;
  int clients = 8;
  int ops = 2000;  // Client operations in the fault phase.
  int keys = 8;
  // Scales every fault probability and rate; 0 runs fault-free.
  double fault_intensity = 1.0;
  // Run the workload as SQL on the real SqliteStateMachine (registers and a
  // bank whose total must never change) instead of the in-memory KV store.
  bool sql = false;
  // The production server's configuration: each log write completes before
  // Submit returns (as RocksDbLogStore's), so the leader sends its appends
  // while it writes them (NodeOptions::send_appends_before_persist).
  bool sync_disk = false;
  // With sql: the SQLite database lives in files on a simulated disk (WAL,
  // synchronous=NORMAL, as in production) that lose unsynced writes on a
  // crash, so a restarted node recovers through SQLite's own WAL recovery
  // and resumes after the applied index stored with the effects.
  bool sql_disk = false;
  // With sql: this many simulated edge devices (sim/edge_world.h) upload
  // readings, run commands and report twins through sessions on the
  // nodes, under their own faults; their checkers run at the end.
  int edges = 0;
  // With edges: the DecisionMaker's scenario (sim/decision_world.h), its
  // rules alone or the shipped model through a model rule (the file in
  // model_dir); the fault phase lasts until its labelled faults are over.
  DecisionMode decisions = DecisionMode::kNone;
  std::string model_dir = "ai/model";
  // Without sql: each node's state machine pauses its apply now and then
  // (StateMachine::ApplyPaused, as a file swap does), for up to three
  // election timeouts; how often and how long follow from the seed.
  bool pause_apply = false;
  // Receives readable trace lines when set.
  std::function<void(const std::string&)> trace;

  Time tick_interval = 10 * kMillisecond;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  Time op_timeout = 1 * kSecond;
  // Each node snapshots its state machine and compacts its log after this
  // many applied entries (0 = never).
  uint64_t snapshot_threshold_entries = 200;
  // ... keeping this many applied entries (a durable state machine's:
  // --sql-disk), as the server keeps 5,000.
  uint64_t compaction_keeps_entries = 50;
  // After the faults heal, every client must complete a write within this.
  Time liveness_bound = 30 * kSecond;
  // Hard stop for the fault phase.
  Time max_fault_time = 300 * kSecond;
  // A run that needs more events than this is reported as a failure (a
  // message storm or livelock); keeps every seed bounded, deterministically.
  uint64_t max_events = 10'000'000;

  // Floor for the per-write chance of a crash mid-write (the self-tests use
  // it to aim crashes at the window a broken runtime exposes).
  double min_crash_mid_write_probability = 0;
  // ... and for the chance of a crash right after a node votes.
  double min_crash_after_vote_probability = 0;
  // Floor for the chance that a message is held across elections.
  double min_hold_probability = 0;
  // Floor for the weight of leader returns among the chaos faults (with 5
  // nodes or more).
  int min_leader_return_weight = 0;
  // When set, every seed's message size limit (else the plan draws one).
  uint64_t max_message_bytes = 0;
  // Deliberately broken components, for the checkers' self-tests.
  bool broken_fsync = false;                // fsync acks without persisting
  bool broken_send_before_persist = false;  // runtime breaks contract rule 1
  bool broken_stale_reads = false;      // reads served locally, no ReadIndex
  bool broken_early_reads = false;      // an early read kept whatever its index
  bool broken_split_transfers = false;  // SQL bank legs not atomic
  bool broken_edge_fsync = false;       // edge disks ack syncs, keep nothing
  bool broken_commit_earlier_terms = false;       // Raft's Figure 8 bug
  bool broken_learners_in_quorum = false;         // learners count to commit
  bool broken_read_index_without_quorum = false;  // no heartbeat round
  bool broken_stale_append_acks = false;          // earlier terms' acks counted
  bool broken_decision_progress = false;  // decisions ignore their progress
  bool broken_vote_without_log_check = false;         // no election restriction
  bool broken_heartbeat_full_commit = false;          // commit beyond the match
  bool broken_forget_vote = false;                    // vote not persisted
  bool broken_double_vote = false;                    // two votes in a term
  bool broken_read_index_before_term_commit = false;  // stale commit index
  bool broken_conflict_by_index = false;              // stale entries kept
  bool broken_match_what_was_sent = false;            // acks taken for all sent
};

// The faults of one seed, drawn from it.
struct FaultPlan {
  NetworkFaults network;
  DiskFaults disk;
  // Mean time between chaos actions; 0 = none.
  Time chaos_interval = 0;
  // Relative weights of chaos actions.
  int partition_weight = 0;
  int clog_weight = 0;
  int crash_weight = 0;
  int pause_weight = 0;
  int buggify_weight = 0;
  int membership_weight = 0;
  // The leader cut off from every peer while clients still reach it (a
  // deposed leader that does not know it yet: its reads must not be
  // served).
  int isolate_leader_weight = 0;
  // A leader cut off with one follower, then back with the majority while
  // that follower hears no one, and the new leader isolated in turn
  // (Simulation::LeaderReturns).
  int leader_return_weight = 0;
  std::vector<double> clock_drift;      // per node, e.g. +0.05 = 5% slow
  std::vector<uint64_t> disk_slowdown;  // per node latency multiplier
  // Buggify sites enabled for this seed.
  bool buggify_campaign = false;
  bool buggify_transfer = false;
  bool buggify_unreachable = false;
  // Chance per log write that the node crashes before the write completes.
  double crash_mid_write_probability = 0;
  // Chance per rename of a received snapshot image's file swap (files on
  // the simulated disk) that the node crashes instead.
  double crash_mid_swap_probability = 0;
  // Chance per vote a node grants that it crashes right after and restarts
  // within the election timeout, while the election it voted in goes on
  // (a vote that did not survive the restart then shows).
  double crash_after_vote_probability = 0;
  // Drawn from their own mixes of the seed, so that the draws above stay
  // as they were: a message size limit and a window of messages in flight
  // (0: the simulator's defaults), so that appends are cut short and flow
  // control stops a leader; and whether membership changes pick any change
  // that applies (else a learner is promoted first).
  uint64_t max_message_bytes = 0;
  size_t max_inflight_messages = 0;
  bool any_membership_change = false;

  std::string Describe() const;
};

FaultPlan DrawFaultPlan(uint64_t seed, int nodes, double intensity);

struct SimResult {
  uint64_t seed = 0;
  bool passed = false;
  std::string failure;  // One line, empty if passed.
  uint64_t trace_hash = 0;
  uint64_t events = 0;
  Time virtual_time = 0;
  std::map<std::string, uint64_t> faults;  // injected, by kind
  uint64_t ops_ok = 0;
  uint64_t ops_failed = 0;   // definitely not applied
  uint64_t ops_unknown = 0;  // timed out
  uint64_t commit_index = 0;
  // Vote requests that reached a node, since restarted, for a term in
  // which it had voted for another candidate: where a vote forgotten in a
  // restart would show.
  uint64_t revote_requests = 0;
  // Commits by a leader to an entry of an earlier term: where a leader
  // that counts replicas for such entries (Raft's Figure 8) would show.
  uint64_t earlier_term_commits = 0;
  // Append acknowledgements that reached, as leader of a later term, the
  // leader they answered: where counting them (a stale ack) would show.
  uint64_t stale_acks_at_leader = 0;
  // ... of which the follower's log no longer agreed with the leader's at
  // the acknowledged index: only these make a counting leader wrong.
  uint64_t stale_acks_that_lie = 0;
  // Register reads run before their read index (half the seeds, as the
  // server's linearizable Query does): answered with that value, or run
  // again because the read index came back past what they saw.
  uint64_t early_reads_kept = 0;
  uint64_t early_reads_redone = 0;
  std::string linearizability;  // ok, ILLEGAL or unknown
  std::string plan;
  // The DecisionMaker's scenario: its figures (DecisionWorld::tally).
  std::map<std::string, uint64_t> decisions;
};

class Simulation final : public HubCluster {
 public:
  explicit Simulation(const SimOptions& options);
  ~Simulation() override;
  // Runs the seed. A failed CHECK inside the run (a broken invariant of the
  // core or the runtime) is reported as the seed's failure, not a crash.
  SimResult Run();

 private:
  struct Slot;
  // The KV machine, pausing its apply if options_.pause_apply.
  std::unique_ptr<SimMachine> NewPausingKvMachine(uint64_t id);
  struct Client;
  struct PendingRead {
    uint64_t client;
    uint64_t op;
    // Read before the read index was asked (RaftServer::MayReadEarly):
    // at applied index `seen`, `value`.
    bool early = false;
    uint64_t seen = 0;
    int64_t value = 0;
  };

  // Nodes (simulation.cc).
  void StartNode(Slot& s);
  void CrashNode(Slot& s, const char* why);
  // A supervisor restarts a crashed node after `delay` (if still down).
  void RestartLater(Slot& s, Time delay, uint64_t tag);
  // The state machine's renames for `s`, which may crash it mid-swap.
  sm::RenameFile SwapRenamer(Slot& s);
  void ScheduleTick(Slot& s);
  void Deliver(core::Message m);
  void OnApply(Slot& s, const core::Entry& e, const std::string& result);
  void OnRead(Slot& s, const core::ReadState& rs);
  void OnSoftState(Slot& s, const core::SoftState& ss);
  // Flips a byte of one snapshot chunk in kDamageOneChunkIn (--sql-disk)
  // on its way to `to`, whose image check then refuses the image.
  void MaybeDamageChunk(Slot& to, core::Message& m);
  static constexpr uint64_t kDamageOneChunkIn = 64;
  void AfterNodeEvent(Slot& s);
  // A message a node sends: its vote goes to the safety checker, and the
  // plan may crash the voter right after.
  void OnSend(const core::Message& m);
  // At most this many crashes right after a vote per run: enough to catch
  // a vote that does not survive a restart, few enough to leave the
  // cluster available.
  static constexpr int kMaxCrashesAfterVotes = 8;
  int crashes_after_votes_ = 0;
  // Their own draws, so that a plan without them runs as it always did.
  core::Prng vote_crash_rng_{0};

  // Workload (workload.cc).
  void StartClient(Client& c);
  void NextOp(Client& c);
  void Receive(Slot& s, uint64_t client, uint64_t op);
  void Reply(uint64_t client, uint64_t op, bool ok, int64_t value,
             uint64_t leader_hint);
  // Serves a read on `s` now (ReadIndex done): returns the value.
  int64_t ServeRead(Slot& s, uint64_t client, uint64_t op);
  // A read on `s` answered from the state at `applied` holds everything
  // applied anywhere before it began (c.read_floor); a violation if not.
  void CheckReadFreshness(const Slot& s, const Client& c, uint64_t applied,
                          const char* how);
  void TimeOut(uint64_t client, uint64_t op);
  void ArmWatchdog(Client& c, Time at);
  bool WorkloadDone() const;
  Time ThinkTime();

  // Faults (faults.cc).
  void ScheduleChaos();
  void Chaos();
  Slot& PickCrashVictim();
  void Partition();
  void IsolateLeader();
  using Links = std::vector<std::pair<uint64_t, uint64_t>>;
  struct LeaderReturn {
    uint64_t leader = 0;
    uint64_t follower = 0;
    Links apart;  // Between the two and the rest, both ways.
    Time deaf = 0;
    Time isolate_after = 0;
    Time isolated = 0;
  };
  void LeaderReturns();
  void LeaderRejoins(const LeaderReturn& r);
  // Cuts `links` now and restores them after `duration`.
  void CutFor(const Links& links, Time duration);
  void Clog();
  void Buggify();
  void ChangeMembership();
  // The up leader of the highest term, or nullptr.
  Slot* CurrentLeader() const;
  // Members (voters and learners) in the current leader's configuration.
  std::vector<uint64_t> Members() const;
  void HealAll();

  // What the simulated edges see of the cluster (simulation_edges.cc).
  uint64_t nodes() const override { return slots_.size(); }
  uint64_t NodeIncarnation(uint64_t node) const override;
  bool IsLeader(uint64_t node) const override;
  bool InContactWithLeader(uint64_t node) const override;
  void Write(uint64_t node, sm::Command c, WriteDone done) override;
  absl::StatusOr<sm::QueryResult> Read(uint64_t node,
                                       const sm::Statement& s) override;
  bool LeaderReady(uint64_t node) const override;
  uint64_t Applied(uint64_t node) const override;
  uint64_t Committed(uint64_t node) const override;
  Time Latency() override { return network_->Latency(); }
  uint64_t& Fault(const std::string& kind) override {
    return result_.faults[kind];
  }
  // Answers an edge write `why`, a network hop later.
  void RefuseEdgeWrite(WriteDone done, absl::Status why);
  // The edges' writes that reach a leader, answered when applied there.
  void ProposeEdgeWrite(Slot& s, uint64_t origin, sm::Command c,
                        WriteDone done);
  // After healing: the edges settled (checked every 100ms at most).
  bool EdgesSettled();

  // Checks (checks.cc).
  void Violation(const std::string& what) override;
  bool Converged() const;
  void CheckFinalState();
  void CheckLinearizability();
  // Append-only lists: every read is a prefix of the final list, holds every
  // append acknowledged before the read began, and nothing twice.
  void CheckLists();

  SimResult RunUnguarded();
  void Trace(const std::string& line) override;
  std::string Now() const;

  SimOptions options_;
  FaultPlan plan_;
  EventQueue queue_;
  core::Prng rng_;         // chaos and workload choices
  core::Prng client_rng_;  // client latencies and think times
  std::unique_ptr<SimNetwork> network_;
  std::vector<std::unique_ptr<Slot>> slots_;  // slots_[id - 1]
  std::vector<std::unique_ptr<Client>> clients_;
  std::unique_ptr<DecisionWorld> decisions_;  // Before edges_ (they use it).
  std::unique_ptr<EdgeWorld> edges_;
  uint64_t next_request_id_ = 1;
  Time next_edge_check_ = 0;
  Time leader_return_until_ = 0;  // The LeaderReturns under way ends.
  // Phases: faults -> liveness (all healed, every client must write) ->
  // convergence (all replicas identical) -> finished.
  bool fault_phase_ = true;
  bool liveness_met_ = false;
  bool finished_ = false;
  Time converge_deadline_ = 0;
  Time heal_time_ = 0;
  int ops_issued_ = 0;
  std::string violation_;
  SimResult result_;

  // Raft's guarantees, checked as the run goes (core/testing/safety.h).
  std::unique_ptr<core::testing::SafetyChecker> safety_;
  std::map<uint64_t, uint64_t> acked_writes_;  // client -> highest acked op
  std::map<uint64_t, std::vector<RegisterOp>> history_;
  struct ListRead {
    uint64_t key;
    Time call;
    std::vector<int64_t> values;
  };
  std::vector<ListRead> list_reads_;
  // Acknowledged appends: (key, value) -> acknowledgement time.
  std::map<std::pair<uint64_t, int64_t>, Time> list_acks_;
};

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_SIMULATION_H_
