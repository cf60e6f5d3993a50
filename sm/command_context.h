// CommandContext: everything a write's SQL can observe beyond the database,
// made the same on every replica (DESIGN.md §3). The write connection's
// functions that would read the process, the machine or the connection's
// history read this instead:
//
// - random(), randomblob(N): a generator seeded from the leader's seed and
//   the entry's index;
// - SQLite's own PRNG (random rowids once a table holds rowid 2^63-1):
//   reseeded before every statement from the same values;
// - changes(), total_changes(), last_insert_rowid(): defined per command,
//   as on a connection opened for it: 0 before its first statement, then
//   what its earlier statements did (our own meta writes never count);
// - date and time functions: 'now' is the leader's timestamp (the
//   deterministic VFS), and the 'localtime' and 'utc' modifiers mean UTC
//   whatever the machine's zone.
//
// Thread-safety: the apply thread only.
#ifndef RAFTSQL_SM_COMMAND_CONTEXT_H_
#define RAFTSQL_SM_COMMAND_CONTEXT_H_

#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "core/prng.h"

struct sqlite3;
struct sqlite3_context;
struct sqlite3_stmt;
struct sqlite3_value;

namespace raftsql::sm {

class CommandContext {
 public:
  CommandContext() = default;
  CommandContext(const CommandContext&) = delete;
  CommandContext& operator=(const CommandContext&) = delete;
  ~CommandContext();

  // Registers the functions above on `db` (the write connection; again on
  // each one a snapshot's file swap opens); this context must outlive it.
  absl::Status Install(sqlite3* db);

  // A command with the leader's `seed` applies at `index`.
  void BeginCommand(uint64_t seed, uint64_t index);
  // Its next statement runs on `db` now.
  void BeginStatement(sqlite3* db);
  // It ended; `counted` if it was an INSERT, UPDATE or DELETE (SQLite's
  // changes() then reports its count), `rows_changed` all rows it changed
  // (triggers' and foreign keys' included).
  void EndStatement(sqlite3* db, bool counted, int64_t rows_changed);

  core::Prng& prng();
  int64_t changes() const { return changes_; }
  int64_t total_changes() const { return total_changes_; }
  // A date function as registered (the C callback's user data).
  struct DateFunction {
    CommandContext* context;
    const char* name;
  };
  // A date function's result for `argv` (as SQLite gave them), computed by
  // SQLite's own function `name` with 'localtime' and 'utc' taken as UTC.
  // Public for the C callback only.
  void Date(const char* name, sqlite3_context* ctx, int argc,
            sqlite3_value** argv);

 private:
  sqlite3_stmt* DateStatement(const char* name, int argc);

  static constexpr const char* kDateFunctions[] = {
      "date", "time", "datetime", "julianday", "strftime", "unixepoch"};
  DateFunction date_functions_[std::size(kDateFunctions)];

  uint64_t seed_ = 0;
  uint64_t index_ = 0;
  int statement_ = 0;  // Ordinal of the running statement in its command.
  bool prng_seeded_ = false;
  core::Prng prng_{0};
  int64_t changes_ = 0;
  int64_t total_changes_ = 0;
  int64_t last_insert_rowid_ = 0;
  // SQLite's own date functions, on a connection of their own (memory, the
  // deterministic VFS); statements by (function, argument count).
  sqlite3* dates_ = nullptr;
  std::map<std::pair<std::string, int>, sqlite3_stmt*> date_statements_;
};

// Gives a read connection random() and randomblob() of its own generator:
// reads never draw from SQLite's process-wide PRNG, whose draws during a
// write must follow from the entry alone (CommandContext::BeginStatement).
absl::Status InstallReadRandomness(sqlite3* db);

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_COMMAND_CONTEXT_H_
