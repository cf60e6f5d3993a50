#include "server/http_v1.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

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
constexpr char kUnknown[] = "the call's outcome is unknown";

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

// For calls whose body is ignored (no request message).
struct NoBody {};

// The response message of `value`, or its error.
template <typename Response, typename T>
absl::StatusOr<Response> As(absl::StatusOr<T> value) {
  if (!value.ok()) return value.status();
  Response out;
  ToProto(*value, &out);
  return out;
}

// Registers `path` for `permission`: the body parsed as Request, then
// `run(request, caller)` returns the response message or an error.
template <typename Request, typename Run>
void Post(httplib::Server& server, const RqliteApi::Authorize& authorize,
          const std::string& path, uint32_t permission, Run run) {
  server.Post(path, [authorize, permission, run](const httplib::Request& req,
                                                 httplib::Response& res) {
    absl::StatusOr<Principal> caller = authorize(req, permission);
    if (!caller.ok()) return Fail(res, caller.status());
    absl::StatusOr<Request> r = Request{};
    if constexpr (!std::is_same_v<Request, NoBody>) r = Parse<Request>(req);
    if (!r.ok()) return Fail(res, r.status());
    auto out = run(*r, *caller);
    if (!out.ok()) return Fail(res, out.status());
    Reply(res, *out);
  });
}

}  // namespace

void RegisterV1(httplib::Server& server, RaftServer* node,
                RqliteApi::Authorize authorize) {
  const auto bound = RequestBound(node->options());
  auto deadline = [bound] { return std::chrono::steady_clock::now() + bound; };
  auto limits = [deadline] {
    sm::ReadLimits l;
    l.deadline = deadline();
    return l;
  };

  Post<v1::ExecuteRequest>(
      server, authorize, "/v1/execute", sm::kPermExecute,
      [node, deadline](const v1::ExecuteRequest& r, const Principal& caller)
          -> absl::StatusOr<v1::ExecuteResponse> {
        absl::StatusOr<sm::Command> cmd =
            CommandFromProto(r, node->options().max_request_bytes);
        if (!cmd.ok()) return cmd.status();
        cmd->user = caller.name;
        return As<v1::ExecuteResponse>(Await<sm::CommandResult>(
            [node, &cmd](RaftServer::Done<sm::CommandResult> d) {
              node->Execute(std::move(*cmd), std::move(d));
            },
            deadline(), kUnknown));
      });
  Post<v1::QueryRequest>(
      server, authorize, "/v1/query", sm::kPermQuery,
      [node, deadline, limits](const v1::QueryRequest& r, const Principal&) {
        return As<v1::QueryResponse>(Await<sm::QueryResult>(
            [node, &r, &limits](RaftServer::Done<sm::QueryResult> d) {
              node->Query(FromProto(r.statement()),
                          r.consistency() == v1::LINEARIZABLE, limits(),
                          std::move(d));
            },
            deadline(), kUnknown));
      });
  Post<v1::GetVersionRequest>(
      server, authorize, "/v1/get_version", sm::kPermQuery,
      [node, deadline, limits](const v1::GetVersionRequest& r, const Principal&)
          -> absl::StatusOr<v1::GetVersionResponse> {
        absl::StatusOr<uint64_t> v = Await<uint64_t>(
            [node, &r, &limits](RaftServer::Done<uint64_t> d) {
              node->GetVersion(r.table(), r.consistency() == v1::LINEARIZABLE,
                               limits(), std::move(d));
            },
            deadline(), kUnknown);
        if (!v.ok()) return v.status();
        v1::GetVersionResponse out;
        out.set_version(*v);
        return out;
      });
  Post<NoBody>(server, authorize, "/v1/status", sm::kPermStatus,
               [node, deadline](NoBody, const Principal&) {
                 return As<v1::StatusResponse>(Await<NodeState>(
                     [node](RaftServer::Done<NodeState> d) {
                       node->State(std::move(d));
                     },
                     deadline(), kUnknown));
               });
  Post<NoBody>(server, authorize, "/v1/get_settings", sm::kPermStatus,
               [node](NoBody, const Principal&) {
                 return As<v1::SettingsResponse>(node->Settings());
               });
  Post<v1::SetSettingRequest>(
      server, authorize, "/v1/set_setting", sm::kPermAdmin,
      [node](const v1::SetSettingRequest& r, const Principal&) {
        return As<v1::SettingsResponse>(
            node->SetSetting(r.name().substr(0, 128), r.value()));
      });
  Post<NoBody>(server, authorize, "/v1/list_users", sm::kPermStatus,
               [node](NoBody, const Principal&) {
                 return As<v1::UsersResponse>(
                     absl::StatusOr<std::vector<sm::User>>(node->Users()));
               });
  Post<v1::PutUserRequest>(
      server, authorize, "/v1/put_user", sm::kPermAdmin,
      [node](const v1::PutUserRequest& r,
             const Principal&) -> absl::StatusOr<v1::UsersResponse> {
        absl::StatusOr<uint32_t> permissions = sm::ParsePermissions(
            {r.permissions().begin(), r.permissions().end()});
        if (!permissions.ok()) return permissions.status();
        return As<v1::UsersResponse>(
            node->PutUser(r.name().substr(0, 128), r.password(), *permissions));
      });
  Post<v1::DropUserRequest>(
      server, authorize, "/v1/drop_user", sm::kPermAdmin,
      [node](const v1::DropUserRequest& r, const Principal&) {
        return As<v1::UsersResponse>(node->DropUser(r.name().substr(0, 128)));
      });
  Post<v1::AddNodeRequest>(
      server, authorize, "/v1/add_node", sm::kPermJoin,
      [node](const v1::AddNodeRequest& r, const Principal&) {
        return As<v1::AdminResponse>(
            node->AddNode(r.id(), r.address(), r.learner()));
      });
  Post<v1::RemoveNodeRequest>(
      server, authorize, "/v1/remove_node", sm::kPermRemove,
      [node](const v1::RemoveNodeRequest& r, const Principal&) {
        return As<v1::AdminResponse>(node->RemoveNode(r.id()));
      });
  Post<v1::TransferLeadershipRequest>(
      server, authorize, "/v1/transfer_leadership", sm::kPermRemove,
      [node](const v1::TransferLeadershipRequest& r, const Principal&) {
        return As<v1::AdminResponse>(node->TransferLeadership(r.id()));
      });
  Post<v1::IssueEdgeCommandRequest>(
      server, authorize, "/v1/issue_edge_command", sm::kPermExecute,
      [node, deadline](const v1::IssueEdgeCommandRequest& r, const Principal&) {
        return Await<v1::IssueEdgeCommandResponse>(
            [node, &r](RaftServer::Done<v1::IssueEdgeCommandResponse> d) {
              IssueEdgeCommand(node, r, std::move(d));
            },
            deadline(), kUnknown);
      });
  Post<v1::SetEdgeDesiredRequest>(
      server, authorize, "/v1/set_edge_desired", sm::kPermExecute,
      [node, deadline](const v1::SetEdgeDesiredRequest& r, const Principal&) {
        return Await<v1::SetEdgeDesiredResponse>(
            [node, &r](RaftServer::Done<v1::SetEdgeDesiredResponse> d) {
              SetEdgeDesired(node, r, std::move(d));
            },
            deadline(), kUnknown);
      });
}

}  // namespace raftsql::server
