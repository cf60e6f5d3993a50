// Mutual TLS for the stream peer transport (net/stream_transport.h):
// OpenSSL sessions on nonblocking sockets, driven by the Raft loop. The
// same certificates as the gRPC peers' (net/tls.h): one cluster CA, a
// certificate per node naming node-<id>. A node dialling node N checks that
// the certificate it is shown names node-N; a node accepting a connection
// requires a certificate the CA signed and learns which node it names
// (that node is the only sender its messages may name). TLS 1.3, or 1.2 at
// the least; no session tickets (a connection lives as long as the nodes).
#ifndef RAFTSQL_NET_TLS_SESSION_H_
#define RAFTSQL_NET_TLS_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "net/tls.h"

struct ssl_st;
struct ssl_ctx_st;

namespace raftsql::net {

struct SslFree {
  void operator()(ssl_st* s) const;
};
using SslSession = std::unique_ptr<ssl_st, SslFree>;

// What one step of a session did.
struct TlsStep {
  enum What { kDone, kWantRead, kWantWrite, kClosed, kFailed };
  What what = kDone;
  size_t bytes = 0;   // read or written (kDone)
  std::string error;  // kFailed
};

class TlsEndpoint {
 public:
  // INVALID_ARGUMENT if the PEM does not load (or TLS is not enabled).
  static absl::StatusOr<std::unique_ptr<TlsEndpoint>> Create(const Tls& tls);
  ~TlsEndpoint();
  TlsEndpoint(const TlsEndpoint&) = delete;
  TlsEndpoint& operator=(const TlsEndpoint&) = delete;

  // A session on `fd` (connected or connecting) to node `peer`.
  SslSession Dial(int fd, uint64_t peer) const;
  // A session on an accepted `fd`.
  SslSession Accept(int fd) const;

 private:
  TlsEndpoint(ssl_ctx_st* client, ssl_ctx_st* server)
      : client_(client), server_(server) {}
  ssl_ctx_st* const client_;
  ssl_ctx_st* const server_;
};

TlsStep TlsHandshake(ssl_st* s);
TlsStep TlsRead(ssl_st* s, char* out, size_t n);
TlsStep TlsWrite(ssl_st* s, const char* data, size_t n);
// The node the verified peer certificate names (its CN), if it names one.
std::optional<uint64_t> TlsPeerNode(ssl_st* s);

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_TLS_SESSION_H_
