#include "net/tls.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace raftsql::net {
namespace {

constexpr absl::string_view kNodePrefix = "node-";

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  if (path.empty()) return std::string();
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (!in || !(text << in.rdbuf())) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  }
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not PEM"));
  }
  return text.str();
}

}  // namespace

absl::StatusOr<Tls> LoadTls(const std::string& ca_file,
                            const std::string& cert_file,
                            const std::string& key_file) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError("a certificate needs its key");
  }
  Tls tls;
  for (auto [path, out] :
       {std::pair{&ca_file, &tls.ca_pem}, std::pair{&cert_file, &tls.cert_pem},
        std::pair{&key_file, &tls.key_pem}}) {
    absl::StatusOr<std::string> pem = ReadPem(*path);
    if (!pem.ok()) return pem.status();
    *out = std::move(*pem);
  }
  if (tls.ca_pem.empty()) {
    return absl::InvalidArgumentError("TLS needs the cluster CA certificate");
  }
  return tls;
}

absl::StatusOr<Tls> LoadTlsDir(const std::string& dir,
                               const std::string& name) {
  return LoadTls(dir + "/ca.crt", name.empty() ? "" : dir + "/" + name + ".crt",
                 name.empty() ? "" : dir + "/" + name + ".key");
}

std::string NodeName(uint64_t id) {
  return absl::StrCat(std::string(kNodePrefix), id);
}

std::optional<uint64_t> NodeIdOfName(absl::string_view name) {
  if (name.substr(0, kNodePrefix.size()) != kNodePrefix) return std::nullopt;
  uint64_t id = 0;
  if (!absl::SimpleAtoi(name.substr(kNodePrefix.size()), &id) || id == 0) {
    return std::nullopt;
  }
  if (NodeName(id) != name) return std::nullopt;  // "node-01", "node-+1"
  return id;
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const Tls& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = tls.ca_pem;
  o.pem_cert_chain = tls.cert_pem;
  o.pem_private_key = tls.key_pem;
  return grpc::SslCredentials(o);
}

namespace {

std::shared_ptr<grpc::ServerCredentials> Ssl(
    const Tls& tls, grpc_ssl_client_certificate_request_type request) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions o(request);
  o.pem_root_certs = tls.ca_pem;
  o.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
  return grpc::SslServerCredentials(o);
}

}  // namespace

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Tls& tls) {
  return Ssl(tls, GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
}

std::shared_ptr<grpc::ServerCredentials> PeerServerCredentials(const Tls& tls) {
  return Ssl(tls, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
}

std::optional<std::string> PeerCertificateName(const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) return std::nullopt;
  for (const grpc::string_ref& v :
       auth.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
    return std::string(v.data(), v.size());
  }
  return std::nullopt;
}

}  // namespace raftsql::net
