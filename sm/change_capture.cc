#include "sm/change_capture.h"

#include <sqlite3.h>

#include <cstring>

#include "core/check.h"
#include "core/codec.h"
#include "sm/command.h"

namespace raftsql::sm {
namespace {

constexpr uint8_t kChangesRecord = 1;  // As change_log.cc reads it.
constexpr size_t kEntryHeader = 12;    // [index fixed64][count fixed32]

bool Internal(std::string_view table) {
  return table.starts_with("_raftsql_") || table.starts_with("sqlite_");
}

void PutSqliteValue(sqlite3_value* v, std::string* out) {
  switch (v == nullptr ? SQLITE_NULL : sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
      out->push_back(static_cast<char>(Value::Type::kInteger));
      core::PutFixed64(*out, static_cast<uint64_t>(sqlite3_value_int64(v)));
      break;
    case SQLITE_FLOAT: {
      out->push_back(static_cast<char>(Value::Type::kReal));
      const double d = sqlite3_value_double(v);
      uint64_t bits;
      std::memcpy(&bits, &d, sizeof(bits));
      core::PutFixed64(*out, bits);
      break;
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      const bool text = sqlite3_value_type(v) == SQLITE_TEXT;
      out->push_back(
          static_cast<char>(text ? Value::Type::kText : Value::Type::kBlob));
      // Text as its stored bytes (the database is UTF-8: its encoding can
      // be read, never set): sqlite3_value_text would copy a value read
      // from a record only to append the terminating NUL.
      const void* p = sqlite3_value_blob(v);
      const int n = sqlite3_value_bytes(v);
      core::PutBytes(*out, std::string_view(static_cast<const char*>(p),
                                            p != nullptr ? n : 0));
      break;
    }
    default:
      out->push_back(static_cast<char>(Value::Type::kNull));
  }
}

}  // namespace

void ChangeCapture::BeginEntry(uint64_t index) {
  CHECK(!open_);
  open_ = true;
  count_ = 0;
  entry_.clear();
  core::PutFixed64(entry_, index);
  core::PutFixed32(entry_, 0);
  BeginStatement();
}

void ChangeCapture::BeginStatement() {
  statement_mark_ = entry_.size();
  statement_count_ = count_;
}

void ChangeCapture::Begin(char op, std::string_view table, int64_t rowid,
                          int64_t old_rowid, int columns) {
  entry_.push_back(op);
  core::PutBytes(entry_, table);
  core::PutFixed64(entry_, static_cast<uint64_t>(rowid));
  core::PutFixed64(entry_, static_cast<uint64_t>(old_rowid));
  core::PutFixed32(entry_, static_cast<uint32_t>(columns));
  ++count_;
}

void ChangeCapture::OnPreUpdate(PreUpdateRow& row) {
  const char* table = row.table();
  if (!open_ || overflowed_ || table == nullptr || Internal(table)) return;
  const int op = row.op();
  const bool gone = op == SQLITE_DELETE;
  const char kind = op == SQLITE_INSERT ? 0 : op == SQLITE_UPDATE ? 1 : 2;
  // SQLite passes the old rowid as key1 (update, delete) and the new one as
  // key2 (insert, update); 0 for both in a WITHOUT ROWID table.
  const int64_t rowid = gone ? row.key1() : row.key2();
  Begin(kind, table, rowid, op == SQLITE_UPDATE ? row.key1() : rowid,
        row.columns());
  for (sqlite3_value* v : gone ? row.Old() : row.New()) {
    PutSqliteValue(v, &entry_);
  }
  if (batch_.size() + entry_.size() > kMaxBatchBytes) {
    overflowed_ = true;
    entry_.resize(kEntryHeader);
    count_ = 0;
  }
}

void ChangeCapture::OnSchema(std::string_view table) {
  if (!open_ || overflowed_ || Internal(table)) return;
  Begin(3, table, 0, 0, 0);
}

void ChangeCapture::StatementFailed() {
  if (!open_ || overflowed_) return;
  entry_.resize(statement_mark_);
  count_ = statement_count_;
}

void ChangeCapture::EntryFailed() {
  if (!open_ || overflowed_) return;
  entry_.resize(kEntryHeader);
  count_ = 0;
  BeginStatement();
}

void ChangeCapture::EndEntry() {
  if (!open_) return;
  open_ = false;
  if (count_ == 0 || overflowed_) return;
  std::string count;
  core::PutFixed32(count, count_);
  entry_.replace(8, 4, count);
  core::AppendRecord(batch_, kChangesRecord, entry_);
}

void ChangeCapture::Clear() {
  // What a large batch grew is given back: the process keeps at most
  // kKeptBytes of each buffer between batches.
  if (batch_.capacity() > kKeptBytes) std::string().swap(batch_);
  if (entry_.capacity() > kKeptBytes) std::string().swap(entry_);
  batch_.clear();
  entry_.clear();
  open_ = false;
  count_ = 0;
  overflowed_ = false;
}

void ChangeCapture::CheckInvariants() const {
  if (open_) {
    CHECK_GE(entry_.size(), kEntryHeader);
    CHECK_LE(statement_mark_, entry_.size());
    CHECK_LE(statement_count_, count_);
  }
  CHECK(overflowed_ || batch_.size() <= kMaxBatchBytes);
}

}  // namespace raftsql::sm
