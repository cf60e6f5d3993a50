// A read connection keeps the statements it ran: a text read before is not
// prepared again, yet every read binds its own values and sees the schema
// the writer has now; a read that failed keeps nothing.
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sm/read_pool.h"
#include "sm/sqlite_state_machine.h"
#include "sm/temp_dir.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

// One read connection, so that every read uses the same one.
std::unique_ptr<SqliteStateMachine> OpenOneReader(const TempDir& dir) {
  SqliteOptions o;
  o.path = dir.File("db.sqlite");
  o.read_connections = 1;
  auto sm = SqliteStateMachine::Open(o);
  EXPECT_TRUE(sm.ok()) << sm.status();
  return std::move(*sm);
}

class ReadStatementsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sm_ = OpenOneReader(dir_);
    ApplyOk(*sm_, Cmd({S("CREATE TABLE t(a)"), S("INSERT INTO t VALUES(1)"),
                       S("INSERT INTO t VALUES(2)")}));
  }
  absl::StatusOr<QueryResult> Read(const std::string& sql,
                                   std::vector<Value> params = {}) {
    return sm_->Query(S(sql, std::move(params)), ReadLimits{});
  }

  TempDir dir_;
  std::unique_ptr<SqliteStateMachine> sm_;
};

TEST_F(ReadStatementsTest, ATextReadBeforeIsKeptAndBindsItsOwnValues) {
  constexpr char kSql[] = "SELECT a FROM t WHERE a = ?";
  absl::StatusOr<QueryResult> one = Read(kSql, {Value::Integer(1)});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(sm_->kept_read_statements(), 1u);
  absl::StatusOr<QueryResult> two = Read(kSql, {Value::Integer(2)});
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_EQ(two->rows.size(), 1u);
  EXPECT_EQ(two->rows[0][0], Value::Integer(2));
  EXPECT_EQ(sm_->kept_read_statements(), 1u);
  // Fewer values than parameters is an error, not the last read's values.
  constexpr char kTwo[] = "SELECT ?1, ?2";
  ASSERT_TRUE(Read(kTwo, {Value::Integer(1), Value::Integer(2)}).ok());
  absl::StatusOr<QueryResult> short_of_one = Read(kTwo, {Value::Integer(1)});
  EXPECT_TRUE(absl::IsInvalidArgument(short_of_one.status()))
      << short_of_one.status();
}

TEST_F(ReadStatementsTest, AKeptReadSeesTheSchemaTheWriterChanged) {
  constexpr char kAll[] = "SELECT * FROM t";
  ASSERT_EQ(Read(kAll)->columns.size(), 1u);
  ApplyOk(*sm_, Cmd({S("ALTER TABLE t ADD COLUMN b DEFAULT 7")}));
  absl::StatusOr<QueryResult> wider = Read(kAll);
  ASSERT_TRUE(wider.ok()) << wider.status();
  EXPECT_EQ(wider->columns, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(wider->rows[0][1], Value::Integer(7));
  ApplyOk(*sm_, Cmd({S("DROP TABLE t")}));
  absl::StatusOr<QueryResult> gone = Read(kAll);
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("no such table"), std::string::npos)
      << gone.status();
  EXPECT_EQ(sm_->kept_read_statements(), 0u);
  ApplyOk(*sm_, Cmd({S("CREATE TABLE t(x, y, z)"),
                     S("INSERT INTO t VALUES(1, 2, 3)")}));
  absl::StatusOr<QueryResult> anew = Read(kAll);
  ASSERT_TRUE(anew.ok()) << anew.status();
  EXPECT_EQ(anew->columns, (std::vector<std::string>{"x", "y", "z"}));
}

TEST_F(ReadStatementsTest, AReadThatFailedKeepsNothing) {
  EXPECT_FALSE(Read("SELECT a FROM t WHERE a = ?").ok());  // No value.
  EXPECT_FALSE(Read("INSERT INTO t VALUES(3)").ok());      // A write.
  EXPECT_FALSE(Read("SELECT nope FROM t").ok());
  EXPECT_EQ(sm_->kept_read_statements(), 0u);
  // A write refused here never ran: t still has its two rows.
  EXPECT_EQ(Read("SELECT count(*) FROM t")->rows[0][0], Value::Integer(2));
}

TEST_F(ReadStatementsTest, AConnectionKeepsAtMostItsBound) {
  const size_t bound = ReadPool::kStatementLimits.max_statements;
  for (size_t i = 0; i < bound + 10; ++i) {
    ASSERT_TRUE(Read(absl::StrCat("SELECT a + ", i, " FROM t")).ok());
    EXPECT_LE(sm_->kept_read_statements(), bound);
  }
  EXPECT_GE(sm_->kept_read_statements(), 1u);
}

// A linearizable read that ran first (server/raft_server.h, MayReadEarly)
// relies on it: every commit publishes its index, and an opened database
// publishes the one it holds.
TEST_F(ReadStatementsTest, TheVisibleIndexIsTheLastCommittedOne) {
  EXPECT_EQ(sm_->visible_index(), sm_->AppliedIndex());
  const uint64_t before = sm_->visible_index();
  std::vector<std::string> out;
  const uint64_t next = sm_->AppliedIndex() + 1;
  sm_->ApplyBatch({E(next, Cmd({S("INSERT INTO t VALUES(3)")})),
                   E(next + 1, Cmd({S("INSERT INTO t VALUES(4)")}))},
                  &out);
  EXPECT_EQ(sm_->visible_index(), before + 2);
  sm_.reset();
  sm_ = OpenOneReader(dir_);
  EXPECT_EQ(sm_->visible_index(), before + 2);
}

}  // namespace
}  // namespace raftsql::sm
