// StatementPolicy: what SQLite's authorizer lets a client's statement do on
// one connection, and why it refused (DESIGN.md §3, §7). Every connection of
// the state machine has one: the write connection, the check connection
// (Validate) and each read connection.
//
// Our own statements (meta tables, sessions, users) run inside an
// InternalScope, which lets everything through; a client's never do.
//
// Thread-safety: none; a policy is used by the one thread that uses its
// connection at a time.
#ifndef RAFTSQL_SM_STATEMENT_POLICY_H_
#define RAFTSQL_SM_STATEMENT_POLICY_H_

#include <set>
#include <string>

#include "absl/status/status.h"

struct sqlite3;

namespace raftsql::sm {

// Our meta tables (names starting "_raftsql", any case).
bool IsInternalTable(const char* name);

class StatementPolicy {
 public:
  StatementPolicy() = default;
  StatementPolicy(const StatementPolicy&) = delete;
  StatementPolicy& operator=(const StatementPolicy&) = delete;

  // Hardens `db` (no extensions, defensive mode, no attached databases,
  // extended result codes) and installs this policy as its authorizer.
  // The policy must outlive the connection.
  absl::Status Install(sqlite3* db);

  // While it lives, statements prepared or stepped on the connection are
  // ours and pass the authorizer. Scopes nest.
  class InternalScope {
   public:
    explicit InternalScope(StatementPolicy& policy) : policy_(policy) {
      ++policy_.internal_depth_;
    }
    InternalScope(const InternalScope&) = delete;
    InternalScope& operator=(const InternalScope&) = delete;
    ~InternalScope() { --policy_.internal_depth_; }

   private:
    StatementPolicy& policy_;
  };
  bool internal() const { return internal_depth_ > 0; }

  // A client's statement is about to be prepared: forget the last refusal.
  void BeginStatement() { refusal_.clear(); }
  // Why the authorizer refused the last statement ("" if it did not).
  const std::string& refusal() const { return refusal_; }

  // The connection runs replicated writes (the write connection, and the
  // one that validates them): what differs between replicas (a row's place
  // in the file, page counts, the connection's own state) is refused.
  void set_replicated(bool replicated) { replicated_ = replicated; }

  // Write connection only: the tables whose schema a statement changes are
  // added to `*tables` (null: not recorded). `tables` must outlive its use.
  void RecordSchemaChanges(std::set<std::string>* tables) {
    schema_changes_ = tables;
  }

  // SQLite's authorizer (public for the C callback only).
  int Authorize(int action, const char* a1, const char* a2, const char* db);

  void CheckInvariants() const;

 private:
  int Refuse(std::string why);
  int AuthorizePragma(const char* name, const char* argument, const char* db);

  int internal_depth_ = 0;  // Invariant: >= 0.
  bool replicated_ = false;
  std::string refusal_;
  std::set<std::string>* schema_changes_ = nullptr;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_STATEMENT_POLICY_H_
