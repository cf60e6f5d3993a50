// Client authentication and permissions (DESIGN.md §7). With TLS a caller
// is, in order: the user its client certificate names (root is the
// superuser; node-<id> may join and read status; another name must be a
// stored user), or the user whose password it sends as HTTP Basic
// credentials in the "authorization" metadata. Passwords are Argon2id
// hashes in the replicated users table (sm/users.h); a verified password is
// remembered by a salted SHA-256 digest, so a request costs a hash lookup,
// not an Argon2 run. Without TLS (--insecure, a trusted network) every
// caller may do everything.
// Thread-safe.
#ifndef RAFTSQL_SERVER_AUTH_H_
#define RAFTSQL_SERVER_AUTH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "sm/users.h"

namespace grpc {
class ServerContextBase;
}

namespace raftsql::server {

struct Principal {
  std::string name;
  uint32_t permissions = 0;
};

// An Argon2id hash (OWASP's parameters: 19 MiB, 2 passes) of `password`,
// encoded with its random salt. INVALID_ARGUMENT for a password shorter
// than 8 or longer than 1,024 bytes.
absl::StatusOr<std::string> HashPassword(const std::string& password);
bool VerifyPassword(const std::string& hash, const std::string& password);

class Authenticator {
 public:
  using FindUser = std::function<std::optional<sm::User>(const std::string&)>;
  Authenticator(bool tls, FindUser find_user);

  // What a caller shows, whatever the protocol: the name its verified TLS
  // client certificate carries, and its "authorization" header.
  struct Credentials {
    std::optional<std::string> certificate_name;
    std::optional<std::string> authorization;
  };
  static Credentials CredentialsOf(const grpc::ServerContextBase& ctx);

  // UNAUTHENTICATED if the caller proves no identity (or a wrong password).
  absl::StatusOr<Principal> Authenticate(const Credentials& credentials);
  absl::StatusOr<Principal> Authenticate(const grpc::ServerContextBase& ctx) {
    return Authenticate(CredentialsOf(ctx));
  }
  // Authenticate, then PERMISSION_DENIED unless it holds every bit of
  // `needed`; the caller if it does.
  absl::StatusOr<Principal> Authorize(const Credentials& credentials,
                                      uint32_t needed);
  absl::StatusOr<Principal> Authorize(const grpc::ServerContextBase& ctx,
                                      uint32_t needed) {
    return Authorize(CredentialsOf(ctx), needed);
  }

  // An edge device (sm::kPermDevice) proving who it is, with or without
  // TLS: by its certificate (with TLS) or by its id and token as Basic
  // credentials. UNAUTHENTICATED for a missing or wrong credential,
  // PERMISSION_DENIED for a user that is not a device.
  absl::StatusOr<Principal> AuthenticateDevice(
      const grpc::ServerContextBase& ctx);

  // Verified passwords remembered (bounded; the oldest half goes first).
  static constexpr size_t kMaxRemembered = 4096;

 private:
  absl::StatusOr<Principal> ByPassword(const std::string& header);
  std::string Digest(const std::string& user, const std::string& password);

  const bool tls_;
  const FindUser find_user_;
  std::string salt_;  // Random per process: digests never leave it.
  std::mutex mu_;
  // user -> (stored hash, digest of the password verified against it).
  std::map<std::string, std::pair<std::string, std::string>> verified_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_AUTH_H_
