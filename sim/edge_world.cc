// The simulated edges and their sessions: the edge devices run the real
// AgentCore and EdgeStore (on a SimFs), the hub sessions speak the protocol
// through edge/hub_proto and write edge/hub_sql commands through Raft.
#include "sim/edge_world.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "edge/actuator.h"
#include "edge/agent_core.h"
#include "edge/edge_store.h"
#include "edge/hub_proto.h"
#include "edge/hub_sql.h"
#include "edge/sensors.h"
#include "sim/decision_world.h"
#include "sim/edge_world_internal.h"
#include "sim/sim_fs.h"

namespace raftsql::sim {

namespace pb = ::raftsql::edge::v1;

namespace {

// A simulated sensor that stops once the faults heal, so that every edge
// can drain.
class StoppableSource final : public edge::Source {
 public:
  StoppableSource(edge::SimulatedSensorOptions o, uint64_t seed,
                  const bool* stop)
      : sensor_(std::move(o), seed), stop_(stop) {}
  std::vector<edge::Reading> Poll(int64_t now_ms) override {
    if (*stop_) return {};
    return sensor_.Poll(now_ms);
  }
  bool Done() const override { return *stop_; }

 private:
  edge::SimulatedSensor sensor_;
  const bool* stop_;
};

bool IsUpload(const std::string& bytes) {
  pb::EdgeUp up;
  return up.ParseFromString(bytes) && up.kind_case() == pb::EdgeUp::kUpload;
}

// The simulated actuator, reporting every run (the physical effect the
// checkers count) with the command id the operator put in its parameters.
class CountingActuator final : public edge::Actuator {
 public:
  explicit CountingActuator(std::function<void(const std::string&)> on_run)
      : on_run_(std::move(on_run)) {}
  edge::Outcome Run(const std::string& name, const std::string& params_json,
                    sqlite3* db) override {
    const std::string key = "\"cmd\":\"";
    const size_t at = params_json.find(key);
    if (at != std::string::npos) {
      const size_t from = at + key.size();
      on_run_(params_json.substr(from, params_json.find('"', from) - from));
    }
    return inner_.Run(name, params_json, db);
  }

 private:
  edge::SimulatedActuator inner_;
  std::function<void(const std::string&)> on_run_;
};

}  // namespace

EdgeWorld::EdgeWorld(const EdgeWorldOptions& options, EventQueue* queue,
                     core::Prng rng, HubCluster* hub)
    : options_(options), queue_(queue), rng_(rng), hub_(hub) {
  for (int i = 1; i <= options.edges; ++i) {
    auto e = std::make_unique<Edge>();
    e->index = i;
    e->device = absl::StrCat("dev-", i);
    e->rng = rng_.Split();
    e->next_hub = rng_.Uniform(hub_->nodes());
    e->small_buffer = rng_.Chance(options.small_buffer_share);
    edges_.push_back(std::move(e));
  }
}

EdgeWorld::~EdgeWorld() = default;

void EdgeWorld::Start() {
  for (auto& e : edges_) Boot(*e);
  queue_->After(rng_.Uniform(500 * kMillisecond), 0xed0e1,
                [this] { Operate(); });
  queue_->After(options_.sweep_ms * kMillisecond, 0xed5e1, [this] { Sweep(); });
  queue_->After(options_.poll_ms * kMillisecond, 0xed901,
                [this] { PollSessions(); });
}

// ---- Edges ----------------------------------------------------------------

void EdgeWorld::Boot(Edge& e) {
  if (e.fs == nullptr) {
    e.fs = std::make_unique<SimFs>(NextSimFsId());
    e.fs->set_lie_about_sync(options_.broken_fsync);
  }
  edge::StoreOptions so;
  so.path = e.fs->Path("edge.db");
  so.vfs = SimFsVfsName();
  so.rename = SimFsRename;  // A store SQLite cannot read is moved aside.
  if (e.small_buffer) {
    // About 30 readings: full within seconds while the hub is away.
    so.max_bytes = 30 * edge::ReadingBytes(edge::Reading{"temp", 0, "C", 0, 0});
    so.policy = edge::FullPolicy::kDropOldest;
  }
  // A new file is a new incarnation; its id is drawn per process start (a
  // crash may lose a file not yet synced, and its id with it).
  so.incarnation_seed = options_.seed * 7919 +
                        static_cast<uint64_t>(e.index) * 104729 + e.boot * 31 +
                        1;
  absl::StatusOr<std::unique_ptr<edge::EdgeStore>> store =
      edge::EdgeStore::Open(so);
  if (!store.ok()) {
    hub_->Violation(absl::StrCat(
        e.device, "'s store does not open: ", store.status().message()));
    return;
  }
  e.store = std::move(*store);
  // The ledger holds what the store made durable (Record): a crash may
  // take what was not, never what was. A crash before even the new file
  // was durable takes its incarnation with it.
  const std::string& inc = e.store->incarnation();
  const bool changed = !e.incarnation.empty() && e.incarnation != inc;
  if (changed && wiped_.count(e.incarnation) == 0) {
    auto first = produced_.lower_bound({e.incarnation, 0});
    if (first != produced_.end() && first->first.first == e.incarnation) {
      hub_->Violation(absl::StrFormat(
          "edges: %s's store lost incarnation %s, durable up to %d", e.device,
          e.incarnation, e.recorded));
    }
    ++hub_->Fault("edge store lost in a crash before it was durable");
    wiped_.insert(e.incarnation);
  }
  if (changed) {
    e.recorded = 0;
    e.dropped_upto = 0;
    e.hub_acked = 0;
  }
  // Sequences past the store's last were lost with the crash and go to new
  // readings: what MarkDropped saw of the lost ones says nothing of those.
  e.dropped_upto = std::min(e.dropped_upto, e.store->last_sequence());
  if (!changed && e.store->last_sequence() < e.recorded) {
    hub_->Violation(absl::StrFormat(
        "edges: %s's store came back at sequence %d, durable up to %d",
        e.device, e.store->last_sequence(), e.recorded));
  }
  e.incarnation = inc;
  Edge* ep = &e;
  e.actuator =
      std::make_unique<CountingActuator>([this, ep](const std::string& id) {
        runs_[id].push_back(Run{ep->index, queue_->now()});
        hub_->Trace(absl::StrCat(ep->device, " runs command ", id));
      });
  std::vector<std::unique_ptr<edge::Source>> sources;
  edge::SimulatedSensorOptions sensor;
  sensor.period_ms = static_cast<int64_t>(e.rng.Range(50, 400));
  sensor.dropout_chance = 0.01;
  sensor.spike_chance = 0.01;
  if (options_.decisions != nullptr) {
    sources.push_back(options_.decisions->Sensor(e.index, &healed_));
  } else {
    sources.push_back(std::make_unique<StoppableSource>(
        sensor, options_.seed * 131 + e.index * 17 + e.boot, &healed_));
  }
  edge::AgentCoreOptions co;
  co.batch_max = e.rng.Range(5, 100);
  co.batch_ms = static_cast<int64_t>(e.rng.Range(20, 300));
  co.window = e.rng.Range(1, 4);
  co.sample_ms = 100;
  co.backoff_min_ms = 50;
  co.backoff_max_ms = 2000;
  co.seed = e.rng.Next();
  e.core = std::make_unique<edge::AgentCore>(
      co, e.store.get(), std::move(sources), e.actuator.get());
  e.up = true;
  ++e.boot;
  hub_->Trace(absl::StrFormat("%s boots (%s, last sequence %d, backlog %d)",
                              e.device, inc, e.store->last_sequence(),
                              e.store->backlog()));
  const uint64_t boot = e.boot;
  queue_->After(1, 0xed700 + e.index, [this, ep, boot] { Tick(*ep, boot); });
  Connect(e);
}

void EdgeWorld::Crash(Edge& e, bool wipe) {
  if (!e.up) return;
  const std::string inc = e.store->incarnation();
  // The process dies: nothing more reaches its disk.
  e.fs->Freeze();
  if (Session* s = Live(e.session)) {
    // Its hub session breaks when the connection does.
    const uint64_t id = s->id;
    queue_->After(kMillisecond * e.rng.Range(1, 1000), 0xedc1, [this, id] {
      if (Session* s = Live(id)) HubEnd(*s, "the edge went away");
    });
  }
  e.core.reset();
  e.store.reset();
  e.actuator.reset();
  e.up = false;
  e.session = 0;
  e.welcomed = false;
  const size_t lost = e.fs->Crash(e.rng);
  if (wipe) {
    e.fs.reset();
    wiped_.insert(inc);
  }
  hub_->Trace(absl::StrFormat("%s %s: %d unsynced writes lost", e.device,
                              wipe ? "crashes and loses its disk" : "crashes",
                              lost));
  Edge* ep = &e;
  queue_->After(kMillisecond * e.rng.Range(100, 3000), 0xedb0 + e.index,
                [this, ep] {
                  if (!ep->up) Boot(*ep);
                });
}

void EdgeWorld::Tick(Edge& e, uint64_t boot) {
  if (!e.up || e.boot != boot) return;
  const int64_t now = Ms(queue_->now());
  e.core->Sample(now);
  MarkDropped(e);
  if (e.session != 0) {
    // A welcomed session breaks with its hub node (the hub session went
    // with it); a Hello unanswered for long is given up.
    const bool gone = e.welcomed ? Live(e.session) == nullptr
                                 : queue_->now() > e.connect_at + 2 * kSecond;
    if (gone || cut_.count({e.index, e.node}) > 0) {
      EndSession(e, e.welcomed ? "its hub node went away" : "no welcome");
    }
  }
  if (e.welcomed) Pump(e);
  Edge* ep = &e;
  queue_->After(kMillisecond * std::max<int64_t>(e.core->WakeEveryMs(), 20),
                0xed700 + e.index, [this, ep, boot] { Tick(*ep, boot); });
}

void EdgeWorld::MarkDropped(Edge& e) {
  // Below the store's oldest and above what the hub acknowledged: dropped
  // (the hub may hold some of them still, if its ack was on the way).
  const std::string& inc = e.store->incarnation();
  const uint64_t from = std::max(e.hub_acked, e.dropped_upto) + 1;
  const uint64_t below = e.store->oldest();
  if (below <= from) return;
  for (auto it = produced_.lower_bound({inc, from});
       it != produced_.end() && it->first.first == inc &&
       it->first.second < below;
       ++it) {
    dropped_.insert(it->first);
  }
  hub_->Trace(
      absl::StrFormat("%s dropped %d-%d for room", e.device, from, below - 1));
  e.dropped_upto = below - 1;
}

void EdgeWorld::Record(Edge& e) {
  // Only what survives a power cut: what was not durable may be lost, and
  // its sequence given to another reading.
  const uint64_t durable = e.store->durable_sequence();
  if (durable <= e.recorded) return;
  const std::string& inc = e.store->incarnation();
  sqlite3_stmt* q = nullptr;
  CHECK_EQ(sqlite3_prepare_v2(e.store->db(),
                              "SELECT seq, value, device_time_ms FROM "
                              "readings WHERE seq > ?1 AND seq <= ?2 "
                              "ORDER BY seq",
                              -1, &q, nullptr),
           SQLITE_OK);
  sqlite3_bind_int64(q, 1, static_cast<int64_t>(e.recorded));
  sqlite3_bind_int64(q, 2, static_cast<int64_t>(durable));
  while (sqlite3_step(q) == SQLITE_ROW) {
    const uint64_t seq = static_cast<uint64_t>(sqlite3_column_int64(q, 0));
    produced_[{inc, seq}] =
        Produced{sqlite3_column_double(q, 1), sqlite3_column_int64(q, 2)};
  }
  sqlite3_finalize(q);
  e.recorded = durable;
}

void EdgeWorld::Connect(Edge& e) {
  if (!e.up || e.session != 0) return;
  e.session = next_session_++;
  e.node = 1 + (e.next_hub++ % hub_->nodes());
  e.welcomed = false;
  e.connect_at = queue_->now();
  e.up_at = 0;
  SendUp(e, e.core->Hello().SerializeAsString());
}

void EdgeWorld::EndSession(Edge& e, const char* why) {
  if (e.session == 0) return;
  if (Session* s = Live(e.session)) HubEnd(*s, "the edge ended it");
  hub_->Trace(absl::StrFormat("%s leaves its session with n%d: %s", e.device,
                              e.node, why));
  const int64_t wait = e.core->SessionEnded(e.welcomed);
  e.session = 0;
  e.welcomed = false;
  Edge* ep = &e;
  const uint64_t boot = e.boot;
  queue_->After(kMillisecond * wait + 1, 0xedc0 + e.index, [this, ep, boot] {
    if (ep->up && ep->boot == boot) Connect(*ep);
  });
}

void EdgeWorld::Pump(Edge& e) {
  edge::AgentCore::Out out;
  if (!e.core->Flush(Ms(queue_->now()), &out)) {
    hub_->Violation(absl::StrCat(e.device, "'s store failed"));
  }
  for (const pb::EdgeUp& up : out) SendUp(e, up.SerializeAsString());
  Record(e);
}

Time EdgeWorld::InOrder(Time* last) {
  *last = std::max(queue_->now() + hub_->Latency(), *last + 1);
  return *last;
}

void EdgeWorld::SendUp(Edge& e, std::string bytes) {
  const uint64_t session = e.session;
  const int edge = e.index;
  const uint64_t node = e.node;
  // The scenario's labelled duplicates: an upload arrives twice.
  const int copies =
      options_.decisions != nullptr &&
              options_.decisions->DuplicateUploads(edge, Ms(queue_->now())) &&
              IsUpload(bytes)
          ? 2
          : 1;
  for (int i = 0; i < copies; ++i) {
    queue_->At(InOrder(&e.up_at), 0xed0b, [this, edge, session, node, bytes] {
      // The stream broke on the way.
      if (cut_.count({edge, node}) > 0) return;
      HubReceive(*edges_[edge - 1], session, bytes);
    });
  }
  if (copies > 1) ++hub_->Fault("edge: upload duplicated");
}

void EdgeWorld::Deliver(Edge& e, uint64_t session, const std::string& bytes) {
  if (!e.up || e.session != session) return;
  pb::EdgeDown down;
  CHECK(down.ParseFromString(bytes));
  const int64_t now = Ms(queue_->now());
  edge::AgentCore::Out out;
  if (down.kind_case() == pb::EdgeDown::kWelcome) {
    e.welcomed = true;
    e.core->Welcomed(down.welcome().acked_sequence(), &out);
    hub_->Trace(absl::StrFormat("%s welcomed by n%d, acked %d", e.device,
                                e.node, down.welcome().acked_sequence()));
  } else if (e.welcomed) {
    e.core->OnMessage(down, now, &out);
  }
  e.hub_acked = std::max(e.hub_acked, e.core->stats().acked);
  for (const pb::EdgeUp& up : out) SendUp(e, up.SerializeAsString());
  if (e.core->GiveUp()) return EndSession(e, "its node keeps refusing");
  if (e.welcomed) Pump(e);
}

}  // namespace raftsql::sim
