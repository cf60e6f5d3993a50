// Entries that are not commands: setting changes (and the switches they
// set on the write connection) and user changes.
#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sm {

void SqliteStateMachine::ApplyUserChange(
    const absl::StatusOr<UserChange>& change, uint64_t index,
    std::string* out) {
  CommandResult& result = ResetResult(index);
  absl::Status s = change.status();
  if (s.ok()) s = ValidateUserName(change->user.name);
  if (s.ok() && change->op == UserChange::Op::kDelete &&
      !FindUser(change->user.name).has_value()) {
    s = absl::NotFoundError(absl::StrCat("no user named ", change->user.name));
  }
  if (s.ok()) {
    const User& u = change->user;
    const bool put = change->op == UserChange::Op::kPut;
    sqlite3_stmt* stmt = internal_->Get(
        put ? "INSERT OR REPLACE INTO _raftsql_users(name, hash, permissions) "
              "VALUES(?, ?, ?)"
            : "DELETE FROM _raftsql_users WHERE name = ?");
    sqlite3_bind_text(stmt, 1, u.name.data(), static_cast<int>(u.name.size()),
                      SQLITE_TRANSIENT);
    if (put) {
      sqlite3_bind_text(stmt, 2, u.password_hash.data(),
                        static_cast<int>(u.password_hash.size()),
                        SQLITE_TRANSIENT);
      sqlite3_bind_int64(stmt, 3, u.permissions);
    }
    internal_->Step(stmt);
    std::lock_guard<std::mutex> l(users_mu_);
    if (put) {
      users_[u.name] = u;
    } else {
      users_.erase(u.name);
    }
  }
  result.statements.push_back(StatementResult{s, 0, 0});
  result.EncodeTo(out);
}

void SqliteStateMachine::ApplySettingChange(
    const absl::StatusOr<SettingChange>& change, uint64_t index,
    std::string* out) {
  CommandResult& result = ResetResult(index);
  WriteSettings limits = budget_.limits();
  absl::Status s = change.status();
  if (s.ok()) s = ApplySetting(change->name, change->value, &limits);
  if (s.ok()) {
    sqlite3_stmt* up = internal_->Get(
        "INSERT OR REPLACE INTO _raftsql_meta(key, value) VALUES(?, ?)");
    const std::string key = absl::StrCat(kSettingPrefix, change->name);
    sqlite3_bind_text(up, 1, key.data(), static_cast<int>(key.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(up, 2, static_cast<int64_t>(change->value));
    internal_->Step(up);
    // In force from the next entry on, which starts a new transaction (the
    // connection's switches can only change between transactions, and a
    // batch that rolls back never holds an entry after a setting).
    SetWriteSettings(limits);
    batch_ends_ = true;
  }
  result.statements.push_back(StatementResult{s, 0, 0});
  result.EncodeTo(out);
}

void SqliteStateMachine::ApplyConnectionSwitches() {
  CHECK(sqlite3_get_autocommit(db_));  // Between transactions only.
  const WriteSettings& s = budget_.limits();
  if (switches_.has_value() && switches_->SameConnectionSwitches(s)) return;
  // Outside any transaction: PRAGMA foreign_keys does nothing inside one.
  const std::string sql = absl::StrCat(
      "PRAGMA foreign_keys = ", s.foreign_keys,
      "; PRAGMA recursive_triggers = ", s.recursive_triggers,
      "; PRAGMA case_sensitive_like = ", s.case_sensitive_like, ";");
  CHECK(internal_->Exec(sql.c_str()).ok());
  // The switches expire prepared statements; their re-preparation inside a
  // step would count towards one replica's write budget only.
  statements_->Clear();
  switches_ = s;
}

}  // namespace raftsql::sm
