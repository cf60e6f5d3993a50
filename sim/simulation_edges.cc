// The cluster as the simulated edges see it (HubCluster): node liveness,
// writes forwarded to the leader and answered when applied there, local
// reads.
#include "sim/simulation.h"
#include "sim/simulation_internal.h"

namespace raftsql::sim {

uint64_t Simulation::NodeIncarnation(uint64_t node) const {
  const Slot& s = *slots_[node - 1];
  return s.up ? s.incarnation : 0;
}

bool Simulation::IsLeader(uint64_t node) const {
  const Slot& s = *slots_[node - 1];
  return s.up && s.lead == s.id;
}

bool Simulation::InContactWithLeader(uint64_t node) const {
  const Slot& s = *slots_[node - 1];
  return s.up && s.node->raw().raft().InContactWithLeader();
}

void Simulation::RefuseEdgeWrite(WriteDone done, absl::Status why) {
  queue_.After(network_->Latency(), 0xed0fa,
               [done = std::move(done), why = std::move(why)] { done(why); });
}

void Simulation::Write(uint64_t node, sm::Command c, WriteDone done) {
  Slot& s = *slots_[node - 1];
  if (!s.up || queue_.now() < s.paused_until) return;  // Lost.
  if (s.lead == core::kNone) {
    return RefuseEdgeWrite(std::move(done),
                           absl::UnavailableError("no leader"));
  }
  if (s.lead == s.id) return ProposeEdgeWrite(s, node, std::move(c), done);
  // Forwarded to the leader this node knows.
  Slot* leader = slots_[s.lead - 1].get();
  queue_.After(network_->Latency(), 0xed0fb,
               [this, leader, node, c = std::move(c), done]() mutable {
                 ProposeEdgeWrite(*leader, node, std::move(c), done);
               });
}

void Simulation::ProposeEdgeWrite(Slot& s, uint64_t origin, sm::Command c,
                                  WriteDone done) {
  if (!s.up || queue_.now() < s.paused_until) return;  // Lost.
  if (s.lead != s.id) {
    return RefuseEdgeWrite(std::move(done),
                           absl::UnavailableError("not the leader"));
  }
  // The leader fixes the command's clock and seed (DESIGN.md §3).
  c.timestamp_ms = static_cast<int64_t>(queue_.now() / kMillisecond);
  c.random_seed = rng_.Next();
  c.request_id = next_request_id_++;
  const uint64_t id = c.request_id;
  const absl::Status st = s.node->Propose(c.Encode());
  AfterNodeEvent(s);
  if (!st.ok()) {
    return RefuseEdgeWrite(std::move(done),
                           absl::UnavailableError(st.message()));
  }
  // The answer travels back to the node the session is on.
  const bool local = origin == s.id;
  s.pending_edge[id] = [this, local, done = std::move(done)](
                           absl::StatusOr<sm::CommandResult> r) {
    queue_.After(local ? 0 : network_->Latency(), 0xed0fe,
                 [done, r = std::move(r)] { done(r); });
  };
}

absl::StatusOr<sm::QueryResult> Simulation::Read(uint64_t node,
                                                 const sm::Statement& st) {
  Slot& s = *slots_[node - 1];
  if (!s.up) return absl::UnavailableError("node down");
  return s.sm->Query(st);
}

bool Simulation::LeaderReady(uint64_t node) const {
  const Slot& s = *slots_[node - 1];
  if (!s.up || s.lead != s.id) return false;
  const core::Raft& raft = s.node->raw().raft();
  const uint64_t committed = raft.log().committed();
  absl::StatusOr<uint64_t> term = raft.log().Term(committed);
  return term.ok() && *term == raft.term() &&
         s.sm->machine().AppliedIndex() >= committed;
}

uint64_t Simulation::Applied(uint64_t node) const {
  const Slot& s = *slots_[node - 1];
  return s.up ? s.sm->machine().AppliedIndex() : 0;
}

uint64_t Simulation::Committed(uint64_t node) const {
  const Slot& s = *slots_[node - 1];
  return s.up ? s.node->raw().raft().log().committed() : 0;
}

bool Simulation::EdgesSettled() {
  if (edges_ == nullptr) return true;
  if (queue_.now() < next_edge_check_) return false;
  next_edge_check_ = queue_.now() + 100 * kMillisecond;
  const Slot* leader = CurrentLeader();
  return leader != nullptr && edges_->Settled(leader->id);
}

}  // namespace raftsql::sim
