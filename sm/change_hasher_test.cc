// The divergence hash: the same changes give the same hash on any
// connection; any difference in a value, a key or a table shows.
#include "sm/change_hasher.h"

#include <sqlite3.h>

#include "gtest/gtest.h"

namespace raftsql::sm {
namespace {

struct Hooked {
  Hooked() {
    EXPECT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    sqlite3_preupdate_hook(db, &Hooked::Hook, this);
    hasher.BeginStatement(0);
  }
  ~Hooked() { sqlite3_close(db); }
  static void Hook(void* self, sqlite3* db, int op, const char*,
                   const char* table, sqlite3_int64 k1, sqlite3_int64 k2) {
    auto* h = static_cast<Hooked*>(self);
    h->row.Reset(db, op, table, k1, k2);
    h->row_bytes += h->hasher.OnPreUpdate(h->row);
  }
  void Exec(const char* sql) {
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
  }
  sqlite3* db = nullptr;
  ChangeHasher hasher;
  PreUpdateRow row;
  uint64_t row_bytes = 0;
};

TEST(ChangeHasher, TheSameChangesHashAlike) {
  Hooked a, b;
  for (Hooked* h : {&a, &b}) {
    h->Exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v)");
    h->Exec("INSERT INTO t VALUES(1, 'abc'), (2, x'00ff')");
    h->Exec("UPDATE t SET v = 2.5 WHERE k = 1");
  }
  EXPECT_NE(a.hasher.statement_hash(), 0u);
  EXPECT_EQ(a.hasher.statement_hash(), b.hasher.statement_hash());
  EXPECT_EQ(a.row_bytes, b.row_bytes);
  EXPECT_EQ(a.hasher.statement_tables().size(), 1u);
  EXPECT_EQ(*a.hasher.statement_tables().begin(), "t");
}

TEST(ChangeHasher, AnyDifferenceShows) {
  const char* variants[] = {
      "INSERT INTO t VALUES(1, 'abc')", "INSERT INTO t VALUES(1, 'abd')",
      "INSERT INTO t VALUES(2, 'abc')", "INSERT INTO t VALUES(1, x'616263')",
      "INSERT INTO u VALUES(1, 'abc')",
  };
  std::set<uint64_t> hashes;
  for (const char* sql : variants) {
    Hooked h;
    h.Exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v)");
    h.Exec("CREATE TABLE u(k INTEGER PRIMARY KEY, v)");
    h.Exec(sql);
    hashes.insert(h.hasher.statement_hash());
  }
  EXPECT_EQ(hashes.size(), std::size(variants));
}

TEST(ChangeHasher, WithoutRowidTablesAreNamedByTheirKey) {
  Hooked a, b;
  for (Hooked* h : {&a, &b}) {
    h->Exec("CREATE TABLE w(k TEXT PRIMARY KEY, v) WITHOUT ROWID");
    h->Exec("INSERT INTO w VALUES('x', 1), ('y', 1)");
  }
  a.Exec("DELETE FROM w WHERE k = 'x'");
  b.Exec("DELETE FROM w WHERE k = 'y'");
  EXPECT_NE(a.hasher.statement_hash(), b.hasher.statement_hash());
}

// The hash is part of the replicated state: replicas of different builds
// (a rolling upgrade) must compute the same value for the same changes.
// Every kind of value, row and change, against the value this definition
// gave when it was written.
TEST(ChangeHasher, TheDefinitionDoesNotChange) {
  Hooked h;
  h.Exec("CREATE TABLE t(k INTEGER PRIMARY KEY, a, b)");
  h.Exec("CREATE TABLE w(k TEXT PRIMARY KEY, a, b) WITHOUT ROWID");
  h.Exec("INSERT INTO t VALUES(1, 'text', x'00ff10'), (2, 2.5, NULL)");
  h.Exec("INSERT INTO t VALUES(3, -9223372036854775808, 'a longer text')");
  h.Exec("UPDATE t SET a = 'changed', b = 7 WHERE k = 1");
  h.Exec("DELETE FROM t WHERE k = 2");
  h.Exec("INSERT INTO w VALUES('x', 1, 'é'), ('y', x'', ''), ('z', 0.1, 2)");
  h.Exec("UPDATE w SET a = 'v' WHERE k = 'y'");
  h.Exec("DELETE FROM w WHERE k = 'x'");
  EXPECT_EQ(h.hasher.statement_hash(), 0xe7918d1f2c14f029ull);
  EXPECT_EQ(h.row_bytes, 226u);
}

TEST(ChangeHasher, HashTableFoldsSchemaAndRows) {
  Hooked a, b;
  a.Exec("CREATE TABLE t(k, v); INSERT INTO t VALUES(1, 2)");
  b.Exec("CREATE TABLE t(k, v); INSERT INTO t VALUES(1, 3)");
  a.hasher.BeginStatement(7);
  b.hasher.BeginStatement(7);
  a.hasher.HashTable(a.db, "t");
  b.hasher.HashTable(b.db, "t");
  EXPECT_NE(a.hasher.statement_hash(), b.hasher.statement_hash());
}

}  // namespace
}  // namespace raftsql::sm
