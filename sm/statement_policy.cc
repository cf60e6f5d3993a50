#include "sm/statement_policy.h"

#include <sqlite3.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace raftsql::sm {
namespace {

// PRAGMAs that only read the schema: allowed. Every other PRAGMA could change
// durability, journaling or the schema itself and is refused.
constexpr const char* kReadOnlyPragmas[] = {
    "table_info",  "table_xinfo",      "index_list",        "index_info",
    "index_xinfo", "foreign_key_list", "foreign_key_check", "integrity_check",
    "quick_check", "table_list",
};

int AuthorizerCallback(void* ctx, int action, const char* a1, const char* a2,
                       const char* db, const char*) {
  return static_cast<StatementPolicy*>(ctx)->Authorize(action, a1, a2, db);
}

}  // namespace

bool IsInternalTable(const char* name) {
  return name != nullptr && absl::StartsWithIgnoreCase(name, "_raftsql");
}

absl::Status StatementPolicy::Install(sqlite3* db) {
  CHECK(db != nullptr);
  int on = 0;
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, &on);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, &on);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, &on);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_extended_result_codes(db, 1);
  if (sqlite3_set_authorizer(db, AuthorizerCallback, this) != SQLITE_OK) {
    return absl::InternalError("cannot install the SQLite authorizer");
  }
  return absl::OkStatus();
}

int StatementPolicy::Refuse(std::string why) {
  refusal_ = std::move(why);
  return SQLITE_DENY;
}

int StatementPolicy::Authorize(int action, const char* a1, const char* a2,
                               const char* db) {
  CHECK_GE(internal_depth_, 0);
  if (internal()) return SQLITE_OK;
  switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return Refuse(
          "ATTACH and DETACH are not allowed: every replica must "
          "see the same single database");
    case SQLITE_PRAGMA:
      for (const char* ok : kReadOnlyPragmas) {
        if (a1 != nullptr && absl::EqualsIgnoreCase(a1, ok)) {
          return SQLITE_OK;
        }
      }
      return Refuse(absl::StrCat("PRAGMA ", a1 ? a1 : "",
                                 " is not allowed: it would change settings "
                                 "or the schema outside replication"));
    case SQLITE_READ:
      // Sessions' stored results, password hashes and the meta rows are
      // nobody's to read (nor to copy into a table of their own).
      if (IsInternalTable(a1)) {
        return Refuse(absl::StrCat("table ", a1, " is internal to raftsql"));
      }
      return SQLITE_OK;
    case SQLITE_FUNCTION:
      if (a2 != nullptr && absl::EqualsIgnoreCase(a2, "load_extension")) {
        return Refuse("load_extension() is not allowed");
      }
      return SQLITE_OK;
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return Refuse(
          "transaction control is not allowed in statements: use "
          "the command's transaction flag");
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
      return Refuse(
          "temporary objects are not allowed: they live in one "
          "connection and are not replicated");
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
      if (db != nullptr && std::strcmp(db, "main") != 0) {
        return Refuse("only the main database can be written");
      }
      if (IsInternalTable(a1)) {
        return Refuse(absl::StrCat("table ", a1, " is internal to raftsql"));
      }
      return SQLITE_OK;
    case SQLITE_CREATE_TABLE:
    case SQLITE_DROP_TABLE:
      if (IsInternalTable(a1)) {
        return Refuse(absl::StrCat("table ", a1, " is internal to raftsql"));
      }
      if (schema_changes_ != nullptr) schema_changes_->insert(a1);
      return SQLITE_OK;
    case SQLITE_ALTER_TABLE:
    case SQLITE_CREATE_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_DROP_TRIGGER:
      if (IsInternalTable(a2)) {
        return Refuse(absl::StrCat("table ", a2, " is internal to raftsql"));
      }
      if (schema_changes_ != nullptr && a2 != nullptr) {
        schema_changes_->insert(a2);
      }
      return SQLITE_OK;
    default:
      return SQLITE_OK;
  }
}

void StatementPolicy::CheckInvariants() const { CHECK_GE(internal_depth_, 0); }

}  // namespace raftsql::sm
