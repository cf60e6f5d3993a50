// Answers of the client protocol (net/raftsql.proto) made from the node's
// types, shared by the gRPC service and the HTTP API's /v1 endpoints.
#ifndef RAFTSQL_SERVER_RESPONSES_H_
#define RAFTSQL_SERVER_RESPONSES_H_

#include <vector>

#include "net/raftsql.pb.h"
#include "server/raft_server.h"
#include "sm/users.h"
#include "sm/write_budget.h"

namespace raftsql::server {

void ToProto(const Member& m, v1::Member* out);
void ToProto(const std::vector<Member>& members, v1::AdminResponse* out);
void ToProto(const NodeState& s, v1::StatusResponse* response);
void ToProto(const sm::WriteSettings& limits, v1::SettingsResponse* response);
void ToProto(const std::vector<sm::User>& users, v1::UsersResponse* response);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_RESPONSES_H_
