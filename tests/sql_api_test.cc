// What a client of Execute and Query sees beyond values, on a 1-node and a
// 3-node cluster of real raftsql_server processes (127.0.0.1), each point
// against the sqlite3 library where it has an answer: reads after schema
// changes, replicas that restart or run in another time zone, errors of
// statements that end SQLite's transaction, RETURNING, parameters,
// read-only PRAGMAs, foreign keys as a cluster setting, VACUUM, and the
// internal tables.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/conformance.h"

namespace raftsql {
namespace {

using conformance::Lines;
using conformance::Reference;

class SqlApi : public conformance::Cluster {
 protected:
  int Leader() {
    absl::StatusOr<int> l = cluster_->WaitForLeader(20'000);
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : 1;
  }
  // Waits (bounded) until node `id` answers Status and knows a leader.
  void ServesAgain(int id) {
    for (int i = 0; i < 400; ++i) {
      auto s = cluster_->client().Status(cluster_->Endpoint(id));
      if (s.ok() && s->leader() != 0) return;
      usleep(50'000);
    }
    ADD_FAILURE() << "node " << id << " not serving within 20 s";
  }
  // One statement through Execute, as it came back (a status or results).
  absl::StatusOr<v1::ExecuteResponse> Execute(
      const std::string& sql, std::vector<v1::Value> positional = {}) {
    v1::ExecuteRequest e;
    v1::Statement* s = e.add_statements();
    s->set_sql(sql);
    for (v1::Value& v : positional) *s->add_positional() = std::move(v);
    return cluster_->client().Execute(e);
  }
  absl::StatusOr<v1::QueryResponse> Query(net::Client& reader,
                                          const std::string& sql) {
    v1::QueryRequest q;
    q.mutable_statement()->set_sql(sql);
    q.set_consistency(v1::LINEARIZABLE);
    return reader.Query(q);
  }
  // The reference's error for `sql` (which must fail there).
  std::string ReferenceError(const std::string& sql) {
    char* err = nullptr;
    EXPECT_NE(sqlite3_exec(reference_, sql.c_str(), nullptr, nullptr, &err),
              SQLITE_OK)
        << sql;
    std::string out = err != nullptr ? err : "";
    sqlite3_free(err);
    return out;
  }
  // Every node's answer to `sql`, read at LINEARIZABLE on that node.
  std::vector<std::vector<std::string>> EveryNode(const std::string& sql) {
    std::vector<std::vector<std::string>> out;
    for (int id = 1; id <= GetParam(); ++id) {
      net::Client c = Node(id);
      out.push_back(Lines(Read(c, sql).rows()));
    }
    return out;
  }
};

TEST_P(SqlApi, ReadsSeeEverySchemaChangeAtOnce) {
  // Each read is prepared before the change that follows it, so a stale
  // statement or schema cache on a read connection would show.
  const int leader_id = Leader();
  net::Client leader = Node(leader_id);
  net::Client follower = Reader();
  const std::string select = "SELECT * FROM m";
  uint64_t written = 0;  // The last write's log index.
  auto write = [&](const std::string& sql) { written = Write(sql).index(); };
  auto check = [&](const std::vector<std::string>& columns) {
    const std::vector<std::string> expected = Reference(reference_, select);
    // A NONE read sees what its node applied: a write acknowledged by a
    // follower (forwarded) may have applied there before on the leader,
    // which sends the commit index before it applies. Wait for it.
    for (int i = 0; i < 2000; ++i) {
      auto s = cluster_->client().Status(cluster_->Endpoint(leader_id));
      if (s.ok() && s->applied_index() >= written) break;
      usleep(10'000);
    }
    for (auto [reader, consistency] :
         {std::pair{&leader, v1::NONE},
          std::pair{&follower, v1::LINEARIZABLE}}) {
      const v1::QueryResponse r = Read(*reader, select, consistency);
      EXPECT_EQ(
          std::vector<std::string>(r.columns().begin(), r.columns().end()),
          columns)
          << "consistency " << consistency;
      EXPECT_EQ(Lines(r.rows()), expected) << "consistency " << consistency;
    }
  };
  write("CREATE TABLE m(a INTEGER, b TEXT)");
  write("INSERT INTO m VALUES (1, 'one')");
  check({"a", "b"});
  write("ALTER TABLE m ADD COLUMN c DEFAULT 'cee'");
  check({"a", "b", "c"});
  write("DROP TABLE m");
  write("CREATE TABLE m(secret TEXT, a BLOB)");
  write("INSERT INTO m VALUES ('TOPSECRET', x'01')");
  check({"secret", "a"});
  const v1::QueryResponse typed = Read(follower, select);
  EXPECT_EQ(absl::StrJoin(typed.declared_types(), ","), "TEXT,BLOB");
}

TEST_P(SqlApi, ReplicasAgreeAcrossRestartsAndTimeZones) {
  // Connection counters, SQLite's own PRNG (random rowids once a table
  // holds the largest rowid) and 'localtime', with the last node restarted
  // in another time zone between statements.
  Write("CREATE TABLE d(k INTEGER PRIMARY KEY, v)");
  Write("INSERT INTO d VALUES (9223372036854775807, 'max')");
  const char* kWrites[] = {
      "INSERT INTO d(v) VALUES (total_changes())",
      "INSERT INTO d(v) VALUES (changes() || '/' || last_insert_rowid())",
      "INSERT INTO d(v) VALUES (datetime(0, 'unixepoch', 'localtime'))",
      "INSERT INTO d(v) SELECT v FROM d WHERE k = 9223372036854775807",
  };
  for (int round = 0; round < 2; ++round) {
    for (const char* w : kWrites) {
      absl::StatusOr<v1::ExecuteResponse> r = Execute(w);
      ASSERT_TRUE(r.ok()) << w << ": " << r.status();
      EXPECT_EQ(r->results(0).code(), 0) << w << ": " << r->results(0).error();
    }
    const int last = GetParam();
    cluster_->StopNode(last, SIGTERM);
    setenv("TZ", "Asia/Kathmandu", 1);  // UTC+05:45, inherited by the node.
    const absl::Status started = cluster_->StartNode(last);
    unsetenv("TZ");
    ASSERT_TRUE(started.ok()) << started;
    ServesAgain(last);
  }
  const std::string all = "SELECT k, v FROM d ORDER BY k";
  const auto answers = EveryNode(all);
  ASSERT_EQ(answers[0].size(), 9u);
  for (const auto& a : answers) EXPECT_EQ(a, answers[0]);
  net::Client reader = Reader();
  const v1::QueryResponse times =
      Read(reader, "SELECT count(*) FROM d WHERE v = '1970-01-01 00:00:00'");
  EXPECT_EQ(Lines(times.rows()), std::vector<std::string>{"i:2|"});
  // Per command, as on a connection opened for it: 0 first.
  const v1::QueryResponse counters =
      Read(reader, "SELECT count(*) FROM d WHERE v = '0/0'");
  EXPECT_EQ(Lines(counters.rows()), std::vector<std::string>{"i:2|"});
}

TEST_P(SqlApi, AStatementThatEndsTheTransactionAnswersItsOwnError) {
  Write("CREATE TABLE u(k UNIQUE)");
  Write("INSERT INTO u VALUES (1)");
  Write(
      "CREATE TRIGGER no_x BEFORE INSERT ON u WHEN new.k = 'x' BEGIN "
      "SELECT RAISE(ROLLBACK, 'no x here'); END");
  for (const std::string sql :
       {"INSERT OR ROLLBACK INTO u VALUES (1)", "INSERT INTO u VALUES ('x')",
        "INSERT INTO u VALUES (1)"}) {
    absl::StatusOr<v1::ExecuteResponse> r = Execute(sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status();  // Applied, refused.
    EXPECT_EQ(r->results(0).code(),
              static_cast<int>(absl::StatusCode::kFailedPrecondition))
        << sql;
    EXPECT_EQ(r->results(0).error(), ReferenceError(sql)) << sql;
  }
  net::Client reader = Reader();
  EXPECT_EQ(Lines(Read(reader, "SELECT k FROM u").rows()),
            Reference(reference_, "SELECT k FROM u"));
}

TEST_P(SqlApi, ExecuteAnswersTheRowsOfReturning) {
  Write("CREATE TABLE r(id INTEGER PRIMARY KEY, v TEXT)");
  const std::string sql =
      "INSERT INTO r(v) VALUES ('a'), ('b') RETURNING id, upper(v)";
  absl::StatusOr<v1::ExecuteResponse> out = Execute(sql);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->results(0).code(), 0) << out->results(0).error();
  EXPECT_EQ(absl::StrJoin(out->results(0).columns(), ","), "id,upper(v)");
  EXPECT_EQ(Lines(out->results(0).rows()), Reference(reference_, sql));
  EXPECT_EQ(out->results(0).rows_affected(), 2);
}

TEST_P(SqlApi, MissingParametersAndSeveralStatementsAreRefusedByBothCalls) {
  Write("CREATE TABLE p(a, b)");
  const uint64_t before = LastIndex();
  v1::Value one;
  one.set_integer(1);
  absl::StatusOr<v1::ExecuteResponse> missing =
      Execute("INSERT INTO p VALUES (?, ?)", {one});
  EXPECT_TRUE(absl::IsInvalidArgument(missing.status())) << missing.status();
  EXPECT_NE(missing.status().message().find("not bound"), std::string::npos);
  absl::StatusOr<v1::ExecuteResponse> named =
      Execute("INSERT INTO p VALUES (:a, 2)");
  EXPECT_TRUE(absl::IsInvalidArgument(named.status())) << named.status();
  EXPECT_EQ(LastIndex(), before) << "a refusal reached the log";
  // An unknown table is decided where it is applied (an earlier entry may
  // create it), with the code a read gets for it.
  absl::StatusOr<v1::ExecuteResponse> nowhere =
      Execute("INSERT INTO nowhere VALUES (1)");
  ASSERT_TRUE(nowhere.ok()) << nowhere.status();
  EXPECT_EQ(nowhere->results(0).code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(nowhere->results(0).error(), "no such table: nowhere");

  net::Client reader = Reader();
  for (const char* sql :
       {"SELECT ?", "SELECT 1; DELETE FROM p", "SELECT * FROM nowhere"}) {
    absl::StatusOr<v1::QueryResponse> r = Query(reader, sql);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status()))
        << sql << ": " << r.status();
  }
  // Comments and a trailing semicolon are one statement.
  Write("INSERT INTO p VALUES (1, 2); -- a comment");
  EXPECT_EQ(Lines(Read(reader, "SELECT a, b FROM p;").rows()),
            std::vector<std::string>{"i:1|i:2|"});
}

TEST_P(SqlApi, ReadOnlyPragmasAnswerOnQuery) {
  Write("CREATE TABLE q(a INTEGER PRIMARY KEY, b TEXT NOT NULL)");
  Write("PRAGMA user_version = 12");
  net::Client reader = Reader();
  for (const char* sql :
       {"PRAGMA user_version", "PRAGMA table_info(q)", "PRAGMA compile_options",
        "PRAGMA foreign_keys", "PRAGMA encoding"}) {
    EXPECT_EQ(Lines(Read(reader, sql).rows()), Reference(reference_, sql))
        << sql;
  }
  for (const char* sql : {"PRAGMA page_size", "PRAGMA data_version"}) {
    EXPECT_EQ(Read(reader, sql).rows_size(), 1) << sql;
  }
  absl::StatusOr<v1::QueryResponse> set =
      Query(reader, "PRAGMA user_version = 3");
  EXPECT_FALSE(set.ok());
}

TEST_P(SqlApi, ForeignKeysAreEnforcedOnceSwitchedOnForTheCluster) {
  Write("CREATE TABLE parent(id INTEGER PRIMARY KEY)");
  Write(
      "CREATE TABLE child(id INTEGER PRIMARY KEY, "
      "parent REFERENCES parent(id) ON DELETE CASCADE)");
  Write("INSERT INTO parent VALUES (1), (2)");
  Write("INSERT INTO child VALUES (10, 1), (20, 2)");
  absl::StatusOr<v1::SettingsResponse> set =
      cluster_->client().SetSetting("foreign_keys", 1);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(sqlite3_exec(reference_, "PRAGMA foreign_keys = ON", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  Write("DELETE FROM parent WHERE id = 1");
  const std::string orphan = "INSERT INTO child VALUES (30, 3)";
  absl::StatusOr<v1::ExecuteResponse> r = Execute(orphan);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).code(),
            static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(r->results(0).error(), ReferenceError(orphan));
  const std::string children = "SELECT id, parent FROM child ORDER BY id";
  for (const auto& a : EveryNode(children)) {
    EXPECT_EQ(a, Reference(reference_, children));
    EXPECT_EQ(a.size(), 1u);
  }
}

TEST_P(SqlApi, VacuumGoesThroughTheLogAndKeepsEveryRow) {
  Write("CREATE TABLE big(id INTEGER PRIMARY KEY, pad BLOB)");
  Write(
      "INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + "
      "1 FROM n WHERE i < 2000) SELECT i, randomblob(200) FROM n");
  Write("DELETE FROM big WHERE id % 2 = 0");
  absl::StatusOr<v1::ExecuteResponse> vacuum = Execute("VACUUM");
  ASSERT_TRUE(vacuum.ok()) << vacuum.status();
  EXPECT_EQ(vacuum->results(0).code(), 0) << vacuum->results(0).error();
  const std::string count = "SELECT count(*), sum(id), min(id) FROM big";
  for (const auto& a : EveryNode(count)) {
    EXPECT_EQ(a, std::vector<std::string>{"i:1000|i:1000000|i:1|"});
  }
}

TEST_P(SqlApi, InternalTablesAreNeitherListedNorReadable) {
  Write("CREATE TABLE visible(x)");
  net::Client reader = Reader();
  for (const char* sql :
       {"SELECT * FROM _raftsql_sessions", "SELECT * FROM _raftsql_meta",
        "PRAGMA table_info(_raftsql_meta)"}) {
    absl::StatusOr<v1::QueryResponse> r = Query(reader, sql);
    EXPECT_TRUE(absl::IsPermissionDenied(r.status()))
        << sql << ": " << r.status();
  }
  EXPECT_EQ(Lines(Read(reader, "SELECT name FROM sqlite_schema").rows()),
            std::vector<std::string>{"t:visible|"});
}

INSTANTIATE_TEST_SUITE_P(Nodes, SqlApi, ::testing::Values(1, 3),
                         conformance::NodesName);

}  // namespace
}  // namespace raftsql
