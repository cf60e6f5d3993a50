// Loading a database into a running cluster through Raft (the HTTP API's
// /db/load, as rqlite's): a SQLite file, or SQL text such as sqlite3's
// .dump writes, turned into commands of bounded size that every replica
// applies like any other write. Nothing of the load is held in memory
// beyond one command.
//
// A file's user tables are created (unless they exist), filled in rowid order
// (rowids kept), then its indexes, views and triggers are created (after the
// rows, so that triggers do not fire on them). Internal tables (raftsql's own,
// sqlite_*) and virtual tables' shadow tables are not copied: a virtual
// table is created and filled through its own interface.
#ifndef RAFTSQL_SERVER_LOAD_PLAN_H_
#define RAFTSQL_SERVER_LOAD_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sm/command.h"

namespace raftsql::server {

// Receives each command in order; a failure stops the load (the commands
// before it stay applied).
using LoadSink = std::function<absl::Status(std::vector<sm::Statement>)>;

struct LoadTotals {
  uint64_t commands = 0;
  uint64_t statements = 0;
  uint64_t rows = 0;  // A file's rows (0 for SQL text).
};

// `sql` (a CREATE TABLE, VIRTUAL TABLE, INDEX, VIEW or TRIGGER) with IF
// NOT EXISTS: a load keeps what the database has (a hub's own tables, say)
// and creates the rest; any other statement unchanged.
std::string CreateIfNotExists(absl::string_view sql);

// Whether `head` (the first bytes of a body) is a SQLite file's header.
bool IsSqliteFile(absl::string_view head);

// The SQLite file at `path` (checked with PRAGMA quick_check first:
// INVALID_ARGUMENT if it is not a sound database), in commands of at most
// `max_command_bytes` of encoded statements (a row alone may exceed it).
absl::StatusOr<LoadTotals> LoadSqliteFile(const std::string& path,
                                          size_t max_command_bytes,
                                          const LoadSink& sink);

// What a load read: a SQLite file, or SQL text.
struct LoadedFile {
  bool sqlite = false;
  LoadTotals totals;
};

// The file at `path`, a SQLite file or SQL text (told by its header), in
// commands of at most `max_command_bytes`; a failure names its cause and
// how many commands `sink` applied before it.
absl::StatusOr<LoadedFile> LoadFile(const std::string& path,
                                    size_t max_command_bytes,
                                    const LoadSink& sink);

// The SQLite file at `path` as SQL text, as sqlite3's .dump writes it and
// LoadSqlText reads it back: the statements LoadSqliteFile makes of it
// (the same checks, objects and order), their values inlined as literals,
// between BEGIN TRANSACTION and COMMIT; handed to `write` in pieces of
// about `piece_bytes`. A failure of `write` stops the dump.
absl::StatusOr<LoadTotals> DumpSqliteFile(
    const std::string& path, size_t piece_bytes,
    const std::function<absl::Status(std::string)>& write);

// SQL text in the file at `path`: its statements in order, in commands of at
// most `max_command_bytes`. Transaction control (BEGIN, COMMIT, ROLLBACK,
// SAVEPOINT, RELEASE) and PRAGMAs, which .dump writes around its
// statements, are left out: each command is applied whole or not at all.
absl::StatusOr<LoadTotals> LoadSqlText(const std::string& path,
                                       size_t max_command_bytes,
                                       const LoadSink& sink);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_LOAD_PLAN_H_
