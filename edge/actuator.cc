#include "edge/actuator.h"

namespace raftsql::edge {
namespace {

bool Exec(sqlite3* db, const char* sql, const std::string& arg) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) return false;
  sqlite3_bind_text(s, 1, arg.data(), static_cast<int>(arg.size()),
                    SQLITE_TRANSIENT);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
  }
  sqlite3_finalize(s);
  return rc == SQLITE_DONE;
}

}  // namespace

Outcome SimulatedActuator::Run(const std::string& name,
                               const std::string& params_json, sqlite3* db) {
  if (!Exec(db,
            "CREATE TABLE IF NOT EXISTS actuator_state(key TEXT PRIMARY "
            "KEY, value TEXT NOT NULL) WITHOUT ROWID",
            "")) {
    return {CommandStatus::kFailed, sqlite3_errmsg(db)};
  }
  if (name == "set") {
    if (!Exec(db,
              "INSERT OR REPLACE INTO actuator_state(key, value) SELECT key, "
              "json_quote(value) FROM json_each(?1)",
              params_json)) {
      return {CommandStatus::kFailed, sqlite3_errmsg(db)};
    }
    return {CommandStatus::kDone, "set"};
  }
  if (name == "clear") {
    if (!Exec(db,
              "DELETE FROM actuator_state WHERE key = json_extract(?1, "
              "'$.key')",
              params_json)) {
      return {CommandStatus::kFailed, sqlite3_errmsg(db)};
    }
    return {CommandStatus::kDone, "cleared"};
  }
  if (name == "fail") return {CommandStatus::kFailed, "asked to fail"};
  return {CommandStatus::kRejected, "unknown command " + name.substr(0, 64)};
}

std::string SimulatedActuator::Get(sqlite3* db, const std::string& key) {
  sqlite3_stmt* s = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, "SELECT value FROM actuator_state WHERE key = ?1",
                         -1, &s, nullptr) != SQLITE_OK) {
    return out;
  }
  sqlite3_bind_text(s, 1, key.data(), static_cast<int>(key.size()),
                    SQLITE_TRANSIENT);
  if (sqlite3_step(s) == SQLITE_ROW) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  }
  sqlite3_finalize(s);
  return out;
}

}  // namespace raftsql::edge
