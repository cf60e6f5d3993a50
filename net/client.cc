#include "net/client.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <random>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "net/grpc_transport.h"

namespace raftsql::net {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

namespace {

std::string Trailer(const grpc::ClientContext& ctx, const char* key) {
  const auto& md = ctx.GetServerTrailingMetadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

uint64_t RandomSeed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

}  // namespace

Client::Client(std::vector<std::string> endpoints, ClientOptions options)
    : endpoints_(std::move(endpoints)),
      options_(options),
      sessions_(options.session_id, RandomSeed()) {
  PrepareGrpc();
  if (!endpoints_.empty()) current_ = endpoints_.front();
}

std::string Client::current() const {
  std::lock_guard<std::mutex> l(mu_);
  return current_;
}

v1::DatabaseService::Stub& Client::StubFor(const std::string& endpoint) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [address, stub] : stubs_) {
    if (address == endpoint) return *stub;
  }
  stubs_.emplace_back(endpoint, v1::DatabaseService::NewStub(
                                    MakeChannel(endpoint, options_.tls)));
  return *stubs_.back().second;
}

template <typename Fn>
absl::Status Client::WithFailover(Fn call) {
  if (endpoints_.empty()) return absl::InvalidArgumentError("no endpoints");
  grpc::Status last;
  // An attempt that ended UNKNOWN may have taken effect: a later attempt's
  // definite refusal (UNAVAILABLE: nothing written) no longer speaks for
  // the call.
  bool unknown = false;
  for (int attempt = 0; attempt < options_.attempts; ++attempt) {
    const std::string endpoint = current();
    grpc::ClientContext ctx;
    Authorize(&ctx);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(options_.timeout_ms));
    last = call(StubFor(endpoint), ctx);
    if (last.ok()) return absl::OkStatus();
    unknown |= last.error_code() == grpc::StatusCode::UNKNOWN;
    const std::string leader = Trailer(ctx, kLeaderTrailer);
    if (last.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
        !leader.empty()) {
      std::lock_guard<std::mutex> l(mu_);
      current_ = leader;
      continue;
    }
    // A node that is down (not a node answering "no leader", which already
    // waited its bound) is skipped for the next endpoint.
    // UNKNOWN: the node took the request and stopped before its outcome;
    // the retry's session and sequence make it apply at most once.
    const bool moved_on = (last.error_code() == grpc::StatusCode::UNAVAILABLE &&
                           Trailer(ctx, "raftsql-error") != "no_leader") ||
                          last.error_code() == grpc::StatusCode::UNKNOWN;
    if (moved_on) {
      std::lock_guard<std::mutex> l(mu_);
      size_t next = attempt + 1;
      for (size_t i = 0; i < endpoints_.size(); ++i) {
        if (endpoints_[i] == endpoint) next = i + 1;
      }
      current_ = endpoints_[next % endpoints_.size()];
      continue;
    }
    break;
  }
  if (unknown && last.error_code() != grpc::StatusCode::UNKNOWN &&
      last.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::UnknownError(
        "outcome unknown: a node took the request and stopped before its "
        "outcome, and the retries did not learn it (retry with the same "
        "session); the last attempt: " +
        last.error_message());
  }
  return FromGrpc(last);
}

template <typename Request, typename Response>
absl::StatusOr<Response> Client::Call(Rpc<Request, Response> rpc,
                                      const Request& request) {
  Response response;
  absl::Status s = WithFailover(
      [&](v1::DatabaseService::Stub& stub, grpc::ClientContext& ctx) {
        return (stub.*rpc)(&ctx, request, &response);
      });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::ExecuteResponse> Client::Execute(
    v1::ExecuteRequest request) {
  // With a session a retry is safe, so an unreachable node is skipped.
  if (request.session_id() != 0) {
    return Call(&v1::DatabaseService::Stub::Execute, request);
  }
  SessionPool::Lease session = sessions_.Acquire();
  request.set_session_id(session.id());
  request.set_sequence(session.NextSequence());
  return Call(&v1::DatabaseService::Stub::Execute, request);
}

absl::StatusOr<v1::QueryResponse> Client::Query(
    const v1::QueryRequest& request) {
  return Call(&v1::DatabaseService::Stub::Query, request);
}

absl::Status Client::QueryStream(
    const v1::QueryRequest& request,
    const std::function<bool(const v1::QueryResponse& page)>& page) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::string endpoint = current();
    grpc::ClientContext ctx;
    Authorize(&ctx);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(options_.timeout_ms));
    auto reader = StubFor(endpoint).QueryStream(&ctx, request);
    v1::QueryResponse message;
    bool stopped = false;
    while (!stopped && reader->Read(&message)) stopped = !page(message);
    if (stopped) ctx.TryCancel();
    const grpc::Status end = reader->Finish();
    if (stopped) return absl::CancelledError("the reader stopped");
    const std::string leader = Trailer(ctx, kLeaderTrailer);
    if (end.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
        !leader.empty() && attempt == 0) {
      std::lock_guard<std::mutex> l(mu_);
      current_ = leader;
      continue;
    }
    return FromGrpc(end);
  }
  return absl::UnavailableError("no node answered the stream");
}

absl::Status Client::Backup(
    const std::function<bool(const v1::BackupChunk& chunk)>& chunk) {
  const std::string endpoint = current();
  grpc::ClientContext ctx;
  Authorize(&ctx);
  auto reader = StubFor(endpoint).Backup(&ctx, v1::BackupRequest());
  v1::BackupChunk message;
  bool stopped = false;
  while (!stopped && reader->Read(&message)) stopped = !chunk(message);
  if (stopped) ctx.TryCancel();
  const grpc::Status end = reader->Finish();
  if (stopped) return absl::CancelledError("the reader stopped");
  return FromGrpc(end);
}

absl::Status Client::Watch(
    v1::WatchRequest request,
    const std::function<bool(const v1::WatchResponse& message)>& message,
    int resumes) {
  size_t next = 0;
  for (int quiet = 0; quiet <= resumes; ++quiet) {
    const std::string endpoint = current();
    grpc::ClientContext ctx;
    Authorize(&ctx);
    auto reader = StubFor(endpoint).Watch(&ctx, request);
    v1::WatchResponse m;
    bool stopped = false;
    while (!stopped && reader->Read(&m)) {
      quiet = 0;
      uint64_t last = m.index();
      for (const v1::Change& c : m.changes()) last = std::max(last, c.index());
      request.set_from_index(last + 1);
      stopped = !message(m);
    }
    if (stopped) ctx.TryCancel();
    const grpc::Status end = reader->Finish();
    if (stopped) return absl::CancelledError("the watcher stopped");
    if (end.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return FromGrpc(end);
    }
    // The node stopped or is unreachable: the next one, from where we are.
    std::lock_guard<std::mutex> l(mu_);
    current_ = endpoints_[next++ % endpoints_.size()];
    if (current_ == endpoint && endpoints_.size() > 1) {
      current_ = endpoints_[next++ % endpoints_.size()];
    }
  }
  return absl::UnavailableError("no node served the watch");
}

absl::StatusOr<uint64_t> Client::GetVersion(const std::string& table) {
  v1::GetVersionRequest request;
  request.set_table(table);
  auto r = Call(&v1::DatabaseService::Stub::GetVersion, request);
  if (!r.ok()) return r.status();
  return r->version();
}

absl::StatusOr<v1::StatusResponse> Client::Status(const std::string& endpoint) {
  grpc::ClientContext ctx;
  Authorize(&ctx);
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(options_.timeout_ms));
  v1::StatusResponse response;
  absl::Status s =
      FromGrpc(StubFor(endpoint).Status(&ctx, v1::StatusRequest(), &response));
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::AdminResponse> Client::AddNode(uint64_t id,
                                                  const std::string& address,
                                                  bool learner) {
  v1::AddNodeRequest request;
  request.set_id(id);
  request.set_address(address);
  request.set_learner(learner);
  return Call(&v1::DatabaseService::Stub::AddNode, request);
}

absl::StatusOr<v1::AdminResponse> Client::RemoveNode(uint64_t id) {
  v1::RemoveNodeRequest request;
  request.set_id(id);
  return Call(&v1::DatabaseService::Stub::RemoveNode, request);
}

absl::StatusOr<v1::SettingsResponse> Client::SetSetting(const std::string& name,
                                                        uint64_t value) {
  v1::SetSettingRequest request;
  request.set_name(name);
  request.set_value(value);
  return Call(&v1::DatabaseService::Stub::SetSetting, request);
}

absl::StatusOr<v1::SettingsResponse> Client::GetSettings() {
  return Call(&v1::DatabaseService::Stub::GetSettings,
              v1::GetSettingsRequest());
}

std::string BasicAuthorization(const std::string& user,
                               const std::string& password) {
  return absl::StrCat("Basic ", absl::Base64Escape(user + ":" + password));
}

void Client::Authorize(grpc::ClientContext* ctx) const {
  if (!options_.user.empty()) {
    ctx->AddMetadata("authorization",
                     BasicAuthorization(options_.user, options_.password));
  }
}

absl::StatusOr<v1::UsersResponse> Client::PutUser(
    const std::string& name, const std::string& password,
    const std::vector<std::string>& permissions) {
  v1::PutUserRequest request;
  request.set_name(name);
  request.set_password(password);
  for (const std::string& p : permissions) request.add_permissions(p);
  return Call(&v1::DatabaseService::Stub::PutUser, request);
}

absl::StatusOr<v1::UsersResponse> Client::DropUser(const std::string& name) {
  v1::DropUserRequest request;
  request.set_name(name);
  return Call(&v1::DatabaseService::Stub::DropUser, request);
}

absl::StatusOr<v1::UsersResponse> Client::ListUsers() {
  return Call(&v1::DatabaseService::Stub::ListUsers, v1::ListUsersRequest());
}

absl::StatusOr<v1::IssueEdgeCommandResponse> Client::IssueEdgeCommand(
    const v1::IssueEdgeCommandRequest& request) {
  return Call(&v1::DatabaseService::Stub::IssueEdgeCommand, request);
}

absl::StatusOr<v1::SetEdgeDesiredResponse> Client::SetEdgeDesired(
    const std::string& device, const std::string& patch_json) {
  v1::SetEdgeDesiredRequest request;
  request.set_device(device);
  request.set_patch_json(patch_json);
  return Call(&v1::DatabaseService::Stub::SetEdgeDesired, request);
}

absl::StatusOr<v1::AdminResponse> Client::TransferLeadership(uint64_t id) {
  v1::TransferLeadershipRequest request;
  request.set_id(id);
  return Call(&v1::DatabaseService::Stub::TransferLeadership, request);
}

absl::StatusOr<std::string> UnaryBytes(const std::string& endpoint,
                                       const std::string& method,
                                       const std::string& request,
                                       int timeout_ms, const Tls& tls) {
  grpc::GenericStub stub(MakeChannel(endpoint, tls));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(timeout_ms));
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1), out;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &in, &out,
                 [&done](grpc::Status st) { done.set_value(std::move(st)); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) return FromGrpc(status);
  std::vector<grpc::Slice> slices;
  if (!out.Dump(&slices).ok()) {
    return absl::DataLossError("unreadable response");
  }
  std::string bytes;
  for (const grpc::Slice& sl : slices) {
    bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  }
  return bytes;
}

}  // namespace raftsql::net
