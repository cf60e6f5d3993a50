#include "server/http_v1.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "net/raftsql.pb.h"
#include "nlohmann/json.hpp"
#include "server/await.h"
#include "server/convert.h"
#include "server/edge_service.h"
#include "server/responses.h"
#include "server/rqlite_json.h"

namespace raftsql::server {

namespace {

using nlohmann::json;

constexpr char kJson[] = "application/json; charset=utf-8";

void Fail(httplib::Response& res, const absl::Status& s) {
  res.status = rqlite::HttpStatusOf(s.code());
  if (absl::IsUnauthenticated(s)) {
    res.set_header("WWW-Authenticate", "Basic realm=\"raftsql\"");
  }
  res.set_content(json{{"code", absl::StatusCodeToString(s.code())},
                       {"error", sm::TruncatedMessage(s.message())}}
                      .dump(-1, ' ', false, json::error_handler_t::replace),
                  kJson);
}

template <typename Message>
void Reply(httplib::Response& res, const Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  const auto s = google::protobuf::util::MessageToJsonString(m, &out, o);
  if (!s.ok()) {
    return Fail(res, absl::InternalError(std::string(s.message())));
  }
  res.set_content(out, kJson);
}

template <typename Message>
absl::StatusOr<Message> Parse(const httplib::Request& req) {
  Message m;
  if (req.body.empty()) return m;
  google::protobuf::util::JsonParseOptions o;
  const auto s = google::protobuf::util::JsonStringToMessage(req.body, &m, o);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the body is not a ", Message::descriptor()->full_name(),
                     " in proto3 JSON: ", std::string(s.message())));
  }
  return m;
}

}  // namespace

void RegisterV1(httplib::Server& server, RaftServer* node,
                RqliteApi::Authorize authorize) {
  const auto bound = RequestBound(node->options());
  // A handler for `permission`: the call's body parsed as Request, `run`
  // answering the response or an error.
  auto post = [&server, authorize](const std::string& path, uint32_t permission,
                                   auto run) {
    using Fn = decltype(run);
    server.Post(path, [authorize, permission, run = Fn(run)](
                          const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<Principal> caller = authorize(req, permission);
      if (!caller.ok()) return Fail(res, caller.status());
      run(req, res, *caller);
    });
  };

  post("/v1/execute", sm::kPermExecute,
       [node, bound](const httplib::Request& req, httplib::Response& res,
                     const Principal& caller) {
         absl::StatusOr<v1::ExecuteRequest> r = Parse<v1::ExecuteRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         absl::StatusOr<sm::Command> cmd =
             CommandFromProto(*r, node->options().max_request_bytes);
         if (!cmd.ok()) return Fail(res, cmd.status());
         cmd->user = caller.name;
         absl::StatusOr<sm::CommandResult> done = Await<sm::CommandResult>(
             [node, &cmd](RaftServer::Done<sm::CommandResult> d) {
               node->Execute(std::move(*cmd), std::move(d));
             },
             std::chrono::steady_clock::now() + bound,
             "the call's outcome is unknown");
         if (!done.ok()) return Fail(res, done.status());
         v1::ExecuteResponse out;
         ToProto(*done, &out);
         Reply(res, out);
       });
  post("/v1/query", sm::kPermQuery,
       [node, bound](const httplib::Request& req, httplib::Response& res,
                     const Principal&) {
         absl::StatusOr<v1::QueryRequest> r = Parse<v1::QueryRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         sm::ReadLimits limits;
         limits.deadline = std::chrono::steady_clock::now() + bound;
         absl::StatusOr<sm::QueryResult> done = Await<sm::QueryResult>(
             [node, &r, &limits](RaftServer::Done<sm::QueryResult> d) {
               node->Query(FromProto(r->statement()),
                           r->consistency() == v1::LINEARIZABLE, limits,
                           std::move(d));
             },
             std::chrono::steady_clock::now() + bound,
             "the call's outcome is unknown");
         if (!done.ok()) return Fail(res, done.status());
         v1::QueryResponse out;
         ToProto(*done, &out);
         Reply(res, out);
       });
  post("/v1/get_version", sm::kPermQuery,
       [node, bound](const httplib::Request& req, httplib::Response& res,
                     const Principal&) {
         absl::StatusOr<v1::GetVersionRequest> r =
             Parse<v1::GetVersionRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         sm::ReadLimits limits;
         limits.deadline = std::chrono::steady_clock::now() + bound;
         absl::StatusOr<uint64_t> v = Await<uint64_t>(
             [node, &r, &limits](RaftServer::Done<uint64_t> d) {
               node->GetVersion(r->table(),
                                r->consistency() == v1::LINEARIZABLE, limits,
                                std::move(d));
             },
             std::chrono::steady_clock::now() + bound,
             "the call's outcome is unknown");
         if (!v.ok()) return Fail(res, v.status());
         v1::GetVersionResponse out;
         out.set_version(*v);
         Reply(res, out);
       });
  post("/v1/status", sm::kPermStatus,
       [node, bound](const httplib::Request&, httplib::Response& res,
                     const Principal&) {
         absl::StatusOr<NodeState> s = Await<NodeState>(
             [node](RaftServer::Done<NodeState> d) {
               node->State(std::move(d));
             },
             std::chrono::steady_clock::now() + bound,
             "the call's outcome is unknown");
         if (!s.ok()) return Fail(res, s.status());
         v1::StatusResponse out;
         ToProto(*s, &out);
         Reply(res, out);
       });
  post("/v1/get_settings", sm::kPermStatus,
       [node](const httplib::Request&, httplib::Response& res,
              const Principal&) {
         absl::StatusOr<sm::WriteSettings> s = node->Settings();
         if (!s.ok()) return Fail(res, s.status());
         v1::SettingsResponse out;
         ToProto(*s, &out);
         Reply(res, out);
       });
  post("/v1/set_setting", sm::kPermAdmin,
       [node](const httplib::Request& req, httplib::Response& res,
              const Principal&) {
         absl::StatusOr<v1::SetSettingRequest> r =
             Parse<v1::SetSettingRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         absl::StatusOr<sm::WriteSettings> s =
             node->SetSetting(r->name().substr(0, 128), r->value());
         if (!s.ok()) return Fail(res, s.status());
         v1::SettingsResponse out;
         ToProto(*s, &out);
         Reply(res, out);
       });
  post("/v1/list_users", sm::kPermStatus,
       [node](const httplib::Request&, httplib::Response& res,
              const Principal&) {
         v1::UsersResponse out;
         ToProto(node->Users(), &out);
         Reply(res, out);
       });
  post("/v1/put_user", sm::kPermAdmin,
       [node](const httplib::Request& req, httplib::Response& res,
              const Principal&) {
         absl::StatusOr<v1::PutUserRequest> r = Parse<v1::PutUserRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         absl::StatusOr<uint32_t> permissions = sm::ParsePermissions(
             {r->permissions().begin(), r->permissions().end()});
         if (!permissions.ok()) return Fail(res, permissions.status());
         auto users = node->PutUser(r->name().substr(0, 128), r->password(),
                                    *permissions);
         if (!users.ok()) return Fail(res, users.status());
         v1::UsersResponse out;
         ToProto(*users, &out);
         Reply(res, out);
       });
  post("/v1/drop_user", sm::kPermAdmin,
       [node](const httplib::Request& req, httplib::Response& res,
              const Principal&) {
         absl::StatusOr<v1::DropUserRequest> r =
             Parse<v1::DropUserRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         auto users = node->DropUser(r->name().substr(0, 128));
         if (!users.ok()) return Fail(res, users.status());
         v1::UsersResponse out;
         ToProto(*users, &out);
         Reply(res, out);
       });
  post("/v1/add_node", sm::kPermJoin,
       [node](const httplib::Request& req, httplib::Response& res,
              const Principal&) {
         absl::StatusOr<v1::AddNodeRequest> r = Parse<v1::AddNodeRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         auto members = node->AddNode(r->id(), r->address(), r->learner());
         if (!members.ok()) return Fail(res, members.status());
         v1::AdminResponse out;
         ToProto(*members, &out);
         Reply(res, out);
       });
  post("/v1/remove_node", sm::kPermRemove,
       [node](const httplib::Request& req, httplib::Response& res,
              const Principal&) {
         absl::StatusOr<v1::RemoveNodeRequest> r =
             Parse<v1::RemoveNodeRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         auto members = node->RemoveNode(r->id());
         if (!members.ok()) return Fail(res, members.status());
         v1::AdminResponse out;
         ToProto(*members, &out);
         Reply(res, out);
       });
  post("/v1/transfer_leadership", sm::kPermRemove,
       [node](const httplib::Request& req, httplib::Response& res,
              const Principal&) {
         absl::StatusOr<v1::TransferLeadershipRequest> r =
             Parse<v1::TransferLeadershipRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         auto members = node->TransferLeadership(r->id());
         if (!members.ok()) return Fail(res, members.status());
         v1::AdminResponse out;
         ToProto(*members, &out);
         Reply(res, out);
       });
  post("/v1/issue_edge_command", sm::kPermExecute,
       [node, bound](const httplib::Request& req, httplib::Response& res,
                     const Principal&) {
         absl::StatusOr<v1::IssueEdgeCommandRequest> r =
             Parse<v1::IssueEdgeCommandRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         auto out = Await<v1::IssueEdgeCommandResponse>(
             [node, &r](RaftServer::Done<v1::IssueEdgeCommandResponse> d) {
               IssueEdgeCommand(node, *r, std::move(d));
             },
             std::chrono::steady_clock::now() + bound,
             "the call's outcome is unknown");
         if (!out.ok()) return Fail(res, out.status());
         Reply(res, *out);
       });
  post("/v1/set_edge_desired", sm::kPermExecute,
       [node, bound](const httplib::Request& req, httplib::Response& res,
                     const Principal&) {
         absl::StatusOr<v1::SetEdgeDesiredRequest> r =
             Parse<v1::SetEdgeDesiredRequest>(req);
         if (!r.ok()) return Fail(res, r.status());
         auto out = Await<v1::SetEdgeDesiredResponse>(
             [node, &r](RaftServer::Done<v1::SetEdgeDesiredResponse> d) {
               SetEdgeDesired(node, *r, std::move(d));
             },
             std::chrono::steady_clock::now() + bound,
             "the call's outcome is unknown");
         if (!out.ok()) return Fail(res, out.status());
         Reply(res, *out);
       });
}

}  // namespace raftsql::server
