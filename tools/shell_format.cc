#include "tools/shell_format.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace raftsql::tools {

std::vector<std::string> SplitStatements(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    std::string s(absl::StripAsciiWhitespace(cur));
    if (!s.empty()) out.push_back(s);
    cur.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      const char close = c == '[' ? ']' : c;
      const size_t end = text.find(close, i + 1);
      const size_t stop = end == std::string::npos ? text.size() : end + 1;
      cur.append(text, i, stop - i);
      i = stop - 1;
    } else if (c == '-' && i + 1 < text.size() && text[i + 1] == '-') {
      const size_t end = text.find('\n', i);
      i = end == std::string::npos ? text.size() : end;
      cur.push_back('\n');
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
      const size_t end = text.find("*/", i + 2);
      i = end == std::string::npos ? text.size() : end + 1;
      cur.push_back(' ');
    } else if (c == ';') {
      flush();
    } else {
      cur.push_back(c);
    }
  }
  flush();
  return out;
}

bool IsRead(const std::string& sql) {
  const std::string s = absl::AsciiStrToUpper(
      std::string(absl::StripLeadingAsciiWhitespace(sql)).substr(0, 8));
  for (const char* kw : {"SELECT", "VALUES", "WITH", "EXPLAIN"}) {
    if (absl::StartsWith(s, kw)) return true;
  }
  // A PRAGMA reads unless it sets a value (PRAGMA user_version = 3).
  return absl::StartsWith(s, "PRAGMA") && sql.find('=') == std::string::npos;
}

std::string FormatValue(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kInteger:
      return absl::StrCat(v.integer());
    case v1::Value::kReal: {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.15g", v.real());
      return buf;
    }
    case v1::Value::kText:
      return v.text();
    case v1::Value::kTextBytes:
      return v.text_bytes();  // As sqlite3 prints it: the bytes.
    case v1::Value::kBlob: {
      std::string hex = "x'";
      static const char* digits = "0123456789ABCDEF";
      for (unsigned char ch : v.blob()) {
        hex.push_back(digits[ch >> 4]);
        hex.push_back(digits[ch & 15]);
      }
      return hex + "'";
    }
    default:
      return "NULL";
  }
}

std::string FormatTable(const v1::QueryResponse& r) {
  const size_t n = r.columns_size();
  std::vector<size_t> width(n);
  for (size_t c = 0; c < n; ++c) width[c] = r.columns(c).size();
  std::vector<std::vector<std::string>> cells;
  for (const v1::Row& row : r.rows()) {
    std::vector<std::string> line;
    for (size_t c = 0; c < n; ++c) {
      line.push_back(c < static_cast<size_t>(row.values_size())
                         ? FormatValue(row.values(c))
                         : "");
      width[c] = std::max(width[c], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& line) {
    for (size_t c = 0; c < n; ++c) {
      if (c > 0) out += "  ";
      out += line[c];
      if (c + 1 < n) out.append(width[c] - line[c].size(), ' ');
    }
    out += "\n";
  };
  std::vector<std::string> header(r.columns().begin(), r.columns().end());
  emit(header);
  std::vector<std::string> rule;
  for (size_t c = 0; c < n; ++c) rule.push_back(std::string(width[c], '-'));
  emit(rule);
  for (const auto& line : cells) emit(line);
  absl::StrAppend(&out, "(", cells.size(),
                  cells.size() == 1 ? " row)\n" : " rows)\n");
  return out;
}

namespace {

std::string CsvField(const std::string& f) {
  if (f.find_first_of(",\"\r\n") == std::string::npos) return f;
  return absl::StrCat("\"", absl::StrReplaceAll(f, {{"\"", "\"\""}}), "\"");
}

nlohmann::json JsonValue(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kInteger:
      return v.integer();
    case v1::Value::kReal:
      return v.real();
    case v1::Value::kText:
      return v.text();
    case v1::Value::kTextBytes:
      return v.text_bytes();  // Dumped with U+FFFD for what is not UTF-8.
    case v1::Value::kBlob:
      return FormatValue(v);
    default:
      return nullptr;
  }
}

}  // namespace

std::string FormatRows(const v1::QueryResponse& r, OutputMode mode,
                       bool headers) {
  const int n = r.columns_size();
  std::string out;
  switch (mode) {
    case OutputMode::kTable: {
      std::string table = FormatTable(r);
      if (!headers) {  // Past the header and its rule.
        for (int skip = 0; skip < 2; ++skip) {
          table.erase(0, table.find('\n') + 1);
        }
      }
      return table;
    }
    case OutputMode::kCsv:
      if (headers) {
        std::vector<std::string> names;
        for (const std::string& c : r.columns()) names.push_back(CsvField(c));
        absl::StrAppend(&out, absl::StrJoin(names, ","), "\r\n");
      }
      for (const v1::Row& row : r.rows()) {
        std::vector<std::string> fields;
        for (const v1::Value& v : row.values()) {
          fields.push_back(v.kind_case() == v1::Value::kNullValue
                               ? ""
                               : CsvField(FormatValue(v)));
        }
        absl::StrAppend(&out, absl::StrJoin(fields, ","), "\r\n");
      }
      return out;
    case OutputMode::kJson: {
      nlohmann::json rows = nlohmann::json::array();
      for (const v1::Row& row : r.rows()) {
        nlohmann::json o = nlohmann::json::object();
        for (int c = 0; c < n && c < row.values_size(); ++c) {
          o[r.columns(c)] = JsonValue(row.values(c));
        }
        rows.push_back(std::move(o));
      }
      return rows.dump(-1, ' ', false,
                       nlohmann::json::error_handler_t::replace) +
             "\n";
    }
    case OutputMode::kLine: {
      size_t width = 0;
      for (const std::string& c : r.columns())
        width = std::max(width, c.size());
      for (int i = 0; i < r.rows_size(); ++i) {
        if (i > 0) out += "\n";
        const v1::Row& row = r.rows(i);
        for (int c = 0; c < n && c < row.values_size(); ++c) {
          absl::StrAppend(&out, std::string(width - r.columns(c).size(), ' '),
                          r.columns(c), " = ", FormatValue(row.values(c)),
                          "\n");
        }
      }
      return out;
    }
  }
  return out;
}

std::string FormatExecute(const v1::ExecuteResponse& r) {
  std::string out;
  for (const v1::StatementResult& s : r.results()) {
    if (s.code() != 0) {
      absl::StrAppend(&out, "ERROR: ", s.error(), "\n");
      continue;
    }
    if (s.columns_size() > 0) {
      // RETURNING: the rows, as a read shows them.
      v1::QueryResponse rows;
      *rows.mutable_columns() = s.columns();
      *rows.mutable_rows() = s.rows();
      out += FormatTable(rows);
      if (s.rows_truncated()) out += "(more rows were left out)\n";
    }
    absl::StrAppend(
        &out, s.rows_affected(), s.rows_affected() == 1 ? " row" : " rows",
        " affected, last insert id ", s.last_insert_rowid(), " (log index ",
        r.index(), r.duplicate() ? ", retry" : "", ")\n");
  }
  return out;
}

}  // namespace raftsql::tools
