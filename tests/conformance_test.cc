// SQL conformance through the API: a table of cases runs through Execute
// and Query on a 1-node and a 3-node cluster (real raftsql_server processes
// on 127.0.0.1; the 3-node cluster is read through a follower at
// LINEARIZABLE) and through the sqlite3 library directly, and every value
// and type must match. Refusals must come before the log, with the reason.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "net/client.h"
#include "tools/local_cluster.h"
#include "tools/process.h"

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

// A value as "type:bytes", for either side.
std::string Show(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kInteger:
      return absl::StrCat("i:", v.integer());
    case v1::Value::kReal:
      return absl::StrCat("r:", v.real());
    case v1::Value::kText:
      return "t:" + v.text();
    case v1::Value::kTextBytes:
      return "t:" + v.text_bytes();
    case v1::Value::kBlob:
      return "b:" + v.blob();
    default:
      return "null";
  }
}

std::string Show(sqlite3_stmt* stmt, int c) {
  switch (sqlite3_column_type(stmt, c)) {
    case SQLITE_INTEGER:
      return absl::StrCat("i:", sqlite3_column_int64(stmt, c));
    case SQLITE_FLOAT:
      return absl::StrCat("r:", sqlite3_column_double(stmt, c));
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, c));
      const std::string bytes(p != nullptr ? p : "",
                              sqlite3_column_bytes(stmt, c));
      return (sqlite3_column_type(stmt, c) == SQLITE_TEXT ? "t:" : "b:") +
             bytes;
    }
    default:
      return "null";
  }
}

std::vector<std::string> Reference(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sql << ": " << sqlite3_errmsg(db);
  std::vector<std::string> rows;
  while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      absl::StrAppend(&row, Show(stmt, c), "|");
    }
    rows.push_back(row);
  }
  sqlite3_finalize(stmt);
  return rows;
}

class Conformance : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/raftsql-conformance-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    tools::LocalClusterOptions o;
    o.nodes = GetParam();
    o.server_binary = tools::FindBinary("", "server/raftsql_server");
    ASSERT_FALSE(o.server_binary.empty());
    o.dir = dir_;
    cluster_ = std::make_unique<tools::LocalCluster>(o);
    ASSERT_TRUE(cluster_->Start().ok());
    // Serving once a leader is known (bounded).
    bool led = false;
    for (int i = 0; i < 400 && !led; ++i) {
      for (int node = 1; node <= GetParam() && !led; ++node) {
        auto st = cluster_->client().Status(cluster_->Endpoint(node));
        led = st.ok() && st->leader() != 0;
      }
      if (!led) usleep(50'000);
    }
    ASSERT_TRUE(led) << "no leader within 20 s";
    ASSERT_EQ(sqlite3_open(":memory:", &reference_), SQLITE_OK);
  }
  void TearDown() override {
    sqlite3_close(reference_);
    cluster_.reset();  // Stops every node by PID.
    std::filesystem::remove_all(dir_);
  }
  // Where reads go: a follower of the 3-node cluster, the node of the other.
  net::Client Reader() {
    const int node = GetParam() == 1 ? 1 : ReadNode();
    return net::Client({cluster_->Endpoint(node)},
                       cluster_->ClientOptionsFor());
  }
  int ReadNode() {
    for (int node = 1; node <= GetParam(); ++node) {
      auto s = cluster_->client().Status(cluster_->Endpoint(node));
      if (s.ok() && s->role() == "Follower") return node;
    }
    return 1;
  }

  std::string dir_;
  std::unique_ptr<tools::LocalCluster> cluster_;
  sqlite3* reference_ = nullptr;
};

TEST_P(Conformance, EveryCaseMatchesSqliteValueForValue) {
  net::Client& writer = cluster_->client();
  for (int i = 0; i < static_cast<int>(std::size(kCases)); ++i) {
    const Case& c = kCases[i];
    for (const char* w : c.writes) {
      const std::string sql = Sql(w, i);
      v1::ExecuteRequest e;
      e.add_statements()->set_sql(sql);
      absl::StatusOr<v1::ExecuteResponse> r = writer.Execute(e);
      ASSERT_TRUE(r.ok()) << c.name << ": " << sql << ": " << r.status();
      EXPECT_EQ(r->results(0).code(), 0)
          << c.name << ": " << sql << ": " << r->results(0).error();
      char* err = nullptr;
      EXPECT_EQ(sqlite3_exec(reference_, sql.c_str(), nullptr, nullptr, &err),
                SQLITE_OK)
          << c.name << ": " << (err ? err : "");
      sqlite3_free(err);
    }
  }
  net::Client reader = Reader();
  for (int i = 0; i < static_cast<int>(std::size(kCases)); ++i) {
    const std::string sql = Sql(kCases[i].read, i);
    v1::QueryRequest q;
    q.mutable_statement()->set_sql(sql);
    q.set_consistency(v1::LINEARIZABLE);
    absl::StatusOr<v1::QueryResponse> r = reader.Query(q);
    ASSERT_TRUE(r.ok()) << kCases[i].name << ": " << r.status();
    std::vector<std::string> rows;
    for (const v1::Row& row : r->rows()) {
      std::string line;
      for (const v1::Value& v : row.values())
        absl::StrAppend(&line, Show(v), "|");
      rows.push_back(line);
    }
    const std::vector<std::string> expected = Reference(reference_, sql);
    EXPECT_FALSE(expected.empty()) << kCases[i].name;
    EXPECT_EQ(rows, expected) << kCases[i].name << ": " << sql;
  }
}

TEST_P(Conformance, RefusalsComeBeforeTheLogWithTheirReason) {
  net::Client& writer = cluster_->client();
  const uint64_t before = writer.Status(cluster_->Endpoint(1))->last_index();
  for (const auto& r : kRefused) {
    v1::ExecuteRequest e;
    e.add_statements()->set_sql(r.sql);
    absl::StatusOr<v1::ExecuteResponse> out = writer.Execute(e);
    EXPECT_FALSE(out.ok()) << r.sql;
    EXPECT_NE(out.status().message().find(r.reason), absl::string_view::npos)
        << r.sql << ": " << out.status();
  }
  // Nothing reached the log.
  EXPECT_EQ(writer.Status(cluster_->Endpoint(1))->last_index(), before);
}

INSTANTIATE_TEST_SUITE_P(Nodes, Conformance, ::testing::Values(1, 3),
                         [](const auto& info) {
                           return absl::StrCat(info.param, "_nodes");
                         });

}  // namespace
}  // namespace raftsql
