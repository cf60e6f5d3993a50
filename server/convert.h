// Conversions between the client protocol (net/raftsql.proto) and the state
// machine's types, shared by the unary and the streaming handlers.
#ifndef RAFTSQL_SERVER_CONVERT_H_
#define RAFTSQL_SERVER_CONVERT_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>

#include "absl/status/statusor.h"
#include "net/raftsql.pb.h"
#include "sm/command.h"

namespace raftsql::server {

sm::Value FromProto(const v1::Value& v);
void ToProto(const sm::Value& v, v1::Value* out);
sm::Statement FromProto(const v1::Statement& s);
void ToProto(const sm::CommandResult& r, v1::ExecuteResponse* response);
void ToProto(const sm::QueryResult& r, v1::QueryResponse* response);
// `s` as gRPC answers it, with the trailers that name a leader or say there
// is none.
grpc::Status ToGrpc(const absl::Status& s, grpc::ServerContextBase* ctx);

// The command a client's request asks for. ResourceExhausted if the request
// is over `max_request_bytes`; InvalidArgument for a session request
// without a sequence number.
absl::StatusOr<sm::Command> CommandFromProto(const v1::ExecuteRequest& request,
                                             size_t max_request_bytes);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_CONVERT_H_
