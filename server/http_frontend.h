// The HTTP face of a RaftServer (a second listener, --http_listen): rqlite's
// HTTP API as documented for version 8 (/db/execute, /db/query,
// /db/request, /status, /nodes, /readyz), /livez, over TLS when the node
// has certificates (a client certificate, or a user and password as HTTP
// Basic credentials, as on gRPC). Served by cpp-httplib: `threads`
// requests at once, each on its own thread waiting for its outcome; further
// connections wait in a queue of `max_queued_connections`, then in the
// kernel's listen backlog, as long again.
#ifndef RAFTSQL_SERVER_HTTP_FRONTEND_H_
#define RAFTSQL_SERVER_HTTP_FRONTEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/raft_server.h"

namespace raftsql::server {

struct HttpOptions {
  std::string listen;  // host:port; port 0 picks a free one
  size_t threads = 64;
  size_t max_queued_connections = 256;
  // A request body may hold this many bytes (413 beyond): JSON spells a
  // statement out at more bytes than the node's max_request_bytes counts.
  size_t max_body_bytes = size_t{16} << 20;
  // ... except /db/load's, which goes to a file beside the database.
  uint64_t max_load_bytes = uint64_t{16} << 30;
};

class HttpFrontend {
 public:
  // Listens on options.listen and serves `node` until Shutdown.
  static absl::StatusOr<std::unique_ptr<HttpFrontend>> Start(
      RaftServer* node, const HttpOptions& options);
  ~HttpFrontend();
  // Stops accepting and waits for the requests being served.
  void Shutdown();
  int port() const;

 private:
  struct Impl;
  explicit HttpFrontend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_HTTP_FRONTEND_H_
