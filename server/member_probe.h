// Asking every member of the cluster how it is, at once (the HTTP API's
// /nodes, as rqlite's: reachable or not, and where it serves HTTP).
#ifndef RAFTSQL_SERVER_MEMBER_PROBE_H_
#define RAFTSQL_SERVER_MEMBER_PROBE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "net/tls.h"
#include "server/raft_server.h"

namespace raftsql::server {

struct MemberProbe {
  uint64_t id = 0;
  bool reachable = false;
  std::string http_address;  // "" if it serves no HTTP, or did not answer
  std::string error;         // Why it did not answer.
  double seconds = 0;        // How long its answer took.
};

// Each member's Status (at its client address, as this node: `tls` holds
// its certificate), all in parallel, each within `timeout_ms`; in the
// members' order.
std::vector<MemberProbe> ProbeMembers(const std::vector<Member>& members,
                                      const net::Tls& tls, int timeout_ms);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_MEMBER_PROBE_H_
