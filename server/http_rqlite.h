// rqlite's HTTP API on a RaftServer (rqlite.io/docs/api, version 8):
// /db/execute, /db/query, /db/request, /status, /nodes, /readyz, and
// /livez; and /metrics (Prometheus). Where raftsql answers differently (README,
// "The HTTP API"):
// - level: none reads locally; weak reads locally on the node that
//   believes it leads, linearizably (ReadIndex) elsewhere; linearizable
//   and strong read linearizably; auto is none on a learner, weak on a
//   voter; no level means linearizable (rqlite's default is weak);
//   freshness is accepted and not checked;
// - redirect: any node serves every request (writes go through Raft from
//   any node), so none is redirected;
// - queue (queued writes) runs the write at once and answers its results;
// - a transaction on /db/request holds writes only.
#ifndef RAFTSQL_SERVER_HTTP_RQLITE_H_
#define RAFTSQL_SERVER_HTTP_RQLITE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "server/auth.h"
#include "server/http_frontend.h"
#include "server/raft_server.h"

namespace httplib {
class ContentReader;
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace raftsql::server {

class RqliteApi {
 public:
  // The caller of a request if it holds every bit of `needed`.
  using Authorize = std::function<absl::StatusOr<Principal>(
      const httplib::Request&, uint32_t needed)>;
  RqliteApi(RaftServer* node, const HttpOptions& options, Authorize authorize);
  void Register(httplib::Server& server);

 private:
  using Clock = std::chrono::steady_clock;
  struct Call;

  void Execute(Call& call);
  void Query(Call& call);
  void Request(Call& call);
  void Status(Call& call);
  void Nodes(Call& call);
  void Metrics(Call& call);
  void Backup(Call& call);
  // fmt=sql: the image held by `source` as SQL text (DumpSqliteFile).
  void BackupSql(Call& call, sm::ImageSource& source, uint64_t index,
                 uint64_t size, bool compress);
  void Load(const httplib::Request& req, httplib::Response& res,
            const httplib::ContentReader& content);
  void Readyz(const httplib::Request& req, httplib::Response& res);
  void Livez(httplib::Response& res);

  // One request's statements as one command (Execute), or each its own
  // (Query, and Execute when the command is refused for one statement).
  absl::StatusOr<sm::CommandResult> RunCommand(Call& call,
                                               std::vector<sm::Statement> s,
                                               bool transaction = false);
  absl::StatusOr<sm::QueryResult> RunQuery(Call& call, sm::Statement s);
  // A command's statement results into the answer; one statement run as a
  // command of its own, its result or error into the answer; the answer
  // of writes written (with raft_index if asked).
  void Push(Call& call, const sm::CommandResult& r);
  void RunAlone(Call& call, const sm::Statement& statement);
  void FinishWrites(Call& call);
  // OK unless this follower last heard from its leader longer than
  // `freshness` (a Go duration) ago (rqlite's freshness).
  absl::Status CheckFreshness(const std::string& freshness);
  absl::StatusOr<NodeState> State(Clock::time_point deadline);

  RaftServer* const node_;
  const HttpOptions options_;
  const Authorize authorize_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_HTTP_RQLITE_H_
