// Certificates for a raftsql cluster (as CockroachDB's `cert` commands): a
// cluster CA, a certificate per node (CN "node-<id>", the identity peers
// check) and per client user (CN = the user name). Keys are EC P-256.
// Files in one directory: ca.crt ca.key node-<id>.crt node-<id>.key
// client-<user>.crt client-<user>.key.
#ifndef RAFTSQL_TOOLS_CERTS_H_
#define RAFTSQL_TOOLS_CERTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace raftsql::tools {

// Creates dir/ca.crt and dir/ca.key (the directory is created if missing).
// ALREADY_EXISTS if the CA is there: a second CA would orphan every
// certificate signed by the first.
absl::Status CreateCa(const std::string& dir);

// Signs a certificate for node `id` with the CA in `dir`: CN node-<id>, for
// TLS servers and clients, valid for `hosts` (IP addresses or DNS names)
// besides node-<id> itself (peers dial with that name) and 127.0.0.1.
absl::Status CreateNodeCert(const std::string& dir, uint64_t id,
                            const std::vector<std::string>& hosts);

// Signs a client certificate for `user` (CN = user) with the CA in `dir`.
absl::Status CreateClientCert(const std::string& dir, const std::string& user);

// Creates what a local cluster of `nodes` nodes on 127.0.0.1 needs (CA,
// node-1..N, client-root), keeping what is there already.
absl::Status EnsureLocalClusterCerts(const std::string& dir, int nodes);

}  // namespace raftsql::tools

#endif  // RAFTSQL_TOOLS_CERTS_H_
