#include "sm/write_budget.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"

namespace raftsql::sm {
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
