// StatementValidator: checks a command before it is proposed, so that a
// statement the policy refuses, or SQL that does not parse, never spends a
// log entry. Runs on a read-only connection of its own (files), or on the
// write connection (memory: one thread drives it all).
//
// Thread-safety: Validate may be called from any thread.
#ifndef RAFTSQL_SM_STATEMENT_VALIDATOR_H_
#define RAFTSQL_SM_STATEMENT_VALIDATOR_H_

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/status/status.h"
#include "sm/command.h"
#include "sm/statement_policy.h"

struct sqlite3;
struct sqlite3_stmt;

namespace raftsql::sm {

class StatementValidator {
 public:
  static constexpr size_t kMaxCachedStatements = 256;

  // Validates on `db` under `policy`. Owns `db` (and keeps accepted
  // statements for reuse) if `owned`; otherwise both must outlive this.
  StatementValidator(sqlite3* db, StatementPolicy* policy, bool owned);
  StatementValidator(const StatementValidator&) = delete;
  StatementValidator& operator=(const StatementValidator&) = delete;
  ~StatementValidator();

  // PermissionDenied for a refused statement (ATTACH, load_extension,
  // dangerous PRAGMAs, temp objects, transaction control, writes to
  // internal tables), InvalidArgument for SQL that does not parse, a text
  // of several statements, a statement that only reads (it belongs in a
  // Query), an empty command or parameters missing or unknown. Names unknown
  // now may exist when the command applies, so they are left to the apply.
  absl::Status Validate(const Command& command);

 private:
  absl::Status ValidateStatement(const Statement& st);

  std::mutex mu_;
  sqlite3* const db_;
  StatementPolicy* const policy_;
  const bool owned_;
  // Statements accepted before (owned connections only): the refusals
  // depend on what the SQL does, not on the schema, so they pass again.
  std::unordered_map<std::string, sqlite3_stmt*> accepted_;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_STATEMENT_VALIDATOR_H_
