// Users and their permissions, replicated (DESIGN.md §7): every node agrees
// who may do what. A change is an entry of its own in the log (UserChange,
// proposed by an administrator) that the state machine applies to the
// internal table _raftsql_users. Passwords are stored as Argon2id hashes,
// computed on the node that proposes the change (so the hash, with its
// random salt, is the same on every replica); no password is ever logged.
#ifndef RAFTSQL_SM_USERS_H_
#define RAFTSQL_SM_USERS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace raftsql::sm {

// What a caller may do (at least as fine as rqlite's permissions).
enum Permission : uint32_t {
  kPermExecute = 1u << 0,  // Execute, ExecuteStream
  kPermQuery = 1u << 1,    // Query, GetVersion
  kPermStatus = 1u << 2,   // Status, GetSettings
  kPermJoin = 1u << 3,     // AddNode
  kPermRemove = 1u << 4,   // RemoveNode, TransferLeadership
  kPermAdmin = 1u << 5,    // users, settings
  kPermBackup = 1u << 6,   // backups (reserved)
  // An edge device (net/edge.proto): it may open edge sessions as itself,
  // nothing else. Not part of "all": a device is not an operator.
  kPermDevice = 1u << 7,
};
inline constexpr uint32_t kAllPermissions = (1u << 7) - 1;
inline constexpr uint32_t kKnownPermissions = kAllPermissions | kPermDevice;

// "execute", "query", ... and "all"; INVALID_ARGUMENT for another name.
absl::StatusOr<uint32_t> ParsePermissions(
    const std::vector<std::string>& names);
std::vector<std::string> PermissionNames(uint32_t permissions);

// The superuser, authenticated by a client certificate named "root"; never
// stored, never changed.
inline constexpr absl::string_view kRootUser = "root";

struct User {
  std::string name;
  std::string password_hash;  // Argon2id, encoded ("$argon2id$..."); may be
                              // empty: certificate only.
  uint32_t permissions = 0;
  bool operator==(const User&) const = default;
};

// OK if `name` can be a stored user: 1-64 bytes of [A-Za-z0-9_.@-], not
// root and not a node's name (node-<id>).
absl::Status ValidateUserName(absl::string_view name);

struct UserChange {
  enum class Op : uint8_t { kPut = 1, kDelete = 2 };
  Op op = Op::kPut;
  User user;
  uint64_t request_id = 0;  // As Command::request_id.

  std::string Encode() const;
  // nullopt if `data` is not a user change; an error if it is one but
  // malformed.
  static std::optional<absl::StatusOr<UserChange>> Decode(
      absl::string_view data);
  static uint64_t PeekRequestId(absl::string_view data);
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_USERS_H_
