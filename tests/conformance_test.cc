// SQL conformance through the API: a table of cases runs through Execute
// and Query on a 1-node and a 3-node cluster (real raftsql_server processes
// on 127.0.0.1; the 3-node cluster is read through a follower at
// LINEARIZABLE) and through the sqlite3 library directly, and every value
// and type must match. Refusals must come before the log, with the reason.
#include "tests/conformance.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

namespace raftsql {
namespace {

struct Case {
  const char* name;
  std::vector<const char*> writes;  // Each one Execute (and one exec).
  const char* read;                 // Compared row by row.
};

// `$T` in a case stands for its own table name (cases share one database).
const Case kCases[] = {
    {"types",
     {"CREATE TABLE $T(i INTEGER, r REAL, t TEXT, b BLOB, n)",
      "INSERT INTO $T VALUES (1, 2.5, 'x', x'00ff', NULL), "
      "(-9223372036854775808, 1e308, '', x'', 7)"},
     "SELECT i, r, t, b, n, typeof(i), typeof(r), typeof(b) FROM $T"},
    {"not_utf8",
     {"CREATE TABLE $T(v TEXT)",
      "INSERT INTO $T VALUES (CAST(x'ff00fe' AS TEXT))",
      "INSERT INTO $T VALUES ('caf' || char(233))"},
     "SELECT v, length(v), hex(v) FROM $T"},
    {"expressions",
     {"CREATE TABLE $T(a, b)",
      "INSERT INTO $T VALUES (1, 'a'), (2, 'b'), (3, NULL)"},
     "SELECT printf('%05.1f', a * 1.5), coalesce(b, '-'), a % 2, a / 2, "
     "a / 2.0, upper(b), instr('xabc', b), round(a / 3.0, 3) FROM $T"},
    {"json",
     {"CREATE TABLE $T(doc)",
      "INSERT INTO $T VALUES ('{\"a\": [1, 2, {\"b\": null}], \"c\": 2.5}')"},
     "SELECT json_extract(doc, '$.a[1]'), json_type(doc, '$.a[2].b'), "
     "json_array_length(doc, '$.a'), json_object('k', 1), "
     "(SELECT json_group_array(value) FROM json_each(doc, '$.a')) FROM $T"},
    {"windows",
     {"CREATE TABLE $T(g, v)",
      "INSERT INTO $T VALUES (1, 10), (1, 20), (2, 5), (2, 15), (2, 25)"},
     "SELECT g, v, sum(v) OVER (PARTITION BY g ORDER BY v), "
     "rank() OVER (ORDER BY v DESC), lag(v) OVER (ORDER BY v) FROM $T "
     "ORDER BY v"},
    {"cte_and_upsert",
     {"CREATE TABLE $T(k PRIMARY KEY, n)",
      "INSERT INTO $T SELECT x, x * x FROM (WITH RECURSIVE c(x) AS "
      "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) SELECT x FROM c)",
      "INSERT INTO $T VALUES (3, 0) ON CONFLICT(k) DO UPDATE SET n = -n"},
     "SELECT k, n FROM $T WHERE k <= 5 ORDER BY k"},
    {"generated",
     {"CREATE TABLE $T(c REAL, f REAL AS (c * 9 / 5 + 32) STORED, "
      "g AS (round(f)))",
      "INSERT INTO $T(c) VALUES (20), (37.5)"},
     "SELECT c, f, g FROM $T"},
    {"alter",
     {"CREATE TABLE $T(a, b, c)", "INSERT INTO $T VALUES (1, 2, 3)",
      "ALTER TABLE $T RENAME COLUMN b TO bee", "ALTER TABLE $T DROP COLUMN c",
      "ALTER TABLE $T ADD COLUMN d DEFAULT 'dd'"},
     "SELECT * FROM $T"},
    {"fts5",
     {"CREATE VIRTUAL TABLE $T USING fts5(body)",
      "INSERT INTO $T VALUES ('raft replicates writes'), ('sqlite applies')"},
     "SELECT body, highlight($T, 0, '[', ']') FROM $T WHERE $T MATCH 'raft'"},
    {"rtree",
     {"CREATE VIRTUAL TABLE $T USING rtree(id, x0, x1)",
      "INSERT INTO $T VALUES (1, 0, 10), (2, 5, 15), (3, 20, 30)"},
     "SELECT id FROM $T WHERE x0 <= 7 AND x1 >= 7 ORDER BY id"},
    {"triggers",
     {"CREATE TABLE $T(v)", "CREATE TABLE $T_log(v)",
      "CREATE TRIGGER $T_copy AFTER INSERT ON $T BEGIN "
      "INSERT INTO $T_log VALUES (new.v * 10); END",
      "INSERT INTO $T VALUES (1), (2)"},
     "SELECT v FROM $T_log ORDER BY v"},
    {"dates",
     {"CREATE TABLE $T(d)",
      "INSERT INTO $T VALUES (datetime(1700000000, 'unixepoch')), "
      "(date('2024-02-28', '+1 day')), (strftime('%j', '2024-12-31'))"},
     "SELECT d FROM $T"},
    {"user_version", {"PRAGMA user_version = 7"}, "PRAGMA user_version"},
    // Every case's objects, and none of raftsql's own tables.
    {"schema_listing",
     {"CREATE TABLE $T(a PRIMARY KEY, b)", "CREATE INDEX $T_b ON $T(b)"},
     "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name"},
    {"table_list",
     {},
     "SELECT name, type, ncol FROM pragma_table_list WHERE schema = 'main' "
     "ORDER BY name"},
};

// Refused before the log, each with a word of its reason.
const struct {
  const char* sql;
  const char* reason;
} kRefused[] = {
    {"ATTACH DATABASE 'x' AS x", "ATTACH"},
    {"CREATE TEMP TABLE tt(x)", "temporary"},
    {"PRAGMA journal_mode = DELETE", "storage or settings"},
    {"PRAGMA foreign_keys = ON", "cluster setting"},
    {"SELECT 1", "Query"},
    {"INSERT INTO nowhere VALUES (1); DELETE FROM nowhere", "more than one"},
    {"SELECT load_extension('x')", "load_extension"},
};

std::string Table(int i) { return absl::StrCat("c", i); }

std::string Sql(const char* text, int i) {
  return absl::StrReplaceAll(text, {{"$T", Table(i)}});
}

using Conformance = conformance::Cluster;
using conformance::Lines;
using conformance::Reference;

TEST_P(Conformance, EveryCaseMatchesSqliteValueForValue) {
  for (int i = 0; i < static_cast<int>(std::size(kCases)); ++i) {
    for (const char* w : kCases[i].writes) {
      SCOPED_TRACE(kCases[i].name);
      Write(Sql(w, i));
    }
  }
  net::Client reader = Reader();
  for (int i = 0; i < static_cast<int>(std::size(kCases)); ++i) {
    const std::string sql = Sql(kCases[i].read, i);
    const std::vector<std::string> expected = Reference(reference_, sql);
    EXPECT_FALSE(expected.empty()) << kCases[i].name;
    EXPECT_EQ(Lines(Read(reader, sql).rows()), expected)
        << kCases[i].name << ": " << sql;
  }
}

TEST_P(Conformance, RefusalsComeBeforeTheLogWithTheirReason) {
  net::Client& writer = cluster_->client();
  const uint64_t before = LastIndex();
  for (const auto& r : kRefused) {
    v1::ExecuteRequest e;
    e.add_statements()->set_sql(r.sql);
    absl::StatusOr<v1::ExecuteResponse> out = writer.Execute(e);
    EXPECT_FALSE(out.ok()) << r.sql;
    EXPECT_NE(out.status().message().find(r.reason), absl::string_view::npos)
        << r.sql << ": " << out.status();
  }
  // Nothing reached the log.
  EXPECT_EQ(LastIndex(), before);
}

INSTANTIATE_TEST_SUITE_P(Nodes, Conformance, ::testing::Values(1, 3),
                         conformance::NodesName);

}  // namespace
}  // namespace raftsql
