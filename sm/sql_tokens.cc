#include "sm/sql_tokens.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace raftsql::sm {
namespace {

bool IsNameChar(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

// The end of a quoted run starting at `i` (its opening `quote`), where a
// doubled `close` stands for itself; the text's end if it never closes.
size_t QuotedEnd(std::string_view sql, size_t i, char close, bool doubles,
                 std::string* value) {
  for (++i; i < sql.size(); ++i) {
    if (sql[i] != close) {
      value->push_back(sql[i]);
    } else if (doubles && i + 1 < sql.size() && sql[i + 1] == close) {
      value->push_back(close);
      ++i;
    } else {
      return i + 1;
    }
  }
  return sql.size();
}

}  // namespace

std::vector<Token> Tokenize(std::string_view sql) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < sql.size()) {
    const unsigned char c = sql[i];
    if (absl::ascii_isspace(c)) {
      ++i;
      continue;
    }
    if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') ++i;
      continue;
    }
    if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      const size_t close = sql.find("*/", i + 2);
      i = close == std::string_view::npos ? sql.size() : close + 2;
      continue;
    }
    Token t;
    t.begin = i;
    if (c == '\'') {
      t.kind = Kind::kString;
      i = QuotedEnd(sql, i, '\'', true, &t.name);
    } else if (c == '"' || c == '`') {
      t.kind = Kind::kQuotedName;
      i = QuotedEnd(sql, i, static_cast<char>(c), true, &t.name);
    } else if (c == '[') {
      t.kind = Kind::kQuotedName;
      i = QuotedEnd(sql, i, ']', false, &t.name);
    } else if ((c == 'x' || c == 'X') && i + 1 < sql.size() &&
               sql[i + 1] == '\'') {
      t.kind = Kind::kOther;  // A blob literal.
      i = QuotedEnd(sql, i + 1, '\'', false, &t.name);
    } else if (absl::ascii_isdigit(c) || (c == '.' && i + 1 < sql.size() &&
                                          absl::ascii_isdigit(sql[i + 1]))) {
      t.kind = Kind::kOther;  // A number.
      while (i < sql.size() && (IsNameChar(sql[i]) || sql[i] == '.')) ++i;
    } else if (c == '?' || c == ':' || c == '@' || c == '$' || c == '#') {
      t.kind = Kind::kOther;  // A parameter.
      for (++i; i < sql.size() && IsNameChar(sql[i]); ++i) {
      }
    } else if (IsNameChar(c)) {
      t.kind = Kind::kWord;
      while (i < sql.size() && IsNameChar(sql[i])) ++i;
      t.name = std::string(sql.substr(t.begin, i - t.begin));
    } else {
      t.kind = Kind::kPunct;
      t.name = std::string(1, static_cast<char>(c));
      ++i;
    }
    t.end = i;
    tokens.push_back(std::move(t));
  }
  return tokens;
}

bool IsPlainVacuum(std::string_view sql) {
  const std::vector<Token> tokens = Tokenize(sql);
  size_t i = 0;
  auto at = [&tokens, &i]() -> const Token* {
    return i < tokens.size() ? &tokens[i] : nullptr;
  };
  const Token* t = at();
  if (t == nullptr || t->kind != Kind::kWord ||
      !absl::EqualsIgnoreCase(t->name, "VACUUM")) {
    return false;
  }
  ++i;
  t = at();
  if (t != nullptr &&
      (t->kind == Kind::kWord || t->kind == Kind::kQuotedName) &&
      absl::EqualsIgnoreCase(t->name, "main")) {
    ++i;
  }
  for (; (t = at()) != nullptr; ++i) {
    if (t->kind != Kind::kPunct || t->name != ";") return false;
  }
  return true;
}

}  // namespace raftsql::sm
