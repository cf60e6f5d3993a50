// Small helpers over the SQLite C API: statement RAII, binding typed values,
// reading typed columns, mapping SQLite errors to absl::Status.
#ifndef RAFTSQL_SM_SQLITE_UTIL_H_
#define RAFTSQL_SM_SQLITE_UTIL_H_

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "sm/command.h"

namespace raftsql::sm {

// Milliseconds since `t`, for log lines (never for what is replicated).
inline long long MillisecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - t)
      .count();
}

inline char LowerAscii(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Whether `text` contains `lower_word` (lower-case ASCII), ignoring case.
inline bool MentionsNoCase(std::string_view text, std::string_view lower_word) {
  if (lower_word.empty() || text.size() < lower_word.size()) return false;
  for (size_t i = 0; i + lower_word.size() <= text.size(); ++i) {
    size_t k = 0;
    while (k < lower_word.size() && LowerAscii(text[i + k]) == lower_word[k]) {
      ++k;
    }
    if (k == lower_word.size()) return true;
  }
  return false;
}

// The _raftsql_meta key that holds a table's version. Table names compare
// case-insensitively in ASCII only, as SQLite's own names (and NOCASE) do.
constexpr std::string_view kVersionKeyPrefix = "version:";
inline std::string VersionKey(std::string_view table) {
  std::string key(kVersionKeyPrefix);
  for (char c : table) key.push_back(LowerAscii(c));
  return key;
}
// Whether `key` is VersionKey(table), without building it.
inline bool IsVersionKeyOf(std::string_view key, std::string_view table) {
  return key.size() == kVersionKeyPrefix.size() + table.size() &&
         std::equal(table.begin(), table.end(),
                    key.begin() + kVersionKeyPrefix.size(),
                    [](char a, char lower) { return LowerAscii(a) == lower; });
}

class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : stmt_(s) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(stmt_); }
  sqlite3_stmt* get() const { return stmt_; }
  sqlite3_stmt** out() { return &stmt_; }
  sqlite3_stmt* release() {
    sqlite3_stmt* s = stmt_;
    stmt_ = nullptr;
    return s;
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Maps a SQLite result code (with the connection's message) to a status:
// constraint violations are FailedPrecondition, refusals by the authorizer
// (SQLITE_AUTH, or any failure with a `refusal`) PermissionDenied,
// busy/locked Unavailable, I/O and corruption DataLoss, a full disk or a
// value too big ResourceExhausted, everything else (syntax, no such table,
// ...) InvalidArgument.
absl::Status SqliteError(sqlite3* db, int rc, const std::string& refusal = "");

namespace internal {
// V: Value or ValueView.
template <typename V>
int BindValue(sqlite3_stmt* stmt, int i, const V& v) {
  switch (v.type) {
    case Value::Type::kNull:
      return sqlite3_bind_null(stmt, i);
    case Value::Type::kInteger:
      return sqlite3_bind_int64(stmt, i, v.integer);
    case Value::Type::kReal:
      return sqlite3_bind_double(stmt, i, v.real);
    case Value::Type::kText:
      // STATIC: the values outlive the step. A binding left behind them is
      // never read: every run binds all parameters or clears them first.
      return sqlite3_bind_text64(stmt, i, v.bytes.data(), v.bytes.size(),
                                 SQLITE_STATIC, SQLITE_UTF8);
    case Value::Type::kBlob:
      return sqlite3_bind_blob64(stmt, i, v.bytes.data(), v.bytes.size(),
                                 SQLITE_STATIC);
  }
  return SQLITE_MISUSE;
}
absl::Status TooManyParameters(int count, size_t given);
absl::Status MissingParameterError(int index, const char* name, int count,
                                   size_t given);
absl::Status UnknownParameter(std::string_view name);
// Names the first parameter of `stmt` that `statement` leaves unbound.
template <typename S>
absl::Status MissingParameter(sqlite3_stmt* stmt, const S& statement);
int ParameterIndex(sqlite3_stmt* stmt, std::string_view name);
}  // namespace internal

// Binds positional then named parameters. InvalidArgument on a count
// mismatch or an unknown name. S: Statement or StatementView.
template <typename S>
absl::Status BindAll(sqlite3_stmt* stmt, const S& statement) {
  const int count = sqlite3_bind_parameter_count(stmt);
  if (static_cast<int>(statement.positional.size()) > count) {
    return internal::TooManyParameters(count, statement.positional.size());
  }
  for (size_t i = 0; i < statement.positional.size(); ++i) {
    if (internal::BindValue(stmt, static_cast<int>(i) + 1,
                            statement.positional[i]) != SQLITE_OK) {
      return absl::InvalidArgumentError("cannot bind parameter");
    }
  }
  // Every parameter past the positional ones must be named: one left
  // unbound would silently read NULL.
  int unbound = count - static_cast<int>(statement.positional.size());
  for (const auto& [name, value] : statement.named) {
    const int index = internal::ParameterIndex(stmt, name);
    if (index == 0) return internal::UnknownParameter(name);
    if (internal::BindValue(stmt, index, value) != SQLITE_OK) {
      return absl::InvalidArgumentError("cannot bind parameter");
    }
    if (index > static_cast<int>(statement.positional.size())) --unbound;
  }
  if (unbound > 0) return internal::MissingParameter(stmt, statement);
  return absl::OkStatus();
}

namespace internal {
template <typename S>
absl::Status MissingParameter(sqlite3_stmt* stmt, const S& statement) {
  const int count = sqlite3_bind_parameter_count(stmt);
  for (int i = static_cast<int>(statement.positional.size()) + 1; i <= count;
       ++i) {
    bool named = false;
    for (const auto& [name, value] : statement.named) {
      named = named || ParameterIndex(stmt, name) == i;
    }
    if (named) continue;
    const char* name = sqlite3_bind_parameter_name(stmt, i);
    return MissingParameterError(i, name, count, statement.positional.size());
  }
  return absl::InvalidArgumentError("a parameter is not bound");
}
}  // namespace internal

Value ColumnValue(sqlite3_stmt* stmt, int i);

// The index of the first character at or after `from` in `text` that is
// not a blank, a NUL or part of a comment (-- or /* */); text.size() if none.
size_t SkipBlanksAndComments(std::string_view text, size_t from);

// The first keyword of `sql`, past blanks and comments, in upper case.
std::string FirstKeyword(std::string_view sql);

// Whether `sql` holds a second statement after a ';' (outside quotes and
// comments), for a text SQLite could not prepare; false for a text that
// mentions TRIGGER, whose body holds semicolons of its own.
bool HoldsSeveralStatements(std::string_view sql);
absl::Status SeveralStatementsError();

// `tail` is what sqlite3_prepare left after the first statement of a text
// that ends at `end` (not necessarily NUL-terminated). InvalidArgument if it
// holds anything but blanks, comments, ';' and NULs (SQLite stops reading at
// a NUL, so what follows one would be silently dropped): each Statement
// carries exactly one SQL statement.
absl::Status CheckSingleStatement(const char* tail, const char* end);

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_SQLITE_UTIL_H_
