// Exactly-once sessions on their own table: retries, stale sequences,
// owners, idle expiry; and table versions beside them in _raftsql_meta.
#include "sm/sessions.h"

#include <sqlite3.h>

#include "gtest/gtest.h"
#include "sm/table_versions.h"

namespace raftsql::sm {
namespace {

class SessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    ASSERT_TRUE(policy_.Install(db_).ok());
    internal_ = std::make_unique<InternalStatements>(db_, &policy_);
    ASSERT_TRUE(internal_
                    ->Exec("CREATE TABLE _raftsql_meta(key TEXT PRIMARY KEY,"
                           " value INTEGER NOT NULL) WITHOUT ROWID;"
                           "CREATE TABLE _raftsql_sessions(session_id INTEGER "
                           "PRIMARY KEY, sequence INTEGER NOT NULL, result "
                           "BLOB NOT NULL);"
                           "CREATE TABLE Readings(a)")
                    .ok());
    sessions_ = std::make_unique<Sessions>(internal_.get());
    ASSERT_TRUE(sessions_->Migrate().ok());  // Adds owner, last_used_ms.
  }
  void TearDown() override {
    sessions_.reset();
    internal_.reset();
    sqlite3_close(db_);
  }
  static CommandView Cmd(uint64_t session, uint64_t sequence,
                         std::string_view user, int64_t now_ms = 1000) {
    CommandView c;
    c.session_id = session;
    c.sequence = sequence;
    c.user = user;
    c.timestamp_ms = now_ms;
    return c;
  }
  uint64_t Sequence(uint64_t session) {
    StatementPolicy::InternalScope scope(policy_);
    return *Sessions::ReadSequence(db_, session);
  }
  static CommandResult Result(uint64_t index) {
    CommandResult r;
    r.index = index;
    r.statements.push_back(StatementResult{absl::OkStatus(), 1, 7});
    return r;
  }

  sqlite3* db_ = nullptr;
  StatementPolicy policy_;
  std::unique_ptr<InternalStatements> internal_;
  std::unique_ptr<Sessions> sessions_;
};

TEST_F(SessionsTest, ARetryGetsTheStoredResult) {
  CommandResult answer;
  EXPECT_FALSE(sessions_->Answer(Cmd(5, 1, "ann"), &answer));
  sessions_->Write(Cmd(5, 1, "ann"), Result(10));
  ASSERT_TRUE(sessions_->Answer(Cmd(5, 1, "ann"), &answer));
  EXPECT_TRUE(answer.duplicate);
  EXPECT_EQ(answer.index, 10u);
  ASSERT_EQ(answer.statements.size(), 1u);
  EXPECT_EQ(answer.statements[0].last_insert_rowid, 7);
  CommandResult next;
  EXPECT_FALSE(sessions_->Answer(Cmd(5, 2, "ann"), &next));
  EXPECT_EQ(Sequence(5), 1u);
  EXPECT_EQ(Sequence(6), 0u);
}

TEST_F(SessionsTest, StaleSequencesAndOtherUsersAreRefused) {
  sessions_->Write(Cmd(5, 3, "ann"), Result(10));
  CommandResult stale;
  ASSERT_TRUE(sessions_->Answer(Cmd(5, 2, "ann"), &stale));
  EXPECT_TRUE(absl::IsFailedPrecondition(stale.statements[0].status));
  CommandResult other;
  ASSERT_TRUE(sessions_->Answer(Cmd(5, 4, "bob"), &other));
  EXPECT_TRUE(absl::IsPermissionDenied(other.statements[0].status));
}

TEST_F(SessionsTest, IdleSessionsExpireOncePerPeriod) {
  const int64_t t0 = 10 * Sessions::kSweepMs;
  const uint64_t later = 1003;  // Both idle for 1,000 entries.
  sessions_->Write(Cmd(1, 1, "ann", t0), Result(1));
  sessions_->Write(Cmd(2, 1, "ann", t0 + 5 * Sessions::kSweepMs), Result(2));
  sessions_->MaybeExpire(t0 + 6 * Sessions::kSweepMs, later,
                         3 * Sessions::kSweepMs, 1000);
  EXPECT_EQ(Sequence(1), 0u);  // Idle 6 periods: gone.
  EXPECT_EQ(Sequence(2), 1u);
  EXPECT_EQ(sessions_->sweep_period(), 16u);
  // Within the same period no second sweep runs.
  sessions_->MaybeExpire(t0 + 6 * Sessions::kSweepMs + 1, later, 0, 0);
  EXPECT_EQ(Sequence(2), 1u);
}

// A proposer whose wall clock is a month ahead (the nemesis's clock jump)
// does not end a session used a few entries before: the retry of its last
// write, on its way, gets the stored result rather than running twice.
TEST_F(SessionsTest, AClockAheadDoesNotEndASessionInUse) {
  const int64_t t0 = 10 * Sessions::kSweepMs;
  const int64_t day = 24 * 3600 * 1000;
  sessions_->Write(Cmd(5, 1, "ann", t0), Result(10));
  sessions_->MaybeExpire(t0 + 30 * day, 11, 7 * day, 1000);
  CommandResult retry;
  ASSERT_TRUE(sessions_->Answer(Cmd(5, 1, "ann", t0), &retry));
  EXPECT_TRUE(retry.duplicate);
  // Idle by the clock and by entries: it ends.
  sessions_->MaybeExpire(t0 + 31 * day, 1011, 7 * day, 1000);
  EXPECT_EQ(Sequence(5), 0u);
}

TEST_F(SessionsTest, TableVersionsMergeNamesThatDifferInCase) {
  TableVersions versions(internal_.get());
  versions.Record({{"Readings", 4}});
  versions.Record({{"readings", 9}});
  EXPECT_EQ(versions.pending(), 1u);
  versions.CheckInvariants();
  versions.Write();
  EXPECT_EQ(versions.pending(), 0u);
  StatementPolicy::InternalScope scope(policy_);
  EXPECT_EQ(*TableVersions::Lookup(db_, "READINGS"), 9u);
  EXPECT_TRUE(absl::IsNotFound(TableVersions::Lookup(db_, "nope").status()));
  EXPECT_TRUE(
      absl::IsNotFound(TableVersions::Lookup(db_, "_raftsql_meta").status()));
}

}  // namespace
}  // namespace raftsql::sm
