#include "tools/certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace raftsql::tools {
namespace {

constexpr long kCaDays = 3650;
constexpr long kCertDays = 825;

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

absl::Status OpensslError(const std::string& what) {
  return absl::InternalError(absl::StrCat("openssl: cannot ", what));
}

std::string Path(const std::string& dir, const std::string& name) {
  return dir + "/" + name;
}

absl::Status WriteFile(const std::string& path, const std::string& data,
                       bool secret) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out || !(out << data) || !out.flush()) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  out.close();
  if (secret && chmod(path.c_str(), 0600) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot chmod ", path));
  }
  return absl::OkStatus();
}

absl::Status Save(const std::string& dir, const std::string& base,
                  EVP_PKEY* key, X509* cert) {
  Bio kb(BIO_new(BIO_s_mem())), cb(BIO_new(BIO_s_mem()));
  if (!kb || !cb ||
      PEM_write_bio_PrivateKey(kb.get(), key, nullptr, nullptr, 0, nullptr,
                               nullptr) != 1 ||
      PEM_write_bio_X509(cb.get(), cert) != 1) {
    return OpensslError("encode PEM");
  }
  auto text = [](BIO* b) {
    char* p = nullptr;
    const long n = BIO_get_mem_data(b, &p);
    return std::string(p, static_cast<size_t>(n));
  };
  absl::Status s = WriteFile(Path(dir, base + ".key"), text(kb.get()), true);
  if (!s.ok()) return s;
  return WriteFile(Path(dir, base + ".crt"), text(cb.get()), false);
}

absl::Status Load(const std::string& dir, const std::string& base, Key* key,
                  Cert* cert) {
  std::FILE* kf = std::fopen(Path(dir, base + ".key").c_str(), "r");
  std::FILE* cf = std::fopen(Path(dir, base + ".crt").c_str(), "r");
  if (kf != nullptr)
    key->reset(PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr));
  if (cf != nullptr) cert->reset(PEM_read_X509(cf, nullptr, nullptr, nullptr));
  if (kf != nullptr) std::fclose(kf);
  if (cf != nullptr) std::fclose(cf);
  if (!*key || !*cert) {
    return absl::NotFoundError(absl::StrCat(
        "no readable ", base, ".crt and ", base, ".key in ", dir,
        " (create the CA first: raftsql_certs ca --dir=", dir, ")"));
  }
  return absl::OkStatus();
}

// Adds one X509v3 extension ("critical,CA:TRUE", "DNS:a,IP:1.2.3.4", ...).
bool AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A new certificate for `key`, CN `name`, signed by (issuer, issuer_key);
// self-signed if issuer is null.
Cert Sign(EVP_PKEY* key, const std::string& name, long days, X509* issuer,
          EVP_PKEY* issuer_key) {
  Cert cert(X509_new());
  unsigned char serial[16];
  if (!cert || RAND_bytes(serial, sizeof(serial)) != 1) return nullptr;
  serial[0] &= 0x7f;  // Positive.
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  const bool serial_ok =
      bn != nullptr &&
      BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  if (!serial_ok || X509_set_version(cert.get(), 2) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 86400) ==
          nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return nullptr;
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(
          subject, "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1,
          0) != 1) {
    return nullptr;
  }
  X509* signer = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1 ||
      !AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash")) {
    return nullptr;
  }
  (void)issuer_key;
  return cert;
}

bool Finish(X509* cert, EVP_PKEY* signing_key) {
  return X509_sign(cert, signing_key, EVP_sha256()) > 0;
}

absl::Status SignLeaf(const std::string& dir, const std::string& base,
                      const std::string& name, const std::string& usage,
                      const std::string& san) {
  Key ca_key;
  Cert ca;
  absl::Status s = Load(dir, "ca", &ca_key, &ca);
  if (!s.ok()) return s;
  Key key(EVP_EC_gen("P-256"));
  if (!key) return OpensslError("generate a key");
  Cert cert = Sign(key.get(), name, kCertDays, ca.get(), ca_key.get());
  if (!cert ||
      !AddExtension(cert.get(), ca.get(), NID_basic_constraints,
                    "critical,CA:FALSE") ||
      !AddExtension(cert.get(), ca.get(), NID_key_usage,
                    "critical,digitalSignature,keyEncipherment") ||
      !AddExtension(cert.get(), ca.get(), NID_ext_key_usage, usage) ||
      !AddExtension(cert.get(), ca.get(), NID_authority_key_identifier,
                    "keyid:always") ||
      (!san.empty() &&
       !AddExtension(cert.get(), ca.get(), NID_subject_alt_name, san)) ||
      !Finish(cert.get(), ca_key.get())) {
    return OpensslError("sign the certificate for " + name);
  }
  return Save(dir, base, key.get(), cert.get());
}

bool IsIp(const std::string& host) {
  return !host.empty() &&
         (host.find_first_not_of("0123456789.") == std::string::npos ||
          host.find(':') != std::string::npos);
}

}  // namespace

absl::Status CreateCa(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (std::filesystem::exists(Path(dir, "ca.crt"))) {
    return absl::AlreadyExistsError(absl::StrCat(dir, "/ca.crt exists"));
  }
  Key key(EVP_EC_gen("P-256"));
  if (!key) return OpensslError("generate the CA key");
  Cert cert = Sign(key.get(), "raftsql CA", kCaDays, nullptr, nullptr);
  if (!cert ||
      !AddExtension(cert.get(), cert.get(), NID_basic_constraints,
                    "critical,CA:TRUE") ||
      !AddExtension(cert.get(), cert.get(), NID_key_usage,
                    "critical,keyCertSign,cRLSign") ||
      !Finish(cert.get(), key.get())) {
    return OpensslError("sign the CA certificate");
  }
  return Save(dir, "ca", key.get(), cert.get());
}

absl::Status CreateNodeCert(const std::string& dir, uint64_t id,
                            const std::vector<std::string>& hosts) {
  if (id == 0) return absl::InvalidArgumentError("a node id is positive");
  const std::string name = absl::StrCat("node-", id);
  std::vector<std::string> san = {absl::StrCat("DNS:", name), "DNS:localhost",
                                  "IP:127.0.0.1"};
  for (const std::string& h : hosts) {
    if (h.empty() || h.find(',') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("bad host '", h, "'"));
    }
    san.push_back(absl::StrCat(IsIp(h) ? "IP:" : "DNS:", h));
  }
  return SignLeaf(dir, name, name, "serverAuth,clientAuth",
                  absl::StrJoin(san, ","));
}

absl::Status CreateClientCert(const std::string& dir, const std::string& user) {
  if (user.empty() || user.size() > 64 ||
      user.find_first_of(",/\\ \n") != std::string::npos ||
      user.rfind("node-", 0) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad user name '", user, "' (1-64 characters, no node- prefix)"));
  }
  return SignLeaf(dir, "client-" + user, user, "clientAuth", "");
}

absl::Status EnsureLocalClusterCerts(const std::string& dir, int nodes) {
  if (!std::filesystem::exists(Path(dir, "ca.crt"))) {
    absl::Status s = CreateCa(dir);
    if (!s.ok()) return s;
  }
  for (int id = 1; id <= nodes; ++id) {
    if (std::filesystem::exists(Path(dir, absl::StrCat("node-", id, ".crt")))) {
      continue;
    }
    absl::Status s = CreateNodeCert(dir, static_cast<uint64_t>(id), {});
    if (!s.ok()) return s;
  }
  if (!std::filesystem::exists(Path(dir, "client-root.crt"))) {
    return CreateClientCert(dir, "root");
  }
  return absl::OkStatus();
}

}  // namespace raftsql::tools
