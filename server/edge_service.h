// The hub's edge service (net/edge.proto, DESIGN.md §6): one session per
// device, served by any node. What a session does is edge/hub_session's
// (shared with the simulator); this is its gRPC stream and threads. Every
// change a session makes is an edge/hub_sql command proposed through the
// node like any write, so it is replicated, and a session on another node
// (or a new leader) carries on from the tables.
//
// - Uploads: validated at the boundary, stored through Raft, answered with
//   the stream's acked sequence. A session keeps at most
//   kMaxUploadsInFlight of its own uploads in flight or answered and not
//   yet written (it reads no further until one is written: a device that
//   never reads its acks stops being read), and the node at most
//   EdgeOptions::max_writes_in_flight for all sessions: beyond it an upload
//   is answered RESOURCE_EXHAUSTED with a retry hint, nothing stored.
// - Commands: whenever edge_commands changes (and every sweep_ms, for
//   locks that ran out), a session reads its device's open commands and,
//   one after another in issue order, marks each one that is due as
//   delivered through Raft; only a command that was marked is sent.
// - Twins: the desired state is sent at the start and when it changes;
//   reports are stored through Raft.
// - The leader sweeps: commands that can no longer complete are ended
//   (expired, with the reason), and readings older than
//   readings_max_age_ms are deleted, each in bounded batches per sweep.
#ifndef RAFTSQL_SERVER_EDGE_SERVICE_H_
#define RAFTSQL_SERVER_EDGE_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "net/raftsql.pb.h"
#include "server/raft_server.h"

namespace grpc {
class Service;
}

namespace raftsql::server {

inline constexpr size_t kMaxUploadsInFlight = 8;

// The operators' edge calls (DatabaseService.IssueEdgeCommand and
// SetEdgeDesired): validated here (INVALID_ARGUMENT, nothing written), then
// proposed through `node`; the edge tables are made first if missing.
void IssueEdgeCommand(RaftServer* node, const v1::IssueEdgeCommandRequest& r,
                      RaftServer::Done<v1::IssueEdgeCommandResponse> done);
void SetEdgeDesired(RaftServer* node, const v1::SetEdgeDesiredRequest& r,
                    RaftServer::Done<v1::SetEdgeDesiredResponse> done);

// Bounds on what operators issue.
inline constexpr int64_t kDefaultCommandExpiryMs = 3'600'000;
inline constexpr int64_t kMinCommandExpiryMs = 1'000;
inline constexpr int64_t kMaxCommandExpiryMs = int64_t{30} * 24 * 3'600'000;

class EdgeService {
 public:
  // Registers with `node` (before node->Start) for table changes; its
  // options are node->options().edge.
  explicit EdgeService(RaftServer* node);
  ~EdgeService();
  EdgeService(const EdgeService&) = delete;
  EdgeService& operator=(const EdgeService&) = delete;

  // The gRPC service to register.
  grpc::Service* service();
  // Ends every session and the sweeper (before the gRPC server stops).
  void Shutdown();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_EDGE_SERVICE_H_
