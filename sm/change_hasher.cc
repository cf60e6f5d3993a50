#include "sm/change_hasher.h"

#include <sqlite3.h>

#include <bit>
#include <cstring>
#include <span>

#include "core/check.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {
namespace {

// A fast, platform-independent running hash (8 bytes per step; the value
// is part of the replicated state, so it must not depend on the machine).
uint64_t MixWord(uint64_t h, uint64_t w) {
  h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

uint64_t Mix(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  h = MixWord(h, n);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if constexpr (std::endian::native == std::endian::big) {
      w = __builtin_bswap64(w);  // The hash is defined little-endian.
    }
    h = MixWord(h, w);
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  for (size_t i = 0; i < n; ++i) tail |= static_cast<uint64_t>(p[i]) << (8 * i);
  return MixWord(h, tail);
}

uint64_t MixDouble(uint64_t h, double d) {
  uint64_t w;
  std::memcpy(&w, &d, sizeof(w));
  return MixWord(h, w);
}

// Mixes one SQLite value: its type, then its content (text and blobs by
// their bytes). Adds the value's size to `*bytes`: 8, plus a text's or
// blob's bytes. (sqlite3_value_bytes of a number would convert it to text
// first.)
uint64_t MixValue(uint64_t h, sqlite3_value* v, uint64_t* bytes = nullptr) {
  const int type = sqlite3_value_type(v);
  h = MixWord(h, static_cast<uint64_t>(type));
  uint64_t size = 8;
  if (type == SQLITE_INTEGER) {
    h = MixWord(h, static_cast<uint64_t>(sqlite3_value_int64(v)));
  } else if (type == SQLITE_FLOAT) {
    h = MixDouble(h, sqlite3_value_double(v));
  } else if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
    // Text as its stored UTF-8 bytes: sqlite3_value_text would copy a value
    // read from a record only to append the terminating NUL.
    const void* blob = sqlite3_value_blob(v);
    const int n = sqlite3_value_bytes(v);
    h = Mix(h, blob, n);
    size += static_cast<uint64_t>(n);
  }
  if (bytes != nullptr) *bytes += size;
  return h;
}

// Mixes the old or new values of the row the preupdate hook is called for
// (a value SQLite could not give is left out), and adds their size to
// `*bytes` (see MixValue).
uint64_t MixRow(uint64_t h, std::span<sqlite3_value* const> values,
                uint64_t* bytes) {
  for (sqlite3_value* v : values) {
    if (v != nullptr) h = MixValue(h, v, bytes);
  }
  return h;
}

std::string QuotedName(const std::string& name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

}  // namespace

void ChangeHasher::BeginStatement(uint64_t hash) {
  statement_hash_ = hash;
  statement_tables_.Clear();
  hook_table_ = nullptr;
}

uint64_t ChangeHasher::OnPreUpdate(PreUpdateRow& row) {
  const char* table = row.table();
  CHECK(table != nullptr);
  // Rows of one statement mostly hit one table: remember it and its hash
  // instead of inserting into the list and hashing the name per row.
  if (hook_table_ != table) {
    hook_table_ = table;
    // Commands mostly hit the table the one before hit: its name's hash is
    // kept across statements.
    if (hook_table_name_ != table) {
      hook_table_name_ = table;
      hook_table_hash_ = Mix(0, table, hook_table_name_.size());
    }
    statement_tables_.Add(hook_table_name_);
  }
  const int op = row.op();
  uint64_t h = statement_hash_;
  h = MixWord(h, static_cast<uint64_t>(op));
  h = MixWord(h, hook_table_hash_);
  h = MixWord(h, static_cast<uint64_t>(row.key1()));
  h = MixWord(h, static_cast<uint64_t>(row.key2()));
  // The rowid names the row that goes or changes, except in a WITHOUT ROWID
  // table, where SQLite passes 0 for both keys: there the old row's values
  // (its primary key among them) name it.
  uint64_t ignored = 0;
  if (row.key1() == 0 && row.key2() == 0 && op != SQLITE_INSERT) {
    h = MixRow(h, row.Old(), &ignored);
  }
  uint64_t bytes = 0;
  if (op != SQLITE_DELETE) h = MixRow(h, row.New(), &bytes);
  statement_hash_ = h;
  return bytes;
}

void ChangeHasher::HashTable(sqlite3* db, const std::string& table) {
  uint64_t h = Mix(statement_hash_, table.data(), table.size());
  Stmt schema;
  sqlite3_prepare_v2(db,
                     "SELECT sql FROM sqlite_schema WHERE tbl_name = ?1 "
                     "COLLATE NOCASE ORDER BY name",
                     -1, schema.out(), nullptr);
  sqlite3_bind_text(schema.get(), 1, table.c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(schema.get()) == SQLITE_ROW) {
    h = Mix(h, sqlite3_column_text(schema.get(), 0),
            sqlite3_column_bytes(schema.get(), 0));
  }
  Stmt rows;
  if (sqlite3_prepare_v2(db, ("SELECT * FROM " + QuotedName(table)).c_str(), -1,
                         rows.out(), nullptr) == SQLITE_OK) {
    const int n = sqlite3_column_count(rows.get());
    while (sqlite3_step(rows.get()) == SQLITE_ROW) {
      for (int i = 0; i < n; ++i) {
        h = MixValue(h, sqlite3_column_value(rows.get(), i));
      }
    }
  }
  statement_hash_ = h;
}

}  // namespace raftsql::sm
