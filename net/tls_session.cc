#include "net/tls_session.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"

namespace raftsql::net {
namespace {

std::string OpenSslError(const char* what) {
  const unsigned long e = ERR_get_error();
  char text[256];
  ERR_error_string_n(e, text, sizeof(text));
  ERR_clear_error();
  return absl::StrCat(what, ": ", e != 0 ? text : "no detail");
}

// The CA as the only trust anchor, this node's chain and key, peers'
// certificates required and verified.
absl::StatusOr<SSL_CTX*> MakeContext(const Tls& tls, bool server) {
  SSL_CTX* ctx =
      SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return absl::InternalError(OpenSslError("SSL_CTX_new"));
  auto fail = [ctx](const char* what) {
    const std::string why = OpenSslError(what);
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(why);
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  if (server) SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     nullptr);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  {
    BIO* bio =
        BIO_new_mem_buf(tls.ca_pem.data(), static_cast<int>(tls.ca_pem.size()));
    int cas = 0;
    while (X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      if (X509_STORE_add_cert(store, ca) == 1) ++cas;
      X509_free(ca);
    }
    BIO_free(bio);
    ERR_clear_error();  // The end of the PEM reads as an error.
    if (cas == 0) return fail("the cluster CA");
  }
  {
    BIO* bio = BIO_new_mem_buf(tls.cert_pem.data(),
                               static_cast<int>(tls.cert_pem.size()));
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    const bool ok = cert != nullptr && SSL_CTX_use_certificate(ctx, cert) == 1;
    X509_free(cert);
    if (ok) {  // The rest of the chain, if any.
      while (X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
        if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1) X509_free(extra);
      }
      ERR_clear_error();
    }
    BIO_free(bio);
    if (!ok) return fail("this node's certificate");
  }
  {
    BIO* bio = BIO_new_mem_buf(tls.key_pem.data(),
                               static_cast<int>(tls.key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    const bool ok = key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
                    SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!ok) return fail("this node's key");
  }
  return ctx;
}

TlsStep Step(SSL* s, int rc) {
  TlsStep out;
  if (rc > 0) {
    out.bytes = static_cast<size_t>(rc);
    return out;
  }
  switch (SSL_get_error(s, rc)) {
    case SSL_ERROR_WANT_READ:
      out.what = TlsStep::kWantRead;
      return out;
    case SSL_ERROR_WANT_WRITE:
      out.what = TlsStep::kWantWrite;
      return out;
    case SSL_ERROR_ZERO_RETURN:
      out.what = TlsStep::kClosed;
      return out;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        out.what = errno == 0 || errno == ECONNRESET || errno == EPIPE
                       ? TlsStep::kClosed
                       : TlsStep::kFailed;
        out.error = strerror(errno);
        return out;
      }
      [[fallthrough]];
    default:
      out.what = TlsStep::kFailed;
      out.error = OpenSslError("TLS");
      if (SSL_get_verify_result(s) != X509_V_OK) {
        absl::StrAppend(&out.error, " (certificate: ",
                        X509_verify_cert_error_string(SSL_get_verify_result(s)),
                        ")");
      }
      return out;
  }
}

}  // namespace

void SslFree::operator()(ssl_st* s) const { SSL_free(s); }

absl::StatusOr<std::unique_ptr<TlsEndpoint>> TlsEndpoint::Create(
    const Tls& tls) {
  if (!tls.enabled() || tls.cert_pem.empty() || tls.key_pem.empty()) {
    return absl::InvalidArgumentError(
        "peer TLS needs the cluster CA and this node's certificate and key");
  }
  absl::StatusOr<SSL_CTX*> client = MakeContext(tls, /*server=*/false);
  if (!client.ok()) return client.status();
  absl::StatusOr<SSL_CTX*> server = MakeContext(tls, /*server=*/true);
  if (!server.ok()) {
    SSL_CTX_free(*client);
    return server.status();
  }
  return std::unique_ptr<TlsEndpoint>(new TlsEndpoint(*client, *server));
}

TlsEndpoint::~TlsEndpoint() {
  SSL_CTX_free(client_);
  SSL_CTX_free(server_);
}

SslSession TlsEndpoint::Dial(int fd, uint64_t peer) const {
  SslSession s(SSL_new(client_));
  if (s == nullptr) return s;
  const std::string name = NodeName(peer);
  SSL_set_fd(s.get(), fd);
  SSL_set_hostflags(s.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(s.get(), name.c_str()) != 1 ||
      SSL_set_tlsext_host_name(s.get(), name.c_str()) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_connect_state(s.get());
  return s;
}

SslSession TlsEndpoint::Accept(int fd) const {
  SslSession s(SSL_new(server_));
  if (s == nullptr) return s;
  SSL_set_fd(s.get(), fd);
  SSL_set_accept_state(s.get());
  return s;
}

TlsStep TlsHandshake(ssl_st* s) {
  ERR_clear_error();
  errno = 0;
  const int rc = SSL_do_handshake(s);
  if (rc == 1) return TlsStep{};
  return Step(s, rc);
}

TlsStep TlsRead(ssl_st* s, char* out, size_t n) {
  ERR_clear_error();
  errno = 0;
  return Step(s,
              SSL_read(s, out, static_cast<int>(std::min<size_t>(n, INT_MAX))));
}

TlsStep TlsWrite(ssl_st* s, const char* data, size_t n) {
  ERR_clear_error();
  errno = 0;
  return Step(
      s, SSL_write(s, data, static_cast<int>(std::min<size_t>(n, INT_MAX))));
}

std::optional<uint64_t> TlsPeerNode(ssl_st* s) {
  if (SSL_get_verify_result(s) != X509_V_OK) return std::nullopt;
  X509* cert = SSL_get1_peer_certificate(s);
  if (cert == nullptr) return std::nullopt;
  char cn[256] = {0};
  const int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
                                            NID_commonName, cn, sizeof(cn));
  X509_free(cert);
  if (len <= 0 || static_cast<size_t>(len) >= sizeof(cn)) return std::nullopt;
  return NodeIdOfName(std::string(cn, static_cast<size_t>(len)));
}

}  // namespace raftsql::net
