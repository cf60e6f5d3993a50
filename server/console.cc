#include "server/console.h"

#include <chrono>
#include <memory>

#include "ai/rules.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/await.h"
#include "server/rqlite_json.h"

namespace raftsql::server {

namespace {

using nlohmann::json;

// {"command_id": ..., "approve": true|false}: the command's approval read
// linearizably, then answered through Raft (ai::AnswerApproval).
absl::Status Answer(RaftServer* node, const std::string& body,
                    const std::string& user) {
  const json request = json::parse(body, nullptr, false);
  if (!request.is_object() || !request.contains("command_id") ||
      !request["command_id"].is_string() || !request.contains("approve") ||
      !request["approve"].is_boolean()) {
    return absl::InvalidArgumentError(
        "want {\"command_id\": \"...\", \"approve\": true|false}");
  }
  const std::string id = request["command_id"].get<std::string>();
  absl::StatusOr<sm::QueryResult> rows = Await<sm::QueryResult>(
      [node, &id](RaftServer::Done<sm::QueryResult> done) {
        node->Query(ai::ApprovalQuery(id), /*linearizable=*/true,
                    sm::ReadLimits{}, std::move(done));
      },
      std::chrono::steady_clock::now() + RequestBound(node->options()),
      "the approval");
  if (!rows.ok()) return rows.status();
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count();
  absl::StatusOr<sm::Command> command =
      ai::AnswerApproval(*rows, request["approve"].get<bool>(), now_ms);
  if (!command.ok()) return command.status();
  command->user = user;
  absl::StatusOr<sm::CommandResult> done = Await<sm::CommandResult>(
      [node, &command](RaftServer::Done<sm::CommandResult> d) {
        node->Execute(std::move(*command), std::move(d));
      },
      std::chrono::steady_clock::now() + RequestBound(node->options()),
      "the approval");
  if (!done.ok()) return done.status();
  return done->Cause();
}

}  // namespace

void RegisterConsole(httplib::Server& server, RaftServer* node,
                     RqliteApi::Authorize authorize) {
  // The page itself shows nothing: each of its calls needs its permission.
  server.Get("/console", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kConsolePage, "text/html; charset=utf-8");
  });
  server.Post("/console/approval", [node, authorize](
                                       const httplib::Request& req,
                                       httplib::Response& res) {
    absl::Status s;
    absl::StatusOr<Principal> caller = authorize(req, sm::kPermExecute);
    s = caller.ok() ? Answer(node, req.body, caller->name) : caller.status();
    res.status = s.ok() ? 200 : rqlite::HttpStatusOf(s.code());
    if (absl::IsUnauthenticated(s)) {
      res.set_header("WWW-Authenticate", "Basic realm=\"raftsql\"");
    }
    res.set_content(
        rqlite::Dump(s.ok()
                         ? json{{"ok", true}}
                         : json{{"error", sm::TruncatedMessage(s.message())}},
                     false),
        "application/json; charset=utf-8");
  });
}

}  // namespace raftsql::server
