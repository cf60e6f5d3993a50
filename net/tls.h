// TLS for raftsql's gRPC traffic (DESIGN.md §7). One cluster CA signs a
// certificate per node (CN "node-<id>", tools/certs.h) and per client user.
// Peers use mutual TLS: a node dials a peer by the name node-<id>, so only
// the holder of that node's certificate can answer, and the peer service
// accepts Raft messages only from a certificate naming their sender.
// Without a CA (Tls::enabled() false) everything is plaintext: for a
// trusted network only, and only when asked for (--insecure).
#ifndef RAFTSQL_NET_TLS_H_
#define RAFTSQL_NET_TLS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace grpc {
class AuthContext;
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace raftsql::net {

struct Tls {
  std::string ca_pem;    // The cluster CA ("" = plaintext).
  std::string cert_pem;  // This party's certificate chain ("" = none).
  std::string key_pem;
  bool enabled() const { return !ca_pem.empty(); }
};

// Reads the PEM files; `cert` and `key` may both be empty (a client that
// authenticates with a password). INVALID_ARGUMENT naming a file that
// cannot be read or does not look like PEM.
absl::StatusOr<Tls> LoadTls(const std::string& ca_file,
                            const std::string& cert_file,
                            const std::string& key_file);
// The files of tools/certs.h in `dir`: ca.crt and <name>.crt/.key.
absl::StatusOr<Tls> LoadTlsDir(const std::string& dir, const std::string& name);

// The name a node's certificate carries (CN and DNS SAN): node-<id>.
std::string NodeName(uint64_t id);
// The node id a certificate name stands for, if it is one.
std::optional<uint64_t> NodeIdOfName(absl::string_view name);

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const Tls& tls);
// Servers ask for a client certificate and verify one that is given;
// clients may instead authenticate with a password (server/auth.h).
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Tls& tls);
// A peer-only listener: a client certificate is required.
std::shared_ptr<grpc::ServerCredentials> PeerServerCredentials(const Tls& tls);

// The verified certificate name (CN) of a call's peer, if any.
std::optional<std::string> PeerCertificateName(const grpc::AuthContext& auth);

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_TLS_H_
