#include "sm/statement_policy.h"

#include <sqlite3.h>

#include <cstring>
#include <span>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace raftsql::sm {
namespace {

// PRAGMAs that only read, whatever their argument (a table's name): the
// schema, the database's soundness, what this SQLite build offers.
constexpr const char* kReadingPragmas[] = {
    "table_info",  "table_xinfo",      "index_list",        "index_info",
    "index_xinfo", "foreign_key_list", "foreign_key_check", "integrity_check",
    "quick_check", "table_list",       "collation_list",    "function_list",
    "module_list", "pragma_list",      "compile_options",
};
// PRAGMAs that read a value without an argument and would set it with one.
// Reading is always allowed (FTS5 and R-Tree read data_version and
// page_size themselves); setting only where kReplicatedPragmas says.
constexpr const char* kValuePragmas[] = {
    "user_version",    "application_id",     "schema_version",
    "page_size",       "page_count",         "freelist_count",
    "max_page_count",  "data_version",       "encoding",
    "auto_vacuum",     "journal_mode",       "synchronous",
    "foreign_keys",    "recursive_triggers", "defer_foreign_keys",
    "cache_size",      "legacy_alter_table", "secure_delete",
    "automatic_index", "cell_size_check",    "trusted_schema",
};
// PRAGMAs whose setting lives in the database file's header, so that the
// write is replicated with the entry and kept in snapshots.
constexpr const char* kReplicatedPragmas[] = {"user_version", "application_id"};
// Settings of one connection that decide what a write does: they must be
// the same on every replica, so they are cluster settings, not PRAGMAs.
constexpr const char* kClusterSettingPragmas[] = {
    "foreign_keys", "recursive_triggers", "case_sensitive_like",
    "defer_foreign_keys"};

// Tables (most of them virtual) whose rows differ between replicas that
// hold the same data: pages and their layout, the connection's statements,
// the file's name. Readable by Query, never by a write.
constexpr const char* kReplicaLocalTables[] = {
    "dbstat",
    "sqlite_dbpage",
    "sqlite_stmt",
    "pragma_page_count",
    "pragma_freelist_count",
    "pragma_data_version",
    "pragma_database_list",
    "pragma_stats",
    "pragma_cache_size",
};

bool Listed(const char* name, std::span<const char* const> list) {
  if (name == nullptr) return false;
  for (const char* entry : list) {
    if (absl::EqualsIgnoreCase(name, entry)) return true;
  }
  return false;
}

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
      return AuthorizePragma(a1, a2, db);
    case SQLITE_READ:
      // Sessions' stored results, password hashes and the meta rows are
      // nobody's to read (nor to copy into a table of their own).
      if (IsInternalTable(a1)) {
        return Refuse(absl::StrCat("table ", a1, " is internal to raftsql"));
      }
      if (replicated_ && Listed(a1, kReplicaLocalTables)) {
        return Refuse(absl::StrCat(a1,
                                   " differs between replicas and cannot "
                                   "be read by a write (Query can)"));
      }
      return SQLITE_OK;
    case SQLITE_FUNCTION:
      if (a2 != nullptr && absl::EqualsIgnoreCase(a2, "load_extension")) {
        return Refuse("load_extension() is not allowed");
      }
      if (a2 != nullptr && absl::EqualsIgnoreCase(a2, "fts3_tokenizer")) {
        return Refuse("fts3_tokenizer() is not allowed: it takes a pointer");
      }
      if (replicated_ && a2 != nullptr &&
          absl::EqualsIgnoreCase(a2, "sqlite_offset")) {
        return Refuse(
            "sqlite_offset() cannot be used by a write: a row's place in "
            "the file differs between replicas");
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
        // SQLite's own DDL (ALTER TABLE, CREATE TEMP ...) also updates the
        // temp schema; temp objects are refused where they are created, so
        // that schema stays empty on every replica.
        if (std::strcmp(db, "temp") == 0 && a1 != nullptr &&
            (absl::EqualsIgnoreCase(a1, "sqlite_temp_master") ||
             absl::EqualsIgnoreCase(a1, "sqlite_master"))) {
          return SQLITE_OK;
        }
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

int StatementPolicy::AuthorizePragma(const char* name, const char* argument,
                                     const char* db) {
  // table_info(_raftsql_sessions), index_list(...), and the indexes SQLite
  // made for their keys.
  if (IsInternalTable(argument) ||
      (argument != nullptr &&
       absl::StartsWithIgnoreCase(argument, "sqlite_autoindex__raftsql"))) {
    return Refuse(absl::StrCat("table ", argument, " is internal to raftsql"));
  }
  if (Listed(name, kReadingPragmas)) return SQLITE_OK;
  if (argument == nullptr && Listed(name, kValuePragmas)) return SQLITE_OK;
  const bool main = db == nullptr || absl::EqualsIgnoreCase(db, "main");
  if (main && Listed(name, kReplicatedPragmas)) return SQLITE_OK;
  if (Listed(name, kClusterSettingPragmas)) {
    return Refuse(absl::StrCat(
        "PRAGMA ", name,
        " would set one connection only, and every replica must apply "
        "writes alike: set the cluster setting ",
        absl::AsciiStrToLower(name), " instead"));
  }
  return Refuse(absl::StrCat(
      "PRAGMA ", name != nullptr ? name : "",
      argument != nullptr ? " with an argument" : "",
      " is not allowed: it would change the database's storage or settings "
      "outside replication"));
}

void StatementPolicy::CheckInvariants() const { CHECK_GE(internal_depth_, 0); }

}  // namespace raftsql::sm
