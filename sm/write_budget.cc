#include "sm/write_budget.h"

#include <sqlite3.h>

#include <string_view>

#include "absl/strings/str_cat.h"
#include "core/codec.h"

namespace raftsql::sm {
namespace {

constexpr absl::string_view kSettingMagic = "set1";

struct Range {
  absl::string_view name;
  uint64_t min;
  uint64_t max;
  uint64_t WriteLimits::*field;
};

// SQLITE_LIMIT_LENGTH cannot exceed SQLite's compile-time maximum (1e9).
constexpr Range kRanges[] = {
    {kSettingVmSteps, 10'000, 2'000'000'000, &WriteLimits::vm_steps_max},
    {kSettingRowBytes, 1 << 20, uint64_t{1} << 40, &WriteLimits::row_bytes_max},
    {kSettingValueBytes, 1 << 20, 1'000'000'000, &WriteLimits::value_bytes_max},
    {kSettingSessionIdle, 60'000, uint64_t{366} * 24 * 3600 * 1000,
     &WriteLimits::session_idle_ms_max},
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
                          WriteLimits* limits) {
  for (const Range& r : kRanges) {
    if (r.name != name) continue;
    if (value < r.min || value > r.max) {
      return absl::InvalidArgumentError(absl::StrCat(
          "setting ", name, " must be in [", r.min, ", ", r.max, "]"));
    }
    limits->*(r.field) = value;
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown setting '", name.substr(0, 64),
                   "' (known: ", kSettingVmSteps, ", ", kSettingRowBytes, ", ",
                   kSettingValueBytes, ", ", kSettingSessionIdle, ")"));
}

void WriteBudget::BeginCommand() {
  running_ = nullptr;
  steps_ = 0;
  row_bytes_ = 0;
  exceeded_ = false;
  steps_exceeded_ = false;
}

void WriteBudget::BeginStatement(sqlite3_stmt* stmt) {
  // The counter is the statement's own: a cached statement's earlier runs
  // and other VMs on the connection (a schema load) are not counted.
  sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_VM_STEP, /*resetFlg=*/1);
  running_ = stmt;
  progress_calls_ = 0;
}

void WriteBudget::EndStatement() {
  // SQLite adds a run's steps to the statement's counter when the run
  // returns; now it is exact.
  steps_ += static_cast<uint64_t>(
      sqlite3_stmt_status(running_, SQLITE_STMTSTATUS_VM_STEP, 0));
  running_ = nullptr;
  progress_calls_ = 0;
  (void)Over();
}

uint64_t WriteBudget::StepsSoFar() const {
  // While it runs, the statement's counter lags; SQLite calls the progress
  // handler each time the counter passes a multiple of kCheckEverySteps
  // (SQLite's vdbe.c: nProgressLimit follows the statement's own count, so
  // the calls fall on the same steps on every replica).
  return steps_ + progress_calls_ * kCheckEverySteps;
}

bool WriteBudget::OnProgress() {
  if (running_ == nullptr) return false;
  ++progress_calls_;
  return Over();
}

bool WriteBudget::Over() {
  if (exceeded_) return true;
  if (StepsSoFar() > limits_.vm_steps_max) {
    exceeded_ = steps_exceeded_ = true;
  } else if (row_bytes_ > limits_.row_bytes_max) {
    exceeded_ = true;
  }
  return exceeded_;
}

absl::Status WriteBudget::Error() const {
  if (steps_exceeded_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("write budget exceeded: the command took more than ",
                     limits_.vm_steps_max, " SQLite VM steps (",
                     kSettingVmSteps, "); nothing of it was applied"));
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("write budget exceeded: the command wrote more than ",
                   limits_.row_bytes_max, " bytes of rows (", kSettingRowBytes,
                   "); nothing of it was applied"));
}

}  // namespace raftsql::sm
