// The server side of DatabaseService.QueryStream: a read's result in pages
// (at most kQueryPageBytes each, the first with the columns), written as the
// read produces them. At most kQueryPagesQueued pages wait for a slow
// client; the read (on a reader thread, holding its read connection) waits
// for room, so a result of any size costs the node a bounded amount of
// memory. The read stays bounded by query_timeout_ms and the client's
// deadline, and ends when the client goes.
#ifndef RAFTSQL_SERVER_QUERY_STREAM_H_
#define RAFTSQL_SERVER_QUERY_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>

#include "net/raftsql.grpc.pb.h"
#include "server/raft_server.h"

namespace raftsql::server {

inline constexpr size_t kQueryPageBytes = size_t{1} << 20;
inline constexpr size_t kQueryPagesQueued = 2;

// A reactor for one stream; it deletes itself when gRPC is done with it.
grpc::ServerWriteReactor<v1::QueryResponse>* NewQueryStream(
    RaftServer* node, grpc::CallbackServerContext* ctx,
    const v1::QueryRequest& request, sm::ReadLimits limits);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_QUERY_STREAM_H_
