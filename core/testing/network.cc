#include "core/testing/network.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"

namespace raftsql::core::testing {

// The node's state machine: records what it applies; images are the
// test's (a durable node's source and sink, if it has them).
class Network::Machine final : public StateMachine {
 public:
  Machine(Network* net, uint64_t id, SnapshotSource* source, SnapshotSink* sink)
      : net_(net), id_(id), source_(source), sink_(sink) {}
  std::string Apply(const Entry& e) override {
    net_->OnApply(id_, e);
    return "";
  }
  absl::Status Restore(const Snapshot& s) override {
    net_->nodes_.at(id_).applied_index = s.metadata.index;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> SnapshotData() override { return ""; }
  SnapshotSource* snapshot_source() override { return source_; }
  SnapshotSink* snapshot_sink() override { return sink_; }
  uint64_t AppliedIndex() const override {
    return net_->nodes_.at(id_).applied_index;
  }

 private:
  Network* const net_;
  const uint64_t id_;
  SnapshotSource* const source_;
  SnapshotSink* const sink_;
};

// The node's transport: into the network's queue.
class Network::Wire final : public Transport {
 public:
  Wire(Network* net, uint64_t id) : net_(net), id_(id) {}
  void Send(Message m) override {
    net_->safety_->OnSend(m, net_->nodes_.at(id_).incarnation);
    net_->Enqueue(std::move(m));
  }

 private:
  Network* const net_;
  const uint64_t id_;
};

Network::Network(const std::vector<uint64_t>& ids,
                 const NetworkOptions& options)
    : ids_(ids), options_(options), prng_(options.seed) {
  safety_ = std::make_unique<SafetyChecker>(
      [this] { return ids_; },
      [this](uint64_t id) {
        SafetyChecker::NodeView v;
        auto it = nodes_.find(id);
        if (it == nodes_.end()) return v;
        if (!it->second.crashed) v.raft = &it->second.node->raw().raft();
        v.log = &it->second.store->mem;
        return v;
      },
      [this](const std::string& what) { Violation(what); });
  ConfState cs;
  cs.voters = ids;
  std::sort(cs.voters.begin(), cs.voters.end());
  for (uint64_t id : ids) {
    TestNode& n = nodes_[id];
    n.store = std::make_unique<MemoryLogStore>();
    n.store->mem.SetConfState(cs);
    n.store->on_submit = [this, id, &n](const LogWrite& w) {
      safety_->OnWrite(id, n.store->mem, w.entries);
    };
    n.wire = std::make_unique<Wire>(this, id);
  }
  for (uint64_t id : ids) Start(id);
}

Network::~Network() = default;

Config Network::MakeConfig(uint64_t id) {
  Config c;
  c.id = id;
  c.election_ticks = options_.election_ticks;
  c.heartbeat_ticks = options_.heartbeat_ticks;
  c.storage = nodes_.at(id).store.get();
  c.max_inflight_msgs = options_.max_inflight_msgs;
  c.max_size_per_msg = options_.max_size_per_msg;
  c.max_snapshot_chunk_bytes = options_.max_snapshot_chunk_bytes;
  c.snapshot_bytes_per_tick = options_.snapshot_bytes_per_tick;
  c.max_snapshot_chunks_in_flight = options_.max_snapshot_chunks_in_flight;
  c.check_quorum = options_.check_quorum;
  c.pre_vote = options_.pre_vote;
  c.seed = options_.seed * 1000003 + restarts_;
  if (options_.configure) options_.configure(c);
  return c;
}

void Network::Start(uint64_t id) {
  TestNode& n = nodes_.at(id);
  SnapshotSource* source = nullptr;
  SnapshotSink* sink = nullptr;
  if (auto it = options_.snapshot_sources.find(id);
      it != options_.snapshot_sources.end()) {
    source = it->second;
  }
  if (auto it = options_.snapshot_sinks.find(id);
      it != options_.snapshot_sinks.end()) {
    sink = it->second;
  }
  n.machine = std::make_unique<Machine>(this, id, source, sink);
  NodeOptions o;
  o.raft = MakeConfig(id);
  o.log_store = n.store.get();
  o.transport = n.wire.get();
  o.state_machine = n.machine.get();
  if (options_.configure_node) options_.configure_node(o);
  NodeObserver observer;
  observer.on_soft_state = [this, id](const SoftState& ss) {
    if (ss.state == StateType::kLeader) safety_->OnBecameLeader(id);
  };
  observer.on_read = [&n](const ReadState& rs) { n.read_states.push_back(rs); };
  observer.on_fatal = [this, id](const absl::Status& s) {
    Violation(absl::StrCat("node ", id, " stopped: ", s.message()));
  };
  n.node = std::make_unique<Node>(o, std::move(observer));
}

void Network::OnApply(uint64_t id, const Entry& e) {
  TestNode& n = nodes_.at(id);
  if (e.index != n.applied_index + 1) {
    Violation(absl::StrFormat("node %d applied %d after %d", id, e.index,
                              n.applied_index));
  }
  n.applied_index = e.index;
  safety_->OnApply(id, e);
  if (e.type == EntryType::kNormal && !e.data.empty()) n.applied.push_back(e);
}

void Network::Tick(uint64_t id) {
  TestNode& n = nodes_.at(id);
  if (n.crashed) return;
  n.node->Tick();
  ProcessReadies();
}

void Network::TickAll() {
  for (uint64_t id : ids_) {
    if (!nodes_.at(id).crashed) nodes_.at(id).node->Tick();
  }
  ProcessReadies();
}

void Network::ProcessReadies() {
  // The log stores complete at once, so a Pump runs every Ready it can.
  for (uint64_t id : ids_) {
    TestNode& n = nodes_.at(id);
    if (n.crashed) continue;
    n.node->Pump();
    n.node->CheckInvariants();
    n.node->raw().raft().CheckInvariants();
  }
  CheckSafety();
}

void Network::Violation(std::string what) {
  if (violation_.empty()) violation_ = std::move(what);
}

void Network::Enqueue(Message m) {
  sent_.push_back(m);
  if (options_.drop_probability > 0 &&
      prng_.Chance(options_.drop_probability)) {
    return;
  }
  if (options_.duplicate_probability > 0 &&
      prng_.Chance(options_.duplicate_probability)) {
    queue_.push_back(m);
  }
  queue_.push_back(std::move(m));
}

void Network::Inject(Message m) { queue_.push_back(std::move(m)); }

bool Network::DeliverOne() {
  if (queue_.empty()) return false;
  size_t i = 0;
  if (options_.reorder) i = prng_.Uniform(queue_.size());
  Message m = std::move(queue_[i]);
  queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
  if (cut_.count({m.from, m.to}) > 0) return true;
  auto it = nodes_.find(m.to);
  if (it == nodes_.end() || it->second.crashed) return true;
  if (filter_ && !filter_(m)) return true;
  ++delivered_;
  const absl::Status stepped = it->second.node->raw().Step(std::move(m));
  // An honest cluster never sends what the boundary refuses as invalid.
  if (absl::IsInvalidArgument(stepped)) {
    Violation(
        absl::StrCat("an honest message was refused: ", stepped.message()));
  }
  ProcessReadies();
  return true;
}

size_t Network::Stabilize(size_t max_messages) {
  size_t n = 0;
  while (n < max_messages && DeliverOne()) ++n;
  return n;
}

void Network::Cut(uint64_t a, uint64_t b) {
  cut_.insert({a, b});
  cut_.insert({b, a});
}

void Network::Isolate(uint64_t id) {
  for (uint64_t other : ids_) {
    if (other != id) Cut(id, other);
  }
}

void Network::Crash(uint64_t id) {
  TestNode& n = nodes_.at(id);
  n.crashed = true;
  n.node.reset();
  n.machine.reset();
  n.read_states.clear();
}

void Network::Restart(uint64_t id) {
  TestNode& n = nodes_.at(id);
  CHECK(n.crashed);
  ++restarts_;
  ++n.incarnation;
  // The state machine is volatile: it restarts empty, restores the log
  // store's snapshot and replays the log after it.
  n.applied.clear();
  n.applied_index = 0;
  n.crashed = false;
  Start(id);
}

uint64_t Network::Leader() const {
  uint64_t best = kNone;
  uint64_t best_term = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.crashed) continue;
    const Raft& r = n.node->raw().raft();
    if (r.state() == StateType::kLeader && r.term() >= best_term) {
      best = id;
      best_term = r.term();
    }
  }
  return best;
}

absl::Status Network::Propose(uint64_t id, std::string data) {
  absl::Status s = nodes_.at(id).node->Propose(std::move(data));
  ProcessReadies();
  return s;
}

void Network::CheckSafety() {
  for (uint64_t id : ids_) safety_->AfterEvent(id);
}

}  // namespace raftsql::core::testing
