#include "sm/users.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/codec.h"

namespace raftsql::sm {
namespace {

constexpr std::string_view kUserMagic = "usr1";
constexpr size_t kMaxUserName = 64;
constexpr size_t kMaxHash = 256;

constexpr struct {
  const char* name;
  uint32_t bit;
} kNames[] = {
    {"execute", kPermExecute}, {"query", kPermQuery},   {"status", kPermStatus},
    {"join", kPermJoin},       {"remove", kPermRemove}, {"admin", kPermAdmin},
    {"backup", kPermBackup},   {"device", kPermDevice},
};

std::string_view Std(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace

absl::StatusOr<uint32_t> ParsePermissions(
    const std::vector<std::string>& names) {
  uint32_t out = 0;
  for (const std::string& n : names) {
    if (n == "all") {
      out |= kAllPermissions;
      continue;
    }
    bool known = false;
    for (const auto& k : kNames) {
      if (n == k.name) {
        out |= k.bit;
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown permission '", n.substr(0, 32),
          "' (known: all, execute, query, status, join, remove, admin, "
          "backup, device)"));
    }
  }
  return out;
}

std::vector<std::string> PermissionNames(uint32_t permissions) {
  std::vector<std::string> out;
  for (const auto& k : kNames) {
    if (permissions & k.bit) out.push_back(k.name);
  }
  return out;
}

absl::Status ValidateUserName(absl::string_view name) {
  const bool chars_ok = !name.empty() && name.size() <= kMaxUserName &&
                        name.find_first_not_of(
                            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
                            "WXYZ0123456789_.@-") == absl::string_view::npos;
  if (!chars_ok) {
    return absl::InvalidArgumentError(
        "a user name has 1-64 characters of A-Z a-z 0-9 _ . @ -");
  }
  if (name == kRootUser || name.substr(0, 5) == "node-") {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", name, "' is reserved (root and node-<id> are certificates)"));
  }
  return absl::OkStatus();
}

std::string UserChange::Encode() const {
  std::string out(kUserMagic);
  out.push_back(static_cast<char>(op));
  core::PutBytes(out, user.name);
  core::PutBytes(out, user.password_hash);
  core::PutFixed64(out, user.permissions);
  core::PutFixed64(out, request_id);  // Last: PeekRequestId reads it there.
  return out;
}

std::optional<absl::StatusOr<UserChange>> UserChange::Decode(
    absl::string_view data) {
  std::string_view in = Std(data);
  if (in.substr(0, kUserMagic.size()) != kUserMagic) return std::nullopt;
  in.remove_prefix(kUserMagic.size());
  auto malformed = [] {
    return absl::StatusOr<UserChange>(
        absl::InvalidArgumentError("malformed user change"));
  };
  if (in.empty()) return malformed();
  UserChange c;
  c.op = static_cast<Op>(in[0]);
  in.remove_prefix(1);
  auto name = core::GetBytes(in);
  auto hash = core::GetBytes(in);
  auto permissions = core::GetFixed64(in);
  auto request = core::GetFixed64(in);
  if (!name || !hash || !permissions || !request || !in.empty() ||
      (c.op != Op::kPut && c.op != Op::kDelete) || hash->size() > kMaxHash ||
      *permissions > kKnownPermissions) {
    return malformed();
  }
  c.user = User{std::string(*name), std::string(*hash),
                static_cast<uint32_t>(*permissions)};
  c.request_id = *request;
  return absl::StatusOr<UserChange>(std::move(c));
}

uint64_t UserChange::PeekRequestId(absl::string_view data) {
  if (data.size() < kUserMagic.size() + 8 ||
      Std(data).substr(0, kUserMagic.size()) != kUserMagic) {
    return 0;
  }
  std::string_view tail = Std(data).substr(data.size() - 8);
  return core::GetFixed64(tail).value_or(0);
}

}  // namespace raftsql::sm
