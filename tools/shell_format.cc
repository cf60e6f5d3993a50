#include "tools/shell_format.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

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
