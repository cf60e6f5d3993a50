// The web console (GET /console): cluster status, a SQL box, the hub's
// devices with their recent readings, commands and twin deltas, and the
// DecisionMaker's audit and approval queue, with POST /console/approval to
// answer a command waiting for an operator. Served over the HTTP API's
// listener, its credentials (the browser's Basic login) and permissions.
#ifndef RAFTSQL_SERVER_CONSOLE_H_
#define RAFTSQL_SERVER_CONSOLE_H_

#include "server/http_rqlite.h"

namespace raftsql::server {

extern const char kConsolePage[];

void RegisterConsole(httplib::Server& server, RaftServer* node,
                     RqliteApi::Authorize authorize);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_CONSOLE_H_
