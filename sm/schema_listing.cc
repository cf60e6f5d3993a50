#include "sm/schema_listing.h"

#include <sqlite3.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sm/sql_tokens.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {
namespace {

bool IsName(const Token& t) {
  return t.kind == Kind::kWord || t.kind == Kind::kQuotedName;
}
bool IsPunct(const Token* t, char p) {
  return t != nullptr && t->kind == Kind::kPunct && t->name[0] == p;
}
bool IsWord(const Token* t, const char* word) {
  return t != nullptr && t->kind == Kind::kWord &&
         absl::EqualsIgnoreCase(t->name, word);
}

// A listing that can name internal tables: where its rows come from and
// the column that holds the table's name.
struct Listing {
  const char* name;
  const char* source;
  const char* table_column;
};
constexpr Listing kListings[] = {
    {"sqlite_schema", "main.sqlite_master", "tbl_name"},
    {"sqlite_master", "main.sqlite_master", "tbl_name"},
    {"sqlite_stat1", "main.sqlite_stat1", "tbl"},
    {"sqlite_stat4", "main.sqlite_stat4", "tbl"},
    {"pragma_table_list", "pragma_table_list", "name"},
};

const Listing* FindListing(const Token& t) {
  if (!IsName(t)) return nullptr;
  for (const Listing& l : kListings) {
    if (absl::EqualsIgnoreCase(t.name, l.name)) return &l;
  }
  return nullptr;
}

std::string Subquery(const Listing& l, absl::string_view extra = "") {
  return absl::StrCat("(SELECT * FROM ", l.source, " WHERE lower(substr(",
                      l.table_column, ", 1, 8)) <> '_raftsql'", extra, ")");
}

// Words after which a FROM clause's table list has ended.
constexpr const char* kClauseWords[] = {
    "WHERE", "GROUP",  "HAVING",    "WINDOW",    "ORDER",  "LIMIT",
    "UNION", "EXCEPT", "INTERSECT", "SELECT",    "VALUES", "SET",
    "DO",    "BEGIN",  "END",       "RETURNING",
};

bool EndsFromClause(const Token& t) {
  if (t.kind != Kind::kWord) return false;
  for (const char* w : kClauseWords) {
    if (absl::EqualsIgnoreCase(t.name, w)) return true;
  }
  return false;
}

// Whether `t`, right after a table reference, is that reference's alias.
bool IsAlias(const Token* t) {
  if (t == nullptr) return false;
  if (t->kind == Kind::kQuotedName || t->kind == Kind::kString) return true;
  if (t->kind != Kind::kWord) return false;
  if (absl::EqualsIgnoreCase(t->name, "AS")) return true;
  return sqlite3_keyword_check(t->name.data(),
                               static_cast<int>(t->name.size())) == 0;
}

class Rewriter {
 public:
  Rewriter(std::string_view sql, std::vector<Token> tokens)
      : sql_(sql), tokens_(std::move(tokens)) {}

  absl::Status Run(std::string* rewrite) {
    if (IsWord(At(0), "PRAGMA")) {
      PragmaTableList();
    } else {
      TableReferences();
    }
    if (references_ > kMaxSchemaReferences) {
      return absl::InvalidArgumentError(
          absl::StrCat("the statement names SQLite's schema tables more than ",
                       kMaxSchemaReferences, " times"));
    }
    if (references_ == 0) {
      rewrite->clear();
      return absl::OkStatus();
    }
    out_.append(sql_.substr(copied_));
    *rewrite = std::move(out_);
    return absl::OkStatus();
  }

 private:
  const Token* At(size_t i) const {
    return i < tokens_.size() ? &tokens_[i] : nullptr;
  }

  void Replace(size_t begin, size_t end, absl::string_view with) {
    out_.append(sql_.substr(copied_, begin - copied_));
    out_.append(with.data(), with.size());
    copied_ = end;
    ++references_;
  }

  // PRAGMA [main.]table_list, without an argument.
  void PragmaTableList() {
    size_t i = 1;
    bool main = false;
    if (At(i + 1) != nullptr && IsPunct(At(i + 1), '.')) {
      if (!IsName(*At(i)) || !absl::EqualsIgnoreCase(At(i)->name, "main")) {
        return;
      }
      main = true;
      i += 2;
    }
    const Token* name = At(i);
    if (name == nullptr || !IsName(*name) ||
        !absl::EqualsIgnoreCase(name->name, "table_list")) {
      return;
    }
    const Token* next = At(i + 1);
    if (next != nullptr && !IsPunct(next, ';')) return;  // An argument.
    const Listing& l = kListings[4];
    Replace(0, name->end,
            absl::StrCat("SELECT * FROM ",
                         Subquery(l, main ? " AND schema = 'main'" : "")));
  }

  void TableReferences() {
    std::vector<bool> in_from = {false};  // Per parenthesis depth.
    bool expect_table = false;
    const Token* before = nullptr;
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const Token& t = tokens_[i];
      const bool table_position = expect_table;
      expect_table = false;
      if (IsPunct(&t, '(')) {
        in_from.push_back(false);
      } else if (IsPunct(&t, ')')) {
        if (in_from.size() > 1) in_from.pop_back();
      } else if (IsPunct(&t, ',')) {
        expect_table = in_from.back();
      } else if (IsPunct(&t, ';') || EndsFromClause(t)) {
        in_from.back() = false;
      } else if (IsWord(&t, "FROM")) {
        in_from.back() = true;
        expect_table = !IsWord(before, "DELETE");  // Its target, not a read.
      } else if (IsWord(&t, "JOIN")) {
        in_from.back() = true;
        expect_table = true;
      } else if (table_position && IsName(t)) {
        i = TableReference(i);
      }
      before = At(i);
    }
  }

  // The table reference at tokens_[i]; returns its last token's index.
  size_t TableReference(size_t i) {
    size_t name = i;
    if (IsPunct(At(i + 1), '.')) {
      if (!absl::EqualsIgnoreCase(tokens_[i].name, "main") ||
          At(i + 2) == nullptr) {
        return i;  // Another schema's table (temp is empty).
      }
      name = i + 2;
    }
    const Listing* l = FindListing(tokens_[name]);
    if (l == nullptr) return name;
    size_t last = name;
    if (IsPunct(At(last + 1), '(')) {
      // A table-valued function's arguments pick one table; internal
      // ones are refused by name (StatementPolicy). Empty ones pick all.
      if (!IsPunct(At(last + 2), ')')) return last;
      last += 2;
    }
    const Token& written = tokens_[name];
    std::string with = Subquery(*l);
    if (!IsAlias(At(last + 1))) {
      with.append(" AS ").append(
          sql_.substr(written.begin, written.end - written.begin));
    }
    Replace(tokens_[i].begin, tokens_[last].end, with);
    return last;
  }

  const std::string_view sql_;
  const std::vector<Token> tokens_;
  std::string out_;
  size_t copied_ = 0;
  int references_ = 0;
};

}  // namespace

absl::Status HideInternalTables(std::string_view sql, std::string* rewrite) {
  rewrite->clear();
  // Nearly every statement names none of them: keep those cheap.
  if (!MentionsNoCase(sql, "sqlite_") && !MentionsNoCase(sql, "table_list")) {
    return absl::OkStatus();
  }
  return Rewriter(sql, Tokenize(sql)).Run(rewrite);
}

std::vector<std::string> WrittenColumnNames(sqlite3* db, std::string_view sql) {
  Stmt stmt;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()),
                         stmt.out(), nullptr) != SQLITE_OK ||
      stmt.get() == nullptr) {
    return {};
  }
  std::vector<std::string> names;
  for (int i = 0; i < sqlite3_column_count(stmt.get()); ++i) {
    names.push_back(sqlite3_column_name(stmt.get(), i));
  }
  return names;
}

}  // namespace raftsql::sm
