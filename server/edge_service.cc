#include "server/edge_service.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "edge/hub_proto.h"
#include "edge/hub_session.h"
#include "edge/hub_sql.h"
#include "net/edge.grpc.pb.h"
#include "server/auth.h"
#include "server/convert.h"
#include "server/internal.h"

namespace raftsql::server {
namespace {

namespace pb = ::raftsql::edge::v1;
using internal::WallMs;
using Reactor = grpc::ServerBidiReactor<pb::EdgeUp, pb::EdgeDown>;
using Tables = std::vector<std::string_view>;

class Refused final : public Reactor {
 public:
  explicit Refused(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

grpc::Status Grpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      sm::TruncatedMessage(s.message()));
}

using edge::FailureOf;

class Session;

}  // namespace

struct EdgeService::Impl final : public pb::EdgeService::CallbackService {
  Impl(RaftServer* n, EdgeOptions o)
      : node(n),
        options(o),
        auth(n->options().tls.enabled(),
             [n](const std::string& name) { return n->FindUser(name); }) {}

  Reactor* Session(grpc::CallbackServerContext* ctx) override;

  // A write of the edge service, counted against max_writes_in_flight;
  // false (nothing proposed, `done` not called) at the bound.
  bool Write(sm::Command command, RaftServer::Done<sm::CommandResult> done,
             bool bounded = true) {
    if (bounded && in_flight.fetch_add(1) >= options.max_writes_in_flight) {
      in_flight.fetch_sub(1);
      return false;
    }
    if (!bounded) in_flight.fetch_add(1);
    node->Execute(std::move(command), [this, done = std::move(done)](
                                          absl::StatusOr<sm::CommandResult> r) {
      in_flight.fetch_sub(1);
      done(std::move(r));
    });
    return true;
  }

  // The edge tables exist (proposed once per node, then remembered).
  void EnsureSchema(std::function<void(absl::Status)> then);

  void OnTables(const Tables& tables);
  void Sweeper();
  // Deletes what retention allows in the next few streams (sweeper only).
  void RetentionStep(int64_t now);
  uint64_t retention_cursor = 0;  // Sweeper only: the last stream visited.
  int64_t no_leader_since = 0;    // Sweeper only: 0 while there is one.
  // Registers `s` for its device, ending an older session of the device;
  // false if the node is stopping or serves max_sessions already.
  bool Register(class Session* s, const std::string& device);
  // `s` is going: out of the map, and once no call pins it, it may go.
  void Forget(class Session* s, const std::string& device);
  // Calls `fn` on each session, outside mu, each pinned meanwhile so that
  // it cannot go.
  void ForEach(const std::function<void(class Session*)>& fn);
  void Unpin(const std::vector<class Session*>& pinned);

  RaftServer* const node;
  const EdgeOptions options;
  Authenticator auth;
  std::atomic<size_t> in_flight{0};
  std::atomic<bool> schema_ready{false};
  std::atomic<uint64_t> sessions_started{0};
  // This process's sessions are named "<node>-<start ms>-<n>": those of an
  // earlier process of this node are told apart, and forgotten (shown
  // disconnected) once at start (ForgetSessionsCommand).
  const std::string session_prefix =
      absl::StrCat(node->options().id, "-", WallMs(), "-");
  bool forgot_sessions = false;  // Sweeper only.

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::map<std::string, class Session*> sessions;  // By device.
  std::map<class Session*, int> pins;              // Sessions in calls.
  std::thread sweeper;
};

namespace {

// One device's session: edge::HubSession's logic over a gRPC stream. gRPC
// runs the reactions on its threads and the answers arrive on the Raft
// loop or a reader thread: mu_ guards the core and the stream's state.
// Effects are carried out with mu_ released (a write may be answered
// before its proposal returns), each Run counted in running_; the session
// finishes only when no Run, operation or write is left, so no callback
// outlives it.
class Session final : public Reactor {
 public:
  Session(EdgeService::Impl* hub, std::string device)
      : hub_(hub), core_(Options(hub), std::move(device)) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    // The message leaves in_ before reading_ clears: once it is clear,
    // another thread may start the next read into in_.
    pb::EdgeUp up;
    if (ok) up.Swap(&in_);
    std::unique_lock<std::mutex> l(mu_);
    reading_ = false;
    edge::HubEffects fx;
    if (ok) {
      core_.OnMessage(up, WallMs(), &fx);
    } else {
      core_.InputDone();
      reads_done_ = true;
    }
    Run(l, std::move(fx));
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> l(mu_);
    CHECK(writing_);
    writing_ = false;
    if (!ok) {
      broken_ = true;
      out_queue_.clear();
    }
    Run(l, edge::HubEffects{});  // The next queued message, or a read.
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> l(mu_);
    broken_ = true;
    core_.End(absl::CancelledError("the device went"));
  }

  void OnDone() override {
    hub_->Forget(this, core_.device());
    delete this;
  }

  // Something changed in the device's commands or twin.
  void Poke(bool commands, bool twin) {
    std::unique_lock<std::mutex> l(mu_);
    if (finished_) return;
    edge::HubEffects fx;
    core_.Poke(commands, twin, &fx);
    Run(l, std::move(fx));
  }

  // Ends the session with `status` once its operations are done.
  void End(absl::Status status) {
    std::unique_lock<std::mutex> l(mu_);
    core_.End(std::move(status));
    Run(l, edge::HubEffects{});
  }

 private:
  static edge::HubSessionOptions Options(EdgeService::Impl* hub) {
    edge::HubSessionOptions o;
    o.node = hub->node->options().id;
    o.name = absl::StrCat(hub->session_prefix, hub->sessions_started++);
    o.command_lock_ms = hub->options.command_lock_ms;
    o.schema_known = [hub] { return hub->schema_ready.load(); };
    return o;
  }

  // Carries out `fx`, then writes the next queued message, reads on if it
  // may, or finishes. `l` holds mu_ on entry and not on return (the
  // session may be gone by then).
  void Run(std::unique_lock<std::mutex>& l, edge::HubEffects fx) {
    for (pb::EdgeDown& down : fx.sends) {
      if (!broken_ && !finished_) out_queue_.push_back(std::move(down));
    }
    ++running_;
    l.unlock();
    if (fx.schema_made) hub_->schema_ready = true;
    if (fx.welcomed && !hub_->Register(this, core_.device())) {
      End(absl::ResourceExhaustedError(
          "this node serves as many edge sessions as it may"));
    }
    for (edge::HubEffects::Write& w : fx.writes) {
      auto answer = [this, op = w.op](absl::StatusOr<sm::CommandResult> r) {
        std::unique_lock<std::mutex> l(mu_);
        edge::HubEffects next;
        core_.OnWritten(op, r, WallMs(), &next);
        Run(l, std::move(next));
      };
      if (!hub_->Write(std::move(w.command), answer, w.bounded)) {
        answer(absl::ResourceExhaustedError(
            "the hub has as many edge writes in flight as it may"));
      }
    }
    for (edge::HubEffects::Read& r : fx.reads) {
      hub_->node->Query(r.query, /*linearizable=*/false, sm::ReadLimits{},
                        [this, op = r.op](absl::StatusOr<sm::QueryResult> q) {
                          std::unique_lock<std::mutex> l(mu_);
                          edge::HubEffects next;
                          core_.OnRead(op, q, WallMs(), &next);
                          Run(l, std::move(next));
                        });
    }
    l.lock();
    const bool write = !writing_ && !out_queue_.empty() && !broken_ &&
                       !finished_ && !core_.ending();
    if (write) {
      writing_ = true;
      out_ = std::move(out_queue_.front());
      out_queue_.pop_front();
    }
    // Answers not yet written count too: a device that never reads its
    // acks would otherwise have them queue here without bound.
    const bool read =
        !reading_ && !reads_done_ && !finished_ && core_.welcomed() &&
        !core_.ending() &&
        core_.uploads_in_flight() + out_queue_.size() < kMaxUploadsInFlight;
    reading_ |= read;
    l.unlock();
    // Still counted in running_: the session cannot finish (and go) before
    // the write and the read have started.
    if (write) StartWrite(&out_);
    if (read) StartRead(&in_);
    l.lock();
    --running_;
    MaybeFinish(l);
    if (l.owns_lock()) l.unlock();
  }

  // Finishes once reads are done (or the session ends) and no Run,
  // operation or write is left. Releases `l` if it finishes.
  void MaybeFinish(std::unique_lock<std::mutex>& l) {
    if (finished_ || running_ > 0 || core_.pending() > 0 || writing_) return;
    if (!core_.ending() && !reads_done_) return;
    finished_ = true;
    const absl::Status status = core_.end_status();
    std::optional<sm::Command> goodbye = core_.Goodbye(WallMs());
    l.unlock();
    if (goodbye.has_value()) {
      // Best effort, and nothing waits for it (this session is going).
      hub_->node->Execute(std::move(*goodbye),
                          [](absl::StatusOr<sm::CommandResult>) {});
    }
    Finish(Grpc(status));
  }

  EdgeService::Impl* const hub_;
  pb::EdgeUp in_;  // The read in progress.
  std::mutex mu_;
  edge::HubSession core_;
  pb::EdgeDown out_;  // The write in progress.
  std::deque<pb::EdgeDown> out_queue_;
  int running_ = 0;      // Runs carrying out effects.
  bool reading_ = true;  // The constructor's read.
  bool reads_done_ = false;
  bool writing_ = false;
  bool broken_ = false;
  bool finished_ = false;
};

}  // namespace

Reactor* EdgeService::Impl::Session(grpc::CallbackServerContext* ctx) {
  absl::StatusOr<Principal> device = auth.AuthenticateDevice(*ctx);
  if (!device.ok()) return new Refused(Grpc(device.status()));
  {
    std::lock_guard<std::mutex> l(mu);
    if (stopping) {
      return new Refused(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "node shutting down"));
    }
  }
  return new class Session(this, device->name);
}

void EdgeService::Impl::EnsureSchema(std::function<void(absl::Status)> then) {
  if (schema_ready.load()) return then(absl::OkStatus());
  // The tables if missing, then what older versions' tables lack.
  Write(
      edge::SchemaCommand(),
      [this, then = std::move(then)](absl::StatusOr<sm::CommandResult> r) {
        if (absl::Status s = FailureOf(r); !s.ok()) return then(s);
        Write(
            edge::UpgradeCommand(),
            [this, then](absl::StatusOr<sm::CommandResult> u) {
              absl::Status s = edge::UpgradeStatus(u);
              if (s.ok()) schema_ready = true;
              then(s);
            },
            /*bounded=*/false);
      },
      /*bounded=*/false);
}

bool EdgeService::Impl::Register(class Session* s, const std::string& device) {
  class Session* older = nullptr;
  {
    std::lock_guard<std::mutex> l(mu);
    if (stopping) return false;
    auto it = sessions.find(device);
    if (it == sessions.end() && sessions.size() >= options.max_sessions) {
      return false;
    }
    if (it != sessions.end()) {
      older = it->second;
      ++pins[older];  // It cannot go before End below.
    }
    sessions[device] = s;
  }
  if (older != nullptr) {
    older->End(absl::AbortedError("a newer session of this device began"));
    Unpin({older});
  }
  return true;
}

void EdgeService::Impl::Forget(class Session* s, const std::string& device) {
  std::unique_lock<std::mutex> l(mu);
  auto it = sessions.find(device);
  if (it != sessions.end() && it->second == s) sessions.erase(it);
  cv.wait(l, [&] { return pins.count(s) == 0; });
}

void EdgeService::Impl::ForEach(const std::function<void(class Session*)>& fn) {
  std::vector<class Session*> pinned;
  {
    std::lock_guard<std::mutex> l(mu);
    for (auto& [device, s] : sessions) {
      pinned.push_back(s);
      ++pins[s];
    }
  }
  for (class Session* s : pinned) fn(s);
  Unpin(pinned);
}

void EdgeService::Impl::Unpin(const std::vector<class Session*>& pinned) {
  {
    std::lock_guard<std::mutex> l(mu);
    for (class Session* s : pinned) {
      if (--pins[s] == 0) pins.erase(s);
    }
  }
  cv.notify_all();
}

void EdgeService::Impl::OnTables(const Tables& tables) {
  bool commands = false;
  bool twins = false;
  for (std::string_view table : tables) {
    commands |= table == "edge_commands";
    twins |= table == "edge_twins";
  }
  if (!commands && !twins) return;
  ForEach([&](class Session* s) { s->Poke(commands, twins); });
}

void EdgeService::Impl::Sweeper() {
  std::unique_lock<std::mutex> l(mu);
  while (!stopping) {
    cv.wait_for(l, std::chrono::milliseconds(options.sweep_ms));
    if (stopping) break;
    l.unlock();
    const int64_t now = WallMs();
    if (node->in_contact_with_leader()) {
      no_leader_since = 0;
    } else if (no_leader_since == 0) {
      no_leader_since = now;
    } else if (now - no_leader_since >= options.no_leader_ms) {
      ForEach([this](class Session* s) {
        s->End(absl::UnavailableError(
            absl::StrCat("node ", node->options().id,
                         " has been out of touch with a "
                         "leader for ",
                         options.no_leader_ms, " ms: try another node")));
      });
    }
    if (!forgot_sessions && node->in_contact_with_leader()) {
      // Once: the devices an earlier process served show disconnected.
      std::promise<absl::Status> forgot;
      Write(
          edge::ForgetSessionsCommand(node->options().id, session_prefix, now),
          [&forgot](absl::StatusOr<sm::CommandResult> r) {
            forgot.set_value(FailureOf(r));
          },
          /*bounded=*/false);
      const absl::Status f = forgot.get_future().get();
      forgot_sessions = f.ok() || edge::IsMissingSchema(f);
    }
    // Locks that ran out (a command whose session went, or unanswered).
    ForEach([](class Session* s) { s->Poke(true, false); });
    if (node->is_leader() && !schema_ready.load()) {
      // So that operators can issue commands before any device came.
      EnsureSchema([](absl::Status) {});
    }
    if (!node->is_leader() || !schema_ready.load()) {
      l.lock();
      continue;
    }
    Write(
        edge::ExpireCommand(now, options.command_lock_ms, options.sweep_batch),
        [](absl::StatusOr<sm::CommandResult>) {});
    if (options.readings_max_age_ms > 0 ||
        options.readings_max_per_device > 0) {
      RetentionStep(now);
    }
    l.lock();
  }
}

void EdgeService::Impl::RetentionStep(int64_t now) {
  // The next few streams (a local read: the step's outcome does not depend
  // on it, only which streams it visits).
  std::promise<absl::StatusOr<sm::QueryResult>> read;
  node->Query(
      edge::StreamsQuery(retention_cursor, options.retention_streams_per_sweep),
      /*linearizable=*/false, sm::ReadLimits{},
      [&read](absl::StatusOr<sm::QueryResult> q) {
        read.set_value(std::move(q));
      });
  absl::StatusOr<sm::QueryResult> q = read.get_future().get();
  if (!q.ok()) return;
  edge::Retention r;
  for (const std::vector<sm::Value>& row : q->rows) {
    if (row.size() == 1) {
      r.streams.push_back(static_cast<uint64_t>(row[0].integer));
    }
  }
  if (r.streams.empty()) {
    retention_cursor = 0;  // All visited: from the start, next time.
    return;
  }
  retention_cursor = r.streams.back();
  r.per_stream = options.sweep_batch;
  r.before_ms = options.readings_max_age_ms > 0
                    ? now - options.readings_max_age_ms
                    : std::numeric_limits<int64_t>::min();
  r.max_per_device = options.readings_max_per_device;
  Write(edge::RetentionCommand(r, now),
        [](absl::StatusOr<sm::CommandResult>) {});
}

namespace {

// Runs `make()` through `node`; if the edge tables are missing, makes them
// and runs it once more.
void WithSchema(RaftServer* node, std::function<sm::Command()> make,
                RaftServer::Done<sm::CommandResult> done) {
  node->Execute(
      make(), [node, make, done](absl::StatusOr<sm::CommandResult> r) {
        if (!edge::IsMissingSchema(FailureOf(r))) return done(std::move(r));
        node->Execute(edge::SchemaCommand(),
                      [node, make, done](absl::StatusOr<sm::CommandResult> s) {
                        if (absl::Status f = FailureOf(s); !f.ok())
                          return done(f);
                        node->Execute(make(), done);
                      });
      });
}

std::string NewCommandId() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat("cmd-", absl::Hex(WallMs()), "-",
                      absl::Hex(counter.fetch_add(1)));
}

}  // namespace

void IssueEdgeCommand(RaftServer* node, const v1::IssueEdgeCommandRequest& r,
                      RaftServer::Done<v1::IssueEdgeCommandResponse> done) {
  edge::HubCommand c;
  c.id = r.id().empty() ? absl::StrCat(NewCommandId(), "-", node->options().id)
                        : r.id().substr(0, edge::kMaxCommandIdBytes + 1);
  c.device = r.device().substr(0, edge::kMaxCommandIdBytes + 1);
  c.name = r.name().substr(0, edge::kMaxCommandNameBytes + 1);
  c.params_json = r.params_json().empty() ? "{}" : r.params_json();
  const int64_t expires_in =
      r.expires_in_ms() == 0 ? kDefaultCommandExpiryMs : r.expires_in_ms();
  if (expires_in < kMinCommandExpiryMs || expires_in > kMaxCommandExpiryMs) {
    return done(absl::InvalidArgumentError(
        "expires_in_ms must be 1 s to 30 days (0: one hour)"));
  }
  const int64_t now = WallMs();
  c.expires_ms = now + expires_in;
  c.max_attempts = r.max_attempts() == 0 ? 3 : r.max_attempts();
  if (absl::Status v = edge::ValidateCommand(c); !v.ok()) {
    return done(absl::InvalidArgumentError(sm::TruncatedMessage(v.message())));
  }
  WithSchema(
      node, [c, now] { return edge::IssueCommand(c, now); },
      [id = c.id, done](absl::StatusOr<sm::CommandResult> r) {
        if (absl::Status f = FailureOf(r); !f.ok()) return done(f);
        v1::IssueEdgeCommandResponse out;
        out.set_id(id);
        out.set_created(r->statements.size() == 1 &&
                        r->statements[0].rows.size() == 1);
        done(std::move(out));
      });
}

void SetEdgeDesired(RaftServer* node, const v1::SetEdgeDesiredRequest& r,
                    RaftServer::Done<v1::SetEdgeDesiredResponse> done) {
  const std::string device = r.device().substr(0, edge::kMaxCommandIdBytes + 1);
  absl::Status v =
      edge::ValidateName("device", device, edge::kMaxCommandIdBytes);
  if (v.ok()) {
    v = edge::ValidateJsonObject("patch_json", r.patch_json(),
                                 edge::kMaxTwinJsonBytes);
  }
  if (!v.ok()) return done(v);
  const int64_t now = WallMs();
  WithSchema(
      node,
      [device, patch = r.patch_json(), now] {
        return edge::SetDesiredCommand(device, patch, now);
      },
      [done](absl::StatusOr<sm::CommandResult> r) {
        if (absl::Status f = FailureOf(r); !f.ok()) return done(f);
        v1::SetEdgeDesiredResponse out;
        if (r->statements.size() == 1 && r->statements[0].rows.size() == 1 &&
            r->statements[0].rows[0].size() == 2) {
          out.set_desired_json(r->statements[0].rows[0][0].bytes);
          out.set_version(
              static_cast<uint64_t>(r->statements[0].rows[0][1].integer));
        }
        done(std::move(out));
      });
}

EdgeService::EdgeService(RaftServer* node)
    : impl_(std::make_unique<Impl>(node, node->options().edge)) {
  Impl* impl = impl_.get();
  node->OnTablesChanged([impl](const Tables& t) { impl->OnTables(t); });
  impl->sweeper = std::thread([impl] { impl->Sweeper(); });
}

EdgeService::~EdgeService() { Shutdown(); }

grpc::Service* EdgeService::service() { return impl_.get(); }

void EdgeService::Shutdown() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->ForEach([](class Session* s) {
    s->End(absl::UnavailableError("node shutting down"));
  });
  if (impl_->sweeper.joinable()) impl_->sweeper.join();
}

}  // namespace raftsql::server
