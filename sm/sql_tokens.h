// SQLite's tokens, as far as raftsql reads statements itself: finding
// table references (schema_listing.h) and recognizing VACUUM.
#ifndef RAFTSQL_SM_SQL_TOKENS_H_
#define RAFTSQL_SM_SQL_TOKENS_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace raftsql::sm {

enum class Kind { kWord, kQuotedName, kString, kPunct, kOther };

struct Token {
  Kind kind = Kind::kOther;
  size_t begin = 0;
  size_t end = 0;
  std::string name;  // kWord, kQuotedName: the name unquoted; kPunct: it.
};

// `sql`'s tokens; blanks and comments are skipped.
std::vector<Token> Tokenize(std::string_view sql);

// Whether `sql` is `VACUUM` or `VACUUM main` (any case, `main` quoted or
// not, with blanks, comments and trailing semicolons): the form raftsql
// runs, on every replica, off its apply loop (sm/vacuum.h).
bool IsPlainVacuum(std::string_view sql);

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_SQL_TOKENS_H_
