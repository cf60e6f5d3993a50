#include "server/service.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/client.h"
#include "net/convert.h"
#include "net/raftsql.grpc.pb.h"

namespace raftsql::server {

namespace {

sm::Value FromProto(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kInteger:
      return sm::Value::Integer(v.integer());
    case v1::Value::kReal:
      return sm::Value::Real(v.real());
    case v1::Value::kText:
      return sm::Value::Text(v.text());
    case v1::Value::kBlob:
      return sm::Value::Blob(v.blob());
    default:
      return sm::Value::Null();
  }
}

void ToProto(const sm::Value& v, v1::Value* out) {
  switch (v.type) {
    case sm::Value::Type::kNull:
      out->set_null_value(true);
      break;
    case sm::Value::Type::kInteger:
      out->set_integer(v.integer);
      break;
    case sm::Value::Type::kReal:
      out->set_real(v.real);
      break;
    case sm::Value::Type::kText:
      out->set_text(v.bytes);
      break;
    case sm::Value::Type::kBlob:
      out->set_blob(v.bytes);
      break;
  }
}

sm::Statement FromProto(const v1::Statement& s) {
  sm::Statement out;
  out.sql = s.sql();
  for (const v1::Value& v : s.positional()) {
    out.positional.push_back(FromProto(v));
  }
  for (const auto& [name, v] : s.named()) {
    out.named.emplace_back(name, FromProto(v));
  }
  return out;
}

void ToProto(const std::vector<Member>& members, v1::AdminResponse* out) {
  for (const Member& m : members) {
    v1::Member* p = out->add_members();
    p->set_id(m.id);
    p->set_address(m.address);
    p->set_voter(m.voter);
  }
}

grpc::Status ToGrpc(const absl::Status& s, grpc::ServerContext* ctx) {
  if (s.ok()) return grpc::Status::OK;
  if (auto leader = s.GetPayload(kLeaderPayload); leader.has_value()) {
    ctx->AddTrailingMetadata(net::kLeaderTrailer, std::string(*leader));
  }
  if (s.GetPayload(kNoLeaderPayload).has_value()) {
    ctx->AddTrailingMetadata("raftsql-error", "no_leader");
  }
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

class DatabaseServiceImpl final : public v1::DatabaseService::Service {
 public:
  explicit DatabaseServiceImpl(RaftServer* node) : node_(node) {}

  grpc::Status Execute(grpc::ServerContext* ctx,
                       const v1::ExecuteRequest* request,
                       v1::ExecuteResponse* response) override {
    const size_t size = request->ByteSizeLong();
    if (size > node_->options().max_request_bytes) {
      return ToGrpc(
          absl::ResourceExhaustedError(absl::StrCat(
              "too large: the request has ", size, " bytes, the limit is ",
              node_->options().max_request_bytes)),
          ctx);
    }
    sm::Command cmd;
    for (const v1::Statement& s : request->statements()) {
      cmd.statements.push_back(FromProto(s));
    }
    cmd.transaction = request->transaction();
    cmd.session_id = request->session_id();
    cmd.sequence = request->sequence();
    if (cmd.session_id != 0 && cmd.sequence == 0) {
      return ToGrpc(absl::InvalidArgumentError(
                        "a session request needs a sequence number > 0"),
                    ctx);
    }
    absl::StatusOr<sm::CommandResult> r = node_->Execute(std::move(cmd));
    if (!r.ok()) return ToGrpc(r.status(), ctx);
    for (const sm::StatementResult& s : r->statements) {
      v1::StatementResult* out = response->add_results();
      out->set_code(static_cast<int32_t>(s.status.code()));
      out->set_error(std::string(s.status.message()));
      out->set_rows_affected(s.rows_affected);
      out->set_last_insert_rowid(s.last_insert_rowid);
    }
    response->set_index(r->index);
    for (const auto& [table, version] : r->versions) {
      (*response->mutable_versions())[table] = version;
    }
    response->set_duplicate(r->duplicate);
    return grpc::Status::OK;
  }

  grpc::Status Query(grpc::ServerContext* ctx, const v1::QueryRequest* request,
                     v1::QueryResponse* response) override {
    absl::StatusOr<sm::QueryResult> r =
        node_->Query(FromProto(request->statement()),
                     request->consistency() == v1::LINEARIZABLE);
    if (!r.ok()) return ToGrpc(r.status(), ctx);
    for (const std::string& c : r->columns) response->add_columns(c);
    for (const std::vector<sm::Value>& row : r->rows) {
      v1::Row* out = response->add_rows();
      for (const sm::Value& v : row) ToProto(v, out->add_values());
    }
    return grpc::Status::OK;
  }

  grpc::Status GetVersion(grpc::ServerContext* ctx,
                          const v1::GetVersionRequest* request,
                          v1::GetVersionResponse* response) override {
    absl::StatusOr<uint64_t> r = node_->GetVersion(
        request->table(), request->consistency() == v1::LINEARIZABLE);
    if (!r.ok()) return ToGrpc(r.status(), ctx);
    response->set_version(*r);
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext* ctx, const v1::StatusRequest*,
                      v1::StatusResponse* response) override {
    absl::StatusOr<NodeState> s = node_->State();
    if (!s.ok()) return ToGrpc(s.status(), ctx);
    response->set_id(s->id);
    response->set_role(s->role);
    response->set_term(s->term);
    response->set_leader(s->leader);
    response->set_leader_address(s->leader_address);
    response->set_commit_index(s->commit);
    response->set_applied_index(s->applied);
    response->set_last_index(s->last_index);
    response->set_snapshot_index(s->snapshot_index);
    response->set_divergence_hash(s->divergence_hash);
    for (const Member& m : s->members) {
      if (m.voter) {
        response->add_voters(m.id);
      } else {
        response->add_learners(m.id);
      }
      v1::Member* p = response->add_members();
      p->set_id(m.id);
      p->set_address(m.address);
      p->set_voter(m.voter);
    }
    return grpc::Status::OK;
  }

  grpc::Status AddNode(grpc::ServerContext* ctx,
                       const v1::AddNodeRequest* request,
                       v1::AdminResponse* response) override {
    return Admin(
        ctx,
        node_->AddNode(request->id(), request->address(), request->learner()),
        response);
  }

  grpc::Status RemoveNode(grpc::ServerContext* ctx,
                          const v1::RemoveNodeRequest* request,
                          v1::AdminResponse* response) override {
    return Admin(ctx, node_->RemoveNode(request->id()), response);
  }

  grpc::Status TransferLeadership(grpc::ServerContext* ctx,
                                  const v1::TransferLeadershipRequest* request,
                                  v1::AdminResponse* response) override {
    return Admin(ctx, node_->TransferLeadership(request->id()), response);
  }

 private:
  grpc::Status Admin(grpc::ServerContext* ctx,
                     const absl::StatusOr<std::vector<Member>>& r,
                     v1::AdminResponse* response) {
    if (!r.ok()) return ToGrpc(r.status(), ctx);
    ToProto(*r, response);
    return grpc::Status::OK;
  }

  RaftServer* const node_;
};

class PeerServiceImpl final : public v1::PeerService::Service {
 public:
  explicit PeerServiceImpl(RaftServer* node) : node_(node) {}

  grpc::Status Send(grpc::ServerContext*, const v1::RaftBatch* request,
                    v1::RaftBatchAck*) override {
    std::vector<core::Message> messages;
    messages.reserve(request->messages_size());
    for (const v1::RaftMessage& p : request->messages()) {
      absl::StatusOr<core::Message> m = net::FromProto(p);
      if (!m.ok()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            std::string(m.status().message()));
      }
      messages.push_back(std::move(*m));
    }
    if (!messages.empty()) {
      node_->LearnAddress(messages.front().from, request->from_address());
    }
    node_->Deliver(std::move(messages));
    return grpc::Status::OK;
  }

 private:
  RaftServer* const node_;
};

}  // namespace

struct GrpcFrontend::Impl {
  explicit Impl(RaftServer* node) : db(node), peer(node) {}
  DatabaseServiceImpl db;
  PeerServiceImpl peer;
  std::unique_ptr<grpc::Server> server;
};

GrpcFrontend::GrpcFrontend(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

GrpcFrontend::~GrpcFrontend() { Shutdown(0); }

void GrpcFrontend::Shutdown(int deadline_ms) {
  if (impl_->server == nullptr) return;
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(deadline_ms));
  impl_->server->Wait();
  impl_->server.reset();
}

absl::StatusOr<std::unique_ptr<GrpcFrontend>> GrpcFrontend::Start(
    RaftServer* node) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  auto impl = std::make_unique<Impl>(node);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(node->options().listen,
                           grpc::InsecureServerCredentials(), &port);
  // Bigger requests are refused by gRPC with RESOURCE_EXHAUSTED; a little
  // slack lets Execute answer its own clearer "too large" first.
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(node->options().max_request_bytes) + (64 << 10));
  builder.SetMaxSendMessageSize(64 << 20);
  // Handlers block until their write commits, so each takes a polling
  // thread; with gRPC's default of at most 2 idle pollers, every burst made
  // and destroyed threads (500 clone() per second at 16 clients). Keep them.
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 256);
  builder.RegisterService(&impl->db);
  builder.RegisterService(&impl->peer);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", node->options().listen));
  }
  if (auto* health = impl->server->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus("raftsql.v1.DatabaseService", true);
  }
  return std::unique_ptr<GrpcFrontend>(new GrpcFrontend(std::move(impl)));
}

}  // namespace raftsql::server
