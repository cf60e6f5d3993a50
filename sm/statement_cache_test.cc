// The statement cache: kept texts are reused, any schema change and the
// bounds (statements, bytes) empty it, a dropped statement is forgotten.
#include "sm/statement_cache.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace raftsql::sm {
namespace {

class StatementCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    ASSERT_TRUE(policy_.Install(db_).ok());
    ASSERT_EQ(sqlite3_exec(db_, "CREATE TABLE t(a)", nullptr, nullptr, nullptr),
              SQLITE_OK);
    cache_ = std::make_unique<StatementCache>(db_, &policy_);
  }
  void TearDown() override {
    cache_.reset();
    sqlite3_close(db_);
  }
  // Acquires and releases `sql`; the statement's address.
  sqlite3_stmt* Run(const std::string& sql, bool schema_changed = false) {
    absl::StatusOr<StatementCache::Prepared> p = cache_->Acquire(sql);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return nullptr;
    sqlite3_step(p->stmt);
    cache_->Release(sql, *p, schema_changed);
    cache_->CheckInvariants();
    return p->stmt;
  }

  sqlite3* db_ = nullptr;
  StatementPolicy policy_;
  std::unique_ptr<StatementCache> cache_;
};

TEST_F(StatementCacheTest, AKeptTextIsPreparedOnce) {
  sqlite3_stmt* first = Run("INSERT INTO t VALUES(1)");
  EXPECT_EQ(Run("INSERT INTO t VALUES(1)"), first);
  ASSERT_NE(cache_->Find("INSERT INTO t VALUES(1)"), nullptr);
  EXPECT_TRUE(cache_->Find("INSERT INTO t VALUES(1)")->cached);
  EXPECT_EQ(cache_->Find("INSERT INTO t VALUES(2)"), nullptr);
}

TEST_F(StatementCacheTest, ASchemaChangeEmptiesTheCache) {
  Run("INSERT INTO t VALUES(1)");
  Run("INSERT INTO t VALUES(2)");
  EXPECT_EQ(cache_->size(), 2u);
  Run("CREATE TABLE u(b)", /*schema_changed=*/true);
  EXPECT_EQ(cache_->size(), 0u);
  EXPECT_EQ(cache_->Find("INSERT INTO t VALUES(1)"), nullptr);
}

TEST_F(StatementCacheTest, TheCacheStaysWithinItsBound) {
  for (size_t i = 0; i <= StatementCache::kMaxStatements; ++i) {
    Run(absl::StrCat("INSERT INTO t VALUES(", i, ")"));
    EXPECT_LE(cache_->size(), StatementCache::kMaxStatements);
  }
  EXPECT_EQ(cache_->size(), 1u);  // Cleared when full, then the last kept.
}

TEST_F(StatementCacheTest, TheCacheStaysWithinItsBytes) {
  // Room for about three of these (a few KB each, as SQLite counts them).
  Run("INSERT INTO t VALUES(0)");
  const size_t one = cache_->bytes();
  ASSERT_GT(one, 0u);
  StatementCache small(db_, &policy_, StatementCache::Limits{100, one * 3});
  for (int i = 0; i < 10; ++i) {
    const std::string sql = absl::StrCat("INSERT INTO t VALUES(", i, ")");
    absl::StatusOr<StatementCache::Prepared> p = small.Acquire(sql);
    ASSERT_TRUE(p.ok()) << p.status();
    small.Release(sql, *p, false);
    small.CheckInvariants();
    EXPECT_LE(small.bytes(), one * 3);
    EXPECT_LE(small.size(), 3u);
  }
  EXPECT_GE(small.size(), 1u);
  // One statement larger than the whole bound is run, never kept.
  StatementCache tiny(db_, &policy_, StatementCache::Limits{100, one / 2});
  absl::StatusOr<StatementCache::Prepared> p =
      tiny.Acquire("INSERT INTO t VALUES(1)");
  ASSERT_TRUE(p.ok());
  tiny.Release("INSERT INTO t VALUES(1)", *p, false);
  EXPECT_EQ(tiny.size(), 0u);
  EXPECT_EQ(tiny.bytes(), 0u);
}

TEST_F(StatementCacheTest, ADroppedStatementIsForgotten) {
  sqlite3_stmt* first = Run("INSERT INTO t VALUES(1)");
  Run("INSERT INTO t VALUES(2)");
  absl::StatusOr<StatementCache::Prepared> p =
      cache_->Acquire("INSERT INTO t VALUES(1)");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->stmt, first);
  cache_->Drop("INSERT INTO t VALUES(1)", *p);
  cache_->CheckInvariants();
  EXPECT_EQ(cache_->Find("INSERT INTO t VALUES(1)"), nullptr);
  EXPECT_NE(cache_->Find("INSERT INTO t VALUES(2)"), nullptr);
  EXPECT_EQ(cache_->size(), 1u);
  // One never kept is finalized as well (the close below would fail).
  absl::StatusOr<StatementCache::Prepared> fresh =
      cache_->Acquire("INSERT INTO t VALUES(3)");
  ASSERT_TRUE(fresh.ok());
  cache_->Drop("INSERT INTO t VALUES(3)", *fresh);
  EXPECT_EQ(cache_->size(), 1u);
  cache_.reset();
  EXPECT_EQ(sqlite3_close(db_), SQLITE_OK);
  db_ = nullptr;
}

TEST_F(StatementCacheTest, TextsThatAreNotOneStatementAreRefused) {
  EXPECT_TRUE(absl::IsInvalidArgument(cache_->Acquire("").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      cache_->Acquire("INSERT INTO t VALUES(1); INSERT INTO t VALUES(2)")
          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(cache_->Acquire("SELEC 1").status()));
  EXPECT_EQ(cache_->size(), 0u);
}

TEST_F(StatementCacheTest, WhatATextMentionsIsFoundOnce) {
  absl::StatusOr<StatementCache::Prepared> p =
      cache_->Acquire("INSERT OR FAIL INTO t VALUES(?)");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->mentions_fail);
  EXPECT_FALSE(p->mentions_trigger);
  EXPECT_EQ(p->parameters, 1);
  cache_->Release("INSERT OR FAIL INTO t VALUES(?)", *p, false);
}

}  // namespace
}  // namespace raftsql::sm
