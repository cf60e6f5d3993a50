#include "server/convert.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "net/client.h"
#include "server/payloads.h"

namespace raftsql::server {

grpc::Status ToGrpc(const absl::Status& s, grpc::ServerContextBase* ctx) {
  if (s.ok()) return grpc::Status::OK;
  if (auto leader = s.GetPayload(kLeaderPayload); leader.has_value()) {
    ctx->AddTrailingMetadata(net::kLeaderTrailer, std::string(*leader));
  }
  if (s.GetPayload(kNoLeaderPayload).has_value()) {
    ctx->AddTrailingMetadata("raftsql-error", "no_leader");
  }
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      sm::TruncatedMessage(s.message()));
}

void ToProto(const sm::QueryResult& r, v1::QueryResponse* response) {
  for (const std::string& c : r.columns) response->add_columns(c);
  for (const std::string& t : r.declared_types) {
    response->add_declared_types(t);
  }
  for (const std::vector<sm::Value>& row : r.rows) {
    v1::Row* out = response->add_rows();
    for (const sm::Value& v : row) ToProto(v, out->add_values());
  }
}

sm::Value FromProto(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kInteger:
      return sm::Value::Integer(v.integer());
    case v1::Value::kReal:
      return sm::Value::Real(v.real());
    case v1::Value::kText:
      return sm::Value::Text(v.text());
    case v1::Value::kTextBytes:
      return sm::Value::Text(v.text_bytes());
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
      if (sm::IsValidUtf8(v.bytes)) {
        out->set_text(v.bytes);
      } else {
        out->set_text_bytes(v.bytes);
      }
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

void ToProto(const sm::CommandResult& r, v1::ExecuteResponse* response) {
  for (const sm::StatementResult& s : r.statements) {
    v1::StatementResult* out = response->add_results();
    out->set_code(static_cast<int32_t>(s.status.code()));
    out->set_error(sm::TruncatedMessage(s.status.message()));
    out->set_rows_affected(s.rows_affected);
    out->set_last_insert_rowid(s.last_insert_rowid);
    for (const std::string& c : s.columns) out->add_columns(c);
    for (const std::vector<sm::Value>& row : s.rows) {
      v1::Row* r = out->add_rows();
      for (const sm::Value& v : row) ToProto(v, r->add_values());
    }
    out->set_rows_truncated(s.rows_truncated);
  }
  response->set_index(r.index);
  for (const auto& [table, version] : r.versions) {
    (*response->mutable_versions())[table] = version;
  }
  response->set_duplicate(r.duplicate);
}

absl::StatusOr<sm::Command> CommandFromProto(const v1::ExecuteRequest& request,
                                             size_t max_request_bytes) {
  const size_t size = request.ByteSizeLong();
  if (size > max_request_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too large: the request has ", size,
                     " bytes, the limit is ", max_request_bytes));
  }
  sm::Command cmd;
  cmd.statements.reserve(request.statements_size());
  for (const v1::Statement& s : request.statements()) {
    cmd.statements.push_back(FromProto(s));
  }
  cmd.transaction = request.transaction();
  cmd.session_id = request.session_id();
  cmd.sequence = request.sequence();
  if (cmd.session_id != 0 && cmd.sequence == 0) {
    return absl::InvalidArgumentError(
        "a session request needs a sequence number > 0");
  }
  return cmd;
}

}  // namespace raftsql::server
