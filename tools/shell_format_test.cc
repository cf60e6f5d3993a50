#include "tools/shell_format.h"

#include "gtest/gtest.h"

namespace raftsql::tools {
namespace {

TEST(SplitStatements, SplitsOnSemicolonsOutsideQuotesAndComments) {
  EXPECT_EQ(SplitStatements("INSERT INTO t VALUES ('a;b'); -- x;y\n"
                            "SELECT \"c;\" /* ; */ FROM t;;"),
            (std::vector<std::string>{"INSERT INTO t VALUES ('a;b')",
                                      "SELECT \"c;\"   FROM t"}));
  EXPECT_TRUE(SplitStatements("  ;  ").empty());
}

TEST(IsRead, ReadsGoToQueryAndWritesToExecute) {
  EXPECT_TRUE(IsRead("  select 1"));
  EXPECT_TRUE(IsRead("WITH x AS (SELECT 1) SELECT * FROM x"));
  EXPECT_FALSE(IsRead("INSERT INTO t VALUES (1)"));
  EXPECT_FALSE(IsRead("CREATE TABLE t (a)"));
  EXPECT_TRUE(IsRead("PRAGMA table_info(t)"));
  EXPECT_TRUE(IsRead("pragma user_version"));
  EXPECT_FALSE(IsRead("PRAGMA user_version = 3"));
}

TEST(FormatTable, PadsColumnsToTheirWidestCell) {
  v1::QueryResponse r;
  r.add_columns("id");
  r.add_columns("name");
  v1::Row* row = r.add_rows();
  row->add_values()->set_integer(1);
  row->add_values()->set_text("alice");
  row = r.add_rows();
  row->add_values()->set_integer(22);
  row->add_values()->set_null_value(true);
  EXPECT_EQ(FormatTable(r),
            "id  name\n"
            "--  -----\n"
            "1   alice\n"
            "22  NULL\n"
            "(2 rows)\n");
}

TEST(FormatValue, BlobsPrintAsHexAndRealsKeepPrecision) {
  v1::Value v;
  v.set_blob(std::string("\x01\xab", 2));
  EXPECT_EQ(FormatValue(v), "x'01AB'");
  v.set_real(0.1);
  EXPECT_EQ(FormatValue(v), "0.1");
}

TEST(FormatExecute, ReportsRowsOrTheStatementsError) {
  v1::ExecuteResponse r;
  r.set_index(7);
  v1::StatementResult* s = r.add_results();
  s->set_rows_affected(2);
  s->set_last_insert_rowid(5);
  s = r.add_results();
  s->set_code(3);
  s->set_error("no such table: x");
  EXPECT_EQ(FormatExecute(r),
            "2 rows affected, last insert id 5 (log index 7)\n"
            "ERROR: no such table: x\n");
}

}  // namespace
}  // namespace raftsql::tools
