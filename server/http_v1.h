// The HTTP API's /v1 endpoints: DatabaseService's unary calls in the proto3
// JSON mapping of net/raftsql.proto's messages (protobuf's own JSON
// utilities; field names as in the .proto, either spelling accepted in),
// each a POST of the request message to /v1/<method in snake_case>:
// /v1/execute (sessions and sequence numbers included), /v1/query,
// /v1/get_version, /v1/status, /v1/get_settings, /v1/set_setting,
// /v1/list_users, /v1/put_user, /v1/drop_user, /v1/add_node,
// /v1/remove_node, /v1/transfer_leadership, /v1/issue_edge_command,
// /v1/set_edge_desired. Each needs the permission its gRPC call needs;
// errors are {"code": "UNAVAILABLE", "error": "..."} with the code's HTTP
// status.
#ifndef RAFTSQL_SERVER_HTTP_V1_H_
#define RAFTSQL_SERVER_HTTP_V1_H_

#include "server/http_rqlite.h"

namespace raftsql::server {

void RegisterV1(httplib::Server& server, RaftServer* node,
                RqliteApi::Authorize authorize);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_HTTP_V1_H_
