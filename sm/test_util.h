// Test-only helpers shared by the state machine's tests: commands, entries,
// an in-memory machine, and applying or counting with expectations.
#ifndef RAFTSQL_SM_TEST_UTIL_H_
#define RAFTSQL_SM_TEST_UTIL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sm/command.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sm {

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

inline CommandResult ApplyOk(SqliteStateMachine& sm, const Command& c) {
  const std::string out = sm.Apply(E(sm.AppliedIndex() + 1, c));
  absl::StatusOr<CommandResult> r = CommandResult::Decode(out);
  EXPECT_TRUE(r.ok());
  return *r;
}

inline int64_t Count(SqliteStateMachine& sm, const std::string& table) {
  absl::StatusOr<QueryResult> q = sm.Query(S("SELECT count(*) FROM " + table));
  EXPECT_TRUE(q.ok()) << q.status();
  return q->rows[0][0].integer;
}

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_TEST_UTIL_H_
