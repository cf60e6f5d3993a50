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

using edge::AckOf;
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

// One device's session. gRPC runs the reactions on its threads and the
// answers arrive on the Raft loop or a reader thread: mu_ guards the state
// they share. Start* and Finish are called with mu_ released. Every
// asynchronous operation holds an op (ops_), and the session finishes only
// when none is left and nothing is being written, so no callback outlives
// it.
class Session final : public Reactor {
 public:
  Session(EdgeService::Impl* hub, std::string device)
      : hub_(hub),
        device_(std::move(device)),
        id_(absl::StrCat(hub->session_prefix,
                         hub->sessions_started.fetch_add(1))) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    // The message leaves in_ before reading_ clears: once it is clear,
    // another thread may start the next read into in_.
    pb::EdgeUp up;
    if (ok) up.Swap(&in_);
    {
      std::lock_guard<std::mutex> l(mu_);
      reading_ = false;
    }
    if (!ok) {
      std::unique_lock<std::mutex> l(mu_);
      reads_done_ = true;
      MaybeFinish(l);
      return;
    }
    bool hello = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      hello = said_hello_;
    }
    if (up.kind_case() == pb::EdgeUp::kHello) {
      if (hello) return End(absl::FailedPreconditionError("Hello twice"));
      return OnHello(up.hello());
    }
    if (!hello) {
      return End(absl::FailedPreconditionError("say Hello first"));
    }
    switch (up.kind_case()) {
      case pb::EdgeUp::kUpload:
        OnUpload(up.upload());
        break;
      case pb::EdgeUp::kOutcome:
        OnOutcome(up.outcome());
        break;
      case pb::EdgeUp::kTwin:
        OnTwin(up.twin());
        break;
      default:
        return End(absl::InvalidArgumentError("an empty message"));
    }
    ReadMore();
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> l(mu_);
    CHECK(writing_);
    if (!ok) {
      broken_ = true;
      out_queue_.clear();
    }
    if (!out_queue_.empty() && !ending_) {
      out_ = std::move(out_queue_.front());
      out_queue_.pop_front();
      l.unlock();
      StartWrite(&out_);
      ReadMore();  // The queue shrank: reading may go on.
      return;
    }
    writing_ = false;
    MaybeFinish(l);
    if (l.owns_lock()) l.unlock();
    ReadMore();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> l(mu_);
    broken_ = true;
    ending_ = true;
  }

  void OnDone() override {
    hub_->Forget(this, device_);
    delete this;
  }

  // Something changed in the device's commands or twin.
  void Poke(bool commands, bool twin) {
    if (commands) LookForCommands();
    if (twin) SendDesired();
  }

  // Ends the session with `status` once its operations are done.
  void End(absl::Status status) {
    std::unique_lock<std::mutex> l(mu_);
    if (!ending_) {
      ending_ = true;
      end_status_ = std::move(status);
    }
    MaybeFinish(l);
  }

 private:
  void OnHello(const pb::Hello& hello) {
    absl::Status valid = edge::ValidateName("incarnation", hello.incarnation(),
                                            edge::kMaxIncarnationBytes);
    if (!valid.ok()) return End(valid);
    {
      std::lock_guard<std::mutex> l(mu_);
      said_hello_ = true;
      incarnation_ = hello.incarnation();
      ++ops_;
    }
    hub_->EnsureSchema([this](absl::Status s) {
      if (!s.ok()) return Done(s);
      const bool sent = hub_->Write(
          edge::HelloCommand(device_, incarnation_, id_,
                             hub_->node->options().id, WallMs()),
          [this](absl::StatusOr<sm::CommandResult> r) {
            absl::StatusOr<edge::StreamAck> acked = edge::AckOfResult(r);
            if (!acked.ok()) return Done(acked.status());
            pb::EdgeDown down;
            down.mutable_welcome()->set_acked_sequence(acked->acked);
            down.mutable_welcome()->set_node(hub_->node->options().id);
            Send(std::move(down));
            {
              std::lock_guard<std::mutex> l(mu_);
              welcomed_ = true;
              stream_ = acked->stream;
            }
            if (!hub_->Register(this, device_)) {
              return Done(absl::ResourceExhaustedError(
                  "this node serves as many edge sessions as it may"));
            }
            LookForCommands();
            SendDesired();
            Done(absl::OkStatus());
            ReadMore();
          },
          /*bounded=*/false);
      CHECK(sent);
    });
  }

  // Ends an operation; an error ends the session.
  void Done(const absl::Status& s) {
    if (!s.ok()) End(s);
    std::unique_lock<std::mutex> l(mu_);
    CHECK_GT(ops_, 0);
    --ops_;
    MaybeFinish(l);
  }

  void OnUpload(const pb::Upload& upload) {
    const uint64_t batch = upload.batch();
    absl::StatusOr<edge::Upload> up = edge::UploadOf(upload);
    if (!up.ok()) return Send(AckOf(batch, up.status()));
    uint64_t stream = 0;
    {
      std::lock_guard<std::mutex> l(mu_);
      ++ops_;
      ++uploads_in_flight_;
      stream = stream_;
    }
    const bool sent = hub_->Write(
        edge::UploadCommand(device_, stream, *up, WallMs()),
        [this, batch](absl::StatusOr<sm::CommandResult> r) {
          absl::StatusOr<edge::StreamAck> acked = edge::AckOfResult(r);
          Send(AckOf(batch, acked.ok() ? absl::StatusOr<uint64_t>(acked->acked)
                                       : acked.status()));
          UploadDone();
        });
    if (!sent) {
      Send(AckOf(batch,
                 absl::ResourceExhaustedError(
                     "the hub has as many edge writes in flight as it may")));
      UploadDone();
    }
  }

  void UploadDone() {
    {
      std::lock_guard<std::mutex> l(mu_);
      --uploads_in_flight_;
    }
    ReadMore();
    Done(absl::OkStatus());
  }

  void OnOutcome(const pb::CommandOutcome& o) {
    absl::StatusOr<edge::CommandStatus> result = edge::OutcomeOf(o);
    if (!result.ok()) return End(result.status());
    Async(edge::OutcomeCommand(device_, o.id(), *result, o.detail(), WallMs()));
  }

  void OnTwin(const pb::TwinReport& t) {
    if (absl::Status v = edge::ValidateTwinReport(t); !v.ok()) return End(v);
    Async(edge::ReportTwinCommand(device_, t.reported_json(),
                                  t.desired_version(), WallMs()),
          /*end_on_failure=*/true);
  }

  // A write whose outcome the device does not wait for. A lost outcome is
  // repaired by redelivery (the edge answers a command it ran again); a
  // lost twin report ends the session (`end_on_failure`): the edge reports
  // again in its next one, and would not before its desired state changes.
  void Async(sm::Command c, bool end_on_failure = false) {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++ops_;
    }
    const bool sent = hub_->Write(
        std::move(c),
        [this, end_on_failure](absl::StatusOr<sm::CommandResult> r) {
          absl::Status failed = FailureOf(r);
          Done(end_on_failure && !failed.ok()
                   ? absl::UnavailableError(absl::StrCat(
                         "the twin report was not stored: ", failed.message()))
                   : absl::OkStatus());
        });
    if (!sent) {
      Done(end_on_failure ? absl::ResourceExhaustedError(
                                "the twin report was not stored: the hub has "
                                "as many edge writes in flight as it may")
                          : absl::OkStatus());
    }
  }

  // Starts the next read unless too many uploads are in flight (then the
  // last of them to be answered starts it).
  void ReadMore() {
    {
      std::lock_guard<std::mutex> l(mu_);
      // Answers not yet written count too: a device that never reads its
      // acks would otherwise have them queue here without bound.
      if (reading_ || reads_done_ || ending_ || finished_ || !welcomed_ ||
          uploads_in_flight_ + out_queue_.size() >= kMaxUploadsInFlight) {
        return;
      }
      reading_ = true;
    }
    StartRead(&in_);
  }

  // Welcomed and not going: new operations may start. Under mu_.
  bool Live() const {
    return welcomed_ && !ending_ && !reads_done_ && !finished_;
  }

  void Send(pb::EdgeDown down) {
    std::unique_lock<std::mutex> l(mu_);
    if (broken_ || ending_ || finished_) return;
    if (writing_) {
      out_queue_.push_back(std::move(down));
      return;
    }
    writing_ = true;
    out_ = std::move(down);
    l.unlock();
    StartWrite(&out_);
  }

  void LookForCommands() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!Live()) return;
      if (looking_) {
        look_again_ = true;
        return;
      }
      looking_ = true;
      ++ops_;
    }
    hub_->node->Query(
        edge::OpenCommandsQuery(device_, kMaxOpenCommandsPerLook),
        /*linearizable=*/false, sm::ReadLimits{},
        [this](absl::StatusOr<sm::QueryResult> q) {
          auto due = std::make_shared<std::vector<edge::HubCommand>>();
          if (q.ok()) {
            const int64_t now = WallMs();
            for (edge::HubCommand& c : edge::CommandsOf(*q)) {
              if (edge::DueForDelivery(c, now, hub_->options.command_lock_ms)) {
                due->push_back(std::move(c));
              }
            }
          }
          DeliverNext(std::move(due), 0);
        });
  }

  // Marks and sends the due commands one after another, in order.
  void DeliverNext(std::shared_ptr<std::vector<edge::HubCommand>> due,
                   size_t i) {
    bool ending = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      ending = ending_;
    }
    if (i < due->size() && !ending) {
      const edge::HubCommand& c = (*due)[i];
      const bool sent = hub_->Write(
          edge::DeliverCommand(device_, incarnation_, c.id, WallMs(),
                               hub_->options.command_lock_ms),
          [this, due, i](absl::StatusOr<sm::CommandResult> r) {
            for (pb::EdgeDown& down : edge::MarkedCommands(r)) {
              Send(std::move(down));
            }
            DeliverNext(due, i + 1);
          });
      if (sent) return;
    }
    bool again = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      looking_ = false;
      again = look_again_;
      look_again_ = false;
    }
    if (again) LookForCommands();
    Done(absl::OkStatus());
  }

  void SendDesired() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!Live()) return;
      ++ops_;
    }
    hub_->node->Query(
        edge::DesiredQuery(device_), /*linearizable=*/false, sm::ReadLimits{},
        [this](absl::StatusOr<sm::QueryResult> q) {
          if (std::optional<pb::EdgeDown> down = edge::DesiredOf(q)) {
            const uint64_t version = down->desired().version();
            bool send = false;
            {
              std::lock_guard<std::mutex> l(mu_);
              send = version > desired_sent_;
              desired_sent_ = std::max(desired_sent_, version);
            }
            if (send) Send(std::move(*down));
          }
          Done(absl::OkStatus());
        });
  }

  // Finishes once reads are done (or the session ends) and no operation or
  // write is left. Releases `l` if it finishes.
  void MaybeFinish(std::unique_lock<std::mutex>& l) {
    if (finished_ || ops_ > 0 || writing_) return;
    if (!ending_ && !reads_done_) return;
    finished_ = true;
    const absl::Status status = end_status_;
    const bool hello = welcomed_;
    l.unlock();
    if (hello) {
      // Best effort, and nothing waits for it (this session is going).
      hub_->node->Execute(edge::GoodbyeCommand(device_, id_, WallMs()),
                          [](absl::StatusOr<sm::CommandResult>) {});
    }
    Finish(Grpc(status));
  }

  EdgeService::Impl* const hub_;
  const std::string device_;
  const std::string id_;  // This session, in edge_devices.session.
  pb::EdgeUp in_;         // The read in progress.
  std::mutex mu_;
  std::string incarnation_;
  uint64_t stream_ = 0;  // Its id in edge_streams, from the Welcome on.
  pb::EdgeDown out_;     // The write in progress.
  std::deque<pb::EdgeDown> out_queue_;
  int ops_ = 0;
  size_t uploads_in_flight_ = 0;
  uint64_t desired_sent_ = 0;
  bool said_hello_ = false;
  bool welcomed_ = false;
  bool reading_ = true;  // The constructor's read.
  bool reads_done_ = false;
  bool writing_ = false;
  bool looking_ = false;
  bool look_again_ = false;
  bool broken_ = false;
  bool ending_ = false;
  bool finished_ = false;
  absl::Status end_status_;
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
  Write(
      edge::SchemaCommand(),
      [this, then = std::move(then)](absl::StatusOr<sm::CommandResult> r) {
        absl::Status s = FailureOf(r);
        if (s.ok()) schema_ready = true;
        then(s);
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
