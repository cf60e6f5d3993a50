#include "sm/settings.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/codec.h"

namespace raftsql::sm {
namespace {

constexpr absl::string_view kSettingMagic = "set1";

struct Range {
  absl::string_view name;
  uint64_t min;
  uint64_t max;
  uint64_t WriteSettings::*field;
};

// SQLITE_LIMIT_LENGTH cannot exceed SQLite's compile-time maximum (1e9).
constexpr Range kRanges[] = {
    {kSettingVmSteps, 10'000, 2'000'000'000, &WriteSettings::vm_steps_max},
    {kSettingRowBytes, 1 << 20, uint64_t{1} << 40,
     &WriteSettings::row_bytes_max},
    {kSettingValueBytes, 1 << 20, 1'000'000'000,
     &WriteSettings::value_bytes_max},
    {kSettingSessionIdle, 60'000, uint64_t{366} * 24 * 3600 * 1000,
     &WriteSettings::session_idle_ms_max},
    {kSettingSessionIdleEntries, 0, uint64_t{1} << 40,
     &WriteSettings::session_idle_entries_min},
    {kSettingForeignKeys, 0, 1, &WriteSettings::foreign_keys},
    {kSettingRecursiveTriggers, 0, 1, &WriteSettings::recursive_triggers},
    {kSettingCaseSensitiveLike, 0, 1, &WriteSettings::case_sensitive_like},
};

}  // namespace

std::string SettingChange::Encode() const {
  std::string out(kSettingMagic);
  core::PutBytes(out, name);
  core::PutFixed64(out, value);
  core::PutFixed64(out, request_id);  // Last: PeekRequestId reads it there.
  return out;
}

uint64_t SettingChange::PeekRequestId(absl::string_view data) {
  if (data.size() < kSettingMagic.size() + 8 ||
      data.substr(0, kSettingMagic.size()) != kSettingMagic) {
    return 0;
  }
  std::string_view tail(data.data() + data.size() - 8, 8);
  return core::GetFixed64(tail).value_or(0);
}

std::optional<absl::StatusOr<SettingChange>> SettingChange::Decode(
    absl::string_view data) {
  if (data.substr(0, kSettingMagic.size()) != kSettingMagic) {
    return std::nullopt;
  }
  std::string_view in(data.data() + kSettingMagic.size(),
                      data.size() - kSettingMagic.size());
  auto name = core::GetBytes(in);
  auto value = core::GetFixed64(in);
  auto request = core::GetFixed64(in);
  if (!name || !value || !request || !in.empty()) {
    return absl::StatusOr<SettingChange>(
        absl::InvalidArgumentError("malformed setting change"));
  }
  return absl::StatusOr<SettingChange>(
      SettingChange{std::string(*name), *value, *request});
}

absl::Status ApplySetting(absl::string_view name, uint64_t value,
                          WriteSettings* settings) {
  for (const Range& r : kRanges) {
    if (r.name != name) continue;
    if (value < r.min || value > r.max) {
      return absl::InvalidArgumentError(absl::StrCat(
          "setting ", name, " must be in [", r.min, ", ", r.max, "]"));
    }
    settings->*(r.field) = value;
    return absl::OkStatus();
  }
  std::vector<absl::string_view> known;
  for (const Range& r : kRanges) known.push_back(r.name);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown setting '", name.substr(0, 64),
                   "' (known: ", absl::StrJoin(known, ", "), ")"));
}

std::vector<std::pair<absl::string_view, uint64_t>> SettingValues(
    const WriteSettings& settings) {
  std::vector<std::pair<absl::string_view, uint64_t>> out;
  for (const Range& r : kRanges) out.emplace_back(r.name, settings.*(r.field));
  return out;
}

}  // namespace raftsql::sm
