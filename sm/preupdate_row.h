// PreUpdateRow: the row one call of SQLite's preupdate hook is about, its
// old and new values each fetched from SQLite once however many readers
// need them. The divergence hash and the change capture both read every
// value of every row a write changes; for a WITHOUT ROWID table each fetch
// also searches the key's columns. Fetching once took 8% off the apply's
// CPU per edge reading (bench/ingest_benchmark).
//
// The values are SQLite's, valid until the hook call returns. A value
// SQLite could not give is null.
//
// Apply thread only.
#ifndef RAFTSQL_SM_PREUPDATE_ROW_H_
#define RAFTSQL_SM_PREUPDATE_ROW_H_

#include <sqlite3.h>

#include <cstdint>
#include <span>
#include <vector>

namespace raftsql::sm {

class PreUpdateRow {
 public:
  // A new hook call: SQLite's arguments. Keeps the arrays' storage.
  void Reset(sqlite3* db, int op, const char* table, int64_t key1,
             int64_t key2) {
    db_ = db;
    op_ = op;
    table_ = table;
    key1_ = key1;
    key2_ = key2;
    columns_ = sqlite3_preupdate_count(db);
    have_old_ = have_new_ = false;
  }

  int op() const { return op_; }
  const char* table() const { return table_; }
  int64_t key1() const { return key1_; }
  int64_t key2() const { return key2_; }
  int columns() const { return columns_; }

  // The row's values before the change (an update or a delete).
  std::span<sqlite3_value* const> Old() {
    if (!have_old_) Fetch(sqlite3_preupdate_old, &old_);
    have_old_ = true;
    return {old_.data(), static_cast<size_t>(columns_)};
  }
  // The row's values after the change (an insert or an update).
  std::span<sqlite3_value* const> New() {
    if (!have_new_) Fetch(sqlite3_preupdate_new, &new_);
    have_new_ = true;
    return {new_.data(), static_cast<size_t>(columns_)};
  }

 private:
  void Fetch(int (*column)(sqlite3*, int, sqlite3_value**),
             std::vector<sqlite3_value*>* out) {
    // At most SQLite's column limit: the array is as wide as the widest
    // table written.
    if (out->size() < static_cast<size_t>(columns_)) out->resize(columns_);
    for (int i = 0; i < columns_; ++i) {
      sqlite3_value* v = nullptr;
      if (column(db_, i, &v) != SQLITE_OK) v = nullptr;
      (*out)[i] = v;
    }
  }

  sqlite3* db_ = nullptr;
  int op_ = 0;
  const char* table_ = nullptr;
  int64_t key1_ = 0;
  int64_t key2_ = 0;
  int columns_ = 0;
  bool have_old_ = false;
  bool have_new_ = false;
  std::vector<sqlite3_value*> old_;
  std::vector<sqlite3_value*> new_;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_PREUPDATE_ROW_H_
