// RaftServer: one raftsql node (DESIGN.md §5). A Raft loop thread owns the
// core (a core::Node over RocksDbLogStore, SqliteStateMachine and
// GrpcTransport); gRPC handler threads hand it work through an inbox and wait
// for the outcome with a bound.
//
// - Group commit: the loop takes everything in its inbox (proposals, peer
//   messages, reads) between Node::Hold/Release, so all of it is persisted
//   in one write and one fsync.
// - Router: a write on a follower is proposed there and Raft forwards it to
//   the leader; the follower answers when the entry applies locally. With
//   forward_writes=false it answers NOT_LEADER with the leader's address.
//   LINEARIZABLE reads use ReadIndex (a follower asks the leader) and wait
//   until applied locally; NONE reads local state.
// - With no leader, writes and linearizable reads wait leader_wait_ms for an
//   election, then fail with UNAVAILABLE "no leader"; a write that was
//   proposed but not answered in time fails with DEADLINE_EXCEEDED
//   ("outcome unknown": retry with the same session and sequence).
#ifndef RAFTSQL_SERVER_RAFT_SERVER_H_
#define RAFTSQL_SERVER_RAFT_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/node.h"
#include "net/grpc_transport.h"
#include "sm/sqlite_state_machine.h"
#include "storage/rocksdb_log_store.h"

namespace raftsql::server {

struct ServerOptions {
  uint64_t id = 0;
  std::string listen;  // host:port for peers and clients
  // The initial cluster (including this node), for a node that bootstraps.
  std::map<uint64_t, std::string> peers;
  // Instead of peers: the address of a running member to join through.
  std::string join;
  std::string data_dir;
  int tick_ms = 20;
  int election_ticks = 10;
  int heartbeat_ticks = 2;
  // Fault window for crash tests: the leader sleeps this long after entries
  // commit and before they are applied and answered.
  int pause_before_commit_ms = 0;
  int leader_wait_ms = 3000;
  int request_timeout_ms = 5000;
  bool forward_writes = true;
  size_t max_request_bytes = 4 << 20;
  uint64_t snapshot_entries = 10'000;
};

// Error statuses carry their kind as a payload so the gRPC layer can add
// the trailers clients follow.
inline constexpr char kLeaderPayload[] = "raftsql/leader";
inline constexpr char kNoLeaderPayload[] = "raftsql/no-leader";

struct Member {
  uint64_t id = 0;
  std::string address;
  bool voter = false;
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
  std::vector<Member> members;
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

  absl::StatusOr<sm::CommandResult> Execute(sm::Command command);
  absl::StatusOr<sm::QueryResult> Query(const sm::Statement& statement,
                                        bool linearizable);
  absl::StatusOr<uint64_t> GetVersion(const std::string& table,
                                      bool linearizable);
  absl::StatusOr<NodeState> State();
  absl::StatusOr<std::vector<Member>> AddNode(uint64_t id,
                                              const std::string& address,
                                              bool learner);
  absl::StatusOr<std::vector<Member>> RemoveNode(uint64_t id);
  absl::StatusOr<std::vector<Member>> TransferLeadership(uint64_t id);
  // Raft messages from the peer service.
  void Deliver(std::vector<core::Message> messages);
  // A peer's address, as its batches state it.
  void LearnAddress(uint64_t id, const std::string& address);

  const ServerOptions& options() const { return options_; }

 private:
  struct Pending;
  using Task = std::function<void()>;

  explicit RaftServer(const ServerOptions& options);
  absl::Status Init();
  void Loop();
  void Post(Task task);
  // Runs `fn` on the loop thread and waits for its value (bounded).
  template <typename T>
  absl::StatusOr<T> OnLoop(std::function<T()> fn);
  void OnApply(const core::Entry& entry, const std::string& result);
  void OnSoftState(const core::SoftState& ss);
  void Complete(uint64_t id, absl::StatusOr<std::string> result);
  std::shared_ptr<Pending> Register(uint64_t id);
  void Unregister(uint64_t id);
  // Waits for a known leader; UNAVAILABLE "no leader" after the bound.
  absl::Status WaitForLeader(int64_t deadline_ms);
  absl::Status NotLeader();
  // Proposes (or asks a read index) via `submit`, retrying a request Raft
  // dropped while a leader may appear, and waits for the outcome.
  absl::StatusOr<std::string> Submit(
      const std::function<absl::Status(uint64_t id)>& submit, const char* what);
  absl::StatusOr<std::vector<Member>> ChangeMembership(core::ConfChange cc);
  std::vector<Member> Members();
  std::string AddressOf(uint64_t id);
  void SetAddress(uint64_t id, const std::string& address);
  void SaveAddresses();
  void JoinCluster();
  uint64_t NextId();

  const ServerOptions options_;
  std::unique_ptr<storage::RocksDbLogStore> log_;
  std::unique_ptr<sm::SqliteStateMachine> sm_;
  std::unique_ptr<core::StateMachine> applied_sm_;  // sm_ with the pause
  std::unique_ptr<net::GrpcTransport> transport_;
  std::unique_ptr<core::Node> node_;  // Loop thread only (after Start).

  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::vector<Task> inbox_;
  bool stopping_ = false;
  std::thread loop_;
  std::thread joiner_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> started_{false};

  // Published by the loop for handler threads.
  std::mutex leader_mu_;
  std::condition_variable leader_cv_;
  std::atomic<uint64_t> leader_{0};
  std::atomic<bool> is_leader_{false};

  std::mutex pending_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Pending>> pending_;
  std::atomic<uint64_t> next_id_;

  std::mutex addresses_mu_;
  std::map<uint64_t, std::string> addresses_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_RAFT_SERVER_H_
