// The gRPC face of a RaftServer: DatabaseService for clients and
// PeerService for Raft messages, on one port. Errors keep their gRPC code
// (absl and gRPC share code numbers) and carry the trailers clients follow:
// "raftsql-leader" (NOT_LEADER: the leader's address) and "raftsql-error"
// ("no_leader").
#ifndef RAFTSQL_SERVER_SERVICE_H_
#define RAFTSQL_SERVER_SERVICE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/raft_server.h"

namespace raftsql::server {

class GrpcFrontend {
 public:
  // Builds and starts the gRPC server for `node` on node->options().listen,
  // with gRPC health checking and server reflection, and the edge service
  // (before node->Start: it registers for table changes).
  static absl::StatusOr<std::unique_ptr<GrpcFrontend>> Start(RaftServer* node);
  ~GrpcFrontend();
  // Stops accepting calls; calls still running get `deadline_ms` to finish.
  void Shutdown(int deadline_ms);

 private:
  struct Impl;
  explicit GrpcFrontend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_SERVICE_H_
