#include "server/load_plan.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace raftsql::server {
namespace {

class LoadPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/raftsql-load-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static void Exec(sqlite3* db, const std::string& sql) {
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
  }

  // Applies `commands` to a new memory database, each as a transaction.
  static sqlite3* Apply(const std::vector<std::vector<sm::Statement>>& cmds) {
    sqlite3* db = nullptr;
    sqlite3_open(":memory:", &db);
    for (const auto& cmd : cmds) {
      Exec(db, "BEGIN");
      for (const sm::Statement& s : cmd) {
        sqlite3_stmt* st = nullptr;
        EXPECT_EQ(sqlite3_prepare_v2(db, s.sql.c_str(), -1, &st, nullptr),
                  SQLITE_OK)
            << s.sql << ": " << sqlite3_errmsg(db);
        for (size_t i = 0; i < s.positional.size(); ++i) {
          const sm::Value& v = s.positional[i];
          const int at = static_cast<int>(i + 1);
          switch (v.type) {
            case sm::Value::Type::kInteger:
              sqlite3_bind_int64(st, at, v.integer);
              break;
            case sm::Value::Type::kReal:
              sqlite3_bind_double(st, at, v.real);
              break;
            case sm::Value::Type::kText:
              sqlite3_bind_text(st, at, v.bytes.data(), v.bytes.size(),
                                SQLITE_TRANSIENT);
              break;
            case sm::Value::Type::kBlob:
              sqlite3_bind_blob(st, at, v.bytes.data(), v.bytes.size(),
                                SQLITE_TRANSIENT);
              break;
            case sm::Value::Type::kNull:
              break;
          }
        }
        EXPECT_EQ(sqlite3_step(st), SQLITE_DONE)
            << s.sql << ": " << sqlite3_errmsg(db);
        sqlite3_finalize(st);
      }
      Exec(db, "COMMIT");
    }
    return db;
  }

  // Every row of `sql`'s result as text, one line each.
  static std::string Rows(sqlite3* db, const std::string& sql) {
    std::string out;
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db);
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        absl::StrAppend(&out, sqlite3_column_type(st, i), ":",
                        t ? reinterpret_cast<const char*>(t) : "NULL", "|");
      }
      out += "\n";
    }
    sqlite3_finalize(st);
    return out;
  }

  // A SQLite file made by `sql`.
  std::string Source(const std::string& sql) {
    const std::string path = dir_ + "/source.sqlite";
    sqlite3* src = nullptr;
    EXPECT_EQ(sqlite3_open(path.c_str(), &src), SQLITE_OK);
    Exec(src, sql);
    sqlite3_close(src);
    return path;
  }

  std::string dir_;
};

TEST_F(LoadPlanTest, AFileComesBackWithItsRowsRowidsAndObjects) {
  const std::string path = Source(R"sql(
    CREATE TABLE t (a INTEGER, b TEXT, c REAL, d BLOB,
                    e INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL);
    INSERT INTO t(rowid, a, b, c, d) VALUES (5, 1, 'x', 1.5, x'00ff'),
                                           (9, NULL, 'y', NULL, NULL);
    CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    INSERT INTO kv VALUES ('b', 2), ('a', 1);
    CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, n);
    INSERT INTO auto(n) VALUES (1), (2);
    CREATE VIRTUAL TABLE docs USING fts5(body);
    INSERT INTO docs VALUES ('hello world'), ('raft log');
    CREATE INDEX t_b ON t(b);
    CREATE VIEW big AS SELECT a FROM t WHERE a > 0;
    CREATE TABLE audit (n);
    CREATE TRIGGER t_audit AFTER INSERT ON t BEGIN
      INSERT INTO audit VALUES (NEW.a);
    END;
    CREATE TABLE _raftsql_meta (k, v);
    INSERT INTO _raftsql_meta VALUES ('applied', 7);
  )sql");
  sqlite3* src = nullptr;

  std::vector<std::vector<sm::Statement>> commands;
  absl::StatusOr<LoadTotals> totals =
      LoadSqliteFile(path, 200, [&](std::vector<sm::Statement> c) {
        commands.push_back(std::move(c));
        return absl::OkStatus();
      });
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->rows, 8u);      // t 2, kv 2, auto 2, docs 2; no audit rows
  EXPECT_GT(totals->commands, 2u);  // 200 bytes a command: several
  EXPECT_EQ(totals->commands, commands.size());

  sqlite3* dst = Apply(commands);
  ASSERT_EQ(sqlite3_open(path.c_str(), &src), SQLITE_OK);
  for (const char* q : {
           "SELECT rowid, a, b, c, hex(d), e FROM t ORDER BY rowid",
           "SELECT * FROM kv ORDER BY k",
           "SELECT * FROM auto ORDER BY id",
           "SELECT rowid, body FROM docs WHERE docs MATCH 'raft'",
           "SELECT * FROM big",
           "SELECT name, type FROM sqlite_schema WHERE name NOT LIKE "
           "'docs_%' AND name NOT LIKE '_raftsql%' ORDER BY name",
       }) {
    EXPECT_EQ(Rows(dst, q), Rows(src, q)) << q;
  }
  // The trigger came after the rows: it fired for none of them.
  EXPECT_EQ(Rows(dst, "SELECT count(*) FROM audit"), "1:0|\n");
  EXPECT_EQ(Rows(dst,
                 "SELECT count(*) FROM sqlite_schema WHERE name = "
                 "'_raftsql_meta'"),
            "1:0|\n");
  sqlite3_close(src);
  sqlite3_close(dst);
}

TEST_F(LoadPlanTest, ADumpReadsBackAsTheSameRowsInSqliteAndAsALoad) {
  const std::string path = Source(R"sql(
    CREATE TABLE t (a INTEGER, b TEXT, c REAL, d BLOB,
                    e INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL);
    INSERT INTO t(rowid, a, b, c, d) VALUES
      (5, 1, 'it''s', 2.0, x'00ff'), (9, NULL, NULL, 1e300, x''),
      (11, -9223372036854775808, 'x', 0.1, NULL),
      (12, 3, CAST(x'ff00fe41' AS TEXT), -1e999, NULL),
      (13, 4, 'line
break', 1e999, NULL);
    CREATE TABLE "odd "" VALUES (?" ("c?" TEXT, "VALUES (" INTEGER);
    INSERT INTO "odd "" VALUES (?" VALUES ('?', 7);
    CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    INSERT INTO kv VALUES ('b', 2), ('a', 1);
    CREATE VIRTUAL TABLE docs USING fts5(body);
    INSERT INTO docs VALUES ('hello world'), ('raft log');
    CREATE INDEX t_b ON t(b);
    CREATE TABLE _raftsql_meta (k, v);
  )sql");
  sqlite3* src = nullptr;
  std::string dump;
  int pieces = 0;
  absl::StatusOr<LoadTotals> totals =
      DumpSqliteFile(path, 200, [&](std::string piece) {
        dump += piece;
        ++pieces;
        return absl::OkStatus();
      });
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->rows, 10u);
  EXPECT_GT(pieces, 3);
  EXPECT_EQ(dump.find("_raftsql"), std::string::npos) << dump;
  EXPECT_EQ(dump.rfind("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n", 0),
            0u);
  EXPECT_TRUE(absl::EndsWith(dump, "COMMIT;\n")) << dump;

  // As sqlite3 would read it, and as a load (LoadSqlText) sends it.
  sqlite3* run = nullptr;
  sqlite3_open(":memory:", &run);
  Exec(run, dump);
  std::ofstream(dir_ + "/dump.sql") << dump;
  std::vector<std::vector<sm::Statement>> commands;
  ASSERT_TRUE(LoadSqlText(dir_ + "/dump.sql", 1 << 20,
                          [&](std::vector<sm::Statement> c) {
                            commands.push_back(std::move(c));
                            return absl::OkStatus();
                          })
                  .ok());
  sqlite3* loaded = Apply(commands);
  ASSERT_EQ(sqlite3_open(path.c_str(), &src), SQLITE_OK);
  for (const char* q : {
           "SELECT rowid, a, hex(b), typeof(b), c, typeof(c), hex(d), "
           "typeof(d), e FROM t ORDER BY rowid",
           "SELECT * FROM \"odd \"\" VALUES (?\"",
           "SELECT * FROM kv ORDER BY k",
           "SELECT rowid, body FROM docs WHERE docs MATCH 'raft'",
           "SELECT name, type FROM sqlite_schema WHERE name NOT LIKE "
           "'docs_%' AND name NOT LIKE '_raftsql%' ORDER BY name",
       }) {
    EXPECT_EQ(Rows(run, q), Rows(src, q)) << q << "\n" << dump;
    EXPECT_EQ(Rows(loaded, q), Rows(src, q)) << q;
  }
  sqlite3_close(src);
  sqlite3_close(run);
  sqlite3_close(loaded);
}

TEST(CreateIfNotExists, KeepsWhatExists) {
  EXPECT_EQ(CreateIfNotExists("CREATE TABLE t (v)"),
            "CREATE TABLE IF NOT EXISTS t (v)");
  EXPECT_EQ(CreateIfNotExists("create unique index i ON t(v)"),
            "create unique index IF NOT EXISTS i ON t(v)");
  EXPECT_EQ(CreateIfNotExists("CREATE VIRTUAL TABLE d USING fts5(b)"),
            "CREATE VIRTUAL TABLE IF NOT EXISTS d USING fts5(b)");
  EXPECT_EQ(CreateIfNotExists("CREATE VIEW IF NOT EXISTS v AS SELECT 1"),
            "CREATE VIEW IF NOT EXISTS v AS SELECT 1");
  EXPECT_EQ(CreateIfNotExists("INSERT INTO t VALUES (1)"),
            "INSERT INTO t VALUES (1)");
}

TEST_F(LoadPlanTest, ADamagedFileIsRefusedBeforeAnythingIsSent) {
  const std::string path = dir_ + "/bad.sqlite";
  sqlite3* src = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &src), SQLITE_OK);
  Exec(src, "CREATE TABLE t (v); CREATE INDEX tv ON t(v);");
  Exec(src, "BEGIN");
  for (int i = 0; i < 2000; ++i) {
    Exec(src, absl::StrCat("INSERT INTO t VALUES (", i, ")"));
  }
  Exec(src, "COMMIT");
  sqlite3_close(src);
  {  // Scribble over a page past the schema.
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 3 + 100);
    const std::string junk(2000, '\x5a');
    f.write(junk.data(), junk.size());
  }
  int sent = 0;
  absl::StatusOr<LoadTotals> totals =
      LoadSqliteFile(path, 1 << 20, [&](std::vector<sm::Statement>) {
        ++sent;
        return absl::OkStatus();
      });
  EXPECT_EQ(totals.status().code(), absl::StatusCode::kInvalidArgument)
      << totals.status();
  EXPECT_EQ(sent, 0);
}

TEST_F(LoadPlanTest, SqlTextLosesItsTransactionControlAndKeepsItsOrder) {
  const std::string path = dir_ + "/dump.sql";
  std::ofstream(path) << "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n"
                         "CREATE TABLE t (v TEXT);\n"
                         "INSERT INTO t VALUES ('a;b');\n"
                         "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n"
                         "  SELECT 1; SELECT 2;\nEND;\n"
                         "INSERT INTO t VALUES ('c');\nCOMMIT;\n";
  std::vector<std::vector<sm::Statement>> commands;
  absl::StatusOr<LoadTotals> totals =
      LoadSqlText(path, 1 << 20, [&](std::vector<sm::Statement> c) {
        commands.push_back(std::move(c));
        return absl::OkStatus();
      });
  ASSERT_TRUE(totals.ok()) << totals.status();
  ASSERT_EQ(commands.size(), 1u);
  ASSERT_EQ(commands[0].size(), 4u);
  EXPECT_EQ(commands[0][1].sql, "INSERT INTO t VALUES ('a;b');");
  EXPECT_EQ(commands[0][2].sql.rfind("CREATE TRIGGER IF NOT EXISTS", 0), 0u);
  std::ofstream(path) << "CREATE TABLE t (v);\nINSERT INTO t VALUES (1)";
  EXPECT_EQ(
      LoadSqlText(path, 1 << 20,
                  [](std::vector<sm::Statement>) { return absl::OkStatus(); })
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace raftsql::server
