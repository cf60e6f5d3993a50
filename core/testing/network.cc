#include "core/testing/network.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"

namespace raftsql::core::testing {

Network::Network(const std::vector<uint64_t>& ids,
                 const NetworkOptions& options)
    : ids_(ids), options_(options), prng_(options.seed) {
  safety_ = std::make_unique<SafetyChecker>(
      [this] { return ids_; },
      [this](uint64_t id) {
        SafetyChecker::NodeView v;
        auto it = nodes_.find(id);
        if (it == nodes_.end()) return v;
        if (!it->second.crashed) v.raft = &it->second.raw->raft();
        v.log = it->second.storage.get();
        return v;
      },
      [this](const std::string& what) { Violation(what); });
  ConfState cs;
  cs.voters = ids;
  std::sort(cs.voters.begin(), cs.voters.end());
  for (uint64_t id : ids) {
    TestNode& n = nodes_[id];
    n.storage = std::make_unique<MemoryStorage>();
    n.storage->SetConfState(cs);
    n.raw = std::make_unique<RawNode>(MakeConfig(id, 0));
  }
}

Config Network::MakeConfig(uint64_t id, uint64_t applied) {
  Config c;
  c.id = id;
  c.election_ticks = options_.election_ticks;
  c.heartbeat_ticks = options_.heartbeat_ticks;
  c.storage = nodes_.at(id).storage.get();
  c.applied = applied;
  c.max_inflight_msgs = options_.max_inflight_msgs;
  c.max_size_per_msg = options_.max_size_per_msg;
  c.max_snapshot_chunk_bytes = options_.max_snapshot_chunk_bytes;
  c.snapshot_bytes_per_tick = options_.snapshot_bytes_per_tick;
  c.max_snapshot_chunks_in_flight = options_.max_snapshot_chunks_in_flight;
  if (auto it = options_.snapshot_sources.find(id);
      it != options_.snapshot_sources.end()) {
    c.snapshot_source = it->second;
  }
  if (auto it = options_.snapshot_sinks.find(id);
      it != options_.snapshot_sinks.end()) {
    c.snapshot_sink = it->second;
  }
  c.check_quorum = options_.check_quorum;
  c.pre_vote = options_.pre_vote;
  c.seed = options_.seed * 1000003 + restarts_;
  if (options_.configure) options_.configure(c);
  return c;
}

void Network::Tick(uint64_t id) {
  TestNode& n = nodes_.at(id);
  if (n.crashed) return;
  n.raw->Tick();
  ProcessReadies();
}

void Network::TickAll() {
  for (uint64_t id : ids_) {
    if (!nodes_.at(id).crashed) nodes_.at(id).raw->Tick();
  }
  ProcessReadies();
}

void Network::ProcessReadies() {
  // Readies can produce more work for the same node (e.g. a single-node
  // commit), so loop until quiet.
  for (int round = 0; round < 100; ++round) {
    bool any = false;
    for (uint64_t id : ids_) {
      TestNode& n = nodes_.at(id);
      if (n.crashed || !n.raw->HasReady()) continue;
      any = true;
      HandleReady(id, n);
    }
    CheckSafety();
    if (!any) return;
  }
  CHECK(false);  // Readies that never settle.
}

void Network::HandleReady(uint64_t id, TestNode& n) {
  Ready rd = n.raw->GetReady();
  // 1. Persist.
  if (rd.snapshot.has_value())
    CHECK(n.storage->ApplySnapshot(*rd.snapshot).ok());
  safety_->OnWrite(id, *n.storage, rd.entries);
  n.storage->Append(rd.entries);
  if (rd.hard_state.has_value()) n.storage->SetHardState(*rd.hard_state);
  if (rd.soft_state.has_value() && rd.soft_state->state == StateType::kLeader) {
    safety_->OnBecameLeader(id);
  }
  // 2. Send.
  for (Message& m : rd.messages) {
    safety_->OnSend(m, n.incarnation);
    Enqueue(std::move(m));
  }
  // 3. Apply.
  if (rd.snapshot.has_value()) {
    n.applied_index = rd.snapshot->metadata.index;
  }
  for (const Entry& e : rd.committed_entries) {
    if (e.index != n.applied_index + 1) {
      Violation(absl::StrFormat("node %d applied %d after %d", id, e.index,
                                n.applied_index));
    }
    n.applied_index = e.index;
    safety_->OnApply(id, e);
    if (e.type == EntryType::kConfChange) {
      std::optional<ConfChange> cc = ConfChange::Decode(e.data);
      CHECK(cc.has_value());
      n.storage->SetConfState(n.raw->ApplyConfChange(*cc));
    } else if (!e.data.empty()) {
      n.applied.push_back(e);
    }
  }
  // 4. Reads.
  for (ReadState& rs : rd.read_states) n.read_states.push_back(std::move(rs));
  n.raw->Advance();
  n.raw->raft().CheckInvariants();
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
  const absl::Status stepped = it->second.raw->Step(std::move(m));
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
  n.raw.reset();
  n.read_states.clear();
}

void Network::Restart(uint64_t id) {
  TestNode& n = nodes_.at(id);
  CHECK(n.crashed);
  ++restarts_;
  ++n.incarnation;
  // The state machine here is volatile: it replays from the log (applied 0
  // relative to the snapshot), so forget what it applied.
  n.applied.clear();
  n.applied_index = n.storage->FirstIndex() - 1;
  n.raw = std::make_unique<RawNode>(MakeConfig(id, 0));
  n.crashed = false;
}

uint64_t Network::Leader() const {
  uint64_t best = kNone;
  uint64_t best_term = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.crashed) continue;
    const Raft& r = n.raw->raft();
    if (r.state() == StateType::kLeader && r.term() >= best_term) {
      best = id;
      best_term = r.term();
    }
  }
  return best;
}

absl::Status Network::Propose(uint64_t id, std::string data) {
  absl::Status s = nodes_.at(id).raw->Propose(std::move(data));
  ProcessReadies();
  return s;
}

void Network::CheckSafety() {
  for (uint64_t id : ids_) safety_->AfterEvent(id);
}

}  // namespace raftsql::core::testing
