// ChangeHasher: the running hash of every row change a replica applies
// (DESIGN.md §3, the divergence hash), fed by SQLite's preupdate hook, and
// the tables each statement changed. The hash is part of the replicated
// state: it is defined on the values alone, little-endian, the same on every
// machine.
//
// Thread-safety: the apply thread only.
#ifndef RAFTSQL_SM_CHANGE_HASHER_H_
#define RAFTSQL_SM_CHANGE_HASHER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sm/preupdate_row.h"

struct sqlite3;

namespace raftsql::sm {

// A few table names, kept for reuse (a std::set allocated a node per apply):
// Clear keeps the strings' storage. Names compare exactly.
class TableList {
 public:
  void Add(std::string_view name) {
    for (size_t i = 0; i < size_; ++i) {
      if (names_[i] == name) return;
    }
    if (size_ == names_.size()) names_.emplace_back();
    // Mostly the name this slot held for the entry before: no copy then.
    if (names_[size_] != name) names_[size_].assign(name.data(), name.size());
    ++size_;
  }
  void Clear() { size_ = 0; }
  size_t size() const { return size_; }
  const std::string* begin() const { return names_.data(); }
  const std::string* end() const { return names_.data() + size_; }

 private:
  std::vector<std::string> names_;
  size_t size_ = 0;  // Invariant: size_ <= names_.size().
};

class ChangeHasher {
 public:
  // A statement starts from `hash` (the entry's hash so far).
  void BeginStatement(uint64_t hash);
  // The preupdate hook saw a change of `row`'s table in the main database.
  // Returns the bytes of the new row's values (0 for a delete), which
  // count towards the write budget.
  uint64_t OnPreUpdate(PreUpdateRow& row);
  // Folds `table`'s schema and every row into the statement's hash (after
  // DDL, whose row changes, e.g. CREATE TABLE ... AS SELECT, bypass the
  // hook). Run inside the write policy's InternalScope.
  void HashTable(sqlite3* db, const std::string& table);

  uint64_t statement_hash() const { return statement_hash_; }
  // The tables the running statement changed.
  const TableList& statement_tables() const { return statement_tables_; }
  void AddStatementTable(std::string_view table) {
    statement_tables_.Add(table);
  }

 private:
  uint64_t statement_hash_ = 0;
  TableList statement_tables_;
  // The hook's last table in this statement (SQLite's name pointer), and
  // the last table's name and hash in any statement.
  const char* hook_table_ = nullptr;
  std::string hook_table_name_;
  uint64_t hook_table_hash_ = 0;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_CHANGE_HASHER_H_
