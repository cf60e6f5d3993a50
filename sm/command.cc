#include "sm/command.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/check.h"
#include "core/codec.h"

namespace raftsql::sm {
namespace {

using core::EncodeFixed64;
using core::GetBytes;
using core::GetFixed64;
using core::PutBytes;
using core::PutFixed64;

// sql2 adds the user; sql1 (without it) is what older logs hold.
constexpr char kCommandMagic[] = "sql2";
constexpr char kCommandMagicV1[] = "sql1";
// res2 adds the rows statements returned; res1 (without them) is what older
// sessions hold, and what a result without rows is still written as.
constexpr char kResultMagic[] = "res1";
constexpr char kResultMagicWithRows[] = "res2";

absl::Status Malformed(const char* what) {
  return absl::DataLossError(absl::StrCat("malformed ", what));
}

}  // namespace

void PutValue(std::string& out, const Value& v) {
  out.push_back(static_cast<char>(v.type));
  switch (v.type) {
    case Value::Type::kNull:
      break;
    case Value::Type::kInteger:
      PutFixed64(out, static_cast<uint64_t>(v.integer));
      break;
    case Value::Type::kReal: {
      uint64_t bits;
      std::memcpy(&bits, &v.real, sizeof(bits));
      PutFixed64(out, bits);
      break;
    }
    case Value::Type::kText:
    case Value::Type::kBlob:
      PutBytes(out, v.bytes);
      break;
  }
}

std::string Value::DebugString() const {
  switch (type) {
    case Type::kNull:
      return "NULL";
    case Type::kInteger:
      return absl::StrCat(integer);
    case Type::kReal:
      return absl::StrCat(real);
    case Type::kText:
      return absl::StrCat("'", bytes, "'");
    case Type::kBlob:
      return absl::StrCat("x<", bytes.size(), " bytes>");
  }
  return "?";
}

namespace {
constexpr absl::string_view kWrongPathUrl = "type.raftsql/wrong-path";
}  // namespace

absl::Status WrongPathError(StatementKind kind, absl::string_view message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kWrongPathUrl,
               absl::Cord(kind == StatementKind::kReadsOnly ? "r" : "w"));
  return s;
}

std::optional<StatementKind> WrongPathOf(const absl::Status& status) {
  absl::optional<absl::Cord> p = status.GetPayload(kWrongPathUrl);
  if (!p.has_value()) return std::nullopt;
  return *p == "r" ? StatementKind::kReadsOnly : StatementKind::kWrites;
}

std::string TruncatedMessage(absl::string_view message) {
  if (!IsValidUtf8(message)) return TruncatedMessage(ValidUtf8(message));
  if (message.size() <= kMaxErrorMessageBytes) return std::string(message);
  size_t cut = kMaxErrorMessageBytes;
  // Back off over UTF-8 continuation bytes (10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xc0) == 0x80) {
    --cut;
  }
  return absl::StrCat(std::string(message.substr(0, cut)), "... (",
                      message.size() - cut, " more bytes)");
}

bool IsValidUtf8(absl::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    size_t n;
    uint32_t code;
    if (c < 0x80) {
      ++p;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      code = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      code = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<size_t>(end - p) <= n) return false;
    for (size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid.
    static constexpr uint32_t kSmallest[] = {0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[n] || code > 0x10ffff ||
        (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

std::string ValidUtf8(absl::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  std::string out;
  for (size_t i = 0; i < text.size();) {
    // The longest valid prefix of what is left, one character at a time.
    size_t n = 1;
    while (n <= 4 && i + n <= text.size() && !IsValidUtf8(text.substr(i, n))) {
      ++n;
    }
    if (n <= 4 && i + n <= text.size()) {
      out.append(text.data() + i, n);
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      ++i;
    }
  }
  return out;
}

std::string SqlLiteral(const Value& v) {
  switch (v.type) {
    case Value::Type::kInteger:
      return absl::StrCat(v.integer);
    case Value::Type::kReal: {
      if (std::isnan(v.real)) return "NULL";
      if (std::isinf(v.real)) return v.real > 0 ? "1e999" : "-1e999";
      char buf[40];
      std::snprintf(buf, sizeof(buf), "%.17g", v.real);
      std::string out = buf;
      // Still a REAL when read back.
      if (out.find_first_of(".eE") == std::string::npos) out += ".0";
      return out;
    }
    case Value::Type::kText:
      if (IsValidUtf8(v.bytes) && v.bytes.find('\0') == std::string::npos) {
        return absl::StrCat("'", absl::StrReplaceAll(v.bytes, {{"'", "''"}}),
                            "'");
      }
      return absl::StrCat("CAST(X'", absl::BytesToHexString(v.bytes),
                          "' AS TEXT)");
    case Value::Type::kBlob:
      return absl::StrCat("X'", absl::BytesToHexString(v.bytes), "'");
    case Value::Type::kNull:
      break;
  }
  return "NULL";
}

std::string Command::Encode() const {
  size_t size = 4 + 8 + 1 + 6 * 8 + user.size();
  for (const Statement& s : statements) {
    size += 24 + s.sql.size();
    for (const Value& v : s.positional) size += 9 + 8 + v.bytes.size();
    for (const auto& [name, v] : s.named) {
      size += 8 + name.size() + 9 + 8 + v.bytes.size();
    }
  }
  std::string out;
  out.reserve(size);  // One allocation.
  out = kCommandMagic;
  PutFixed64(out, statements.size());
  for (const Statement& s : statements) {
    PutBytes(out, s.sql);
    PutFixed64(out, s.positional.size());
    for (const Value& v : s.positional) PutValue(out, v);
    PutFixed64(out, s.named.size());
    for (const auto& [name, v] : s.named) {
      PutBytes(out, name);
      PutValue(out, v);
    }
  }
  out.push_back(transaction ? 1 : 0);
  PutFixed64(out, session_id);
  PutFixed64(out, sequence);
  PutFixed64(out, static_cast<uint64_t>(timestamp_ms));
  PutFixed64(out, random_seed);
  PutBytes(out, user);
  PutFixed64(out, request_id);  // Last: PeekRequestId reads it there.
  return out;
}

namespace {

// Reads a value into `v`.
bool ReadValue(std::string_view& in, ValueView* v) {
  if (in.empty()) return false;
  const auto type = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  *v = ValueView{};
  switch (type) {
    case 0:
      return true;
    case 1: {
      auto i = GetFixed64(in);
      if (!i) return false;
      v->type = Value::Type::kInteger;
      v->integer = static_cast<int64_t>(*i);
      return true;
    }
    case 2: {
      auto bits = GetFixed64(in);
      if (!bits) return false;
      v->type = Value::Type::kReal;
      std::memcpy(&v->real, &*bits, sizeof(v->real));
      return true;
    }
    case 3:
    case 4: {
      auto b = GetBytes(in);
      if (!b) return false;
      v->type = type == 3 ? Value::Type::kText : Value::Type::kBlob;
      v->bytes = *b;
      return true;
    }
    default:
      return false;
  }
}

Value ToValue(const ValueView& v) {
  return Value{v.type, v.integer, v.real, std::string(v.bytes)};
}

}  // namespace

absl::Status CommandView::Decode(std::string_view in) {
  const bool v1 = in.substr(0, 4) == kCommandMagicV1;
  if (in.substr(0, 4) != kCommandMagic && !v1) return Malformed("command");
  in.remove_prefix(4);
  auto n = GetFixed64(in);
  if (!n || *n > in.size()) return Malformed("command");
  statements.resize(*n);
  for (StatementView& s : statements) {
    auto sql = GetBytes(in);
    auto np = GetFixed64(in);
    if (!sql || !np || *np > in.size()) return Malformed("statement");
    s.sql = *sql;
    s.positional.resize(*np);
    for (ValueView& v : s.positional) {
      if (!ReadValue(in, &v)) return Malformed("parameter");
    }
    auto nn = GetFixed64(in);
    if (!nn || *nn > in.size()) return Malformed("statement");
    s.named.resize(*nn);
    for (auto& [name, v] : s.named) {
      auto text = GetBytes(in);
      if (!text) return Malformed("parameter name");
      name = *text;
      if (!ReadValue(in, &v)) return Malformed("parameter");
    }
  }
  if (in.empty()) return Malformed("command");
  transaction = in[0] != 0;
  in.remove_prefix(1);
  auto session = GetFixed64(in);
  auto seq = GetFixed64(in);
  auto ts = GetFixed64(in);
  auto seed = GetFixed64(in);
  std::optional<std::string_view> who = std::string_view();
  if (!v1) who = GetBytes(in);
  auto request = GetFixed64(in);
  if (!session || !seq || !ts || !seed || !who || !request || !in.empty()) {
    return Malformed("command trailer");
  }
  user = *who;
  session_id = *session;
  sequence = *seq;
  timestamp_ms = static_cast<int64_t>(*ts);
  random_seed = *seed;
  request_id = *request;
  return absl::OkStatus();
}

absl::StatusOr<Command> Command::Decode(std::string_view in) {
  CommandView view;
  absl::Status s = view.Decode(in);
  if (!s.ok()) return s;
  Command c;
  c.statements.reserve(view.statements.size());
  for (const StatementView& sv : view.statements) {
    Statement& st = c.statements.emplace_back();
    st.sql = std::string(sv.sql);
    for (const ValueView& v : sv.positional)
      st.positional.push_back(ToValue(v));
    for (const auto& [name, v] : sv.named) {
      st.named.emplace_back(std::string(name), ToValue(v));
    }
  }
  c.transaction = view.transaction;
  c.session_id = view.session_id;
  c.sequence = view.sequence;
  c.timestamp_ms = view.timestamp_ms;
  c.random_seed = view.random_seed;
  c.request_id = view.request_id;
  c.user = std::string(view.user);
  return c;
}

uint64_t Command::PeekRequestId(std::string_view data) {
  if (data.size() < 4 + 8 || (data.substr(0, 4) != kCommandMagic &&
                              data.substr(0, 4) != kCommandMagicV1)) {
    return 0;
  }
  std::string_view tail = data.substr(data.size() - 8);
  return GetFixed64(tail).value_or(0);
}

namespace {

// The rows section of a res2 result into `r`'s statements.
bool DecodeRows(std::string_view& in, CommandResult* r) {
  for (StatementResult& s : r->statements) {
    auto ncols = GetFixed64(in);
    if (!ncols || *ncols > in.size()) return false;
    for (uint64_t i = 0; i < *ncols; ++i) {
      auto name = GetBytes(in);
      if (!name) return false;
      s.columns.emplace_back(*name);
    }
    auto nrows = GetFixed64(in);
    if (!nrows || *nrows > in.size()) return false;
    if (*nrows > 0 && *ncols == 0) return false;
    for (uint64_t i = 0; i < *nrows; ++i) {
      std::vector<Value>& row = s.rows.emplace_back();
      for (uint64_t c = 0; c < *ncols; ++c) {
        ValueView v;
        if (!ReadValue(in, &v)) return false;
        row.push_back(Value{v.type, v.integer, v.real, std::string(v.bytes)});
      }
    }
    if (in.empty()) return false;
    s.rows_truncated = in[0] != 0;
    in.remove_prefix(1);
  }
  return true;
}

}  // namespace

std::string CommandResult::Encode() const {
  std::string out;
  EncodeTo(&out);
  return out;
}

void CommandResult::EncodeTo(std::string* out) const {
  size_t size = 4 + 8 + 8 + 1 + 8;  // magic, count, index, dup, count
  for (const StatementResult& r : statements) {
    size += 8 + 8 + (r.status.ok() ? 0 : r.status.message().size()) + 8 + 8;
  }
  for (const auto& [table, v] : versions) size += 8 + table.size() + 8;
  // Written in place into a string of the exact size: this runs for every
  // entry applied.
  out->resize(size);
  char* p = out->data();
  auto bytes = [&p](std::string_view b) {
    p = EncodeFixed64(p, b.size());
    std::memcpy(p, b.data(), b.size());
    p += b.size();
  };
  std::memcpy(p, kResultMagic, 4);
  p += 4;
  p = EncodeFixed64(p, statements.size());
  for (const StatementResult& r : statements) {
    if (r.status.ok()) {  // Inline: code() and message() are library calls.
      p = EncodeFixed64(p, 0);
      p = EncodeFixed64(p, 0);
    } else {
      p = EncodeFixed64(p, static_cast<uint64_t>(r.status.code()));
      const absl::string_view message = r.status.message();
      bytes(std::string_view(message.data(), message.size()));
    }
    p = EncodeFixed64(p, static_cast<uint64_t>(r.rows_affected));
    p = EncodeFixed64(p, static_cast<uint64_t>(r.last_insert_rowid));
  }
  p = EncodeFixed64(p, index);
  *p++ = duplicate ? 1 : 0;
  p = EncodeFixed64(p, versions.size());
  for (const auto& [table, v] : versions) {
    bytes(table);
    p = EncodeFixed64(p, v);
  }
  DCHECK(p == out->data() + out->size());
  bool any_rows = false;
  for (const StatementResult& r : statements) {
    any_rows = any_rows || !r.columns.empty();
  }
  if (!any_rows) return;
  // The rows, after what res1 holds: per statement its columns, its rows
  // and whether some were left out.
  std::memcpy(out->data(), kResultMagicWithRows, 4);
  for (const StatementResult& r : statements) {
    PutFixed64(*out, r.columns.size());
    for (const std::string& c : r.columns) PutBytes(*out, c);
    PutFixed64(*out, r.rows.size());
    for (const std::vector<Value>& row : r.rows) {
      for (const Value& v : row) PutValue(*out, v);
    }
    out->push_back(r.rows_truncated ? 1 : 0);
  }
}

absl::Status CommandResult::FirstFailure() const {
  for (const StatementResult& r : statements) {
    if (!r.status.ok()) return r.status;
  }
  return absl::OkStatus();
}

absl::Status CommandResult::Cause() const {
  for (const StatementResult& r : statements) {
    if (!r.status.ok() && !absl::IsAborted(r.status)) return r.status;
  }
  return FirstFailure();
}

bool CommandResult::SkipToVersions(std::string_view* data, uint64_t* count) {
  std::string_view in = *data;
  if (in.substr(0, 4) != kResultMagic &&
      in.substr(0, 4) != kResultMagicWithRows) {
    return false;
  }
  in.remove_prefix(4);
  auto n = GetFixed64(in);
  if (!n || *n > in.size()) return false;
  for (uint64_t i = 0; i < *n; ++i) {
    if (!GetFixed64(in) || !GetBytes(in) || !GetFixed64(in) ||
        !GetFixed64(in)) {
      return false;
    }
  }
  if (!GetFixed64(in) || in.empty()) return false;  // index, duplicate
  in.remove_prefix(1);
  auto nv = GetFixed64(in);
  if (!nv || *nv > in.size()) return false;
  *count = *nv;
  *data = in;
  return true;
}

absl::StatusOr<CommandResult> CommandResult::Decode(std::string_view in) {
  const bool with_rows = in.substr(0, 4) == kResultMagicWithRows;
  if (in.substr(0, 4) != kResultMagic && !with_rows) {
    return Malformed("result");
  }
  in.remove_prefix(4);
  CommandResult r;
  auto n = GetFixed64(in);
  if (!n || *n > in.size()) return Malformed("result");
  for (uint64_t i = 0; i < *n; ++i) {
    auto code = GetFixed64(in);
    auto msg = GetBytes(in);
    auto rows = GetFixed64(in);
    auto rowid = GetFixed64(in);
    if (!code || !msg || !rows || !rowid || *code > 16)
      return Malformed("result");
    StatementResult s;
    s.status = absl::Status(static_cast<absl::StatusCode>(*code),
                            absl::string_view(msg->data(), msg->size()));
    s.rows_affected = static_cast<int64_t>(*rows);
    s.last_insert_rowid = static_cast<int64_t>(*rowid);
    r.statements.push_back(std::move(s));
  }
  auto index = GetFixed64(in);
  if (!index || in.empty()) return Malformed("result");
  r.duplicate = in[0] != 0;
  in.remove_prefix(1);
  auto nv = GetFixed64(in);
  if (!nv || *nv > in.size()) return Malformed("result");
  r.index = *index;
  for (uint64_t i = 0; i < *nv; ++i) {
    auto table = GetBytes(in);
    auto v = GetFixed64(in);
    if (!table || !v) return Malformed("result");
    if (!r.versions.empty() && r.versions.back().first >= *table) {
      return Malformed("result versions");
    }
    r.versions.emplace_back(std::string(*table), *v);
  }
  if (with_rows && !DecodeRows(in, &r)) return Malformed("result rows");
  if (!in.empty()) return Malformed("result");
  return r;
}

}  // namespace raftsql::sm
