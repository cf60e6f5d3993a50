// Test-only: an in-memory cluster of core::Nodes (the runtime the simulator
// and the server run: persist, then send, then apply, then Advance) over
// synchronous in-memory log stores and volatile state machines, and a
// message queue that can drop, duplicate and reorder under a seed, with
// partitions and crashes.
//
// Every step runs CheckInvariants() on every live node (its Node and its
// Raft) and checks Raft's guarantees with the simulator's own checker
// (core/testing/safety.h): election and vote safety, leader completeness,
// commit safety (Figure 8 included), progress truthfulness, log and state
// machine safety; and that each node applies its entries in order.
#ifndef RAFTSQL_CORE_TESTING_NETWORK_H_
#define RAFTSQL_CORE_TESTING_NETWORK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/memory_storage.h"
#include "core/node.h"
#include "core/prng.h"
#include "core/raw_node.h"
#include "core/testing/memory_log_store.h"
#include "core/testing/safety.h"

namespace raftsql::core::testing {

struct NetworkOptions {
  uint64_t seed = 1;
  double drop_probability = 0;
  double duplicate_probability = 0;
  // Deliver a random queued message instead of the oldest.
  bool reorder = false;
  bool pre_vote = true;
  bool check_quorum = true;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  size_t max_inflight_msgs = 256;
  uint64_t max_size_per_msg = 1 << 20;
  uint64_t max_snapshot_chunk_bytes = 1 << 20;
  uint64_t snapshot_bytes_per_tick = 0;
  uint64_t max_snapshot_chunks_in_flight = 4;
  // Called on each node's Config (at every start): plants a bug, say.
  std::function<void(Config&)> configure;
  // ... and on each node's NodeOptions: plants a runtime bug.
  std::function<void(NodeOptions&)> configure_node;
  // Nodes with a durable state machine's images (borrowed; their Nodes
  // ask them for images).
  std::map<uint64_t, SnapshotSource*> snapshot_sources;
  std::map<uint64_t, SnapshotSink*> snapshot_sinks;
};

class Network {
 public:
  Network(const std::vector<uint64_t>& ids, const NetworkOptions& options);
  ~Network();

  // A live node's Raft, to drive directly (ProcessReadies then runs what
  // that produced through its Node).
  RawNode& node(uint64_t id) { return nodes_.at(id).node->raw(); }
  Node& runtime(uint64_t id) { return *nodes_.at(id).node; }
  Raft& raft(uint64_t id) { return node(id).raft(); }
  // What the node's log store holds (survives crashes).
  MemoryStorage& storage(uint64_t id) { return nodes_.at(id).store->mem; }
  const std::vector<uint64_t>& ids() const { return ids_; }
  bool IsUp(uint64_t id) const { return !nodes_.at(id).crashed; }

  // Ticks one node, or every live node once, then processes Readies.
  void Tick(uint64_t id);
  void TickAll();
  // Runs every live node's pending Ready through its Node, then checks.
  void ProcessReadies();
  // Injects a message as if it arrived from the network.
  void Inject(Message m);
  // Delivers one queued message, if any. Returns false if none was queued.
  bool DeliverOne();
  // Delivers until nothing is queued (bounded). Returns messages delivered.
  size_t Stabilize(size_t max_messages = 1'000'000);
  void SetDropProbability(double p) { options_.drop_probability = p; }
  void SetDuplicateProbability(double p) { options_.duplicate_probability = p; }
  size_t queued() const { return queue_.size(); }
  // Drops everything in flight.
  void ClearQueue() { queue_.clear(); }

  // Partitions: a cut link drops messages from `from` to `to`.
  void Cut(uint64_t a, uint64_t b);
  void CutOneWay(uint64_t from, uint64_t to) { cut_.insert({from, to}); }
  void Isolate(uint64_t id);
  void Heal() { cut_.clear(); }

  // Crash loses volatile state; storage (persisted at each Ready) survives.
  void Crash(uint64_t id);
  void Restart(uint64_t id);

  // The live leader with the highest term, or kNone.
  uint64_t Leader() const;
  // Proposes on `id`; returns the status of the proposal.
  absl::Status Propose(uint64_t id, std::string data);

  // Applied normal, non-empty entries of a node, in order.
  const std::vector<Entry>& applied(uint64_t id) const {
    return nodes_.at(id).applied;
  }
  // Reads released by the node (its state machine reached their index).
  const std::vector<ReadState>& read_states(uint64_t id) const {
    return nodes_.at(id).read_states;
  }
  uint64_t applied_index(uint64_t id) const {
    return nodes_.at(id).applied_index;
  }
  // Every message that was sent (before drops), for assertions.
  std::vector<Message>& sent() { return sent_; }
  // Observer called on every message just before it is delivered; returning
  // false drops it.
  void SetFilter(std::function<bool(const Message&)> filter) {
    filter_ = std::move(filter);
  }
  uint64_t delivered() const { return delivered_; }
  // The first cluster-wide safety violation seen, or empty.
  const std::string& violation() const { return violation_; }

 private:
  class Machine;
  class Wire;
  struct TestNode {
    std::unique_ptr<MemoryLogStore> store;
    std::unique_ptr<Machine> machine;  // Volatile: new at each start.
    std::unique_ptr<Wire> wire;
    std::unique_ptr<Node> node;
    std::vector<Entry> applied;
    std::vector<ReadState> read_states;
    uint64_t applied_index = 0;
    bool crashed = false;
    uint64_t incarnation = 0;  // Restarts so far.
  };

  Config MakeConfig(uint64_t id);
  // A new Node (and state machine) over the node's log store.
  void Start(uint64_t id);
  // The state machine applies `e` (each entry once, in order).
  void OnApply(uint64_t id, const Entry& e);
  void Enqueue(Message m);
  void CheckSafety();
  void Violation(std::string what);

  std::vector<uint64_t> ids_;
  NetworkOptions options_;
  Prng prng_;
  std::map<uint64_t, TestNode> nodes_;
  std::deque<Message> queue_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::vector<Message> sent_;
  std::function<bool(const Message&)> filter_;
  uint64_t delivered_ = 0;
  uint64_t restarts_ = 0;
  std::unique_ptr<SafetyChecker> safety_;
  std::string violation_;
};

}  // namespace raftsql::core::testing

#endif  // RAFTSQL_CORE_TESTING_NETWORK_H_
