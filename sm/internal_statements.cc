#include "sm/internal_statements.h"

#include <sqlite3.h>

#include "core/check.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {

InternalStatements::InternalStatements(sqlite3* db, StatementPolicy* policy)
    : db_(db), policy_(policy) {
  CHECK(db_ != nullptr);
  CHECK(policy_ != nullptr);
}

InternalStatements::~InternalStatements() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
}

sqlite3_stmt* InternalStatements::Get(const char* sql) {
  sqlite3_stmt*& stmt = statements_[sql];
  if (stmt == nullptr) {
    StatementPolicy::InternalScope scope(*policy_);
    const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                      &stmt, nullptr);
    CHECK(rc == SQLITE_OK);
    CHECK(stmt != nullptr);
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  return stmt;
}

void InternalStatements::Step(sqlite3_stmt* stmt) {
  CHECK(stmt != nullptr);
  {
    StatementPolicy::InternalScope scope(*policy_);
    CHECK(sqlite3_step(stmt) == SQLITE_DONE);
  }
  sqlite3_reset(stmt);
}

absl::Status InternalStatements::Run(const char* sql) {
  sqlite3_stmt* stmt = Get(sql);
  int rc;
  {
    StatementPolicy::InternalScope scope(*policy_);
    rc = sqlite3_step(stmt);
  }
  sqlite3_reset(stmt);
  if (rc != SQLITE_DONE) return SqliteError(db_, rc);
  return absl::OkStatus();
}

absl::Status InternalStatements::Exec(const char* sql) {
  StatementPolicy::InternalScope scope(*policy_);
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqliteError(db_, rc);
  return absl::OkStatus();
}

}  // namespace raftsql::sm
