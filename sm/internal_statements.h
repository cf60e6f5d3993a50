// InternalStatements: our own statements on the write connection (meta
// tables, sessions, users, savepoints), prepared once and kept, each run past
// the authorizer inside the connection policy's InternalScope.
//
// Thread-safety: the apply thread only.
#ifndef RAFTSQL_SM_INTERNAL_STATEMENTS_H_
#define RAFTSQL_SM_INTERNAL_STATEMENTS_H_

#include <unordered_map>

#include "absl/status/status.h"
#include "sm/statement_policy.h"

struct sqlite3;
struct sqlite3_stmt;

namespace raftsql::sm {

class InternalStatements {
 public:
  // `db` and `policy` (the connection's) must outlive this.
  InternalStatements(sqlite3* db, StatementPolicy* policy);
  InternalStatements(const InternalStatements&) = delete;
  InternalStatements& operator=(const InternalStatements&) = delete;
  ~InternalStatements();

  // The cached statement for `sql`, reset with its bindings cleared.
  // `sql` is a string literal of ours: statements are keyed by its address.
  // Our SQL always prepares (a failure is a bug: CHECKed).
  sqlite3_stmt* Get(const char* sql);
  // Steps `stmt` (from Get, bound) to its end and resets it; a statement of
  // ours that fails there is a bug (CHECKed).
  void Step(sqlite3_stmt* stmt);
  // Get, then one step; the error if it does not run to its end.
  absl::Status Run(const char* sql);
  // sqlite3_exec of our own text (several statements allowed).
  absl::Status Exec(const char* sql);

  sqlite3* db() const { return db_; }
  StatementPolicy& policy() const { return *policy_; }
  size_t size() const { return statements_.size(); }

 private:
  sqlite3* db_;
  StatementPolicy* policy_;
  // Invariant: every value is a prepared statement (none null).
  std::unordered_map<const char*, sqlite3_stmt*> statements_;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_INTERNAL_STATEMENTS_H_
