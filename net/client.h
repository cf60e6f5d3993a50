// Client: a DatabaseService client over a list of node endpoints that
// follows the leader on its own.
// - NOT_LEADER answers (FAILED_PRECONDITION with the leader's address in the
//   "raftsql-leader" trailer) switch to that node and retry.
// - A node that cannot be reached is skipped for the next one.
// - Writes carry a session id and a fresh sequence number, so a retry after
//   an unknown outcome applies at most once (Raft thesis §6.3). Concurrent
//   writes each go in a session of their own (session_pool.h).
// Thread-safe: concurrent calls share the endpoint list.
#ifndef RAFTSQL_NET_CLIENT_H_
#define RAFTSQL_NET_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/raftsql.grpc.pb.h"
#include "net/session_pool.h"
#include "net/tls.h"

namespace grpc {
class ClientContext;
class Status;
}  // namespace grpc

namespace raftsql::net {

inline constexpr char kLeaderTrailer[] = "raftsql-leader";

// gRPC and absl share their code numbers.
absl::Status FromGrpc(const grpc::Status& status);

struct ClientOptions {
  int timeout_ms = 10'000;  // Per attempt.
  int attempts = 6;         // Endpoints tried before giving up.
  // 0: sessions with random ids, one per concurrent write. Otherwise this
  // one session, which concurrent writes take in turn.
  uint64_t session_id = 0;
  // The cluster CA (and a client certificate, if it authenticates by one);
  // plaintext without a CA.
  Tls tls;
  // A stored user's name and password (sent as Basic credentials with
  // every call); empty to authenticate by the certificate alone.
  std::string user;
  std::string password;
};

// The "authorization" metadata for a user and password.
std::string BasicAuthorization(const std::string& user,
                               const std::string& password);

class Client {
 public:
  Client(std::vector<std::string> endpoints, ClientOptions options = {});

  // Sets session_id/sequence unless the request has them. A request that
  // timed out (outcome unknown) may be retried with the same request: it
  // then applies at most once.
  absl::StatusOr<v1::ExecuteResponse> Execute(v1::ExecuteRequest request);
  absl::StatusOr<v1::QueryResponse> Query(const v1::QueryRequest& request);
  // QueryStream: `page` is called with each page as it arrives (the first
  // carries the columns); it returns false to stop reading (CANCELLED).
  // On the current endpoint, following a leader hint once; the whole read
  // runs under timeout_ms.
  absl::Status QueryStream(
      const v1::QueryRequest& request,
      const std::function<bool(const v1::QueryResponse& page)>& page);
  // Backup: the database's file of one applied state, chunk by chunk (the
  // first names its index and size), from the current endpoint; `chunk`
  // returns false to stop (CANCELLED). No deadline: a file of any size.
  absl::Status Backup(
      const std::function<bool(const v1::BackupChunk& chunk)>& chunk);
  // Watch: each message to `message` (false stops the watch: CANCELLED).
  // A watch has no deadline. When its node stops or cannot be reached it
  // resumes on the next endpoint from the last index received + 1, at
  // most `resumes` times in a row without a message; OUT_OF_RANGE (that
  // index is no longer held) and refusals end it.
  absl::Status Watch(
      v1::WatchRequest request,
      const std::function<bool(const v1::WatchResponse& message)>& message,
      int resumes = 4);
  absl::StatusOr<uint64_t> GetVersion(const std::string& table);
  // From one endpoint, without following anybody.
  absl::StatusOr<v1::StatusResponse> Status(const std::string& endpoint);
  // `learner`: it stays a learner (else it is promoted once caught up).
  absl::StatusOr<v1::AdminResponse> AddNode(uint64_t id,
                                            const std::string& address,
                                            bool learner = false);
  absl::StatusOr<v1::AdminResponse> RemoveNode(uint64_t id);
  absl::StatusOr<v1::AdminResponse> TransferLeadership(uint64_t id);
  absl::StatusOr<v1::SettingsResponse> SetSetting(const std::string& name,
                                                  uint64_t value);
  absl::StatusOr<v1::SettingsResponse> GetSettings();
  absl::StatusOr<v1::UsersResponse> PutUser(
      const std::string& name, const std::string& password,
      const std::vector<std::string>& permissions);
  absl::StatusOr<v1::UsersResponse> DropUser(const std::string& name);
  absl::StatusOr<v1::UsersResponse> ListUsers();
  absl::StatusOr<v1::IssueEdgeCommandResponse> IssueEdgeCommand(
      const v1::IssueEdgeCommandRequest& request);
  absl::StatusOr<v1::SetEdgeDesiredResponse> SetEdgeDesired(
      const std::string& device, const std::string& patch_json);
  // Adds this client's credentials to `ctx` (for calls made on StubFor's
  // stubs directly, such as an ExecuteStreamClient's).
  void Authorize(grpc::ClientContext* ctx) const;

  // The endpoint requests go to now (the leader, once known).
  std::string current() const;
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  v1::DatabaseService::Stub& StubFor(const std::string& endpoint);

 private:
  // Runs `call` on the current endpoint, following NOT_LEADER trailers and
  // skipping unreachable nodes.
  template <typename Fn>
  absl::Status WithFailover(Fn call);
  template <typename Request, typename Response>
  using Rpc = grpc::Status (v1::DatabaseService::Stub::*)(grpc::ClientContext*,
                                                          const Request&,
                                                          Response*);
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(Rpc<Request, Response> rpc,
                                const Request& request);

  const std::vector<std::string> endpoints_;
  const ClientOptions options_;
  SessionPool sessions_;
  mutable std::mutex mu_;
  std::string current_;
  std::vector<
      std::pair<std::string, std::unique_ptr<v1::DatabaseService::Stub>>>
      stubs_;
};

// One unary call by method name with raw protobuf bytes, as a stock client
// that has no generated code would make (health checks, etcd's API).
absl::StatusOr<std::string> UnaryBytes(const std::string& endpoint,
                                       const std::string& method,
                                       const std::string& request,
                                       int timeout_ms, const Tls& tls = {});

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_CLIENT_H_
