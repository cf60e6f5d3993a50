#include "sm/sqlite_util.h"

#include <cctype>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sm {

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
  // SQLite's messages quote the input ("near \"...\": syntax error").
  const std::string msg =
      TruncatedMessage(db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  // A refusal may also surface as SQLITE_SCHEMA (a prepare that fails on a
  // connection whose cached schema is older than the file's says so).
  if (primary == SQLITE_AUTH || !refusal.empty()) {
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
    case SQLITE_CANTOPEN:
      return absl::DataLossError(msg);
    case SQLITE_FULL:  // Nothing is lost: the write did not happen.
    case SQLITE_TOOBIG:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InvalidArgumentError(msg);
  }
}

namespace internal {

absl::Status TooManyParameters(int count, size_t given) {
  return absl::InvalidArgumentError(absl::StrCat(
      "statement takes ", count, " parameters, ", given, " given"));
}

absl::Status MissingParameterError(int index, const char* name, int count,
                                   size_t given) {
  return absl::InvalidArgumentError(TruncatedMessage(absl::StrCat(
      "parameter ", name != nullptr ? name : absl::StrCat("?", index),
      " is not bound (the statement takes ", count, ", ", given,
      " positional given)")));
}

absl::Status UnknownParameter(std::string_view name) {
  return absl::InvalidArgumentError(TruncatedMessage(absl::StrCat(
      "no parameter named '", std::string(name), "' in the statement")));
}

int ParameterIndex(sqlite3_stmt* stmt, std::string_view name) {
  const std::string exact(name);
  int index = sqlite3_bind_parameter_index(stmt, exact.c_str());
  for (const char* prefix : {":", "@", "$"}) {
    if (index == 0) {
      index = sqlite3_bind_parameter_index(stmt, (prefix + exact).c_str());
    }
  }
  return index;
}

}  // namespace internal

size_t SkipBlanksAndComments(std::string_view text, size_t from) {
  size_t i = from;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (std::isspace(c) || c == '\0') {
      ++i;
    } else if (text.substr(i, 2) == "--") {
      i = text.find('\n', i);
      if (i == std::string_view::npos) return text.size();
    } else if (text.substr(i, 2) == "/*") {
      i = text.find("*/", i + 2);  // Unterminated: a comment to the end.
      if (i == std::string_view::npos) return text.size();
      i += 2;
    } else {
      break;
    }
  }
  return i;
}

std::string FirstKeyword(std::string_view sql) {
  std::string word;
  for (size_t i = SkipBlanksAndComments(sql, 0);
       i < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i]));
       ++i) {
    word.push_back(
        static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i]))));
  }
  return word;
}

bool HoldsSeveralStatements(std::string_view sql) {
  // A trigger's body holds semicolons of its own: left to SQLite's parser.
  if (MentionsNoCase(sql, "trigger")) return false;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      const char close = c == '[' ? ']' : c;
      i = sql.find(close, i + 1);  // A doubled quote reopens at once.
      if (i == std::string_view::npos) return false;
    } else if (sql.substr(i, 2) == "--" || sql.substr(i, 2) == "/*") {
      i = SkipBlanksAndComments(sql, i);
      if (i >= sql.size()) return false;
      --i;
    } else if (c == ';') {
      size_t j = SkipBlanksAndComments(sql, i + 1);
      while (j < sql.size() && sql[j] == ';') {
        j = SkipBlanksAndComments(sql, j + 1);
      }
      return j < sql.size();
    }
  }
  return false;
}

absl::Status SeveralStatementsError() {
  return absl::InvalidArgumentError(
      "the text holds more than one SQL statement: send each as a "
      "statement of its own");
}

absl::Status CheckSingleStatement(const char* tail, const char* end) {
  if (tail == nullptr) return absl::OkStatus();
  const std::string_view rest(tail, static_cast<size_t>(end - tail));
  for (size_t i = SkipBlanksAndComments(rest, 0); i < rest.size();
       i = SkipBlanksAndComments(rest, i + 1)) {
    if (rest[i] != ';') return SeveralStatementsError();
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
