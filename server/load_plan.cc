#include "server/load_plan.h"

#include <sqlite3.h>

#include <fstream>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/check.h"
#include "sm/sqlite_util.h"

namespace raftsql::server {

namespace {

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct Finalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, CloseDb>;
using Stmt = std::unique_ptr<sqlite3_stmt, Finalize>;

// Statements gathered into commands of bounded size.
class Batcher {
 public:
  Batcher(size_t max_bytes, const LoadSink& sink, LoadTotals& totals)
      : max_bytes_(max_bytes), sink_(sink), totals_(totals) {}

  absl::Status Add(sm::Statement s) {
    size_t bytes = s.sql.size() + 16;
    for (const sm::Value& v : s.positional) bytes += v.bytes.size() + 16;
    if (!pending_.empty() && bytes_ + bytes > max_bytes_) {
      absl::Status flushed = Flush();
      if (!flushed.ok()) return flushed;
    }
    bytes_ += bytes;
    pending_.push_back(std::move(s));
    return absl::OkStatus();
  }

  absl::Status Flush() {
    if (pending_.empty()) return absl::OkStatus();
    totals_.statements += pending_.size();
    ++totals_.commands;
    std::vector<sm::Statement> out;
    out.swap(pending_);
    bytes_ = 0;
    return sink_(std::move(out));
  }

 private:
  const size_t max_bytes_;
  const LoadSink& sink_;
  LoadTotals& totals_;
  std::vector<sm::Statement> pending_;
  size_t bytes_ = 0;
};

std::string Quoted(absl::string_view name) {
  return absl::StrCat("\"", absl::StrReplaceAll(name, {{"\"", "\"\""}}), "\"");
}

absl::Status Error(sqlite3* db, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": ", sqlite3_errmsg(db)));
}

absl::StatusOr<Stmt> Prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    return Error(db, "cannot read the file");
  }
  return Stmt(s);
}

std::string Text(sqlite3_stmt* s, int column) {
  const unsigned char* t = sqlite3_column_text(s, column);
  return t == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(t),
                                    sqlite3_column_bytes(s, column));
}

// Names a load leaves alone: SQLite's own and raftsql's internal tables.
constexpr char kUserObjects[] =
    "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND "
    "name NOT LIKE '\\_raftsql%' ESCAPE '\\'";

struct Table {
  std::string name;
  std::string sql;
  bool is_virtual = false;
  bool without_rowid = false;
};

absl::Status CopyRows(sqlite3* db, const Table& t, Batcher& batch,
                      LoadTotals& totals) {
  absl::StatusOr<Stmt> cols = Prepare(
      db, absl::StrCat("SELECT name FROM pragma_table_xinfo(",
                       "'" + absl::StrReplaceAll(t.name, {{"'", "''"}}) + "'",
                       ") WHERE hidden = 0"));
  if (!cols.ok()) return cols.status();
  std::vector<std::string> names;
  while (sqlite3_step(cols->get()) == SQLITE_ROW) {
    names.push_back(Quoted(Text(cols->get(), 0)));
  }
  if (names.empty()) return absl::OkStatus();
  const bool keep_rowid = !t.is_virtual && !t.without_rowid;
  std::string list = keep_rowid ? "rowid" : "";
  std::string marks = keep_rowid ? "?" : "";
  for (const std::string& n : names) {
    absl::StrAppend(&list, list.empty() ? "" : ", ", n);
    absl::StrAppend(&marks, marks.empty() ? "?" : ", ?");
  }
  const std::string insert = absl::StrCat("INSERT INTO ", Quoted(t.name), "(",
                                          list, ") VALUES (", marks, ")");
  absl::StatusOr<Stmt> rows =
      Prepare(db, absl::StrCat("SELECT ", list, " FROM ", Quoted(t.name),
                               keep_rowid ? " ORDER BY rowid" : ""));
  if (!rows.ok()) return rows.status();
  int rc;
  while ((rc = sqlite3_step(rows->get())) == SQLITE_ROW) {
    sm::Statement s{insert};
    const int n = sqlite3_column_count(rows->get());
    s.positional.reserve(n);
    for (int i = 0; i < n; ++i)
      s.positional.push_back(sm::ColumnValue(rows->get(), i));
    ++totals.rows;
    absl::Status added = batch.Add(std::move(s));
    if (!added.ok()) return added;
  }
  if (rc != SQLITE_DONE) return Error(db, "cannot read the file's rows");
  return absl::OkStatus();
}

}  // namespace

std::string CreateIfNotExists(absl::string_view sql) {
  // Longest first: "CREATE TABLE " is a prefix of none of the others.
  static constexpr absl::string_view kCreates[] = {
      "CREATE VIRTUAL TABLE ", "CREATE UNIQUE INDEX ", "CREATE TABLE ",
      "CREATE INDEX ",         "CREATE VIEW ",         "CREATE TRIGGER "};
  const absl::string_view text = absl::StripLeadingAsciiWhitespace(sql);
  for (absl::string_view create : kCreates) {
    if (!absl::StartsWithIgnoreCase(text, create)) continue;
    const absl::string_view rest = text.substr(create.size());
    if (absl::StartsWithIgnoreCase(absl::StripLeadingAsciiWhitespace(rest),
                                   "IF NOT EXISTS")) {
      break;
    }
    return absl::StrCat(text.substr(0, create.size()), "IF NOT EXISTS ", rest);
  }
  return std::string(sql);
}

bool IsSqliteFile(absl::string_view head) {
  return absl::StartsWith(head, absl::string_view("SQLite format 3\0", 16));
}

absl::StatusOr<LoadTotals> LoadSqliteFile(const std::string& path,
                                          size_t max_command_bytes,
                                          const LoadSink& sink) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return Error(raw, "cannot open the file");
  {
    absl::StatusOr<Stmt> check = Prepare(db.get(), "PRAGMA quick_check");
    if (!check.ok()) return check.status();
    if (sqlite3_step(check->get()) != SQLITE_ROW ||
        Text(check->get(), 0) != "ok") {
      return absl::InvalidArgumentError(absl::StrCat(
          "the file is not a sound SQLite database: ", Text(check->get(), 0)));
    }
  }
  // The tables in the order they were made (sqlite_schema's rowid).
  absl::StatusOr<Stmt> tables = Prepare(
      db.get(),
      absl::StrCat("SELECT s.name, s.sql, l.type, l.wr FROM sqlite_schema s "
                   "JOIN pragma_table_list l ON l.name = s.name AND "
                   "l.schema = 'main' WHERE s.type = 'table' AND "
                   "l.type IN ('table', 'virtual') AND s.name IN (SELECT "
                   "name FROM sqlite_schema WHERE ",
                   kUserObjects, ") ORDER BY s.rowid"));
  if (!tables.ok()) return tables.status();
  std::vector<Table> list;
  while (sqlite3_step(tables->get()) == SQLITE_ROW) {
    list.push_back(Table{Text(tables->get(), 0), Text(tables->get(), 1),
                         Text(tables->get(), 2) == "virtual",
                         sqlite3_column_int(tables->get(), 3) != 0});
  }
  LoadTotals totals;
  Batcher batch(max_command_bytes, sink, totals);
  for (const Table& t : list) {
    absl::Status s = batch.Add(sm::Statement{CreateIfNotExists(t.sql)});
    if (!s.ok()) return s;
  }
  for (const Table& t : list) {
    absl::Status s = CopyRows(db.get(), t, batch, totals);
    if (!s.ok()) return s;
  }
  absl::StatusOr<Stmt> rest = Prepare(
      db.get(), absl::StrCat("SELECT sql FROM sqlite_schema WHERE type IN "
                             "('index', 'view', 'trigger') AND sql IS NOT "
                             "NULL AND ",
                             kUserObjects, " ORDER BY rowid"));
  if (!rest.ok()) return rest.status();
  while (sqlite3_step(rest->get()) == SQLITE_ROW) {
    absl::Status s =
        batch.Add(sm::Statement{CreateIfNotExists(Text(rest->get(), 0))});
    if (!s.ok()) return s;
  }
  absl::Status s = batch.Flush();
  if (!s.ok()) return s;
  return totals;
}

absl::StatusOr<LoadedFile> LoadFile(const std::string& path,
                                    size_t max_command_bytes,
                                    const LoadSink& sink) {
  char head[16] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    in.read(head, sizeof(head));
  }
  LoadedFile out;
  out.sqlite = IsSqliteFile(absl::string_view(head, sizeof(head)));
  uint64_t applied = 0;
  const LoadSink counted = [&](std::vector<sm::Statement> statements) {
    absl::Status s = sink(std::move(statements));
    if (s.ok()) ++applied;
    return s;
  };
  absl::StatusOr<LoadTotals> totals =
      out.sqlite ? LoadSqliteFile(path, max_command_bytes, counted)
                 : LoadSqlText(path, max_command_bytes, counted);
  if (!totals.ok()) {
    return absl::Status(totals.status().code(),
                        absl::StrCat(totals.status().message(), " (", applied,
                                     " commands of the load applied before "
                                     "it)"));
  }
  out.totals = *totals;
  return out;
}

absl::StatusOr<LoadTotals> DumpSqliteFile(
    const std::string& path, size_t piece_bytes,
    const std::function<absl::Status(std::string)>& write) {
  absl::Status begun = write("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n");
  if (!begun.ok()) return begun;
  const LoadSink render = [&write](std::vector<sm::Statement> statements) {
    std::string text;
    for (const sm::Statement& s : statements) {
      if (s.positional.empty()) {
        absl::StrAppend(&text, s.sql, ";\n");
        continue;
      }
      // A row's INSERT (CopyRows): its marks are the last VALUES list.
      const size_t values = s.sql.rfind(" VALUES (");
      CHECK_NE(values, std::string::npos);
      absl::StrAppend(&text, s.sql.substr(0, values), " VALUES (");
      for (size_t i = 0; i < s.positional.size(); ++i) {
        absl::StrAppend(&text, i == 0 ? "" : ",",
                        sm::SqlLiteral(s.positional[i]));
      }
      absl::StrAppend(&text, ");\n");
    }
    return write(std::move(text));
  };
  absl::StatusOr<LoadTotals> totals = LoadSqliteFile(path, piece_bytes, render);
  if (!totals.ok()) return totals;
  absl::Status ended = write("COMMIT;\n");
  if (!ended.ok()) return ended;
  return totals;
}

absl::StatusOr<LoadTotals> LoadSqlText(const std::string& path,
                                       size_t max_command_bytes,
                                       const LoadSink& sink) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError("cannot read the received text");
  LoadTotals totals;
  Batcher batch(max_command_bytes, sink, totals);
  std::string statement;
  std::vector<char> block(size_t{1} << 20);
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const size_t n = static_cast<size_t>(in.gcount());
    for (size_t i = 0; i < n; ++i) {
      statement.push_back(block[i]);
      if (block[i] != ';' || !sqlite3_complete(statement.c_str())) continue;
      const absl::string_view trimmed = absl::StripAsciiWhitespace(statement);
      size_t word = 0;
      while (word < trimmed.size() && absl::ascii_isalpha(trimmed[word])) {
        ++word;
      }
      const std::string first = absl::AsciiStrToUpper(trimmed.substr(0, word));
      if (first != "BEGIN" && first != "COMMIT" && first != "END" &&
          first != "ROLLBACK" && first != "SAVEPOINT" && first != "RELEASE" &&
          first != "PRAGMA") {
        absl::Status s = batch.Add(sm::Statement{CreateIfNotExists(trimmed)});
        if (!s.ok()) return s;
      }
      statement.clear();
    }
  }
  if (!absl::StripAsciiWhitespace(statement).empty()) {
    return absl::InvalidArgumentError(
        "the text ends inside a statement (a missing ';'?)");
  }
  absl::Status s = batch.Flush();
  if (!s.ok()) return s;
  return totals;
}

}  // namespace raftsql::server
