// The hub's side of the simulated edges: device sessions on the hub's nodes
// (what server/edge_service does over gRPC: the same messages through
// edge/hub_proto, the same edge/hub_sql commands through Raft), the
// leader's expiry sweep, and an operator issuing commands and desired
// twins through any node.
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

void EdgeWorld::TimedWrite(uint64_t node, sm::Command c,
                           HubCluster::WriteDone done) {
  auto answered = std::make_shared<bool>(false);
  auto once = std::make_shared<HubCluster::WriteDone>(std::move(done));
  hub_->Write(node, std::move(c),
              [answered, once](absl::StatusOr<sm::CommandResult> r) {
                if (*answered) return;
                *answered = true;
                (*once)(std::move(r));
              });
  queue_->After(kWriteTimeout, 0xedd1, [answered, once] {
    if (*answered) return;
    *answered = true;
    (*once)(absl::DeadlineExceededError("the write took too long"));
  });
}

void EdgeWorld::HubWrite(uint64_t session, sm::Command c,
                         HubCluster::WriteDone done) {
  Session* s = Live(session);
  if (s == nullptr) return;
  TimedWrite(s->node, std::move(c),
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
  if (s.welcomed) {
    // Best effort, as the server's: the device shows disconnected.
    TimedWrite(s.node,
               edge::GoodbyeCommand(s.device, s.name, Ms(queue_->now())),
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
    s->name = absl::StrCat(node, "-", incarnation, "-", session);
    sessions_[session] = std::move(s);
    return OnHello(session, up.hello().incarnation());
  }
  Session* s = Live(session);
  if (s == nullptr || !s->welcomed) return;
  const int64_t now = Ms(queue_->now());
  switch (up.kind_case()) {
    case pb::EdgeUp::kUpload: {
      const uint64_t batch = up.upload().batch();
      if (up.upload().readings_size() > 0) {
        hub_->Trace(absl::StrFormat(
            "n%d: %s uploads %d-%d", s->node, s->device,
            up.upload().readings(0).sequence(),
            up.upload().readings(up.upload().readings_size() - 1).sequence()));
      }
      absl::StatusOr<edge::Upload> u = edge::UploadOf(up.upload());
      if (!u.ok())
        return HubSend(*s, edge::AckOf(batch, u.status()).SerializeAsString());
      return HubWrite(
          session, edge::UploadCommand(s->device, s->stream, *u, now),
          [this, session, batch](absl::StatusOr<sm::CommandResult> r) {
            absl::StatusOr<edge::StreamAck> acked = edge::AckOfResult(r);
            if (!acked.ok()) {
              hub_->Trace(
                  absl::StrCat("upload refused: ", acked.status().ToString()));
            }
            HubSend(*Live(session),
                    edge::AckOf(batch, acked.ok() ? absl::StatusOr<uint64_t>(
                                                        acked->acked)
                                                  : acked.status())
                        .SerializeAsString());
          });
    }
    case pb::EdgeUp::kOutcome: {
      absl::StatusOr<edge::CommandStatus> result =
          edge::OutcomeOf(up.outcome());
      if (!result.ok())
        return HubEnd(*s, std::string(result.status().message()));
      return HubWrite(session,
                      edge::OutcomeCommand(s->device, up.outcome().id(),
                                           *result, up.outcome().detail(), now),
                      [](absl::StatusOr<sm::CommandResult>) {});
    }
    case pb::EdgeUp::kTwin: {
      if (absl::Status v = edge::ValidateTwinReport(up.twin()); !v.ok()) {
        return HubEnd(*s, std::string(v.message()));
      }
      // Not stored: the session ends, and the edge reports again in its
      // next one (the server's edge service does the same).
      hub_->Trace(absl::StrFormat("n%d: %s reports its twin at desired v%d",
                                  s->node, s->device,
                                  up.twin().desired_version()));
      return HubWrite(
          session,
          edge::ReportTwinCommand(s->device, up.twin().reported_json(),
                                  up.twin().desired_version(), now),
          [this, session](absl::StatusOr<sm::CommandResult> r) {
            if (absl::Status f = edge::FailureOf(r); !f.ok()) {
              HubEnd(*Live(session),
                     absl::StrCat("its twin report was not stored: ",
                                  f.message()));
            }
          });
    }
    default:
      return HubEnd(*s, "a second Hello or an empty message");
  }
}

void EdgeWorld::OnHello(uint64_t session, std::string incarnation) {
  Session* s = Live(session);
  if (s == nullptr) return;
  if (absl::Status v = edge::ValidateName("incarnation", incarnation,
                                          edge::kMaxIncarnationBytes);
      !v.ok()) {
    return HubEnd(*s, std::string(v.message()));
  }
  s->incarnation = std::move(incarnation);
  if (schema_ready_[s->node] != s->node_incarnation) {
    // Once per node process, as the server's.
    return HubWrite(session, edge::SchemaCommand(),
                    [this, session](absl::StatusOr<sm::CommandResult> r) {
                      Session* s = Live(session);
                      if (absl::Status f = edge::FailureOf(r); !f.ok()) {
                        return HubEnd(*s, std::string(f.message()));
                      }
                      schema_ready_[s->node] = s->node_incarnation;
                      OnHello(session, s->incarnation);
                    });
  }
  HubWrite(session,
           edge::HelloCommand(s->device, s->incarnation, s->name, s->node,
                              Ms(queue_->now())),
           [this, session](absl::StatusOr<sm::CommandResult> r) {
             Session* s = Live(session);
             absl::StatusOr<edge::StreamAck> acked = edge::AckOfResult(r);
             if (!acked.ok()) {
               return HubEnd(*s, std::string(acked.status().message()));
             }
             s->stream = acked->stream;
             s->welcomed = true;
             pb::EdgeDown down;
             down.mutable_welcome()->set_acked_sequence(acked->acked);
             down.mutable_welcome()->set_node(s->node);
             HubSend(*s, down.SerializeAsString());
             LookForCommands(session);
             SendDesired(session);
           });
}

void EdgeWorld::LookForCommands(uint64_t session) {
  Session* s = Live(session);
  if (s == nullptr || !s->welcomed || s->looking) return;
  absl::StatusOr<sm::QueryResult> q =
      hub_->Read(s->node, edge::OpenCommandsQuery(s->device, /*limit=*/64));
  if (!q.ok()) return;
  std::vector<std::string> due;
  const int64_t now = Ms(queue_->now());
  for (const edge::HubCommand& c : edge::CommandsOf(*q)) {
    if (edge::DueForDelivery(c, now, options_.lock_ms)) due.push_back(c.id);
  }
  s->looking = true;
  DeliverNext(session, std::move(due), 0);
}

void EdgeWorld::DeliverNext(uint64_t session, std::vector<std::string> ids,
                            size_t i) {
  Session* s = Live(session);
  if (s == nullptr) return;
  if (i >= ids.size()) {
    s->looking = false;
    return;
  }
  const std::string id = ids[i];
  HubWrite(session,
           edge::DeliverCommand(s->device, s->incarnation, id,
                                Ms(queue_->now()), options_.lock_ms),
           [this, session, ids = std::move(ids),
            i](absl::StatusOr<sm::CommandResult> r) mutable {
             for (const pb::EdgeDown& down : edge::MarkedCommands(r)) {
               HubSend(*Live(session), down.SerializeAsString());
             }
             DeliverNext(session, std::move(ids), i + 1);
           });
}

void EdgeWorld::SendDesired(uint64_t session) {
  Session* s = Live(session);
  if (s == nullptr || !s->welcomed) return;
  std::optional<pb::EdgeDown> down =
      edge::DesiredOf(hub_->Read(s->node, edge::DesiredQuery(s->device)));
  if (!down.has_value() || down->desired().version() <= s->desired_sent) {
    return;
  }
  s->desired_sent = down->desired().version();
  HubSend(*s, down->SerializeAsString());
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
        n,
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
    LookForCommands(id);
    SendDesired(id);
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
    TimedWrite(leader,
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
        TimedWrite(leader, edge::RetentionCommand(r, Ms(queue_->now())),
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
    const std::string patch =
        absl::StrCat("{\"sample_ms\":", rng_.Range(50, 400), "}");
    const uint64_t node = 1 + rng_.Uniform(hub_->nodes());
    TimedWrite(node,
               edge::SetDesiredCommand(e.device, patch, Ms(queue_->now())),
               [](absl::StatusOr<sm::CommandResult>) {});
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
  TimedWrite(node, edge::IssueCommand(it->second, Ms(queue_->now())),
             [this, n, tries, node, id](absl::StatusOr<sm::CommandResult> r) {
               absl::Status f = edge::FailureOf(r);
               if (f.ok()) {
                 // It exists: the checker reads it from the hub.
                 if (must_complete_.erase(id) > 0) must_run_.insert(id);
                 return;
               }
               if (edge::IsMissingSchema(f)) {
                 TimedWrite(node, edge::SchemaCommand(),
                            [](absl::StatusOr<sm::CommandResult>) {});
               }
               // The same id again: issuing it twice changes nothing.
               // Those issued after healing until they are in.
               if (tries < 5 || must_complete_.count(id) > 0) {
                 queue_->After(300 * kMillisecond, 0xed155,
                               [this, n, tries] { Issue(n, tries + 1); });
               }
             });
}

}  // namespace raftsql::sim
