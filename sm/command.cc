#include "sm/command.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/codec.h"

namespace raftsql::sm {
namespace {

using core::GetBytes;
using core::GetFixed64;
using core::PutBytes;
using core::PutFixed64;

constexpr char kCommandMagic[] = "sql1";
constexpr char kResultMagic[] = "res1";

absl::Status Malformed(const char* what) {
  return absl::DataLossError(absl::StrCat("malformed ", what));
}

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

}  // namespace

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

std::string Command::Encode() const {
  size_t size = 4 + 8 + 1 + 5 * 8;
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
  PutFixed64(out, request_id);  // Last: PeekRequestId reads it there.
  return out;
}

namespace {

// Reads a value into `v`, reusing its storage.
bool ReadValueInto(std::string_view& in, Value* v) {
  if (in.empty()) return false;
  const auto type = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  // Nothing of the value it held before may remain (clear() keeps the
  // capacity).
  v->integer = 0;
  v->real = 0;
  v->bytes.clear();
  switch (type) {
    case 0:
      v->type = Value::Type::kNull;
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
      v->bytes.assign(b->data(), b->size());
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

absl::StatusOr<Command> Command::Decode(std::string_view in) {
  Command c;
  absl::Status s = DecodeInto(in, &c);
  if (!s.ok()) return s;
  return c;
}

absl::Status Command::DecodeInto(std::string_view in, Command* out) {
  if (in.substr(0, 4) != kCommandMagic) return Malformed("command");
  in.remove_prefix(4);
  Command& c = *out;
  auto n = GetFixed64(in);
  if (!n || *n > in.size()) return Malformed("command");
  c.statements.resize(*n);
  for (Statement& s : c.statements) {
    auto sql = GetBytes(in);
    auto np = GetFixed64(in);
    if (!sql || !np || *np > in.size()) return Malformed("statement");
    s.sql.assign(sql->data(), sql->size());
    s.positional.resize(*np);
    for (Value& v : s.positional) {
      if (!ReadValueInto(in, &v)) return Malformed("parameter");
    }
    auto nn = GetFixed64(in);
    if (!nn || *nn > in.size()) return Malformed("statement");
    s.named.resize(*nn);
    for (auto& [name, v] : s.named) {
      auto text = GetBytes(in);
      if (!text) return Malformed("parameter name");
      name.assign(text->data(), text->size());
      if (!ReadValueInto(in, &v)) return Malformed("parameter");
    }
  }
  if (in.empty()) return Malformed("command");
  c.transaction = in[0] != 0;
  in.remove_prefix(1);
  auto session = GetFixed64(in);
  auto sequence = GetFixed64(in);
  auto ts = GetFixed64(in);
  auto seed = GetFixed64(in);
  auto request = GetFixed64(in);
  if (!session || !sequence || !ts || !seed || !request || !in.empty()) {
    return Malformed("command trailer");
  }
  c.session_id = *session;
  c.sequence = *sequence;
  c.timestamp_ms = static_cast<int64_t>(*ts);
  c.random_seed = *seed;
  c.request_id = *request;
  return absl::OkStatus();
}

uint64_t Command::PeekRequestId(std::string_view data) {
  if (data.size() < 4 + 8 || data.substr(0, 4) != kCommandMagic) return 0;
  std::string_view tail = data.substr(data.size() - 8);
  return GetFixed64(tail).value_or(0);
}

std::string CommandResult::Encode() const {
  size_t size = 4 + 8 + 8 + 1 + 8;  // magic, count, index, dup, count
  for (const StatementResult& r : statements) {
    size += 8 + 8 + r.status.message().size() + 8 + 8;
  }
  for (const auto& [table, v] : versions) size += 8 + table.size() + 8;
  std::string out;
  out.reserve(size);  // Exact: one allocation (this runs for every entry).
  out.append(kResultMagic, 4);
  PutFixed64(out, statements.size());
  for (const StatementResult& r : statements) {
    PutFixed64(out, static_cast<uint64_t>(r.status.code()));
    const absl::string_view message = r.status.message();
    PutBytes(out, std::string_view(message.data(), message.size()));
    PutFixed64(out, static_cast<uint64_t>(r.rows_affected));
    PutFixed64(out, static_cast<uint64_t>(r.last_insert_rowid));
  }
  PutFixed64(out, index);
  out.push_back(duplicate ? 1 : 0);
  PutFixed64(out, versions.size());
  for (const auto& [table, v] : versions) {
    PutBytes(out, table);
    PutFixed64(out, v);
  }
  DCHECK(out.size() == size);
  return out;
}

absl::StatusOr<CommandResult> CommandResult::Decode(std::string_view in) {
  if (in.substr(0, 4) != kResultMagic) return Malformed("result");
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
  return r;
}

}  // namespace raftsql::sm
