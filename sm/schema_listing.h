// Schema listings without raftsql's internal tables (DESIGN.md §7).
//
// SQLite lists every table of the file in sqlite_schema, ours too
// (_raftsql_meta, _raftsql_sessions, ...), and no SQL object can shadow
// that name. So a client's statement is rewritten before it is prepared:
// each table reference to main's schema table (sqlite_schema,
// sqlite_master, quoted or not, qualified by `main` or not), to
// sqlite_stat1/sqlite_stat4 and to pragma_table_list, and the statement
// `PRAGMA [main.]table_list`, becomes a subquery over it that leaves out
// the rows of internal tables. The result has the same columns, declared
// types and order as the original; the rewrite is a pure function of the
// text, so every replica prepares the same statement.
//
// What stays visible: a view a client made over the schema table before
// this rewrite existed, and `rowid` of the schema table (a subquery has
// none; selecting it is an error).
#ifndef RAFTSQL_SM_SCHEMA_LISTING_H_
#define RAFTSQL_SM_SCHEMA_LISTING_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

struct sqlite3;

namespace raftsql::sm {

// Each rewritten reference adds about 120 bytes; more references than this
// in one statement are refused rather than let a statement grow tenfold.
inline constexpr int kMaxSchemaReferences = 100;

// Sets `*rewrite` to the text to prepare instead of `sql`, or clears it
// when `sql` lists nothing internal. InvalidArgument over
// kMaxSchemaReferences.
absl::Status HideInternalTables(std::string_view sql, std::string* rewrite);

// The names of `sql`'s result columns as the client wrote it (a rewrite's
// expression columns are named by the rewritten text). Prepares `sql` on
// `db` and never steps it (the caller lets it past the authorizer); empty
// if it does not prepare.
std::vector<std::string> WrittenColumnNames(sqlite3* db, std::string_view sql);

// The text to prepare for a client's statement: `sql` or its rewrite.
class ClientSql {
 public:
  explicit ClientSql(std::string_view sql)
      : status_(HideInternalTables(sql, &rewrite_)),
        text_(rewrite_.empty() ? sql : std::string_view(rewrite_)) {}
  ClientSql(const ClientSql&) = delete;
  ClientSql& operator=(const ClientSql&) = delete;

  const absl::Status& status() const { return status_; }
  std::string_view text() const { return text_; }
  const char* end() const { return text_.data() + text_.size(); }
  bool rewritten() const { return !rewrite_.empty(); }

 private:
  std::string rewrite_;  // Before status_: its initializer fills this.
  const absl::Status status_;
  const std::string_view text_;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_SCHEMA_LISTING_H_
