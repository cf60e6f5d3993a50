#include "sm/schema_listing.h"

#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

constexpr char kUserSchema[] =
    "CREATE TABLE t(x INTEGER PRIMARY KEY, y TEXT UNIQUE);"
    "CREATE INDEX t_y ON t(y);"
    "CREATE VIEW v AS SELECT x FROM t;"
    "INSERT INTO t VALUES (1, 'a'), (2, 'b');";
// Made after the user's tables, so that those keep their root pages.
constexpr char kInternalSchema[] =
    "CREATE TABLE _raftsql_meta(key TEXT PRIMARY KEY, value);"
    "CREATE TABLE _raftsql_sessions(id INTEGER PRIMARY KEY, result BLOB);"
    "INSERT INTO _raftsql_meta VALUES ('applied', 7);";

// Each row as "name=value|...", sorted; named by `names` if given.
std::vector<std::string> Rows(sqlite3* db, const std::string& sql,
                              const std::vector<std::string>& names = {}) {
  std::vector<std::string> rows;
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << sqlite3_errmsg(db);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::string row;
    for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
      absl::StrAppend(&row,
                      i < static_cast<int>(names.size())
                          ? names[i]
                          : std::string(sqlite3_column_name(stmt, i)),
                      "=");
      const auto* text = sqlite3_column_text(stmt, i);
      absl::StrAppend(
          &row, text != nullptr ? reinterpret_cast<const char*>(text) : "NULL",
          "|");
    }
    rows.push_back(row);
  }
  sqlite3_finalize(stmt);
  std::sort(rows.begin(), rows.end());
  return rows;
}

class SchemaListingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &plain_), SQLITE_OK);
    ASSERT_EQ(sqlite3_open(":memory:", &ours_), SQLITE_OK);
    Exec(plain_, kUserSchema);
    Exec(ours_, kUserSchema);
    Exec(ours_, kInternalSchema);
  }
  void TearDown() override {
    sqlite3_close(plain_);
    sqlite3_close(ours_);
  }
  static void Exec(sqlite3* db, const char* sql) {
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
  }
  // The rewrite of `sql`, or `sql` when there is none.
  static std::string Rewritten(const std::string& sql) {
    std::string rewrite;
    EXPECT_TRUE(HideInternalTables(sql, &rewrite).ok()) << sql;
    return rewrite.empty() ? sql : rewrite;
  }

  sqlite3* plain_ = nullptr;  // What a client's database holds.
  sqlite3* ours_ = nullptr;   // The same, with our tables beside it.
};

TEST_F(SchemaListingTest, ListingsReadAsIfInternalTablesDidNotExist) {
  const std::vector<std::string> listings = {
      "SELECT * FROM sqlite_master",
      "SELECT * FROM sqlite_schema;",
      "select name, type from SQLITE_SCHEMA where type = 'table'",
      "SELECT count(*) FROM main.sqlite_master",
      "SELECT count(*) FROM \"main\" . \"sqlite_schema\"",
      "SELECT m.name FROM sqlite_master AS m WHERE m.type = 'index'",
      "SELECT m.name FROM sqlite_master m",
      "SELECT x.name FROM sqlite_master 'x'",
      "SELECT sqlite_master.name FROM sqlite_master",
      "SELECT name FROM [sqlite_master]",
      "SELECT name FROM `sqlite_master` ORDER BY 1 LIMIT 3",
      "SELECT a.name, b.name FROM sqlite_master a JOIN sqlite_schema b ON "
      "a.tbl_name = b.tbl_name",
      "SELECT count(*) FROM t, sqlite_master",
      "SELECT count(*) FROM t LEFT JOIN sqlite_master ON 1, sqlite_schema s",
      "SELECT (SELECT count(*) FROM sqlite_schema)",
      "SELECT x FROM t WHERE x IN (SELECT rootpage FROM sqlite_master)",
      "WITH s AS (SELECT name FROM sqlite_schema) SELECT count(*) FROM s",
      "SELECT name FROM sqlite_master UNION SELECT y FROM t",
      "SELECT * FROM (SELECT * FROM sqlite_master) WHERE type = 'table'",
      "SELECT * FROM pragma_table_list",
      "SELECT name FROM pragma_table_list() WHERE schema = 'main'",
      "PRAGMA table_list",
      "PRAGMA main.table_list;",
      "SELECT 'FROM sqlite_master', /* FROM sqlite_master */ 1 -- sqlite_\n",
  };
  for (const std::string& sql : listings) {
    EXPECT_EQ(Rows(ours_, Rewritten(sql), WrittenColumnNames(ours_, sql)),
              Rows(plain_, sql))
        << sql;
  }
}

TEST_F(SchemaListingTest, ColumnsKeepTheirNamesAndDeclaredTypes) {
  const std::string sql = "SELECT * FROM sqlite_schema";
  sqlite3_stmt* mine = nullptr;
  sqlite3_stmt* theirs = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(ours_, Rewritten(sql).c_str(), -1, &mine, 0),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_prepare_v2(plain_, sql.c_str(), -1, &theirs, 0), SQLITE_OK);
  ASSERT_EQ(sqlite3_column_count(mine), sqlite3_column_count(theirs));
  for (int i = 0; i < sqlite3_column_count(mine); ++i) {
    EXPECT_STREQ(sqlite3_column_name(mine, i), sqlite3_column_name(theirs, i));
    EXPECT_STREQ(sqlite3_column_decltype(mine, i),
                 sqlite3_column_decltype(theirs, i));
  }
  sqlite3_finalize(mine);
  sqlite3_finalize(theirs);
}

TEST_F(SchemaListingTest, StatisticsLeaveOutInternalTables) {
  Exec(ours_, "ANALYZE");
  ASSERT_FALSE(Rows(ours_,
                    "SELECT * FROM sqlite_stat1 WHERE tbl LIKE '\\_raftsql%' "
                    "ESCAPE '\\'")
                   .empty());
  Exec(plain_, "ANALYZE");
  const std::string sql = "SELECT * FROM sqlite_stat1";
  EXPECT_EQ(Rows(ours_, Rewritten(sql)), Rows(plain_, sql));
}

TEST(HideInternalTables, LeavesOtherStatementsAlone) {
  for (const char* sql : {
           "SELECT 1",
           "SELECT sqlite_version()",
           "SELECT 'sqlite_master'",
           "SELECT * FROM t -- FROM sqlite_master",
           "SELECT * FROM temp.sqlite_master",
           "SELECT * FROM t AS sqlite_master",
           "DELETE FROM sqlite_master",
           "INSERT INTO sqlite_master VALUES (1)",
           "SELECT * FROM pragma_table_list('t')",
           "PRAGMA table_list(t)",
           "PRAGMA temp.table_list",
           "PRAGMA table_info(sqlite_master)",
       }) {
    std::string rewrite = "stale";
    EXPECT_TRUE(HideInternalTables(sql, &rewrite).ok()) << sql;
    EXPECT_EQ(rewrite, "") << sql;
  }
}

TEST(HideInternalTables, RewritesReadsInsideWrites) {
  std::string rewrite;
  ASSERT_TRUE(HideInternalTables("INSERT INTO n SELECT name FROM sqlite_schema",
                                 &rewrite)
                  .ok());
  EXPECT_NE(rewrite, "");
  ASSERT_TRUE(HideInternalTables("CREATE VIEW w AS SELECT * FROM sqlite_master",
                                 &rewrite)
                  .ok());
  EXPECT_NE(rewrite, "");
}

TEST(HideInternalTables, RefusesMoreReferencesThanItsBound) {
  std::string sql = "SELECT 1 FROM sqlite_master";
  for (int i = 0; i < kMaxSchemaReferences; ++i) {
    sql += ", sqlite_master AS m" + std::to_string(i);
  }
  std::string rewrite;
  EXPECT_TRUE(absl::IsInvalidArgument(HideInternalTables(sql, &rewrite)));
}

TEST(HideInternalTables, SurvivesUnterminatedText) {
  for (const char* sql : {"SELECT * FROM sqlite_master WHERE name = 'x",
                          "SELECT * FROM \"sqlite_master", "SELECT * FROM [",
                          "SELECT * FROM sqlite_master /* x", "FROM", "FROM ,",
                          "SELECT * FROM main.", "PRAGMA main.", ")))FROM"}) {
    std::string rewrite;
    EXPECT_TRUE(HideInternalTables(sql, &rewrite).ok()) << sql;
  }
}

TEST(HideInternalTables, SurvivesEveryPrefix) {
  const std::string sql =
      "SELECT \"a\"\"b\", [c], `d`, 'e''f', x'00', ?1, :p, 1.5e3 FROM "
      "main.sqlite_master AS m JOIN (SELECT * FROM sqlite_schema) s ON 1, "
      "pragma_table_list() -- x\n /* y */ WHERE 1";
  for (size_t n = 0; n <= sql.size(); ++n) {
    std::string rewrite;
    EXPECT_TRUE(HideInternalTables(sql.substr(0, n), &rewrite).ok()) << n;
  }
}

// Through the state machine: the API lists, copies and describes only the
// client's own tables.
TEST(StateMachineSchema, ClientsSeeNoInternalTable) {
  auto sm = OpenMemory();
  ApplyOk(*sm,
          Cmd({S("CREATE TABLE names(n TEXT)"),
               S("INSERT INTO names SELECT name FROM sqlite_master"),
               S("CREATE VIEW listing AS SELECT name FROM sqlite_schema")}));
  auto internal = [&](const std::string& sql) {
    absl::StatusOr<QueryResult> q = sm->Query(S(sql));
    EXPECT_TRUE(q.ok()) << sql << ": " << q.status();
    int found = 0;
    for (const auto& row : q->rows) {
      for (const Value& v : row) {
        found +=
            v.type == Value::Type::kText && v.bytes.rfind("_raftsql", 0) == 0;
      }
    }
    return found;
  };
  EXPECT_EQ(internal("SELECT name, tbl_name FROM sqlite_schema"), 0);
  EXPECT_EQ(internal("SELECT n FROM names"), 0);
  EXPECT_EQ(internal("SELECT * FROM listing"), 0);
  EXPECT_EQ(internal("PRAGMA table_list"), 0);
  EXPECT_EQ(QueryValue(*sm,
                       "SELECT count(*) FROM sqlite_master WHERE name = "
                       "'names'")
                .integer,
            1);
  // An expression's column is named by the text the client wrote.
  const std::string count = "(SELECT count(*) FROM sqlite_schema)";
  absl::StatusOr<QueryResult> q = sm->Query(S("SELECT " + count));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->columns, std::vector<std::string>{count});
  CommandResult returned = ApplyOk(
      *sm, Cmd({S("INSERT INTO names VALUES ('x') RETURNING " + count)}));
  ASSERT_EQ(returned.statements.size(), 1u);
  EXPECT_TRUE(returned.statements[0].status.ok())
      << returned.statements[0].status;
  EXPECT_EQ(returned.statements[0].columns, std::vector<std::string>{count});
  for (const char* sql : {"PRAGMA table_info(_raftsql_sessions)",
                          "SELECT * FROM pragma_index_list('_raftsql_meta')"}) {
    EXPECT_TRUE(absl::IsPermissionDenied(sm->Query(S(sql)).status())) << sql;
  }
}

}  // namespace
}  // namespace raftsql::sm
