#include "sm/sqlite_util.h"

#include <cctype>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sm {
namespace {

int BindValue(sqlite3_stmt* stmt, int i, const Value& v) {
  switch (v.type) {
    case Value::Type::kNull:
      return sqlite3_bind_null(stmt, i);
    case Value::Type::kInteger:
      return sqlite3_bind_int64(stmt, i, v.integer);
    case Value::Type::kReal:
      return sqlite3_bind_double(stmt, i, v.real);
    case Value::Type::kText:
      // STATIC: the statement's values outlive the step, and the bindings
      // are cleared before they go.
      return sqlite3_bind_text64(stmt, i, v.bytes.data(), v.bytes.size(),
                                 SQLITE_STATIC, SQLITE_UTF8);
    case Value::Type::kBlob:
      return sqlite3_bind_blob64(stmt, i, v.bytes.data(), v.bytes.size(),
                                 SQLITE_STATIC);
  }
  return SQLITE_MISUSE;
}

}  // namespace

void ConfigureSqliteProcess() {
  static std::once_flag once;
  std::call_once(once, [] {
    // SQLITE_MISUSE if SQLite is already initialized: the defaults stay,
    // which is slower but correct.
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  });
}

absl::Status SqliteError(sqlite3* db, int rc, const std::string& refusal) {
  const int primary = rc & 0xff;
  std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (primary == SQLITE_AUTH) {
    return absl::PermissionDeniedError(
        refusal.empty() ? msg : absl::StrCat("refused: ", refusal));
  }
  switch (primary) {
    case SQLITE_CONSTRAINT:
      return absl::FailedPreconditionError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
      return absl::DataLossError(msg);
    case SQLITE_TOOBIG:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InvalidArgumentError(msg);
  }
}

absl::Status BindAll(sqlite3_stmt* stmt, const Statement& statement) {
  const int count = sqlite3_bind_parameter_count(stmt);
  if (static_cast<int>(statement.positional.size()) > count) {
    return absl::InvalidArgumentError(
        absl::StrCat("statement takes ", count, " parameters, ",
                     statement.positional.size(), " given"));
  }
  for (size_t i = 0; i < statement.positional.size(); ++i) {
    if (BindValue(stmt, static_cast<int>(i) + 1, statement.positional[i]) !=
        SQLITE_OK) {
      return absl::InvalidArgumentError("cannot bind parameter");
    }
  }
  for (const auto& [name, value] : statement.named) {
    int index = sqlite3_bind_parameter_index(stmt, name.c_str());
    for (const char* prefix : {":", "@", "$"}) {
      if (index == 0) {
        index = sqlite3_bind_parameter_index(
            stmt, absl::StrCat(prefix, name).c_str());
      }
    }
    if (index == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("no parameter named '", name, "' in the statement"));
    }
    if (BindValue(stmt, index, value) != SQLITE_OK) {
      return absl::InvalidArgumentError("cannot bind parameter");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSingleStatement(const char* tail) {
  if (tail == nullptr) return absl::OkStatus();
  while (*tail != '\0' &&
         (std::isspace(static_cast<unsigned char>(*tail)) || *tail == ';')) {
    ++tail;
  }
  if (*tail != '\0') {
    return absl::InvalidArgumentError(
        "one SQL statement per Statement: split the text into several");
  }
  return absl::OkStatus();
}

Value ColumnValue(sqlite3_stmt* stmt, int i) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
      return Value::Integer(sqlite3_column_int64(stmt, i));
    case SQLITE_FLOAT:
      return Value::Real(sqlite3_column_double(stmt, i));
    case SQLITE_TEXT: {
      const auto* p =
          reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      return Value::Text(std::string(p, sqlite3_column_bytes(stmt, i)));
    }
    case SQLITE_BLOB: {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, i));
      const int n = sqlite3_column_bytes(stmt, i);
      return Value::Blob(n > 0 ? std::string(p, n) : std::string());
    }
    default:
      return Value::Null();
  }
}

}  // namespace raftsql::sm
