// The authorizer's refusals, each with its reason, and our own statements
// past it.
#include "sm/statement_policy.h"

#include <sqlite3.h>

#include "gtest/gtest.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {
namespace {

class StatementPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    ASSERT_TRUE(policy_.Install(db_).ok());
    policy_.RecordSchemaChanges(&changed_);
    StatementPolicy::InternalScope scope(policy_);
    ASSERT_EQ(sqlite3_exec(db_,
                           "CREATE TABLE _raftsql_meta(k, v);"
                           "CREATE TABLE t(a)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    changed_.clear();
  }
  void TearDown() override { sqlite3_close(db_); }

  // SQLite's result of preparing `sql` as a client's statement.
  int Prepare(const char* sql) {
    policy_.BeginStatement();
    Stmt stmt;
    return sqlite3_prepare_v2(db_, sql, -1, stmt.out(), nullptr);
  }

  sqlite3* db_ = nullptr;
  StatementPolicy policy_;
  std::set<std::string> changed_;
};

TEST_F(StatementPolicyTest, RefusalsNameTheirReason) {
  const struct {
    const char* sql;
    const char* reason;
  } cases[] = {
      {"ATTACH 'x.db' AS x", "ATTACH and DETACH are not allowed"},
      {"PRAGMA journal_mode=DELETE",
       "PRAGMA journal_mode with an argument is not allowed"},
      {"SELECT * FROM _raftsql_meta", "internal to raftsql"},
      {"INSERT INTO _RAFTSQL_meta VALUES(1, 2)", "internal to raftsql"},
      {"CREATE TEMP TABLE x(a)", "temporary objects are not allowed"},
      {"BEGIN", "transaction control is not allowed"},
      {"SELECT load_extension('x')", "load_extension() is not allowed"},
      {"PRAGMA table_info(_raftsql_meta)", "internal to raftsql"},
      {"PRAGMA index_info(sqlite_autoindex__raftsql_sessions_1)",
       "internal to raftsql"},
  };
  for (const auto& c : cases) {
    EXPECT_NE(Prepare(c.sql), SQLITE_OK) << c.sql;
    EXPECT_NE(policy_.refusal().find(c.reason), std::string::npos)
        << c.sql << ": " << policy_.refusal();
  }
  EXPECT_EQ(Prepare("SELECT * FROM t"), SQLITE_OK);
  EXPECT_EQ(policy_.refusal(), "");
}

TEST_F(StatementPolicyTest, OurOwnStatementsPassInsideAnInternalScope) {
  {
    StatementPolicy::InternalScope outer(policy_);
    StatementPolicy::InternalScope inner(policy_);  // Scopes nest.
    EXPECT_EQ(Prepare("SELECT * FROM _raftsql_meta"), SQLITE_OK);
  }
  {
    StatementPolicy::InternalScope again(policy_);
    EXPECT_TRUE(policy_.internal());
  }
  EXPECT_FALSE(policy_.internal());
  EXPECT_EQ(Prepare("SELECT * FROM _raftsql_meta"), SQLITE_AUTH);
  policy_.CheckInvariants();
}

TEST_F(StatementPolicyTest, SchemaChangesRecordTheirTables) {
  EXPECT_EQ(Prepare("CREATE TABLE u(b)"), SQLITE_OK);
  EXPECT_EQ(Prepare("CREATE INDEX ta ON t(a)"), SQLITE_OK);
  EXPECT_EQ(changed_, (std::set<std::string>{"t", "u"}));
  changed_.clear();
  EXPECT_EQ(Prepare("INSERT INTO t VALUES(1)"), SQLITE_OK);
  EXPECT_TRUE(changed_.empty());
}

}  // namespace
}  // namespace raftsql::sm
