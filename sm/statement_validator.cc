#include "sm/statement_validator.h"

#include <sqlite3.h>

#include "core/check.h"
#include "sm/schema_listing.h"
#include "sm/sql_tokens.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {

StatementValidator::StatementValidator(sqlite3* db, StatementPolicy* policy,
                                       bool owned)
    : db_(db), policy_(policy), owned_(owned) {
  CHECK(db_ != nullptr);
  CHECK(policy_ != nullptr);
}

StatementValidator::~StatementValidator() {
  for (auto& [sql, stmt] : accepted_) sqlite3_finalize(stmt);
  if (owned_) sqlite3_close(db_);
}

absl::Status StatementValidator::Validate(const Command& command) {
  if (command.statements.empty()) {
    return absl::InvalidArgumentError("a command needs at least one statement");
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const Statement& st : command.statements) {
    absl::Status s = ValidateStatement(st);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status StatementValidator::ValidateStatement(const Statement& st) {
  if (FirstKeyword(st.sql) == "VACUUM") {
    // Every replica rebuilds its file off the apply loop once the entry
    // applies (sm/vacuum.h); the statement itself does nothing in it.
    if (IsPlainVacuum(st.sql)) return absl::OkStatus();
    return absl::PermissionDeniedError(
        "refused: only VACUUM and VACUUM main run (each replica rebuilds its "
        "file in the background); VACUUM INTO would write a file on every "
        "replica, and the other schemas are not replicated");
  }
  if (auto it = accepted_.find(st.sql); it != accepted_.end()) {
    sqlite3_reset(it->second);
    sqlite3_clear_bindings(it->second);
    absl::Status bind = BindAll(it->second, st);
    sqlite3_clear_bindings(it->second);
    return bind;
  }
  CHECK(!policy_->internal());
  policy_->BeginStatement();
  const ClientSql text(st.sql);
  if (!text.status().ok()) return text.status();
  Stmt stmt;
  const char* tail = nullptr;
  const int rc = sqlite3_prepare_v3(
      db_, text.text().data(), static_cast<int>(text.text().size()),
      SQLITE_PREPARE_PERSISTENT, stmt.out(), &tail);
  if ((rc & 0xff) == SQLITE_AUTH || !policy_->refusal().empty()) {
    return SqliteError(db_, rc, policy_->refusal());
  }
  if (rc != SQLITE_OK) {
    // Unknown tables or columns may exist by the time the command applies
    // (an earlier statement may create them); syntax errors and unknown
    // functions cannot change and are final now.
    const std::string msg = sqlite3_errmsg(db_);
    if (msg.find("load_extension") != std::string::npos) {
      return absl::PermissionDeniedError(
          "refused: load_extension() is not allowed");
    }
    if (msg.find("syntax error") != std::string::npos ||
        msg.find("incomplete input") != std::string::npos ||
        msg.find("unrecognized token") != std::string::npos ||
        msg.find("no such function") != std::string::npos) {
      return absl::InvalidArgumentError(msg);
    }
    if (HoldsSeveralStatements(st.sql)) return SeveralStatementsError();
    return absl::OkStatus();
  }
  if (stmt.get() == nullptr) {
    return absl::InvalidArgumentError("empty statement");
  }
  absl::Status single = CheckSingleStatement(tail, text.end());
  if (!single.ok()) return single;
  if (sqlite3_stmt_readonly(stmt.get())) {
    // It would spend a log entry and its rows would be thrown away.
    return WrongPathError(
        StatementKind::kReadsOnly,
        "the statement only reads: send it with Query (Execute would spend "
        "a log entry and return no rows)");
  }
  absl::Status bind = BindAll(stmt.get(), st);
  sqlite3_clear_bindings(stmt.get());
  if (!bind.ok()) return bind;
  if (owned_) {  // Files only; the simulator's machine keeps none.
    if (accepted_.size() >= kMaxCachedStatements) {
      for (auto& [text, old] : accepted_) sqlite3_finalize(old);
      accepted_.clear();
    }
    accepted_.emplace(st.sql, stmt.release());
  }
  return absl::OkStatus();
}

}  // namespace raftsql::sm
