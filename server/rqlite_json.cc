#include "server/rqlite_json.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace raftsql::server::rqlite {

namespace {

using nlohmann::json;

absl::StatusOr<sm::Value> ValueOf(const json& v, const std::string& where) {
  switch (v.type()) {
    case json::value_t::null:
      return sm::Value::Null();
    case json::value_t::boolean:
      return sm::Value::Integer(v.get<bool>() ? 1 : 0);
    case json::value_t::number_integer:
      return sm::Value::Integer(v.get<int64_t>());
    case json::value_t::number_unsigned: {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", u, " is beyond SQLite's integers"));
      }
      return sm::Value::Integer(static_cast<int64_t>(u));
    }
    case json::value_t::number_float:
      return sm::Value::Real(v.get<double>());
    case json::value_t::string:
      return sm::Value::Text(v.get<std::string>());
    case json::value_t::array: {
      std::string bytes;
      bytes.reserve(v.size());
      for (const json& b : v) {
        if (!b.is_number_integer() || b.get<int64_t>() < 0 ||
            b.get<int64_t>() > 255) {
          return absl::InvalidArgumentError(absl::StrCat(
              where, ": an array is a BLOB's bytes, each an integer 0-255"));
        }
        bytes.push_back(static_cast<char>(b.get<int64_t>()));
      }
      return sm::Value::Blob(std::move(bytes));
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": a value is a string, number, boolean, null or byte array"));
  }
}

absl::StatusOr<sm::Statement> StatementOf(const json& element, size_t n) {
  const std::string where = absl::StrCat("statement ", n);
  if (element.is_string()) return sm::Statement{element.get<std::string>()};
  if (!element.is_array() || element.empty() || !element[0].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where,
        ": a statement is its SQL text, or an array of its text and "
        "its parameters"));
  }
  sm::Statement s{element[0].get<std::string>()};
  // As rqlite: an object holds named values, anything else is the next
  // positional one.
  for (size_t i = 1; i < element.size(); ++i) {
    if (element[i].is_object()) {
      for (const auto& [name, v] : element[i].items()) {
        absl::StatusOr<sm::Value> value =
            ValueOf(v, absl::StrCat(where, ": parameter ", name));
        if (!value.ok()) return value.status();
        s.named.emplace_back(name, *std::move(value));
      }
      continue;
    }
    absl::StatusOr<sm::Value> value =
        ValueOf(element[i], absl::StrCat(where, ": parameter ", i));
    if (!value.ok()) return value.status();
    s.positional.push_back(*std::move(value));
  }
  return s;
}

json Lowercase(const std::vector<std::string>& names) {
  json out = json::array();
  for (const std::string& n : names) out.push_back(absl::AsciiStrToLower(n));
  return out;
}

// The rows of a result in the form asked for, into `out`.
void PutRows(const std::vector<std::string>& columns,
             const std::vector<std::string>& types,
             const std::vector<std::vector<sm::Value>>& rows, bool associative,
             json& out) {
  if (associative) {
    json by_column = json::object();
    for (size_t i = 0; i < columns.size(); ++i) {
      by_column[columns[i]] =
          i < types.size() ? absl::AsciiStrToLower(types[i]) : "";
    }
    out["types"] = std::move(by_column);
    json objects = json::array();
    for (const std::vector<sm::Value>& row : rows) {
      json o = json::object();
      for (size_t i = 0; i < row.size() && i < columns.size(); ++i) {
        o[columns[i]] = ValueJson(row[i]);
      }
      objects.push_back(std::move(o));
    }
    out["rows"] = std::move(objects);
    return;
  }
  out["columns"] = columns;
  std::vector<std::string> all_types = types;
  all_types.resize(columns.size());
  out["types"] = Lowercase(all_types);
  if (rows.empty()) return;  // rqlite leaves "values" out then.
  json values = json::array();
  for (const std::vector<sm::Value>& row : rows) {
    json r = json::array();
    for (const sm::Value& v : row) r.push_back(ValueJson(v));
    values.push_back(std::move(r));
  }
  out["values"] = std::move(values);
}

// Whether `body` nests arrays and objects deeper than `max_depth` (strings
// skipped): checked before parsing, since a parsed level costs a JSON
// value of memory whatever its size.
bool NestsDeeperThan(absl::string_view body, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<sm::Statement>> ParseStatements(
    absl::string_view body, bool json_body) {
  if (!json_body) {
    if (absl::StripAsciiWhitespace(body).empty()) {
      return absl::InvalidArgumentError("empty statement");
    }
    return std::vector<sm::Statement>{sm::Statement{std::string(body)}};
  }
  // The deepest a request nests: statements, a statement, named
  // parameters, a BLOB's bytes.
  constexpr int kMaxDepth = 4;
  if (NestsDeeperThan(body, kMaxDepth)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the body nests arrays and objects deeper than ", kMaxDepth));
  }
  const json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError("the body is not valid JSON");
  }
  if (!doc.is_array()) {
    return absl::InvalidArgumentError("the body is a JSON array of statements");
  }
  std::vector<sm::Statement> out;
  out.reserve(doc.size());
  for (size_t i = 0; i < doc.size(); ++i) {
    absl::StatusOr<sm::Statement> s = StatementOf(doc[i], i + 1);
    if (!s.ok()) return s.status();
    out.push_back(*std::move(s));
  }
  return out;
}

json ValueJson(const sm::Value& value) {
  switch (value.type) {
    case sm::Value::Type::kInteger:
      return value.integer;
    case sm::Value::Type::kReal:
      // JSON has no infinities (SQLite stores no NaN): null, as Go's
      // encoder cannot write them either.
      if (!std::isfinite(value.real)) return nullptr;
      return value.real;
    case sm::Value::Type::kText:
      return value.bytes;  // Dump replaces what is not UTF-8.
    case sm::Value::Type::kBlob:
      return absl::Base64Escape(value.bytes);
    case sm::Value::Type::kNull:
      break;
  }
  return nullptr;
}

json ExecuteResultJson(const sm::StatementResult& result, bool associative) {
  if (!result.status.ok()) return ErrorResultJson(result.status);
  json out = json::object();
  // rqlite leaves zero counts out.
  if (result.last_insert_rowid != 0) {
    out["last_insert_id"] = result.last_insert_rowid;
  }
  if (result.rows_affected != 0) out["rows_affected"] = result.rows_affected;
  if (!result.columns.empty()) {
    PutRows(result.columns, {}, result.rows, associative, out);
    if (result.rows_truncated) out["rows_truncated"] = true;
  }
  return out;
}

json QueryResultJson(const sm::QueryResult& result, bool associative) {
  json out = json::object();
  PutRows(result.columns, result.declared_types, result.rows, associative, out);
  return out;
}

json ErrorResultJson(const absl::Status& status) {
  return json{{"error", sm::TruncatedMessage(status.message())}};
}

std::string Dump(const json& document, bool pretty) {
  return document.dump(pretty ? 4 : -1, ' ', /*ensure_ascii=*/false,
                       json::error_handler_t::replace);
}

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

absl::StatusOr<std::chrono::nanoseconds> ParseDuration(absl::string_view text) {
  const absl::Status bad = absl::InvalidArgumentError(
      absl::StrCat("'", sm::TruncatedMessage(text),
                   "' is not a duration (such as 500ms, 2s, 1m30s)"));
  if (text == "0") return std::chrono::nanoseconds(0);
  if (text.empty()) return bad;
  // Units longest first, so that "ms" is not read as "m".
  static constexpr std::pair<absl::string_view, double> kUnits[] = {
      {"ns", 1},  {"us", 1e3}, {"\u00b5s", 1e3}, {"ms", 1e6},
      {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
  };
  double total = 0;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = at;
    bool digits = false;
    bool point = false;
    while (end < text.size() &&
           (absl::ascii_isdigit(text[end]) || (text[end] == '.' && !point))) {
      if (text[end] == '.') {
        point = true;
      } else {
        digits = true;
      }
      ++end;
    }
    if (!digits) return bad;
    const double number =
        std::strtod(std::string(text.substr(at, end - at)).c_str(), nullptr);
    double scale = 0;
    for (const auto& [unit, ns] : kUnits) {
      if (text.substr(end, unit.size()) == unit) {
        scale = ns;
        at = end + unit.size();
        break;
      }
    }
    if (scale == 0) return bad;
    total += number * scale;
  }
  // About 292 years: what a signed 64-bit count of nanoseconds holds.
  if (!(total < 9.2e18)) return bad;
  return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

}  // namespace raftsql::server::rqlite
