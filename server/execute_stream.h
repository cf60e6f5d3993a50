// The server side of DatabaseService.ExecuteStream: pipelined writes on one
// stream (net/raftsql.proto). Each request is proposed as it is read and
// answered, tagged, when its outcome is known; answers ready together go in
// one message. Once a stream holds kMaxStreamInFlight requests (read and
// not yet written back: answers count until the client has taken them) it
// is not read further until half of them have drained; one message may
// overshoot the bound, by no more than fits in it. A stream finishes only
// once every request it took has been answered, so no answer outlives it.
#ifndef RAFTSQL_SERVER_EXECUTE_STREAM_H_
#define RAFTSQL_SERVER_EXECUTE_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <string>

#include "net/raftsql.grpc.pb.h"
#include "server/raft_server.h"

namespace raftsql::server {

inline constexpr size_t kMaxStreamInFlight = 1024;
// ... or once the requests in flight and the answers not yet written hold
// ServerOptions::stream_held_bytes_max bytes (a client that sends large
// requests, or reads no answers).

// Times a stream stopped reading at the byte bound, process-wide (metrics).
uint64_t ExecuteStreamBytePauses();

// A reactor for one stream of the authenticated `user` (whose requests'
// sessions are theirs); it deletes itself when gRPC is done with it.
grpc::ServerBidiReactor<v1::ExecuteStreamRequest, v1::ExecuteStreamResponse>*
NewExecuteStream(RaftServer* node, std::string user = "");

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_EXECUTE_STREAM_H_
