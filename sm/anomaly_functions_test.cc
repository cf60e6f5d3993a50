// The anomaly aggregates on known windows, and through the state machine
// on both a write (replicated alike) and a read.
#include "sm/anomaly_functions.h"

#include <sqlite3.h>

#include "gtest/gtest.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

double Eval(const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  EXPECT_TRUE(InstallAnomalyFunctions(db).ok());
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  double out = -12345;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    out = sqlite3_column_type(stmt, 0) == SQLITE_NULL
              ? -999
              : sqlite3_column_double(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

TEST(AnomalyFunctions, EachGivesItsValueOnAKnownWindow) {
  EXPECT_DOUBLE_EQ(
      Eval("WITH w(x) AS (VALUES (1), (2), (3)) SELECT ewma(x, 0.5) FROM w"),
      2.25);
  EXPECT_DOUBLE_EQ(Eval("WITH w(x) AS (VALUES (1), (1), (1), (1), (10)) SELECT "
                        "zscore(x) FROM w"),
                   2.0);
  EXPECT_DOUBLE_EQ(
      Eval("WITH w(x) AS (VALUES (4), (4), (4)) SELECT zscore(x) FROM w"), 0.0);
  EXPECT_DOUBLE_EQ(Eval("WITH w(x, t) AS (VALUES (10, 0), (15, 2), (20, 5)) "
                        "SELECT rate(x, t) FROM w"),
                   2.0);
  EXPECT_DOUBLE_EQ(Eval("WITH w(x) AS (VALUES (5), (5.001), (5)) SELECT "
                        "stuck(x, 0.01) FROM w"),
                   1.0);
  EXPECT_DOUBLE_EQ(
      Eval("WITH w(x) AS (VALUES (5), (6)) SELECT stuck(x, 0.01) FROM w"), 0.0);
  EXPECT_DOUBLE_EQ(
      Eval("WITH w(t) AS (VALUES (0), (1), (5), (6)) SELECT max_gap(t) FROM w"),
      4.0);
  // Too few rows, and NULLs skipped.
  EXPECT_DOUBLE_EQ(
      Eval("WITH w(x, t) AS (VALUES (1, 1)) SELECT rate(x, t) FROM w"), -999);
  EXPECT_DOUBLE_EQ(
      Eval("WITH w(x) AS (VALUES (NULL), (4)) SELECT ewma(x, 0.5) FROM w"),
      4.0);
}

TEST(AnomalyFunctions, WritesAndReadsOfTheStateMachineHaveThem) {
  auto sm = OpenMemory();
  ApplyOk(*sm, Cmd({S("CREATE TABLE r(seq INTEGER PRIMARY KEY, v REAL)"),
                    S("INSERT INTO r(v) VALUES (1), (1), (1), (1), (10)"),
                    S("CREATE TABLE z(v)"),
                    S("INSERT INTO z SELECT zscore(v) FROM r")}));
  EXPECT_EQ(QueryValue(*sm, "SELECT v FROM z"), Value::Real(2.0));
  EXPECT_EQ(QueryValue(*sm, "SELECT max_gap(seq) FROM r"), Value::Real(1.0));
}

}  // namespace
}  // namespace raftsql::sm
