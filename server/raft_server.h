// RaftServer: one raftsql node (DESIGN.md §5). A Raft loop thread owns the
// core (a core::Node over RocksDbLogStore, SqliteStateMachine and
// GrpcTransport). gRPC's callback handlers hand it work through an inbox;
// each request then waits in the loop's table, with its deadlines, until its
// outcome calls it back (no thread blocks on a request).
//
// - Group commit: the loop takes everything in its inbox (proposals, peer
//   messages, reads) between Node::Hold/Release, so all of it is persisted
//   in one write and one fsync.
// - Router: a write on a follower is proposed there and Raft forwards it to
//   the leader; the follower answers when the entry applies locally. With
//   forward_writes=false it answers NOT_LEADER with the leader's address.
//   LINEARIZABLE reads use ReadIndex (a follower asks the leader; reads
//   that arrive together share one round) and wait until applied locally;
//   NONE reads local state.
// - The node that receives a write fixes its timestamp and random seed
//   before proposing (DESIGN.md §3 says the leader; replicas agree either
//   way, since the values travel in the entry).
// - With no leader, writes and linearizable reads wait leader_wait_ms for an
//   election, then fail with UNAVAILABLE "no leader"; a write that was
//   proposed but not answered in time fails with DEADLINE_EXCEEDED
//   ("outcome unknown": retry with the same session and sequence).
#ifndef RAFTSQL_SERVER_RAFT_SERVER_H_
#define RAFTSQL_SERVER_RAFT_SERVER_H_

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/node.h"
#include "net/grpc_transport.h"
#include "net/poller.h"
#include "net/stream_transport.h"
#include "obs/loop_phases.h"
#include "obs/metrics.h"
#include "server/divergence_monitor.h"
#include "server/exit_codes.h"
#include "server/payloads.h"
#include "server/worker_pool.h"
#include "sm/sqlite_state_machine.h"
#include "storage/rocksdb_log_store.h"

namespace raftsql::server {

// The edge service's (server/edge_service.h).
struct EdgeOptions {
  // A delivered command unanswered this long is delivered again (if it
  // has attempts left).
  int64_t command_lock_ms = 30'000;
  // How often sessions look for commands whose lock ran out, and the
  // leader sweeps.
  int64_t sweep_ms = 1'000;
  // Readings stored longer than this are deleted (0: kept).
  int64_t readings_max_age_ms = 0;
  // Each device keeps its newest this many readings (counted by sequence,
  // over its incarnations); the leader deletes the rest (0: kept).
  int64_t readings_max_per_device = 0;
  // Commands a sweep ends at most; readings it looks at per stream.
  int64_t sweep_batch = 1'000;
  // Streams a sweep's retention step visits (in turn, all over time).
  int64_t retention_streams_per_sweep = 16;
  // Edge writes (uploads, outcomes, twins, deliveries) this node keeps in
  // flight for all its sessions together.
  size_t max_writes_in_flight = 4096;
  // Sessions this node serves at once (RESOURCE_EXHAUSTED beyond).
  size_t max_sessions = 10'000;
  // A node out of touch with a leader this long (cut off, or removed from
  // the cluster) ends its sessions, so that their devices go to another
  // node: it can store nothing, and its reads miss new commands.
  int64_t no_leader_ms = 3'000;
};

struct ServerOptions {
  uint64_t id = 0;
  // Called on the Raft loop once the log store failed (a write or fsync
  // that did not complete): the node has stopped and serves nothing more.
  // The binary exits here (kExitLogStoreFailed); unset (tests), the node
  // stays stopped in its process.
  std::function<void(const absl::Status&)> on_fatal;
  std::string listen;  // host:port for clients (and peers, without the next)
  // host:port for peers only (PeerService), so that it can be firewalled
  // apart; empty: peers use `listen`. --peers and AddNode name peer
  // addresses.
  std::string peer_listen;
  // What carries Raft messages: "grpc" (PeerService streams, on gRPC's
  // threads) or "stream" (net/stream_transport.h: TCP connections the
  // Raft loop reads and writes itself; needs peer_listen). Both are mutual
  // TLS with `tls`. Every node of a cluster runs the same one.
  std::string peer_transport = "grpc";
  // This node's certificate (node-<id>) and the cluster CA: mutual TLS with
  // peers, TLS for clients. Without a CA, plaintext (trusted networks).
  net::Tls tls;
  // The initial cluster (including this node), for a node that bootstraps.
  std::map<uint64_t, std::string> peers;
  // Instead of peers: the address of a running member to join through.
  std::string join;
  // Join as a learner that stays one (rqlite's read-only node): it
  // replicates and serves reads, never votes or counts toward commits.
  bool non_voter = false;
  std::string data_dir;
  int tick_ms = 20;
  int election_ticks = 10;
  int heartbeat_ticks = 2;
  // Fault window for crash tests: the leader sleeps this long after entries
  // commit and before they are applied and answered.
  int pause_before_commit_ms = 0;
  int leader_wait_ms = 3000;
  int request_timeout_ms = 5000;
  // A Raft-loop iteration this long is logged, with where its time went
  // (at most one line a second).
  int slow_loop_ms = 100;
  bool forward_writes = true;
  size_t max_request_bytes = 4 << 20;
  uint64_t snapshot_entries = 10'000;
  // ... or once the entries applied since the last compaction hold this
  // many bytes: the log store keeps its entries in memory too, so this
  // bounds that memory whatever the entries' size (0: no byte bound).
  uint64_t snapshot_log_bytes = 32 << 20;
  // Applied entries a compaction keeps for followers a little behind
  // (NodeOptions::compaction_keeps_entries).
  uint64_t compaction_keeps_entries = 5'000;
  // Snapshot bytes a leader sends per second to followers catching up, all
  // together (0: no limit).
  uint64_t snapshot_bytes_per_second = 0;
  uint64_t vacuum_bytes_per_second = 0;             // sm::SqliteOptions'.
  uint64_t change_log_bytes = uint64_t{256} << 20;  // Likewise (Watch).
  // The leader evaluates the rules this often (server/decision_maker.h;
  // 0: never).
  int decision_interval_ms = 100;
  // Where the hub's model files are (ai/model_registry.h; empty:
  // <data_dir>/models).
  std::string model_dir;
  bool vacuum_handoff = false;  // See ManageVacuumSwap.
  // Snapshot chunks a leader keeps in flight to one follower.
  uint64_t snapshot_chunks_in_flight = 16;
  // core::Config::announce_commit_at_tick.
  bool announce_commit_at_tick = false;
  // The largest snapshot image this node accepts as a follower; it goes to
  // disk (<db>.received), so the disk bounds it, not memory.
  uint64_t max_snapshot_bytes = uint64_t{256} << 30;
  // Divergence checks (server/divergence_monitor.h): how often this node
  // compares its checkpoints with its peers' (0: never), and how many
  // entries apart checkpoints are.
  int divergence_check_ms = 5000;
  uint64_t divergence_checkpoint_entries = 1000;
  // A new database returns free pages to the file system
  // (sm::SqliteOptions::incremental_vacuum).
  bool incremental_vacuum = false;
  // Reads: run at most this long (and never past the client's deadline),
  // this many at once, and return at most this many bytes.
  int query_timeout_ms = 10'000;
  int read_connections = 4;
  size_t max_result_bytes = size_t{48} << 20;
  // An ExecuteStream stops reading while its requests in flight and its
  // unwritten answers hold this many bytes.
  size_t stream_held_bytes_max = size_t{64} << 20;
  // All gRPC connections together may hold this much (a ResourceQuota).
  size_t grpc_memory_bytes = size_t{1} << 30;
  // Readiness (server/readiness.h): a node that has applied more than this
  // many entries fewer than it knows committed is not ready.
  uint64_t ready_max_lag = 1000;
  // Requests slower than this are logged (0: none).
  int slow_request_ms = 1000;
  // Tests: runs after a linearizable read ran before its read index.
  std::function<void()> after_early_read_for_test;
  // Tests: runs on the loop before RemoveNode or TransferLeadership first
  // looks for the voters up.
  std::function<void(core::Node&)> before_voters_up_check_for_test;
  EdgeOptions edge;
};

struct Member {
  uint64_t id = 0;
  std::string address;  // for peers
  bool voter = false;
  std::string client_address;  // for clients
};

struct NodeState {
  uint64_t id = 0;
  std::string role;
  uint64_t term = 0;
  uint64_t leader = 0;
  std::string leader_address;
  uint64_t commit = 0;
  uint64_t applied = 0;
  uint64_t last_index = 0;
  uint64_t snapshot_index = 0;
  uint64_t divergence_hash = 0;
  std::string divergence;  // Why this replica diverged ("" if it has not).
  std::vector<Member> members;
  int64_t longest_loop_us = 0;  // Since the node started.
  // The most one iteration spent on snapshot work and checkpoints.
  int64_t longest_loop_in_snapshots_us = 0;
  std::vector<core::SnapshotTransfer> snapshot_transfers;
  bool vacuuming = false;
  uint64_t vacuums_done = 0;  // Since the node started.
  uint64_t change_log_first = 0;
  uint64_t change_log_bytes = 0;
  uint64_t decisions_evaluated_index = 0;
  uint64_t decision_evaluations = 0;
  std::string decision_model;
  std::string decision_model_error;
  std::string http_address;  // RaftServer::http_address()
};

// What /metrics reports beyond NodeState (RaftServer::Metrics).
struct NodeMetrics {
  NodeState state;
  obs::Histogram::Counts loop_seconds;
  // By obs::Phase: the time one loop iteration spent in each (iterations
  // that spent none are not counted).
  std::vector<std::pair<std::string, obs::Histogram::Counts>> phase_seconds;
  uint64_t proposals = 0;
  uint64_t proposals_refused = 0;
  uint64_t leader_changes = 0;
  // Linearizable reads that ran before their read index, by outcome: the
  // early result was the answer, or the read ran again (the index moved).
  uint64_t early_reads_kept = 0;
  uint64_t early_reads_redone = 0;
  storage::RocksDbLogStore::Stats log;
  uint64_t messages_sent = 0;
  uint64_t messages_dropped = 0;
  uint64_t broken_streams = 0;
  std::map<uint64_t, size_t> send_queue;     // By peer.
  std::map<uint64_t, uint64_t> unreachable;  // Reports, by peer.
  int64_t wal_bytes = -1;                    // -1: no WAL file.
};

class RaftServer {
 public:
  // Opens (creating if missing) the data directory and recovers from it.
  static absl::StatusOr<std::unique_ptr<RaftServer>> Open(
      const ServerOptions& options);
  ~RaftServer();

  // Starts the Raft loop (and, with options.join, joining in background).
  void Start();
  // Graceful stop: a leader first hands leadership to the most up-to-date
  // voter (bounded wait), then the loop and the transport stop.
  void Shutdown();
  // Set once the log store failed: the node stopped serving.
  bool failed() const { return failed_.load(); }

  // The request API. `done` runs exactly once: on the Raft loop thread, on
  // a reader thread, or at once (on the caller's thread) for an immediate
  // answer; it must not block.
  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;
  void Execute(sm::Command command, Done<sm::CommandResult> done);
  // Reads run on a pool of reader threads (one per read connection), under
  // `limits` tightened to query_timeout_ms and max_result_bytes.
  void Query(sm::Statement statement, bool linearizable, sm::ReadLimits limits,
             Done<sm::QueryResult> done);
  // Query's result in pages of at most `page_bytes`, handed to `sink` on a
  // reader thread as they fill (it may block: the read waits); `done` runs
  // once with the outcome, after the last page.
  void QueryStream(sm::Statement statement, bool linearizable,
                   sm::ReadLimits limits, sm::SqliteStateMachine::PageSink sink,
                   std::function<void(absl::Status)> done,
                   size_t page_bytes = size_t{1} << 20);
  // A linearizable Query first runs before its read index is asked (see
  // MayReadEarly); at most kMaxEarlyReads such results, each within
  // kEarlyReadBytes (larger ones run again), wait for their ReadIndex
  // round at once.
  static constexpr int kMaxEarlyReads = 256;
  static constexpr size_t kEarlyReadBytes = 16 << 10;
  void GetVersion(std::string table, bool linearizable, sm::ReadLimits limits,
                  Done<uint64_t> done);
  void State(Done<NodeState> done);
  // A backup: an image of the database as applied now, held by a read
  // transaction of its own (sm::SqliteStateMachine::BeginBackup); read it
  // once its Wait returned. RESOURCE_EXHAUSTED while kMaxBackups are held.
  static constexpr int kMaxBackups = 2;
  void Backup(Done<std::shared_ptr<sm::ImageSource>> done);
  // `state` (from State) with the counters /metrics reports beside it,
  // read on the calling thread, off the Raft loop.
  NodeMetrics Metrics(NodeState state);
  // Requests by method and code, kept by the frontends that serve them.
  obs::RequestMetrics& request_metrics() { return request_metrics_; }

  // Admin calls: rare, and they block their caller.
  absl::StatusOr<std::vector<Member>> AddNode(uint64_t id,
                                              const std::string& address,
                                              bool learner);
  absl::StatusOr<std::vector<Member>> RemoveNode(uint64_t id);
  absl::StatusOr<std::vector<Member>> TransferLeadership(uint64_t id);
  // Cluster settings (sm/write_budget.h): a change is proposed through the
  // log and answered once applied here, with the limits then in force.
  absl::StatusOr<sm::WriteSettings> SetSetting(const std::string& name,
                                               uint64_t value);
  absl::StatusOr<sm::WriteSettings> Settings();
  // Users (sm/users.h): the password is hashed here (Argon2id) and only the
  // hash is proposed. Answered once applied here, with the users then known.
  absl::StatusOr<std::vector<sm::User>> PutUser(const std::string& name,
                                                const std::string& password,
                                                uint32_t permissions);
  absl::StatusOr<std::vector<sm::User>> DropUser(const std::string& name);
  std::vector<sm::User> Users() const { return sm_->Users(); }
  std::optional<sm::User> FindUser(const std::string& name) const {
    return sm_->FindUser(name);
  }
  // Where this node serves its HTTP API (a URL; "" if it does not), for
  // Status: set by the HTTP frontend once it listens.
  void SetHttpAddress(std::string url) {
    std::lock_guard<std::mutex> l(http_address_mu_);
    http_address_ = std::move(url);
  }
  std::string http_address() const {
    std::lock_guard<std::mutex> l(http_address_mu_);
    return http_address_;
  }
  // The divergence hash at recent checkpoints (any thread).
  std::vector<sm::Checkpoint> Checkpoints() const { return sm_->Checkpoints(); }
  // Why this replica diverged ("" while it has not): it serves no reads.
  std::string divergence() const { return sm_->divergence(); }
  // The committed changes Watch serves (null without a change log).
  sm::ChangeLog* change_log() const { return sm_->change_log(); }
  // Raft messages from the peer service (any thread: posted to the loop).
  void Deliver(std::vector<core::Message> messages);
  // Whether peers reach this node by the stream transport (its PeerService
  // then serves on the client port, for the divergence checks).
  bool stream_peers() const { return options_.peer_transport == "stream"; }
  // A peer's address, as its batches state it, and where it serves
  // clients (empty: the same).
  void LearnAddress(uint64_t id, const std::string& address,
                    const std::string& client_address);
  // Where this node's peers reach it.
  const std::string& peer_address() const {
    return options_.peer_listen.empty() ? options_.listen
                                        : options_.peer_listen;
  }
  // Where clients reach node `id` ("" if unknown).
  std::string ClientAddressOf(uint64_t id);

  const ServerOptions& options() const { return options_; }
  bool is_leader() const { return is_leader_.load(); }
  // The DecisionMaker's progress, for Status (any thread).
  void PublishDecisions(uint64_t evaluated_index, uint64_t evaluations,
                        std::string model, std::string model_error) {
    decisions_evaluated_index_.store(evaluated_index);
    decision_evaluations_.store(evaluations);
    std::lock_guard<std::mutex> l(decision_model_mu_);
    decision_model_ = std::move(model);
    decision_model_error_ = std::move(model_error);
  }
  // Whether this node leads or heard from its leader lately
  // (core::Raft::InContactWithLeader, as of the last tick).
  bool in_contact_with_leader() const { return in_contact_.load(); }
  // How long ago this node last heard from its leader, as of the last tick
  // (ticks times --tick_ms): 0 on the leader, INT64_MAX with no leader
  // known (rqlite's freshness).
  int64_t leader_contact_age_ms() const {
    return leader_contact_age_ms_.load();
  }

  // Called on the Raft loop with the tables each applied command changed
  // (valid during the call), on every node. Set before Start; it must not
  // block (the edge service wakes its sessions with it).
  using TablesChanged =
      std::function<void(const std::vector<std::string_view>& tables)>;
  void OnTablesChanged(TablesChanged fn) { tables_changed_ = std::move(fn); }

 private:
  using Task = std::function<void()>;
  // A write, read index or membership change waiting for its outcome (loop
  // thread only).
  struct Request {
    std::function<absl::Status(uint64_t id)> submit;
    const char* what = "";
    Done<std::string> done;
    int64_t leader_deadline_ms = 0;  // for a leader to appear
    int64_t deadline_ms = 0;         // for the outcome
    bool submitted = false;
    uint64_t proposed_index = 0;  // Its entry's index, once proposed.
    uint64_t forwarded_term = 0;  // The term a follower forwarded it in.
    bool read = false;            // A read index: asking again is harmless.
    int resubmits = 0;            // Of an entry known never to apply.
    int64_t received_ns = 0;      // With --trace_writes: when it came.
  };

  explicit RaftServer(const ServerOptions& options);
  absl::Status Init();
  void Loop();
  // The sink's progress callback stops (before the loop's inbox goes).
  void StopSinkProgress();
  // Queues `task` for the loop; false (task dropped) once it is stopping,
  // or if `droppable` and the inbox holds kMaxInbox tasks.
  bool Post(Task task, bool droppable = false);
  // Runs `fn` on the loop thread and waits for its value (bounded).
  template <typename T>
  absl::StatusOr<T> OnLoop(std::function<T()> fn);
  // Runs `look` on the loop (after before_voters_up_check_for_test, the
  // first time) each tick until its answer `stands`, or until a round
  // passed since the first look (RoundMs: every voter up has answered by
  // then); returns the last answer. NotLeader once this node no longer
  // leads.
  template <typename T>
  absl::StatusOr<T> LookAtVotersUp(std::function<T()> look,
                                   std::function<bool(const T&)> stands);
  void OnApply(const core::Entry& entry, const std::string& result);
  // `limits` within the server's bounds, and cancelled once it stops.
  sm::ReadLimits Bound(sm::ReadLimits limits) const;
  // Runs `read` on a reader thread and answers `done` with its value;
  // RESOURCE_EXHAUSTED if kMaxQueuedReads reads wait already.
  template <typename T>
  void OnReader(std::function<absl::StatusOr<T>()> read, Done<T> done);
  static constexpr size_t kMaxQueuedReads = 1024;
  // A read at consistency NONE first runs on its caller's thread (gRPC's,
  // HTTP's) if a connection is free, for at most this many VM steps (a
  // point read by key takes 9, a count over 100 keys 418; 10,000 steps of
  // a recursive CTE took 168 us on the 2-core machine); past them, or with
  // none free, on a reader thread. Issue 17: the hand-off cost a thread
  // wake-up each way.
  static constexpr uint64_t kInlineReadSteps = 10000;
  void OnSoftState(const core::SoftState& ss);
  // Before each tick, with vacuum_handoff: a leader whose vacuum has
  // caught up hands leadership to the most up-to-date voter before it
  // swaps (its answers would wait for the swap); it swaps as leader if
  // that has not happened within kVacuumHandoffElections election
  // timeouts, or if no other voter exists.
  void ManageVacuumSwap();
  static constexpr int kVacuumHandoffElections = 2;
  int vacuum_handoff_ticks_ = 0;  // Loop thread only.

  // Requests (raft_server_requests.cc). Submit proposes (or asks a read
  // index) via `submit` once a leader is known, retries what Raft dropped
  // while the leader wait lasts, and calls `done` with the outcome.
  void Submit(std::function<absl::Status(uint64_t id)> submit, const char* what,
              Done<std::string> done, bool read = false);
  // A linearizable read's read index (one ReadIndex round per iteration
  // for all reads, FlushReads): `done` gets it, EncodeId'd.
  void SubmitRead(Done<std::string> done);
  // A linearizable read that ran before its read index was asked: its
  // `result` (read from a state at `seen` or later) is the answer if the
  // read index is at most `seen`; else `read` runs again once the index
  // is applied.
  template <typename T>
  void SubmitReadAfter(uint64_t seen, absl::StatusOr<T> result,
                       std::function<absl::StatusOr<T>()> read, Done<T> done);
  // Whether a linearizable read may run before its read index (on the
  // caller's thread, bounded): reads are served by connections of their
  // own and every committed entry is applied, so the index that comes
  // back will likely be one the read saw. Counts it in early_reads_.
  bool MayReadEarly(uint64_t* seen);
  // Whether a read may run on its caller's thread (bounded): reads are
  // served by connections of their own, and this node serves them.
  bool MayReadHere() const;
  // Query's and GetVersion's way: `read(limits)` runs on the caller's
  // thread first if it may (MayReadHere, MayReadEarly), else (or if that
  // did not answer) on a reader thread, after the read index if
  // `linearizable`.
  template <typename T, typename Read>
  void ReadWith(bool linearizable, sm::ReadLimits limits, Read read,
                Done<T> done);
  absl::StatusOr<std::string> SubmitSync(
      std::function<absl::Status(uint64_t id)> submit, const char* what);
  void TrySubmit(uint64_t id);
  void Finish(uint64_t id, absl::StatusOr<std::string> result);
  // Drops `r`'s proposed or forwarded entry from the index maps.
  void ForgetSubmission(Request& r, uint64_t id);
  // The proposals that entry (`applied`, `term`) shows will never apply
  // are proposed again: those at or below its index (replaced by a newer
  // leader's entries) and those forwarded in an earlier term (see
  // Message::log_term).
  void ResolveLostProposals(uint64_t applied, uint64_t term);
  // Proposes request `id` again (its entry never applies), at most
  // kMaxResubmits times and within its deadline; else UNAVAILABLE.
  void Resubmit(uint64_t id);
  // Back among the parked, with a new leader wait within its deadline.
  void ParkAgain(uint64_t id, Request& r);
  static constexpr int kMaxResubmits = 3;
  // After a snapshot restore: the writes whose entries it may hold have an
  // unknown outcome (their entries took effect without on_apply).
  void OnRestore(const core::SnapshotMetadata& snapshot);
  // A leader that stepped down knowing no successor (CheckQuorum: it no
  // longer hears a majority, cut off or outvoted) answers the writes it
  // proposed beyond its commit index at once: their outcome is unknown
  // (a successor may still commit them), and the client's retry under
  // the same session applies them at most once. Waiting, they were
  // answered only once this node heard the cluster again, or timed out.
  void AnswerProposalsOfALostLead();
  // After a change of leader: the reads waiting for a read index ask again
  // (the old leader may never answer).
  void AskReadsAgain();
  // At stop: requests not yet proposed fail UNAVAILABLE (nothing was
  // written), proposed ones UNKNOWN (outcome unknown).
  void FinishAll();
  void SweepRequests(bool ticked);
  // Linearizable reads that arrive together share one ReadIndex round (one
  // heartbeat quorum), as etcd's server batches them.
  void FlushReads();
  absl::Status NoLeader(const char* what) const;
  // FAILED_PRECONDITION naming `leader` (and its address, for clients);
  // UNAVAILABLE if no leader is known (0).
  absl::Status NotLeader(uint64_t leader);

  absl::StatusOr<std::vector<Member>> ChangeMembership(core::ConfChange cc);
  // Loop thread only. ALREADY_EXISTS if `id` is a member at another address
  // or another member has `address`.
  absl::Status CheckNewMember(uint64_t id, const std::string& address,
                              bool member);
  // Loop thread only. NOT_FOUND for a non-member; FAILED_PRECONDITION if
  // the voters left could not form a quorum with those that are up.
  absl::Status CheckRemoval(uint64_t id);
  // Bounds on membership requests.
  static constexpr size_t kMaxLearners = 16;
  static constexpr size_t kMaxAddressBytes = 256;
  std::vector<Member> Members();                         // Loop thread only.
  absl::StatusOr<std::vector<Member>> CurrentMembers();  // Via the loop.
  // The other voter with the longest log among those up. Loop thread only;
  // 0 if none.
  uint64_t MostUpToDateOtherVoter();
  // A voter counts as up once it answered since the last CheckQuorum round
  // (Progress::recent_active); right after a round, one that is up may not
  // have answered yet. This long (a round and a heartbeat) after a first
  // look, every voter up has been seen.
  int64_t RoundMs() const {
    return int64_t{options_.election_ticks + options_.heartbeat_ticks} *
           options_.tick_ms;
  }
  std::string AddressOf(uint64_t id);
  void SetAddress(uint64_t id, const std::string& address);
  void SaveAddresses();
  void JoinCluster();
  absl::Status MakeTransport();
  // Loop thread: peer messages, stepped.
  void StepPeerMessages(std::vector<core::Message>& messages);
  static void TraceReceived(const std::vector<core::Message>& messages);
  uint64_t NextId();

  const ServerOptions options_;
  std::unique_ptr<storage::RocksDbLogStore> log_;
  std::unique_ptr<sm::SqliteStateMachine> sm_;
  // sm_ behind the --pause_before_commit_ms window (null without it).
  std::unique_ptr<core::StateMachine> pausing_sm_;
  std::unique_ptr<net::PeerTransport> transport_;
  net::StreamTransport* stream_ = nullptr;  // transport_, if a stream one
  std::unique_ptr<core::Node> node_;        // Loop thread only (after Start).

  // The loop waits on poller_ (its sockets, a tick, or a Post's Wake);
  // inbox_cv_ serves threads that wait for the stop.
  std::unique_ptr<net::Poller> poller_;
  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::vector<Task> inbox_;
  static constexpr size_t kMaxInbox = 16384;
  bool stopping_ = false;
  bool loop_sleeping_ = false;  // In poller_->Wait; a Post wakes it.
  std::thread loop_;
  std::thread joiner_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> started_{false};

  // Published by the loop for handler threads.
  std::mutex leader_mu_;
  std::condition_variable leader_cv_;
  std::atomic<uint64_t> leader_{0};
  std::atomic<bool> is_leader_{false};
  std::atomic<uint64_t> decisions_evaluated_index_{0};
  std::atomic<uint64_t> decision_evaluations_{0};
  // For /metrics (server/metrics.h).
  obs::Histogram loop_seconds_;
  std::array<obs::Histogram, static_cast<size_t>(obs::Phase::kCount)>
      phase_seconds_;
  std::atomic<uint64_t> proposals_{0};
  std::atomic<uint64_t> proposals_refused_{0};
  std::atomic<uint64_t> leader_changes_{0};
  std::shared_ptr<std::atomic<int>> backups_ =
      std::make_shared<std::atomic<int>>(0);
  std::mutex unreachable_mu_;
  std::map<uint64_t, uint64_t> unreachable_;  // Guarded by unreachable_mu_.
  obs::RequestMetrics request_metrics_;
  mutable std::mutex http_address_mu_;
  std::string http_address_;  // Guarded by http_address_mu_.
  std::mutex decision_model_mu_;
  std::string decision_model_;        // Guarded by decision_model_mu_.
  std::string decision_model_error_;  // Guarded by decision_model_mu_.
  std::atomic<bool> in_contact_{false};
  std::atomic<int64_t> leader_contact_age_ms_{INT64_MAX};
  // This node applied a configuration without itself (as of the last
  // tick): it hears no more entries, so it serves no more reads.
  std::atomic<bool> removed_{false};

  // Loop thread only.
  std::unordered_map<uint64_t, Request> requests_;
  int64_t longest_loop_us_ = 0;               // Loop thread only.
  int64_t longest_loop_in_snapshots_us_ = 0;  // Loop thread only.
  // Proposed requests by the index their entry took (loop thread only).
  // Once that index applies without answering one, its entry was replaced
  // by a newer leader's: it never applies (Log Matching), so the request is
  // answered then, not at its deadline.
  std::map<uint64_t, uint64_t> proposed_at_;
  // Requests this node forwarded to the leader, by the term it was
  // forwarded in (loop thread only): once an entry of a later term applies
  // without answering one, it never applies.
  std::multimap<uint64_t, uint64_t> forwarded_in_;
  std::vector<uint64_t> parked_;        // waiting for a leader or a retry
  std::vector<uint64_t> queued_reads_;  // for this iteration's ReadIndex
  std::unordered_map<uint64_t, std::vector<uint64_t>> read_batches_;
  bool leader_changed_ = false;
  bool reads_to_ask_again_ = false;
  std::atomic<uint64_t> next_id_;
  TablesChanged tables_changed_;                  // Set before Start.
  std::vector<std::string_view> changed_tables_;  // Loop thread: reused.
  std::unique_ptr<WorkerPool> readers_;
  std::unique_ptr<DivergenceMonitor> monitor_;  // From Start on.
  void OnDiverged(const sm::DivergenceVerdict& verdict);
  std::atomic<bool> reads_stopping_{false};
  // Linearizable reads that ran before their read index (MayReadEarly).
  std::atomic<uint64_t> committed_{0};  // The loop's, after each Ready.
  std::atomic<int> early_reads_{0};     // Holding a result now.
  std::atomic<uint64_t> early_reads_kept_{0};
  std::atomic<uint64_t> early_reads_redone_{0};

  std::mutex addresses_mu_;
  std::map<uint64_t, std::string> addresses_;  // Peer addresses (saved).
  // Client addresses of nodes with a separate peer listener (learnt).
  std::map<uint64_t, std::string> client_addresses_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_RAFT_SERVER_H_
