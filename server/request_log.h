// Logging a request that took longer than ServerOptions::slow_request_ms
// (event slow_request, warn), for every protocol the node serves.
#ifndef RAFTSQL_SERVER_REQUEST_LOG_H_
#define RAFTSQL_SERVER_REQUEST_LOG_H_

#include <string>

#include "absl/strings/str_format.h"
#include "obs/log.h"
#include "server/raft_server.h"

namespace raftsql::server {

inline void LogIfSlow(const RaftServer& node, const std::string& protocol,
                      const std::string& method, const std::string& code,
                      double seconds) {
  const int threshold = node.options().slow_request_ms;
  const int ms = static_cast<int>(seconds * 1000);
  if (threshold <= 0 || ms < threshold) return;
  obs::Log(obs::Level::kWarn, "slow_request",
           absl::StrFormat("slow request: %s %s took %d ms (%s)", protocol,
                           method, ms, code),
           {{"node", node.options().id},
            {"protocol", protocol},
            {"method", method},
            {"code", code},
            {"ms", ms}});
}

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_REQUEST_LOG_H_
