// "host:port" (or "[v6]:port") split into its parts, for listeners and
// dialled addresses given as flags.
#ifndef RAFTSQL_NET_HOST_PORT_H_
#define RAFTSQL_NET_HOST_PORT_H_

#include <string>
#include <utility>

namespace raftsql::net {

// The host (brackets removed; "" for "any") and the port; port -1 if
// `address` is not host:port with a port in 0..65535.
std::pair<std::string, int> HostPort(const std::string& address);

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_HOST_PORT_H_
