// rqlite's HTTP API bodies (version 8, rqlite.io/docs/api), in and out:
// the statements a request carries and the JSON its results are written
// as, so that rqlite's client libraries and scripts work against raftsql.
// Pure functions: the HTTP frontend (server/http_frontend.h) does the rest.
#ifndef RAFTSQL_SERVER_RQLITE_JSON_H_
#define RAFTSQL_SERVER_RQLITE_JSON_H_

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "sm/command.h"

namespace raftsql::server::rqlite {

// A request's statements. `body` is a JSON array whose elements are each a
// statement's text, or an array of its text and its parameters: values
// (positional) and objects of named values (":name", "@name" and "$name"
// given with or without their prefix), as rqlite takes them. A value is a
// string (TEXT), an integer (INTEGER), a number with a fraction or exponent
// (REAL), true or false (1 or 0), null, or an array of integers 0-255 (a BLOB).
// With `json` false the body is one statement's text (rqlite's text/plain).
// INVALID_ARGUMENT, saying where, for anything else.
absl::StatusOr<std::vector<sm::Statement>> ParseStatements(
    absl::string_view body, bool json);

// A value as rqlite writes it: integers and reals as numbers, TEXT as a
// string (bytes that are not UTF-8 become U+FFFD), a BLOB as the base64
// string of its bytes, NULL as null.
nlohmann::json ValueJson(const sm::Value& value);

// One statement's result. `associative`: rows as objects keyed by column
// (rqlite's "associative" form), else "columns", "types" and "values".
nlohmann::json ExecuteResultJson(const sm::StatementResult& result,
                                 bool associative);
nlohmann::json QueryResultJson(const sm::QueryResult& result, bool associative);
// {"error": message}: a statement that failed.
nlohmann::json ErrorResultJson(const absl::Status& status);

// The document: compact, or indented by four spaces (rqlite's "pretty").
std::string Dump(const nlohmann::json& document, bool pretty);

// The HTTP status for a request that failed as a whole with `code` (the
// mapping gRPC-HTTP gateways use).
int HttpStatusOf(absl::StatusCode code);

// A Go duration ("1.5s", "2m", "300ms", "1h10m"; rqlite's timeout and
// freshness parameters). INVALID_ARGUMENT if it is not one, or negative.
absl::StatusOr<std::chrono::nanoseconds> ParseDuration(absl::string_view text);

}  // namespace raftsql::server::rqlite

#endif  // RAFTSQL_SERVER_RQLITE_JSON_H_
