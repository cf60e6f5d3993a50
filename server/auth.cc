#include "server/auth.h"

#include <argon2.h>
#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <iterator>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "net/tls.h"
#include "sm/command.h"

namespace raftsql::server {
namespace {

constexpr uint32_t kArgonPasses = 2;
constexpr uint32_t kArgonMemoryKiB = 19 * 1024;
constexpr uint32_t kArgonLanes = 1;
constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
constexpr size_t kMinPassword = 8;
constexpr size_t kMaxPassword = 1024;
constexpr char kBasic[] = "Basic ";

std::string Random(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(n)) != 1) {
    std::abort();  // No randomness: no safe salt. Never expected.
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> HashPassword(const std::string& password) {
  if (password.size() < kMinPassword || password.size() > kMaxPassword) {
    return absl::InvalidArgumentError("a password has 8 to 1,024 bytes");
  }
  const std::string salt = Random(kSaltBytes);
  std::string encoded(
      argon2_encodedlen(kArgonPasses, kArgonMemoryKiB, kArgonLanes, kSaltBytes,
                        kHashBytes, Argon2_id),
      '\0');
  const int rc = argon2id_hash_encoded(
      kArgonPasses, kArgonMemoryKiB, kArgonLanes, password.data(),
      password.size(), salt.data(), salt.size(), kHashBytes, encoded.data(),
      encoded.size());
  if (rc != ARGON2_OK) {
    return absl::InternalError(
        absl::StrCat("argon2: ", argon2_error_message(rc)));
  }
  encoded.resize(std::strlen(encoded.c_str()));
  return encoded;
}

bool VerifyPassword(const std::string& hash, const std::string& password) {
  if (hash.empty() || password.size() > kMaxPassword) return false;
  return argon2id_verify(hash.c_str(), password.data(), password.size()) ==
         ARGON2_OK;
}

Authenticator::Authenticator(bool tls, FindUser find_user)
    : tls_(tls), find_user_(std::move(find_user)), salt_(Random(kSaltBytes)) {}

Authenticator::Credentials Authenticator::CredentialsOf(
    const grpc::ServerContextBase& ctx) {
  Credentials c;
  if (std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context()) {
    c.certificate_name = net::PeerCertificateName(*auth);
  }
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it != md.end()) {
    c.authorization = std::string(it->second.data(), it->second.size());
  }
  return c;
}

absl::StatusOr<Principal> Authenticator::Authenticate(
    const Credentials& credentials) {
  if (!tls_) return Principal{"anonymous", sm::kAllPermissions};
  if (const std::optional<std::string>& name = credentials.certificate_name) {
    if (*name == sm::kRootUser) return Principal{*name, sm::kAllPermissions};
    if (net::NodeIdOfName(*name).has_value()) {
      return Principal{*name, sm::kPermJoin | sm::kPermStatus};
    }
    if (std::optional<sm::User> u = find_user_(*name)) {
      return Principal{*name, u->permissions};
    }
    return absl::UnauthenticatedError(sm::TruncatedMessage(absl::StrCat(
        "certificate '", *name, "' names no user of this cluster")));
  }
  if (!credentials.authorization.has_value()) {
    return absl::UnauthenticatedError(
        "no credentials: give a client certificate or a user and password");
  }
  return ByPassword(*credentials.authorization);
}

absl::StatusOr<Principal> Authenticator::AuthenticateDevice(
    const grpc::ServerContextBase& ctx) {
  const Credentials credentials = CredentialsOf(ctx);
  absl::StatusOr<Principal> p;
  if (tls_) {
    p = Authenticate(credentials);
  } else if (credentials.authorization.has_value()) {
    p = ByPassword(*credentials.authorization);
  } else {
    return absl::UnauthenticatedError(
        "no credentials: a device sends its id and token (Basic)");
  }
  if (!p.ok()) return p.status();
  if ((p->permissions & sm::kPermDevice) == 0) {
    return absl::PermissionDeniedError(sm::TruncatedMessage(
        absl::StrCat("user ", p->name, " is not a device")));
  }
  return p;
}

absl::StatusOr<Principal> Authenticator::ByPassword(const std::string& header) {
  std::string decoded;
  if (!absl::StartsWith(header, kBasic) || header.size() > 4 * kMaxPassword ||
      !absl::Base64Unescape(header.substr(sizeof(kBasic) - 1), &decoded)) {
    return absl::UnauthenticatedError("malformed authorization (want Basic)");
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) {
    return absl::UnauthenticatedError("malformed authorization (user:pass)");
  }
  const std::string user = decoded.substr(0, colon);
  const std::string password = decoded.substr(colon + 1);
  // One answer for a wrong user and a wrong password: neither is revealed.
  const absl::Status wrong =
      absl::UnauthenticatedError("wrong user name or password");
  std::optional<sm::User> u = find_user_(user);
  if (!u.has_value() || u->password_hash.empty()) return wrong;
  const std::string digest = Digest(user, password);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = verified_.find(user);
    if (it != verified_.end() && it->second.first == u->password_hash &&
        CRYPTO_memcmp(it->second.second.data(), digest.data(), digest.size()) ==
            0) {
      return Principal{user, u->permissions};
    }
  }
  if (!VerifyPassword(u->password_hash, password)) return wrong;
  std::lock_guard<std::mutex> l(mu_);
  if (verified_.size() >= kMaxRemembered) {
    auto end = verified_.begin();
    std::advance(end, kMaxRemembered / 2);
    verified_.erase(verified_.begin(), end);
  }
  verified_[user] = {u->password_hash, digest};
  return Principal{user, u->permissions};
}

std::string Authenticator::Digest(const std::string& user,
                                  const std::string& password) {
  const std::string input = absl::StrCat(salt_, user, "\n", password);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(input.data(), input.size(), out, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(out), n);
}

absl::StatusOr<Principal> Authenticator::Authorize(
    const Credentials& credentials, uint32_t needed) {
  absl::StatusOr<Principal> p = Authenticate(credentials);
  if (!p.ok()) return p.status();
  if ((p->permissions & needed) != needed) {
    return absl::PermissionDeniedError(absl::StrCat(
        "user ", p->name, " lacks the ",
        absl::StrJoin(sm::PermissionNames(needed & ~p->permissions), ", "),
        " permission"));
  }
  return p;
}

}  // namespace raftsql::server
