// The shell's text handling, kept apart from I/O so it can be tested:
// splitting input into statements, telling reads from writes, and printing
// results as aligned tables.
#ifndef RAFTSQL_TOOLS_SHELL_FORMAT_H_
#define RAFTSQL_TOOLS_SHELL_FORMAT_H_

#include <string>
#include <vector>

#include "net/raftsql.pb.h"

namespace raftsql::tools {

// Splits on ';' outside quotes ('', "", ``, []) and comments (--, /* */);
// drops empty statements.
std::vector<std::string> SplitStatements(const std::string& text);
// A statement for Query (SELECT, VALUES, WITH, EXPLAIN) rather than Execute.
bool IsRead(const std::string& sql);
std::string FormatValue(const v1::Value& v);
// Header, rule, rows with columns padded to their widest cell, row count.
std::string FormatTable(const v1::QueryResponse& r);
// How the shell prints rows (.mode): aligned columns, CSV (RFC 4180),
// a JSON array of objects, or one "column = value" line per value.
enum class OutputMode { kTable, kCsv, kJson, kLine };
// `r` in `mode`; `headers` (.headers) prints column names in table and CSV
// modes.
std::string FormatRows(const v1::QueryResponse& r, OutputMode mode,
                       bool headers = true);

// "N row(s) affected, last insert id M (log index I)" per statement, or the
// statement's error.
std::string FormatExecute(const v1::ExecuteResponse& r);

}  // namespace raftsql::tools

#endif  // RAFTSQL_TOOLS_SHELL_FORMAT_H_
