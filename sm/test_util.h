// Test-only helpers shared by the state machine's tests: commands, entries,
// an in-memory machine, and applying or counting with expectations.
#ifndef RAFTSQL_SM_TEST_UTIL_H_
#define RAFTSQL_SM_TEST_UTIL_H_

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sm/command.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sm {

// gtest prints values by their contents.
inline void PrintTo(const Value& v, std::ostream* os) {
  *os << v.DebugString();
}

inline Statement S(std::string sql, std::vector<Value> params = {}) {
  return Statement{std::move(sql), std::move(params), {}};
}

inline core::Entry E(uint64_t index, const Command& c) {
  return core::Entry{1, index, core::EntryType::kNormal, c.Encode()};
}

inline Command Cmd(std::vector<Statement> statements,
                   bool transaction = false) {
  Command c;
  c.statements = std::move(statements);
  c.transaction = transaction;
  c.timestamp_ms = 1'700'000'000'000;
  c.random_seed = 42;
  return c;
}

inline std::unique_ptr<SqliteStateMachine> OpenMemory() {
  absl::StatusOr<std::unique_ptr<SqliteStateMachine>> sm =
      SqliteStateMachine::Open(SqliteOptions{});
  EXPECT_TRUE(sm.ok()) << sm.status();
  return std::move(*sm);
}

// A machine on the database file at `path` (the platform's files).
inline std::unique_ptr<SqliteStateMachine> OpenFile(const std::string& path) {
  SqliteOptions o;
  o.path = path;
  absl::StatusOr<std::unique_ptr<SqliteStateMachine>> sm =
      SqliteStateMachine::Open(o);
  EXPECT_TRUE(sm.ok()) << sm.status();
  return std::move(*sm);
}

inline CommandResult ApplyOk(SqliteStateMachine& sm, const Command& c) {
  const std::string out = sm.Apply(E(sm.AppliedIndex() + 1, c));
  sm.CheckInvariants();
  absl::StatusOr<CommandResult> r = CommandResult::Decode(out);
  EXPECT_TRUE(r.ok());
  return *r;
}

inline core::Entry SettingEntry(uint64_t index, absl::string_view name,
                                uint64_t value) {
  return core::Entry{1, index, core::EntryType::kNormal,
                     SettingChange{std::string(name), value}.Encode()};
}

inline CommandResult Decoded(const std::string& out) {
  absl::StatusOr<CommandResult> r = CommandResult::Decode(out);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CommandResult{};
}

// The first row's first value of a read, or NULL (with a failure).
inline Value QueryValue(SqliteStateMachine& sm, const std::string& sql) {
  absl::StatusOr<QueryResult> q = sm.Query(S(sql));
  EXPECT_TRUE(q.ok()) << sql << ": " << q.status();
  if (!q.ok() || q->rows.empty() || q->rows[0].empty()) return Value::Null();
  return q->rows[0][0];
}

// Every table's schema and rows (internal ones too), as text: equal on
// replicas that hold the same state, whatever their pages' layout (which
// differs between replicas that batched the same entries differently).
inline std::string DumpDatabase(SqliteStateMachine& sm) {
  const std::string image = sm.SerializeForTest();
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  auto* buf = static_cast<unsigned char*>(sqlite3_malloc64(image.size()));
  std::memcpy(buf, image.data(), image.size());
  buf[18] = buf[19] = 1;  // A WAL image read as a rollback-journal one.
  sqlite3_deserialize(db, "main", buf, image.size(), image.size(),
                      SQLITE_DESERIALIZE_FREEONCLOSE);
  std::string out;
  auto each_row = [db, &out](const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
    std::vector<std::string> rows;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        const auto* v = sqlite3_column_blob(stmt, i);
        row.append(std::to_string(sqlite3_column_type(stmt, i))).append(":");
        if (v != nullptr) {
          row.append(static_cast<const char*>(v),
                     sqlite3_column_bytes(stmt, i));
        }
        row.append("|");
      }
      rows.push_back(row);
    }
    sqlite3_finalize(stmt);
    std::sort(rows.begin(), rows.end());
    for (const std::string& r : rows) out.append(r).append("\n");
    return rows;
  };
  for (const std::string& row : each_row(
           "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT "
           "LIKE 'sqlite_%'")) {
    const std::string name = row.substr(2, row.size() - 3);  // "3:name|"
    out.append("table ").append(name).append("\n");
    each_row("SELECT * FROM \"" + name + "\"");
  }
  each_row("SELECT type, name, tbl_name, sql FROM sqlite_schema");
  sqlite3_close(db);
  return out;
}

inline int64_t Count(SqliteStateMachine& sm, const std::string& table) {
  absl::StatusOr<QueryResult> q = sm.Query(S("SELECT count(*) FROM " + table));
  EXPECT_TRUE(q.ok()) << q.status();
  return q->rows[0][0].integer;
}

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_TEST_UTIL_H_
