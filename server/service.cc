#include "server/service.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/support/server_interceptor.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "net/client.h"
#include "net/convert.h"
#include "net/raftsql.grpc.pb.h"
#include "net/tls.h"
#include "server/auth.h"
#include "server/backup_stream.h"
#include "server/convert.h"
#include "server/decision_maker.h"
#include "server/edge_service.h"
#include "server/execute_stream.h"
#include "server/query_stream.h"
#include "server/readiness.h"
#include "server/request_log.h"
#include "server/responses.h"
#include "server/watch.h"

namespace raftsql::server {

namespace {

// The overloads below join those of server/convert.h.
using server::FromProto;
using server::ToProto;

template <typename Message>
void ToProto(const Message& m, Message* response) {
  *response = m;
}

void ToProto(uint64_t version, v1::GetVersionResponse* response) {
  response->set_version(version);
}

// The methods that time themselves (CallTimer) instead of through the
// interceptor (RequestTimers): the hot ones. gRPC's interceptor machinery
// and the lookup by strings cost a point read 10% of its throughput at 16
// clients (the servers' CPU a read 29.4-32.1 us without, 33.9-35.9 with).
constexpr char kExecuteMethod[] = "/raftsql.v1.DatabaseService/Execute";
constexpr char kQueryMethod[] = "/raftsql.v1.DatabaseService/Query";

// One gRPC call's outcome and time in the node's request metrics, and the
// slow-request log: the interceptor's and the self-timed methods' record.
void RecordCall(RaftServer& node, const std::string& method,
                grpc::StatusCode code, double seconds) {
  const std::string name =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  node.request_metrics().Record("grpc", method, name, seconds);
  LogIfSlow(node, "grpc", method, name, seconds);
}

// A self-timed method's calls, recorded as their status is sent, as the
// interceptor records the others: its successes observed directly.
class CallTimer {
 public:
  CallTimer(RaftServer* node, const char* method)
      : node_(node),
        method_(method),
        ok_(node->request_metrics().Slot("grpc", method_, "OK")) {}

  void Record(std::chrono::steady_clock::time_point start,
              const grpc::Status& status) const {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    const int slow_ms = node_->options().slow_request_ms;
    if (status.ok() && (slow_ms <= 0 || seconds * 1000 < slow_ms)) {
      ok_.Observe(seconds);
      return;
    }
    RecordCall(*node_, method_, status.error_code(), seconds);
  }

  // Finishes `reactor` with `status`, recorded.
  void Finish(grpc::ServerUnaryReactor* reactor,
              std::chrono::steady_clock::time_point start,
              grpc::Status status) const {
    Record(start, status);
    reactor->Finish(std::move(status));
  }

 private:
  RaftServer* const node_;
  const std::string method_;
  obs::Histogram& ok_;
};

// The callback that finishes `reactor` with the outcome: the value written
// into `response`, or the error with its trailers; recorded by `timer` if
// one is given (it must outlive the call).
template <typename T, typename Response>
RaftServer::Done<T> Answer(grpc::CallbackServerContext* ctx,
                           grpc::ServerUnaryReactor* reactor,
                           Response* response, const CallTimer* timer = nullptr,
                           std::chrono::steady_clock::time_point start = {}) {
  return [ctx, reactor, response, timer, start](absl::StatusOr<T> r) {
    grpc::Status status = grpc::Status::OK;
    if (r.ok()) {
      ToProto(*r, response);
    } else {
      status = ToGrpc(r.status(), ctx);
    }
    if (timer != nullptr) return timer->Finish(reactor, start, status);
    reactor->Finish(status);
  };
}

// A read stops at the client's deadline, or as soon as the client cancels
// (gRPC allows IsCancelled from any thread until the call is finished).
sm::ReadLimits LimitsOf(grpc::CallbackServerContext* ctx) {
  sm::ReadLimits limits;
  const auto left = ctx->deadline() - std::chrono::system_clock::now();
  if (ctx->deadline() != std::chrono::system_clock::time_point::max()) {
    limits.deadline = std::chrono::steady_clock::now() +
                      std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::max(left, decltype(left)::zero()));
  }
  limits.cancelled = [ctx] { return ctx->IsCancelled(); };
  return limits;
}

// The callback API: a handler returns at once and the reactor is finished
// when the outcome is known (on the Raft loop or a reader thread), so a
// request waiting for its commit holds no thread.
// A server stream refused before it starts (no credentials or permission).
template <typename Response>
class RefusedWrite final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusedWrite(grpc::Status status) {
    this->Finish(std::move(status));
  }
  void OnDone() override { delete this; }
};

// An ExecuteStream refused before it starts (no credentials or permission).
class RefusedStream final
    : public grpc::ServerBidiReactor<v1::ExecuteStreamRequest,
                                     v1::ExecuteStreamResponse> {
 public:
  explicit RefusedStream(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

class DatabaseServiceImpl final : public v1::DatabaseService::CallbackService {
 public:
  DatabaseServiceImpl(RaftServer* node, WatchHub* watch)
      : node_(node),
        watch_(watch),
        auth_(node->options().tls.enabled(), [node](const std::string& name) {
          return node->FindUser(name);
        }) {}

  grpc::ServerUnaryReactor* Execute(grpc::CallbackServerContext* ctx,
                                    const v1::ExecuteRequest* request,
                                    v1::ExecuteResponse* response) override {
    const auto start = std::chrono::steady_clock::now();
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::StatusOr<Principal> caller = auth_.Authorize(*ctx, sm::kPermExecute);
    if (!caller.ok()) {
      execute_timer_.Finish(reactor, start, ToGrpc(caller.status(), ctx));
      return reactor;
    }
    absl::StatusOr<sm::Command> cmd =
        CommandFromProto(*request, node_->options().max_request_bytes);
    if (!cmd.ok()) {
      execute_timer_.Finish(reactor, start, ToGrpc(cmd.status(), ctx));
      return reactor;
    }
    cmd->user = caller->name;  // Its session, if any, is this user's.
    node_->Execute(std::move(*cmd),
                   Answer<sm::CommandResult>(ctx, reactor, response,
                                             &execute_timer_, start));
    return reactor;
  }

  grpc::ServerBidiReactor<v1::ExecuteStreamRequest, v1::ExecuteStreamResponse>*
  ExecuteStream(grpc::CallbackServerContext* ctx) override {
    absl::StatusOr<Principal> caller = auth_.Authorize(*ctx, sm::kPermExecute);
    if (!caller.ok()) return new RefusedStream(ToGrpc(caller.status(), ctx));
    return NewExecuteStream(node_, caller->name);
  }

  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* ctx,
                                  const v1::QueryRequest* request,
                                  v1::QueryResponse* response) override {
    const auto start = std::chrono::steady_clock::now();
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::StatusOr<Principal> allowed = auth_.Authorize(*ctx, sm::kPermQuery);
    if (!allowed.ok()) {
      query_timer_.Finish(reactor, start, ToGrpc(allowed.status(), ctx));
      return reactor;
    }
    node_->Query(
        FromProto(request->statement()),
        request->consistency() == v1::LINEARIZABLE, LimitsOf(ctx),
        Answer<sm::QueryResult>(ctx, reactor, response, &query_timer_, start));
    return reactor;
  }

  grpc::ServerWriteReactor<v1::QueryResponse>* QueryStream(
      grpc::CallbackServerContext* ctx,
      const v1::QueryRequest* request) override {
    absl::StatusOr<Principal> allowed = auth_.Authorize(*ctx, sm::kPermQuery);
    if (!allowed.ok()) {
      return new RefusedWrite<v1::QueryResponse>(ToGrpc(allowed.status(), ctx));
    }
    return NewQueryStream(node_, ctx, *request, LimitsOf(ctx));
  }

  grpc::ServerWriteReactor<v1::BackupChunk>* Backup(
      grpc::CallbackServerContext* ctx, const v1::BackupRequest*) override {
    absl::StatusOr<Principal> allowed = auth_.Authorize(*ctx, sm::kPermBackup);
    if (!allowed.ok()) {
      return new RefusedWrite<v1::BackupChunk>(ToGrpc(allowed.status(), ctx));
    }
    return NewBackupStream(node_, ctx);
  }

  grpc::ServerWriteReactor<v1::WatchResponse>* Watch(
      grpc::CallbackServerContext* ctx,
      const v1::WatchRequest* request) override {
    absl::StatusOr<Principal> allowed = auth_.Authorize(*ctx, sm::kPermQuery);
    if (!allowed.ok()) {
      return new RefusedWrite<v1::WatchResponse>(ToGrpc(allowed.status(), ctx));
    }
    if (const std::string why = node_->divergence(); !why.empty()) {
      // As its reads: what it applied is not the cluster's.
      return new RefusedWrite<v1::WatchResponse>(
          grpc::Status(grpc::StatusCode::UNAVAILABLE,
                       "this replica diverged (" + why + "); watch another"));
    }
    return watch_->Start(ctx, *request);
  }

  grpc::ServerUnaryReactor* GetVersion(
      grpc::CallbackServerContext* ctx, const v1::GetVersionRequest* request,
      v1::GetVersionResponse* response) override {
    if (auto* refused = Refuse(ctx, sm::kPermQuery)) return refused;
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    node_->GetVersion(request->table(),
                      request->consistency() == v1::LINEARIZABLE, LimitsOf(ctx),
                      Answer<uint64_t>(ctx, reactor, response));
    return reactor;
  }

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const v1::StatusRequest*,
                                   v1::StatusResponse* response) override {
    if (auto* refused = Refuse(ctx, sm::kPermStatus)) return refused;
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    node_->State(Answer<NodeState>(ctx, reactor, response));
    return reactor;
  }

  grpc::ServerUnaryReactor* AddNode(grpc::CallbackServerContext* ctx,
                                    const v1::AddNodeRequest* request,
                                    v1::AdminResponse* response) override {
    const uint64_t id = request->id();
    const std::string address = request->address();
    const bool learner = request->learner();
    return Blocking<std::vector<Member>>(
        ctx, sm::kPermJoin, response, [this, id, address, learner] {
          return node_->AddNode(id, address, learner);
        });
  }

  grpc::ServerUnaryReactor* RemoveNode(grpc::CallbackServerContext* ctx,
                                       const v1::RemoveNodeRequest* request,
                                       v1::AdminResponse* response) override {
    const uint64_t id = request->id();
    return Blocking<std::vector<Member>>(
        ctx, sm::kPermRemove, response,
        [this, id] { return node_->RemoveNode(id); });
  }

  grpc::ServerUnaryReactor* TransferLeadership(
      grpc::CallbackServerContext* ctx,
      const v1::TransferLeadershipRequest* request,
      v1::AdminResponse* response) override {
    const uint64_t id = request->id();
    return Blocking<std::vector<Member>>(
        ctx, sm::kPermRemove, response,
        [this, id] { return node_->TransferLeadership(id); });
  }

  grpc::ServerUnaryReactor* SetSetting(
      grpc::CallbackServerContext* ctx, const v1::SetSettingRequest* request,
      v1::SettingsResponse* response) override {
    const std::string name = request->name().substr(0, 128);
    const uint64_t value = request->value();
    return Blocking<sm::WriteSettings>(
        ctx, sm::kPermAdmin, response,
        [this, name, value] { return node_->SetSetting(name, value); });
  }

  grpc::ServerUnaryReactor* GetSettings(
      grpc::CallbackServerContext* ctx, const v1::GetSettingsRequest*,
      v1::SettingsResponse* response) override {
    return Blocking<sm::WriteSettings>(ctx, sm::kPermStatus, response,
                                       [this] { return node_->Settings(); });
  }

  grpc::ServerUnaryReactor* PutUser(grpc::CallbackServerContext* ctx,
                                    const v1::PutUserRequest* request,
                                    v1::UsersResponse* response) override {
    const std::string name = request->name().substr(0, 128);
    const std::string password = request->password();
    absl::StatusOr<uint32_t> permissions = sm::ParsePermissions(
        {request->permissions().begin(), request->permissions().end()});
    return Blocking<std::vector<sm::User>>(
        ctx, sm::kPermAdmin, response,
        [this, name, password, permissions]() -> Users {
          if (!permissions.ok()) return permissions.status();
          return node_->PutUser(name, password, *permissions);
        });
  }

  grpc::ServerUnaryReactor* DropUser(grpc::CallbackServerContext* ctx,
                                     const v1::DropUserRequest* request,
                                     v1::UsersResponse* response) override {
    const std::string name = request->name().substr(0, 128);
    return Blocking<std::vector<sm::User>>(
        ctx, sm::kPermAdmin, response,
        [this, name] { return node_->DropUser(name); });
  }

  grpc::ServerUnaryReactor* IssueEdgeCommand(
      grpc::CallbackServerContext* ctx,
      const v1::IssueEdgeCommandRequest* request,
      v1::IssueEdgeCommandResponse* response) override {
    if (auto* refused = Refuse(ctx, sm::kPermExecute)) return refused;
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    server::IssueEdgeCommand(
        node_, *request,
        Answer<v1::IssueEdgeCommandResponse>(ctx, reactor, response));
    return reactor;
  }

  grpc::ServerUnaryReactor* SetEdgeDesired(
      grpc::CallbackServerContext* ctx,
      const v1::SetEdgeDesiredRequest* request,
      v1::SetEdgeDesiredResponse* response) override {
    if (auto* refused = Refuse(ctx, sm::kPermExecute)) return refused;
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    server::SetEdgeDesired(
        node_, *request,
        Answer<v1::SetEdgeDesiredResponse>(ctx, reactor, response));
    return reactor;
  }

  grpc::ServerUnaryReactor* ListUsers(grpc::CallbackServerContext* ctx,
                                      const v1::ListUsersRequest*,
                                      v1::UsersResponse* response) override {
    if (auto* refused = Refuse(ctx, sm::kPermStatus)) return refused;
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    Answer<std::vector<sm::User>>(ctx, reactor, response)(node_->Users());
    return reactor;
  }

 private:
  using Users = absl::StatusOr<std::vector<sm::User>>;

  // A reactor already finished with the refusal, or null if the caller
  // holds `permission`.
  grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* ctx,
                                   uint32_t permission) {
    absl::StatusOr<Principal> allowed = auth_.Authorize(*ctx, permission);
    if (allowed.ok()) return nullptr;
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpc(allowed.status(), ctx));
    return reactor;
  }

  // Admin calls block (they wait for several steps); they are rare, so each
  // runs on a thread of its own rather than on a gRPC callback thread, at
  // most kMaxAdminCalls at once.
  template <typename T, typename Response>
  grpc::ServerUnaryReactor* Blocking(grpc::CallbackServerContext* ctx,
                                     uint32_t permission, Response* response,
                                     std::function<absl::StatusOr<T>()> call) {
    if (auto* refused = Refuse(ctx, permission)) return refused;
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (admin_calls_.fetch_add(1) >= kMaxAdminCalls) {
      admin_calls_.fetch_sub(1);
      reactor->Finish(ToGrpc(
          absl::ResourceExhaustedError("too many admin calls at once"), ctx));
      return reactor;
    }
    std::thread([this, done = Answer<T>(ctx, reactor, response),
                 call = std::move(call)] {
      done(call());
      admin_calls_.fetch_sub(1);
    }).detach();
    return reactor;
  }
  static constexpr int kMaxAdminCalls = 8;

  RaftServer* const node_;
  WatchHub* const watch_;
  Authenticator auth_;
  const CallTimer execute_timer_{node_, kExecuteMethod};
  const CallTimer query_timer_{node_, kQueryMethod};
  std::atomic<int> admin_calls_{0};
};

// Who may send Raft messages on a peer stream: with TLS, only a node
// certificate, and then only as that node; without TLS (a trusted network),
// anyone (kNone).
absl::StatusOr<uint64_t> PeerIdentity(grpc::CallbackServerContext* ctx,
                                      bool tls) {
  if (!tls) return core::kNone;
  const std::optional<std::string> name =
      net::PeerCertificateName(*ctx->auth_context());
  if (!name.has_value()) {
    return absl::UnauthenticatedError(
        "the peer service needs a node certificate (mutual TLS)");
  }
  std::optional<uint64_t> id = net::NodeIdOfName(*name);
  if (!id.has_value()) {
    return absl::PermissionDeniedError(sm::TruncatedMessage(
        absl::StrCat("certificate '", *name,
                     "' is not a node's: clients cannot speak as "
                     "peers")));
  }
  return *id;
}

// One incoming peer stream: reads batch after batch and hands each to the
// node. A malformed message, or one whose sender is not the certificate's
// node, ends the stream (INVALID_ARGUMENT, PERMISSION_DENIED).
class PeerStreamReader final : public grpc::ServerReadReactor<v1::RaftBatch> {
 public:
  PeerStreamReader(RaftServer* node, absl::StatusOr<uint64_t> peer,
                   std::function<void()> on_done)
      : node_(node), on_done_(std::move(on_done)) {
    if (!peer.ok()) {
      Finish(grpc::Status(static_cast<grpc::StatusCode>(peer.status().code()),
                          std::string(peer.status().message())));
      return;
    }
    peer_ = *peer;
    StartRead(&batch_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);  // Closed or cancelled.
    std::vector<core::Message> messages;
    messages.reserve(batch_.messages_size());
    for (v1::RaftMessage& p : *batch_.mutable_messages()) {
      absl::StatusOr<core::Message> m = net::FromProto(std::move(p));
      if (!m.ok()) {
        return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   std::string(m.status().message())));
      }
      if (peer_ != core::kNone && m->from != peer_) {
        return Finish(grpc::Status(
            grpc::StatusCode::PERMISSION_DENIED,
            absl::StrCat("node ", peer_, " sent a message as node ", m->from)));
      }
      messages.push_back(std::move(*m));
    }
    if (!messages.empty()) {
      node_->LearnAddress(messages.front().from, batch_.from_address(),
                          batch_.client_address());
    }
    node_->Deliver(std::move(messages));
    batch_.Clear();
    StartRead(&batch_);
  }
  void OnDone() override {
    on_done_();
    delete this;
  }

 private:
  RaftServer* const node_;
  const std::function<void()> on_done_;
  uint64_t peer_ = core::kNone;  // The sender every message must name.
  v1::RaftBatch batch_;
};

class PeerServiceImpl final : public v1::PeerService::CallbackService {
 public:
  explicit PeerServiceImpl(RaftServer* node) : node_(node) {}

  grpc::ServerReadReactor<v1::RaftBatch>* Stream(
      grpc::CallbackServerContext* ctx, v1::RaftBatchAck*) override {
    std::lock_guard<std::recursive_mutex> l(mu_);
    open_.insert(ctx);
    return new PeerStreamReader(
        node_, PeerIdentity(ctx, node_->options().tls.enabled()), [this, ctx] {
          std::lock_guard<std::recursive_mutex> l(mu_);
          open_.erase(ctx);
        });
  }

  grpc::ServerUnaryReactor* Checkpoints(grpc::CallbackServerContext* ctx,
                                        const v1::CheckpointsRequest*,
                                        v1::CheckpointsResponse* out) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::StatusOr<uint64_t> peer =
        PeerIdentity(ctx, node_->options().tls.enabled());
    if (!peer.ok()) {
      reactor->Finish(ToGrpc(peer.status(), ctx));
      return reactor;
    }
    for (const sm::Checkpoint& c : node_->Checkpoints()) {
      v1::Checkpoint* p = out->add_checkpoints();
      p->set_index(c.index);
      p->set_hash(c.hash);
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // Ends the incoming streams (peers keep theirs open for good), so that
  // the server's shutdown need not wait for its deadline. A stream's context
  // lives until it has left open_, which waits for mu_; gRPC may end a
  // stream inline, on this thread, hence the recursive mutex and the check.
  void CancelStreams() {
    std::lock_guard<std::recursive_mutex> l(mu_);
    const std::vector<grpc::CallbackServerContext*> open(open_.begin(),
                                                         open_.end());
    for (grpc::CallbackServerContext* ctx : open) {
      if (open_.count(ctx) > 0) ctx->TryCancel();
    }
  }

 private:
  RaftServer* const node_;
  std::recursive_mutex mu_;
  std::set<grpc::CallbackServerContext*> open_;
};

}  // namespace

namespace {

// Every call's method, outcome and time, for /metrics: recorded as its
// status is sent (a stream's when it ends).
class RequestTimer final : public grpc::experimental::Interceptor {
 public:
  RequestTimer(const char* method, RaftServer* node)
      : method_(method == nullptr ? "?" : method),
        node_(node),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const double seconds = std::chrono::duration<double>(
                                 std::chrono::steady_clock::now() - start_)
                                 .count();
      RecordCall(*node_, method_, methods->GetSendStatus().error_code(),
                 seconds);
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  RaftServer* const node_;
  const std::chrono::steady_clock::time_point start_;
};

class RequestTimers final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RequestTimers(RaftServer* node) : node_(node) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const char* method = info->method();
    if (method != nullptr && (std::strcmp(method, kExecuteMethod) == 0 ||
                              std::strcmp(method, kQueryMethod) == 0)) {
      return nullptr;  // They time themselves (CallTimer).
    }
    return new RequestTimer(method, node_);
  }

 private:
  RaftServer* const node_;
};

void TimeRequests(grpc::ServerBuilder& builder, RaftServer* node) {
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      timers;
  timers.push_back(std::make_unique<RequestTimers>(node));
  builder.experimental().SetInterceptorCreators(std::move(timers));
}

}  // namespace

struct GrpcFrontend::Impl {
  explicit Impl(RaftServer* node)
      : watch(node->change_log()),
        db(node, &watch),
        peer(node),
        edge(node),
        decisions(node,
                  DecisionMakerOptions{
                      .interval_ms = node->options().decision_interval_ms,
                      .model_dir = node->options().model_dir.empty()
                                       ? node->options().data_dir + "/models"
                                       : node->options().model_dir}) {}
  WatchHub watch;
  DatabaseServiceImpl db;
  PeerServiceImpl peer;
  EdgeService edge;
  DecisionMaker decisions;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<grpc::Server> peer_server;  // With --peer_listen.
  // Keeps the health service's answer true (server/readiness.h).
  std::unique_ptr<ReadinessWatcher> readiness;
};

namespace {

constexpr uint32_t kMaxCallsPerConnection = 1024;

// A server on `address` with raftsql's limits; `port` gets the bound port.
void Configure(grpc::ServerBuilder& builder, const std::string& address,
               std::shared_ptr<grpc::ServerCredentials> credentials,
               const ServerOptions& o, int* port) {
  const size_t max_request_bytes = o.max_request_bytes;
  builder.AddListeningPort(address, std::move(credentials), port);
  // What gRPC may hold for all connections together (read and write
  // buffers, calls in flight): under pressure it shrinks buffers and sheds
  // load instead of growing without bound. And a connection opens at most
  // so many concurrent calls.
  grpc::ResourceQuota quota(absl::StrCat("raftsql-", address));
  quota.Resize(o.grpc_memory_bytes);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(kMaxCallsPerConnection));
  // gRPC listens with SO_REUSEPORT by default: a second server on a port in
  // use would start and take part of its connections. Refuse instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Bigger requests are refused by gRPC with RESOURCE_EXHAUSTED; a little
  // slack lets Execute answer its own clearer "too large" first.
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_request_bytes) +
                                   (64 << 10));
  builder.SetMaxSendMessageSize(64 << 20);
  // Our services use the callback API and hold no thread per request; the
  // synchronous ones (reflection) poll with these. gRPC's default of at
  // most 2 idle pollers made and destroyed threads under bursts.
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 256);
}

absl::Status CannotListen(const std::string& address) {
  return absl::UnavailableError(
      absl::StrCat("cannot listen on ", address, " (is the address in use?)"));
}

}  // namespace

GrpcFrontend::GrpcFrontend(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

GrpcFrontend::~GrpcFrontend() { Shutdown(0); }

void GrpcFrontend::Shutdown(int deadline_ms) {
  if (impl_->server == nullptr) return;
  impl_->readiness.reset();
  if (auto* health = impl_->server->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  impl_->peer.CancelStreams();
  impl_->decisions.Shutdown();
  impl_->edge.Shutdown();
  impl_->watch.Shutdown();
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms);
  for (std::unique_ptr<grpc::Server>* s :
       {&impl_->server, &impl_->peer_server}) {
    if (*s == nullptr) continue;
    (*s)->Shutdown(deadline);
    (*s)->Wait();
    s->reset();
  }
}

absl::StatusOr<std::unique_ptr<GrpcFrontend>> GrpcFrontend::Start(
    RaftServer* node) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  auto impl = std::make_unique<Impl>(node);
  const ServerOptions& o = node->options();
  // A separate gRPC port for PeerService, unless the stream transport has
  // that port (PeerService's divergence checks then use the client port).
  const bool separate = !o.peer_listen.empty() && !node->stream_peers();
  grpc::ServerBuilder builder;
  int port = 0;
  Configure(builder, o.listen, net::ServerCredentials(o.tls), o, &port);
  TimeRequests(builder, node);
  builder.RegisterService(&impl->db);
  builder.RegisterService(impl->edge.service());
  if (!separate) builder.RegisterService(&impl->peer);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || port == 0) return CannotListen(o.listen);
  if (separate) {
    // Peers only, and with TLS only with a certificate (mutual TLS):
    // the port can be firewalled to the cluster's own hosts.
    grpc::ServerBuilder peers;
    int peer_port = 0;
    Configure(peers, o.peer_listen, net::PeerServerCredentials(o.tls), o,
              &peer_port);
    TimeRequests(peers, node);
    peers.RegisterService(&impl->peer);
    impl->peer_server = peers.BuildAndStart();
    if (impl->peer_server == nullptr || peer_port == 0) {
      impl->server->Shutdown();
      return CannotListen(o.peer_listen);
    }
  }
  if (auto* health = impl->server->GetHealthCheckService()) {
    // NOT_SERVING until the node is ready, and whenever it is not.
    health->SetServingStatus(false);
    impl->readiness =
        std::make_unique<ReadinessWatcher>(node, [health](bool ready) {
          health->SetServingStatus(ready);
          health->SetServingStatus("raftsql.v1.DatabaseService", ready);
        });
  }
  return std::unique_ptr<GrpcFrontend>(new GrpcFrontend(std::move(impl)));
}

}  // namespace raftsql::server
