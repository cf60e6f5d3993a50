// The hub's side of the simulated edges: device sessions on the hub's nodes
// (edge/hub_session, the server's session logic, driven over the simulated
// network), the leader's expiry sweep, and an operator issuing commands
// and desired twins through any node.
#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "edge/hub_proto.h"
#include "edge/hub_sql.h"
#include "sim/edge_world.h"
#include "sim/edge_world_internal.h"

namespace raftsql::sim {

namespace pb = ::raftsql::edge::v1;

EdgeWorld::Session* EdgeWorld::Live(uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return nullptr;
  Session& s = *it->second;
  if (s.ended || hub_->NodeIncarnation(s.node) != s.node_incarnation) {
    return nullptr;
  }
  return &s;
}

void TimedWrite(EventQueue* queue, HubCluster* hub, uint64_t node,
                sm::Command c, HubCluster::WriteDone done) {
  auto answered = std::make_shared<bool>(false);
  auto once = std::make_shared<HubCluster::WriteDone>(std::move(done));
  hub->Write(node, std::move(c),
             [answered, once](absl::StatusOr<sm::CommandResult> r) {
               if (*answered) return;
               *answered = true;
               (*once)(std::move(r));
             });
  queue->After(kWriteTimeout, 0xedd1, [answered, once] {
    if (*answered) return;
    *answered = true;
    (*once)(absl::DeadlineExceededError("the write took too long"));
  });
}

void EdgeWorld::HubWrite(uint64_t session, sm::Command c,
                         HubCluster::WriteDone done) {
  Session* s = Live(session);
  if (s == nullptr) return;
  TimedWrite(queue_, hub_, s->node, std::move(c),
             [this, session,
              done = std::move(done)](absl::StatusOr<sm::CommandResult> r) {
               if (Live(session) != nullptr) done(std::move(r));
             });
}

void EdgeWorld::HubSend(Session& s, std::string bytes) {
  const uint64_t session = s.id;
  const int edge = s.edge;
  const uint64_t node = s.node;
  queue_->At(InOrder(&s.down_at), 0xed0d,
             [this, session, edge, node, bytes = std::move(bytes)] {
               if (cut_.count({edge, node}) > 0) return;
               Deliver(*edges_[edge - 1], session, bytes);
             });
}

void EdgeWorld::HubEnd(Session& s, const std::string& why) {
  if (s.ended) return;
  s.ended = true;
  s.core->End(absl::UnavailableError(why));
  if (std::optional<sm::Command> bye = s.core->Goodbye(Ms(queue_->now()))) {
    // Best effort, as the server's: the device shows disconnected.
    TimedWrite(queue_, hub_, s.node, std::move(*bye),
               [](absl::StatusOr<sm::CommandResult>) {});
  }
  hub_->Trace(
      absl::StrFormat("n%d ends %s's session: %s", s.node, s.device, why));
  // The edge sees its stream end.
  const uint64_t session = s.id;
  const int edge = s.edge;
  queue_->At(InOrder(&s.down_at), 0xed0e, [this, session, edge] {
    Edge& e = *edges_[edge - 1];
    if (e.up && e.session == session) {
      EndSession(e, "the hub ended the session");
    }
  });
}

void EdgeWorld::HubReceive(Edge& e, uint64_t session,
                           const std::string& bytes) {
  pb::EdgeUp up;
  CHECK(up.ParseFromString(bytes));
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    // A connection opens with its Hello (unless the edge gave up on it).
    if (up.kind_case() != pb::EdgeUp::kHello || e.session != session) return;
    const uint64_t node = e.node;
    const uint64_t incarnation = hub_->NodeIncarnation(node);
    if (incarnation == 0) return;  // Refused: nobody listens.
    auto s = std::make_unique<Session>();
    s->id = session;
    s->edge = e.index;
    s->node = node;
    s->node_incarnation = incarnation;
    s->device = e.device;
    edge::HubSessionOptions o;
    o.node = node;
    o.name = absl::StrCat(node, "-", incarnation, "-", session);
    o.command_lock_ms = options_.lock_ms;
    // Once per node process, as the server's.
    o.schema_known = [this, node, incarnation] {
      return schema_ready_[node] == incarnation;
    };
    s->core = std::make_unique<edge::HubSession>(std::move(o), e.device);
    sessions_[session] = std::move(s);
  }
  Session* s = Live(session);
  if (s == nullptr) return;
  if (up.kind_case() == pb::EdgeUp::kUpload &&
      up.upload().readings_size() > 0) {
    hub_->Trace(absl::StrFormat(
        "n%d: %s uploads %d-%d", s->node, s->device,
        up.upload().readings(0).sequence(),
        up.upload().readings(up.upload().readings_size() - 1).sequence()));
  } else if (up.kind_case() == pb::EdgeUp::kTwin) {
    hub_->Trace(absl::StrFormat("n%d: %s reports its twin at desired v%d",
                                s->node, s->device,
                                up.twin().desired_version()));
  }
  edge::HubEffects fx;
  s->core->OnMessage(up, Ms(queue_->now()), &fx);
  HubRun(session, std::move(fx));
}

void EdgeWorld::HubRun(uint64_t session, edge::HubEffects fx) {
  Session* s = Live(session);
  if (s == nullptr) return;
  for (const pb::EdgeDown& down : fx.sends) {
    HubSend(*s, down.SerializeAsString());
  }
  if (fx.schema_made) schema_ready_[s->node] = s->node_incarnation;
  if (fx.end.has_value()) return HubEnd(*s, std::string(fx.end->message()));
  for (edge::HubEffects::Write& w : fx.writes) {
    HubWrite(session, std::move(w.command),
             [this, session, op = w.op](absl::StatusOr<sm::CommandResult> r) {
               edge::HubEffects next;
               Live(session)->core->OnWritten(op, r, Ms(queue_->now()), &next);
               HubRun(session, std::move(next));
             });
  }
  for (const edge::HubEffects::Read& r : fx.reads) {
    // Reads are local and answered at once.
    absl::StatusOr<sm::QueryResult> q = hub_->Read(s->node, r.query);
    if (Live(session) == nullptr) return;
    edge::HubEffects next;
    Live(session)->core->OnRead(r.op, q, Ms(queue_->now()), &next);
    HubRun(session, std::move(next));
  }
}

void EdgeWorld::PollSessions() {
  // Sessions whose node restarted went with it.
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (Live(it->first) == nullptr) {
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  // A node out of touch with a leader for long ends its sessions (the
  // server's sweeper does the same): its devices go to another node.
  for (uint64_t n = 1; n <= hub_->nodes(); ++n) {
    if (hub_->InContactWithLeader(n)) {
      no_leader_since_.erase(n);
      continue;
    }
    const Time since = no_leader_since_.emplace(n, queue_->now()).first->second;
    if (queue_->now() - since < options_.no_leader_ms * kMillisecond) continue;
    for (auto& [id, s] : sessions_) {
      if (s->node == n && Live(id) != nullptr)
        HubEnd(*s, "it is out of touch with a leader");
    }
  }
  // Once per node process, as the server's sweeper: the devices an earlier
  // process served show disconnected.
  for (uint64_t n = 1; n <= hub_->nodes(); ++n) {
    const uint64_t inc = hub_->NodeIncarnation(n);
    if (inc == 0 || forgot_[n] == inc || !hub_->InContactWithLeader(n)) {
      continue;
    }
    forgot_[n] = inc;  // In flight; undone if it fails.
    TimedWrite(
        queue_, hub_, n,
        edge::ForgetSessionsCommand(n, absl::StrCat(n, "-", inc, "-"),
                                    Ms(queue_->now())),
        [this, n, inc](absl::StatusOr<sm::CommandResult> r) {
          const absl::Status f = edge::FailureOf(r);
          if (!f.ok() && !edge::IsMissingSchema(f) && forgot_[n] == inc) {
            forgot_[n] = 0;
          }
        });
  }
  std::vector<uint64_t> live;
  for (const auto& [id, s] : sessions_) live.push_back(id);
  for (uint64_t id : live) {
    if (Session* s = Live(id)) {
      edge::HubEffects fx;
      s->core->Poke(true, true, &fx);
      HubRun(id, std::move(fx));
    }
  }
  if (!settled_) {
    queue_->After(options_.poll_ms * kMillisecond, 0xed901,
                  [this] { PollSessions(); });
  }
}

// ---- The leader's sweep and the operator -----------------------------------

uint64_t EdgeWorld::Leader() const {
  for (uint64_t n = 1; n <= hub_->nodes(); ++n) {
    if (hub_->NodeIncarnation(n) != 0 && hub_->IsLeader(n)) return n;
  }
  return 0;
}

void EdgeWorld::Sweep() {
  if (settled_) return;
  if (const uint64_t leader = Leader(); leader != 0) {
    TimedWrite(queue_, hub_, leader,
               edge::ExpireCommand(Ms(queue_->now()), options_.lock_ms, 100),
               [](absl::StatusOr<sm::CommandResult>) {});
    if (options_.readings_max_per_device > 0) {
      // Retention, as the server's sweeper: the next few streams, each
      // device keeping its newest readings.
      absl::StatusOr<sm::QueryResult> q = hub_->Read(
          leader, edge::StreamsQuery(retention_cursor_, /*limit=*/4));
      edge::Retention r;
      for (const auto& row : q.ok() ? q->rows : decltype(q->rows){}) {
        r.streams.push_back(static_cast<uint64_t>(row[0].integer));
      }
      retention_cursor_ = r.streams.empty() ? 0 : r.streams.back();
      if (!r.streams.empty()) {
        r.per_stream = 50;
        r.before_ms = std::numeric_limits<int64_t>::min();
        r.max_per_device = options_.readings_max_per_device;
        TimedWrite(queue_, hub_, leader,
                   edge::RetentionCommand(r, Ms(queue_->now())),
                   [](absl::StatusOr<sm::CommandResult>) {});
      }
    }
  }
  queue_->After(options_.sweep_ms * kMillisecond, 0xed5e1, [this] { Sweep(); });
}

void EdgeWorld::Operate() {
  if (healed_) return;
  if (rng_.Chance(0.8)) {
    Issue(++commands_issued_, 0);
  } else {
    const Edge& e = *edges_[rng_.Uniform(edges_.size())];
    // Every setting the agent understands (one draw: the others follow).
    const int64_t r = static_cast<int64_t>(rng_.Range(50, 400));
    const std::string patch =
        absl::StrCat("{\"sample_ms\":", r, ",\"batch_ms\":", 20 + r % 281,
                     ",\"batch_max\":", 5 + r % 96, "}");
    const uint64_t node = 1 + rng_.Uniform(hub_->nodes());
    ++operator_writes_;
    TimedWrite(
        queue_, hub_, node,
        edge::SetDesiredCommand(e.device, patch, Ms(queue_->now())),
        [this](absl::StatusOr<sm::CommandResult>) { --operator_writes_; });
  }
  queue_->After(kMillisecond * rng_.Range(50, 600), 0xed0e1,
                [this] { Operate(); });
}

void EdgeWorld::Issue(uint64_t n, int tries) {
  const std::string id = absl::StrCat("c", n);
  auto it = issued_.find(id);
  if (it == issued_.end()) {
    edge::HubCommand c;
    c.id = id;
    c.device = edges_[rng_.Uniform(edges_.size())]->device;
    const uint64_t dice = rng_.Uniform(100);
    c.name = dice < 85 ? "set" : dice < 95 ? "fail" : "bogus";
    c.params_json = absl::StrCat("{\"cmd\":\"", id, "\",\"v\":", n, "}");
    c.expires_ms =
        Ms(queue_->now()) + static_cast<int64_t>(rng_.Range(1'000, 20'000));
    c.max_attempts = static_cast<uint32_t>(rng_.Range(1, 4));
    it = issued_.emplace(id, c).first;
  }
  const uint64_t node = 1 + rng_.Uniform(hub_->nodes());
  if (tries == 0) ++operator_writes_;  // Until its last try is answered.
  TimedWrite(queue_, hub_, node,
             edge::IssueCommand(it->second, Ms(queue_->now())),
             [this, n, tries, node, id](absl::StatusOr<sm::CommandResult> r) {
               absl::Status f = edge::FailureOf(r);
               if (f.ok()) {
                 // It exists: the checker reads it from the hub.
                 if (must_complete_.erase(id) > 0) must_run_.insert(id);
                 --operator_writes_;
                 return;
               }
               if (edge::IsMissingSchema(f)) {
                 TimedWrite(queue_, hub_, node, edge::SchemaCommand(),
                            [](absl::StatusOr<sm::CommandResult>) {});
               }
               // The same id again: issuing it twice changes nothing.
               // Those issued after healing until they are in.
               if (tries < 5 || must_complete_.count(id) > 0) {
                 queue_->After(300 * kMillisecond, 0xed155,
                               [this, n, tries] { Issue(n, tries + 1); });
               } else {
                 --operator_writes_;
               }
             });
}

}  // namespace raftsql::sim
