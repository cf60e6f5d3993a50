// What SQLite 3.40 does on one database works through the state machine,
// on a file database (writes on the write connection, reads on the read
// connections), unless it would break replication; each refusal names its
// reason.
#include <sqlite3.h>

#include "gtest/gtest.h"
#include "sm/sqlite_state_machine.h"
#include "sm/temp_dir.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

class SqlCoverage : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sm = SqliteStateMachine::Open(
        SqliteOptions{.path = dir_.File("db"), .incremental_vacuum = true});
    ASSERT_TRUE(sm.ok()) << sm.status();
    sm_ = std::move(*sm);
  }
  // Validates and applies `sql` (one command); each statement must succeed.
  void Write(std::vector<Statement> statements) {
    const Command c = Cmd(std::move(statements));
    ASSERT_TRUE(sm_->Validate(c).ok()) << sm_->Validate(c);
    const CommandResult r = ApplyOk(*sm_, c);
    for (size_t i = 0; i < r.statements.size(); ++i) {
      EXPECT_TRUE(r.statements[i].status.ok())
          << c.statements[i].sql << ": " << r.statements[i].status;
    }
  }
  Value Read(const std::string& sql) { return QueryValue(*sm_, sql); }

  TempDir dir_;
  std::unique_ptr<SqliteStateMachine> sm_;
};

TEST_F(SqlCoverage, EveryFormOfAlterTable) {
  Write({S("CREATE TABLE a(x INTEGER, y TEXT, z)"),
         S("INSERT INTO a VALUES (1, 'one', 'gone')")});
  Write({S("ALTER TABLE a RENAME TO b")});
  Write({S("ALTER TABLE b RENAME COLUMN y TO name")});
  Write({S("ALTER TABLE b ADD COLUMN w DEFAULT 7")});
  Write({S("ALTER TABLE b DROP COLUMN z")});
  EXPECT_EQ(Read("SELECT group_concat(name) FROM pragma_table_info('b')"),
            Value::Text("x,name,w"));
  EXPECT_EQ(Read("SELECT name || w FROM b"), Value::Text("one7"));
}

TEST_F(SqlCoverage, Fts5RTreeJsonGeneratedColumnsAndWindows) {
  Write({S("CREATE VIRTUAL TABLE docs USING fts5(body)"),
         S("INSERT INTO docs VALUES ('the quick brown fox'), ('lazy dog')")});
  EXPECT_EQ(Read("SELECT body FROM docs WHERE docs MATCH 'quick'"),
            Value::Text("the quick brown fox"));
  Write({S("CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1, y0, y1)"),
         S("INSERT INTO boxes VALUES (1, 0, 10, 0, 10), (2, 20, 30, 20, 30)")});
  EXPECT_EQ(Read("SELECT id FROM boxes WHERE x0 >= 15"), Value::Integer(2));
  Write(
      {S("CREATE TABLE readings(doc TEXT, "
         "temp REAL GENERATED ALWAYS AS (json_extract(doc, '$.t')) STORED, "
         "f REAL AS (temp * 9 / 5 + 32))"),
       S("INSERT INTO readings(doc) VALUES ('{\"t\": 20}'), ('{\"t\": 30}')")});
  EXPECT_EQ(Read("SELECT max(f) FROM readings"), Value::Real(86));
  EXPECT_EQ(Read("SELECT group_concat(s) FROM (SELECT sum(temp) OVER "
                 "(ORDER BY temp) AS s FROM readings)"),
            Value::Text("20.0,50.0"));
}

TEST_F(SqlCoverage, UserVersionIsWrittenThroughTheLogAndReadAnywhere) {
  EXPECT_EQ(Read("PRAGMA user_version"), Value::Integer(0));
  Write({S("PRAGMA user_version = 42")});
  EXPECT_EQ(Read("PRAGMA user_version"), Value::Integer(42));
  core::Snapshot snap;
  snap.metadata.index = sm_->AppliedIndex();
  snap.data = *sm_->CreateSnapshot();
  auto restored = OpenMemory();
  ASSERT_TRUE(restored->Restore(snap).ok());
  EXPECT_EQ(QueryValue(*restored, "PRAGMA user_version"), Value::Integer(42));
  // Query runs reads only.
  EXPECT_TRUE(absl::IsInvalidArgument(
      sm_->Query(S("PRAGMA user_version = 1")).status()));
}

TEST_F(SqlCoverage, PragmasThatOnlyReadWorkOnQuery) {
  for (const char* sql :
       {"PRAGMA page_size", "PRAGMA data_version", "PRAGMA compile_options",
        "PRAGMA foreign_keys", "PRAGMA application_id", "PRAGMA encoding",
        "PRAGMA freelist_count", "PRAGMA function_list", "PRAGMA table_list"}) {
    absl::StatusOr<QueryResult> q = sm_->Query(S(sql));
    EXPECT_TRUE(q.ok()) << sql << ": " << q.status();
  }
}

TEST_F(SqlCoverage, RefusalsAreDecidedBeforeTheLogAndNameTheirReason) {
  const struct {
    const char* sql;
    const char* reason;
  } refused[] = {
      {"CREATE TEMP TABLE scratch(x)", "temporary objects are not allowed"},
      {"CREATE TEMP VIEW v AS SELECT 1", "temporary objects are not allowed"},
      {"PRAGMA foreign_keys = ON", "cluster setting foreign_keys"},
      {"PRAGMA journal_mode = DELETE", "storage or settings"},
      {"PRAGMA page_size = 512", "storage or settings"},
      {"ATTACH DATABASE 'x' AS x", "ATTACH and DETACH are not allowed"},
  };
  for (const auto& r : refused) {
    const absl::Status s = sm_->Validate(Cmd({S(r.sql)}));
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << r.sql << ": " << s;
    EXPECT_NE(s.message().find(r.reason), absl::string_view::npos)
        << r.sql << ": " << s;
  }
}

TEST_F(SqlCoverage, ReturningRowsComeBackWithTheWrite) {
  Write({S("CREATE TABLE r(id INTEGER PRIMARY KEY, v TEXT)")});
  Command c = Cmd({S("INSERT INTO r(v) VALUES ('a'), ('b') RETURNING id, v"),
                   S("UPDATE r SET v = upper(v) WHERE id = 2 RETURNING v"),
                   S("INSERT INTO r VALUES (1, 'dup') RETURNING id")});
  c.session_id = 7;
  c.sequence = 1;
  const CommandResult r = ApplyOk(*sm_, c);
  ASSERT_EQ(r.statements.size(), 3u);
  EXPECT_EQ(r.statements[0].columns, (std::vector<std::string>{"id", "v"}));
  ASSERT_EQ(r.statements[0].rows.size(), 2u);
  EXPECT_EQ(r.statements[0].rows[1][0], Value::Integer(2));
  EXPECT_EQ(r.statements[0].rows[1][1], Value::Text("b"));
  ASSERT_EQ(r.statements[1].rows.size(), 1u);
  EXPECT_EQ(r.statements[1].rows[0][0], Value::Text("B"));
  // A statement that failed returned nothing.
  EXPECT_FALSE(r.statements[2].status.ok());
  EXPECT_TRUE(r.statements[2].rows.empty());
  // A retry gets the rows from its session.
  const CommandResult retry = ApplyOk(*sm_, c);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.statements[0].rows, r.statements[0].rows);
}

TEST_F(SqlCoverage, ReturnedRowsAreBoundedAlikeOnEveryReplica) {
  Write({S("CREATE TABLE big(v)")});
  const CommandResult r = ApplyOk(
      *sm_, Cmd({S("INSERT INTO big SELECT zeroblob(1000) FROM "
                   "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                   "FROM c WHERE x < 3000) SELECT x FROM c) RETURNING v")}));
  ASSERT_TRUE(r.statements[0].status.ok()) << r.statements[0].status;
  EXPECT_TRUE(r.statements[0].rows_truncated);
  EXPECT_LT(r.statements[0].rows.size(), 3000u);
  EXPECT_GT(r.statements[0].rows.size(), 900u);
  EXPECT_EQ(r.statements[0].rows_affected, 3000);
  EXPECT_EQ(Count(*sm_, "big"), 3000);  // The write itself is whole.
}

TEST_F(SqlCoverage, FreePagesGoBackABoundedNumberPerBatch) {
  EXPECT_EQ(Read("PRAGMA auto_vacuum"), Value::Integer(2));  // Incremental.
  Write({S("CREATE TABLE big(v)")});
  Write(
      {S("INSERT INTO big SELECT zeroblob(4000) FROM (WITH RECURSIVE "
         "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
         "SELECT x FROM c)")});
  const int64_t full = Read("PRAGMA page_count").integer;
  EXPECT_GT(full, 2000);
  Write({S("DELETE FROM big")});
  // Each batch returns at most 256 pages; the file shrinks batch by batch.
  int64_t last = Read("PRAGMA page_count").integer;
  for (int i = 0; i < 20; ++i) {
    Write({S("CREATE TABLE IF NOT EXISTS tick(n)")});
    const int64_t now = Read("PRAGMA page_count").integer;
    EXPECT_GE(now, last - 256 - 8);
    last = now;
  }
  EXPECT_LT(last, full / 4);
  EXPECT_LT(Read("PRAGMA freelist_count").integer, 256);
}

TEST_F(SqlCoverage, AResultOfAnySizeComesInBoundedPages) {
  Write({S("CREATE TABLE many(v)"),
         S("INSERT INTO many SELECT printf('%0100d', x) FROM (WITH RECURSIVE "
           "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) "
           "SELECT x FROM c)")});
  constexpr size_t kPage = 64 << 10;
  size_t pages = 0, rows = 0;
  const absl::Status s = sm_->QueryPages(
      S("SELECT v FROM many"), ReadLimits{}, kPage, [&](QueryResult page) {
        EXPECT_EQ(page.columns.size(), pages == 0 ? 1u : 0u);
        size_t bytes = 0;
        for (const auto& row : page.rows) bytes += ValueBytes(row[0]);
        EXPECT_LE(bytes, kPage);
        rows += page.rows.size();
        ++pages;
        return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(rows, 20000u);
  EXPECT_GT(pages, 30u);  // 20,000 rows of 116 bytes in 64 KiB pages.
  // Query itself keeps its one-result bound.
  ReadLimits small;
  small.max_result_bytes = kPage;
  EXPECT_TRUE(absl::IsResourceExhausted(
      sm_->Query(S("SELECT v FROM many"), small).status()));
  // A sink that fails (the client went away) ends the read.
  size_t taken = 0;
  const absl::Status gone = sm_->QueryPages(
      S("SELECT v FROM many"), ReadLimits{}, kPage, [&](QueryResult) {
        return ++taken == 2 ? absl::CancelledError("gone") : absl::OkStatus();
      });
  EXPECT_TRUE(absl::IsCancelled(gone));
  EXPECT_EQ(taken, 2u);
}

TEST(ReadsAfterASchemaChange, SeeTheCurrentColumns) {
  // One read connection, so that its cached schema is the old one.
  TempDir dir;
  auto sm = SqliteStateMachine::Open(
      SqliteOptions{.path = dir.File("db"), .read_connections = 1});
  ASSERT_TRUE(sm.ok());
  SqliteStateMachine& m = **sm;
  ApplyOk(m,
          Cmd({S("CREATE TABLE m(a, b)"), S("INSERT INTO m VALUES (1, 2)")}));
  ASSERT_EQ(m.Query(S("SELECT * FROM m"))->columns.size(), 2u);
  ApplyOk(m, Cmd({S("ALTER TABLE m ADD COLUMN c DEFAULT 3")}));
  absl::StatusOr<QueryResult> added = m.Query(S("SELECT * FROM m"));
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->columns, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(added->rows.size(), 1u);
  EXPECT_EQ(added->rows[0].size(), 3u);

  ApplyOk(m, Cmd({S("DROP TABLE m"), S("CREATE TABLE m(secret, a)"),
                  S("INSERT INTO m VALUES ('TOPSECRET', 'x')")}));
  absl::StatusOr<QueryResult> again = m.Query(S("SELECT * FROM m"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->columns, (std::vector<std::string>{"secret", "a"}));
  EXPECT_EQ(again->rows[0][1], Value::Text("x"));
  // An empty result names the current columns too.
  ApplyOk(m, Cmd({S("ALTER TABLE m ADD COLUMN z")}));
  absl::StatusOr<QueryResult> empty = m.Query(S("SELECT * FROM m WHERE 0"));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->columns.size(), 3u);
}

}  // namespace
}  // namespace raftsql::sm
