// The shell's commands that move whole tables or databases: .backup,
// .restore, .dump and .import. Each says what it did on stdout and
// returns the first error.
#ifndef RAFTSQL_TOOLS_SHELL_DATA_H_
#define RAFTSQL_TOOLS_SHELL_DATA_H_

#include <cstdio>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "net/client.h"

namespace raftsql::tools {

// The database's file of one applied state into `file` (written beside it,
// then renamed: a failed backup leaves no partial file under its name).
absl::Status BackupToFile(net::Client& client, const std::string& file);

// A SQLite file or SQL text (a .dump) through Raft (server/load_plan.h),
// a transaction per command, each under the client's session: a command
// retried after a lost answer applies once.
absl::Status RestoreFromFile(net::Client& client, size_t max_command_bytes,
                             const std::string& file);

// The user tables' schema and rows as SQL text (as sqlite3's .dump).
absl::Status Dump(net::Client& client, v1::Consistency consistency,
                  std::FILE* out);

// CSV rows into `table` through ExecuteStream, 500 rows a transaction, at
// most 16 in flight. A table that does not exist is created from the
// first row, which names its columns (as sqlite3's .import).
absl::Status ImportCsv(net::Client& client, const std::string& authorization,
                       const std::string& file, const std::string& table);

// One record of RFC 4180 CSV (quoted fields may hold commas, quotes as
// "" and line breaks); false at the end of the input.
bool ReadCsvRecord(std::istream& in, std::vector<std::string>* fields);

// `v` as a SQL literal: NULL, 12, 1.5e+300, 'it''s', X'00ff'.
std::string SqlLiteral(const v1::Value& v);

}  // namespace raftsql::tools

#endif  // RAFTSQL_TOOLS_SHELL_DATA_H_
