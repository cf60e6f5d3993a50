#include "sm/sqlite_state_machine.h"

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "gtest/gtest.h"
#include "sm/temp_dir.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

class SqliteStateMachineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sm_ = OpenMemory();
    CommandResult r = ApplyOk(
        *sm_, Cmd({S("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")}));
    ASSERT_TRUE(r.statements[0].status.ok()) << r.statements[0].status;
  }
  std::unique_ptr<SqliteStateMachine> sm_;
};

TEST_F(SqliteStateMachineTest, InsertReportsRowsAffectedAndRowid) {
  CommandResult r =
      ApplyOk(*sm_, Cmd({S("INSERT INTO t(v) VALUES (?), (?)",
                           {Value::Text("a"), Value::Text("b")})}));
  ASSERT_EQ(r.statements.size(), 1u);
  EXPECT_TRUE(r.statements[0].status.ok());
  EXPECT_EQ(r.statements[0].rows_affected, 2);
  EXPECT_EQ(r.statements[0].last_insert_rowid, 2);
  EXPECT_EQ(r.index, 2u);
  ASSERT_EQ(r.versions.size(), 1u);
  EXPECT_EQ(r.versions[0].first, "t");
  EXPECT_EQ(r.versions[0].second, 2u);
  EXPECT_EQ(sm_->AppliedIndex(), 2u);
}

TEST_F(SqliteStateMachineTest, StatementsThatChangeNoRowReportZeroRows) {
  ApplyOk(*sm_, Cmd({S("INSERT INTO t(v) VALUES ('a'), ('b')", {})}));
  CommandResult r =
      ApplyOk(*sm_, Cmd({S("CREATE TABLE u (x)", {}),
                         S("UPDATE t SET v = 'z' WHERE v = 'nothing'", {})}));
  ASSERT_EQ(r.statements.size(), 2u);
  EXPECT_EQ(r.statements[0].rows_affected, 0);
  EXPECT_EQ(r.statements[1].rows_affected, 0);
}

TEST_F(SqliteStateMachineTest, NamedParametersBindWithOrWithoutPrefix) {
  Statement st{"INSERT INTO t(id, v) VALUES (:id, @v)",
               {},
               {{"id", Value::Integer(7)}, {"@v", Value::Text("x")}}};
  CommandResult r = ApplyOk(*sm_, Cmd({st}));
  ASSERT_TRUE(r.statements[0].status.ok()) << r.statements[0].status;
  absl::StatusOr<QueryResult> q = sm_->Query(S("SELECT v FROM t WHERE id = 7"));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->rows[0][0], Value::Text("x"));
  Statement bad{"INSERT INTO t(v) VALUES (:v)", {}, {{"nope", Value::Null()}}};
  EXPECT_EQ(ApplyOk(*sm_, Cmd({bad})).statements[0].status.code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SqliteDeterminism, SameCommandsGiveByteIdenticalReplicas) {
  auto a = OpenMemory();
  auto b = OpenMemory();
  const std::vector<Command> cmds = {
      Cmd({S("CREATE TABLE r(x, y, z, w)")}),
      Cmd({S("INSERT INTO r VALUES (random(), randomblob(16), "
             "datetime('now'), CURRENT_TIMESTAMP)"),
           S("INSERT INTO r VALUES (random(), hex(randomblob(4)), "
             "strftime('%s','now'), julianday('now'))")}),
  };
  for (auto* sm : {a.get(), b.get()}) {
    for (const Command& c : cmds) ApplyOk(*sm, c);
  }
  EXPECT_EQ(a->SerializeForTest(), b->SerializeForTest());
  EXPECT_EQ(a->divergence_hash(), b->divergence_hash());
  absl::StatusOr<QueryResult> q = a->Query(S("SELECT z FROM r LIMIT 1"));
  ASSERT_TRUE(q.ok());
  // The leader's timestamp, not the replica's clock.
  EXPECT_EQ(q->rows[0][0], Value::Text("2023-11-14 22:13:20"));
}

TEST(SqliteDeterminism, DifferentSeedsGiveDifferentRandomValues) {
  auto a = OpenMemory();
  auto b = OpenMemory();
  Command c = Cmd({S("CREATE TABLE r AS SELECT random() AS x")});
  ApplyOk(*a, c);
  c.random_seed = 43;
  ApplyOk(*b, c);
  EXPECT_NE(a->divergence_hash(), b->divergence_hash());
}

// SQLite gives WITHOUT ROWID rows no rowid (the hook's keys are 0): the
// hash must still tell which row a delete or an update hit.
TEST(SqliteDivergence, WithoutRowidChangesToDifferentRowsHashDifferently) {
  for (const char* change :
       {"DELETE FROM w WHERE k = 'a'", "UPDATE w SET v = 9 WHERE k = 'a'"}) {
    auto a = OpenMemory();
    auto b = OpenMemory();
    for (auto* sm : {a.get(), b.get()}) {
      ApplyOk(*sm, Cmd({S("CREATE TABLE w(k TEXT PRIMARY KEY, v) "
                          "WITHOUT ROWID")}));
      ApplyOk(*sm, Cmd({S("INSERT INTO w VALUES ('a', 1), ('b', 1)")}));
    }
    ASSERT_EQ(a->divergence_hash(), b->divergence_hash());
    std::string other = change;
    other.replace(other.find("'a'"), 3, "'b'");
    ApplyOk(*a, Cmd({S(change)}));
    ApplyOk(*b, Cmd({S(other)}));
    EXPECT_NE(a->divergence_hash(), b->divergence_hash()) << change;
  }
}

TEST(SqliteDivergence, HashOfKnownChangesIsStableAcrossReleases) {
  // Replicas of different releases must agree on the hash of the same
  // changes (a rolling upgrade would otherwise report divergence): text,
  // empty text, blob, real, integer and NULL, inserted then updated.
  std::unique_ptr<SqliteStateMachine> sm = OpenMemory();
  ApplyOk(*sm, Cmd({S("CREATE TABLE h(a, b, c, d, e, f)")}));
  ApplyOk(*sm, Cmd({S("INSERT INTO h VALUES ('héllo wörld, long text', '', "
                      "x'00ff10', 2.5, -7, NULL)")}));
  ApplyOk(*sm, Cmd({S("UPDATE h SET a = 'short', e = e * 3")}));
  EXPECT_EQ(sm->divergence_hash(), 15050431096155779951u);
}

TEST_F(SqliteStateMachineTest, ValidateRefusesWhatCannotBeReplicated) {
  const char* refused[] = {
      "ATTACH DATABASE 'x.db' AS x",
      "DETACH DATABASE x",
      "SELECT load_extension('evil')",
      "PRAGMA writable_schema = ON",
      "PRAGMA journal_mode = DELETE",
      "PRAGMA synchronous = OFF",
      "CREATE TEMP TABLE tt(x)",
      "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END",
      "BEGIN",
      "SAVEPOINT s",
      "INSERT INTO _raftsql_meta VALUES ('applied_index', 0)",
      "DROP TABLE _raftsql_meta",
  };
  for (const char* sql : refused) {
    const absl::Status s = sm_->Validate(Cmd({S(sql)}));
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied)
        << sql << ": " << s;
    EXPECT_NE(s.message().find("refused"), absl::string_view::npos) << s;
  }
  EXPECT_TRUE(sm_->Query(S("PRAGMA table_info(t)")).ok());
  // Tables created earlier in the same command may not exist yet: allowed.
  EXPECT_TRUE(sm_->Validate(Cmd({S("CREATE TABLE n(x)"),
                                 S("INSERT INTO n VALUES (1)")}))
                  .ok());
  EXPECT_EQ(
      sm_->Validate(Cmd({S("INSERT INTO t VALUES (1, 'a'); DROP TABLE t")}))
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sm_->Validate(Cmd({})).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStateMachineTest, TextAfterANulIsRefusedNotDropped) {
  // SQLite stops reading at a NUL: the DROP would vanish unseen.
  const Statement smuggled =
      S(std::string("INSERT INTO t VALUES (1, 'a')\0"
                    "DROP TABLE t",
                    42));
  EXPECT_EQ(sm_->Validate(Cmd({smuggled})).code(),
            absl::StatusCode::kInvalidArgument);
  // In the log (proposed by an older node): it fails on every replica alike.
  CommandResult r = ApplyOk(*sm_, Cmd({smuggled}));
  EXPECT_EQ(r.statements[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Count(*sm_, "t"), 0);
  // A trailing NUL (C strings sent with their terminator) is no statement.
  const Statement terminated =
      S(std::string("INSERT INTO t VALUES (1, 'a');\0", 31));
  EXPECT_TRUE(sm_->Validate(Cmd({terminated})).ok());
  EXPECT_TRUE(ApplyOk(*sm_, Cmd({terminated})).statements[0].status.ok());
  EXPECT_EQ(Count(*sm_, "t"), 1);
}

TEST_F(SqliteStateMachineTest, RefusedStatementInTheLogFailsAndChangesNothing) {
  CommandResult r = ApplyOk(*sm_, Cmd({S("ATTACH DATABASE ':memory:' AS x"),
                                       S("PRAGMA writable_schema = 1")}));
  EXPECT_EQ(r.statements[0].status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(r.statements[1].status.code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(SqliteStateMachineTest, MalformedSqlFailsWithSqlitesMessage) {
  const uint64_t before = sm_->divergence_hash();
  CommandResult r =
      ApplyOk(*sm_, Cmd({S("INSERT INTO t VALUES (1, 'a'"), S("SELEC 1"),
                         S("INSERT INTO missing VALUES (1)")}));
  EXPECT_NE(r.statements[0].status.message().find("incomplete input"),
            absl::string_view::npos);
  EXPECT_NE(r.statements[1].status.message().find("syntax error"),
            absl::string_view::npos);
  EXPECT_NE(r.statements[2].status.message().find("no such table"),
            absl::string_view::npos);
  EXPECT_EQ(Count(*sm_, "t"), 0);
  EXPECT_EQ(sm_->divergence_hash(), before);
  EXPECT_EQ(sm_->AppliedIndex(), 2u);  // The entry is applied, as a failure.
}

TEST_F(SqliteStateMachineTest, FailingStatementLeavesNoPartOfItsRowsBehind) {
  ApplyOk(*sm_, Cmd({S("INSERT INTO t VALUES (2, 'b')")}));
  // Default conflict handling: the statement undoes itself.
  CommandResult plain = ApplyOk(
      *sm_, Cmd({S("INSERT INTO t VALUES (1, 'a'), (2, 'dup'), (3, 'c')")}));
  EXPECT_FALSE(plain.statements[0].status.ok());
  // OR FAIL keeps a statement's earlier rows in SQLite: the entry's
  // savepoint must remove them.
  CommandResult or_fail = ApplyOk(
      *sm_,
      Cmd({S("INSERT OR FAIL INTO t VALUES (1, 'a'), (2, 'dup'), (3, 'c')")}));
  EXPECT_FALSE(or_fail.statements[0].status.ok());
  EXPECT_EQ(Count(*sm_, "t"), 1);
  // So does RAISE(FAIL) in a trigger, whose name is not in the statement.
  ApplyOk(*sm_, Cmd({S("CREATE TABLE u(v TEXT)"),
                     S("CREATE TRIGGER no_x BEFORE INSERT ON u WHEN NEW.v = "
                       "'x' BEGIN SELECT RAISE(FAIL, 'no x'); END")}));
  CommandResult by_trigger =
      ApplyOk(*sm_, Cmd({S("INSERT INTO u VALUES ('y'), ('x')")}));
  EXPECT_FALSE(by_trigger.statements[0].status.ok());
  EXPECT_EQ(Count(*sm_, "u"), 0);
  ApplyOk(*sm_, Cmd({S("INSERT INTO u VALUES ('y')")}));
  EXPECT_EQ(Count(*sm_, "u"), 1);
}

TEST_F(SqliteStateMachineTest, TransactionIsAllOrNothing) {
  CommandResult r =
      ApplyOk(*sm_, Cmd({S("INSERT INTO t VALUES (1, 'a')"),
                         S("INSERT INTO t VALUES (1, 'duplicate key')"),
                         S("INSERT INTO t VALUES (3, 'c')")},
                        /*transaction=*/true));
  EXPECT_EQ(r.statements[0].status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(r.statements[1].status.code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.statements[2].status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Count(*sm_, "t"), 0);
  EXPECT_TRUE(r.versions.empty());
}

TEST_F(SqliteStateMachineTest,
       WithoutTransactionAFailingStatementOnlyUndoesItself) {
  CommandResult r = ApplyOk(*sm_, Cmd({S("INSERT INTO t VALUES (1, 'a')"),
                                       S("INSERT INTO t VALUES (1, 'dup')"),
                                       S("INSERT INTO t VALUES (3, 'c')")}));
  EXPECT_TRUE(r.statements[0].status.ok());
  EXPECT_FALSE(r.statements[1].status.ok());
  EXPECT_TRUE(r.statements[2].status.ok());
  EXPECT_EQ(Count(*sm_, "t"), 2);
}

TEST_F(SqliteStateMachineTest, VersionIsTheIndexOfTheLastChangeToTheTable) {
  EXPECT_EQ(*sm_->GetVersion("t"), 1u);  // CREATE TABLE at index 1.
  ApplyOk(*sm_, Cmd({S("CREATE TABLE u(x)")}));
  ApplyOk(*sm_, Cmd({S("INSERT INTO t VALUES (1, 'a')")}));
  EXPECT_EQ(*sm_->GetVersion("t"), 3u);
  EXPECT_EQ(*sm_->GetVersion("T"), 3u);  // Names are case-insensitive.
  EXPECT_EQ(*sm_->GetVersion("u"), 2u);
  ApplyOk(*sm_, Cmd({S("UPDATE t SET v = 'b' WHERE id = 999")}));  // No rows.
  EXPECT_EQ(*sm_->GetVersion("t"), 3u);
  ApplyOk(*sm_, Cmd({S("INSERT INTO t VALUES (1, 'dup')")}));  // Fails.
  EXPECT_EQ(*sm_->GetVersion("t"), 3u);
  EXPECT_EQ(sm_->GetVersion("nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(sm_->GetVersion("_raftsql_meta").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SqliteStateMachineTest, ATableNamedInTwoCasesInOneBatchKeepsItsLatest) {
  ApplyOk(*sm_, Cmd({S("CREATE TABLE Mixed(x)")}));
  const uint64_t i = sm_->AppliedIndex();
  // One batch drops the table ("Mixed", its name as created) and creates
  // it again as "MIXED": one table by SQLite's rules, and the later entry's
  // version must win.
  const std::vector<std::string> out =
      sm_->ApplyBatch({E(i + 1, Cmd({S("DROP TABLE mixed")})),
                       E(i + 2, Cmd({S("CREATE TABLE MIXED(y)")}))});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(*sm_->GetVersion("mixed"), i + 2);
  EXPECT_EQ(*sm_->GetVersion("Mixed"), i + 2);
}

TEST_F(SqliteStateMachineTest, AParameterLeftUnboundIsAnError) {
  // It used to read NULL silently (and, from a cached statement, once the
  // previous run's value).
  const std::string sql = "INSERT INTO t VALUES (?1, ?2)";
  ApplyOk(*sm_, Cmd({S(sql, {Value::Integer(1), Value::Text("a")})}));
  const Command short_one = Cmd({S(sql, {Value::Integer(2)})});
  EXPECT_TRUE(absl::IsInvalidArgument(sm_->Validate(short_one)));
  const absl::Status applied = ApplyOk(*sm_, short_one).statements[0].status;
  EXPECT_TRUE(absl::IsInvalidArgument(applied)) << applied;
  EXPECT_NE(applied.message().find("?2 is not bound"), absl::string_view::npos)
      << applied;
  const std::string named = "INSERT INTO t VALUES (:id, :v)";
  const Command partly =
      Cmd({Statement{named, {}, {{"id", Value::Integer(4)}}}});
  const absl::Status missing = ApplyOk(*sm_, partly).statements[0].status;
  EXPECT_NE(missing.message().find(":v is not bound"), absl::string_view::npos)
      << missing;
  // Positional and named together cover them all.
  EXPECT_TRUE(
      ApplyOk(*sm_, Cmd({Statement{
                        sql, {Value::Integer(5)}, {{"?2", Value::Text("e")}}}}))
          .statements[0]
          .status.ok());
  EXPECT_EQ(Count(*sm_, "t"), 2);
}

TEST_F(SqliteStateMachineTest, ATextOfSeveralStatementsIsRefusedNotHalfRun) {
  EXPECT_TRUE(
      sm_->Validate(Cmd({S("INSERT INTO t VALUES (1, 'a'); -- a comment")}))
          .ok());
  EXPECT_TRUE(
      sm_->Validate(Cmd({S("INSERT INTO t VALUES (1, 'a');; /* x */")})).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(sm_->Validate(
      Cmd({S("INSERT INTO t VALUES (1, 'a'); /* x */ DELETE FROM t")}))));
  EXPECT_TRUE(absl::IsInvalidArgument(
      sm_->Query(S("SELECT 1; DELETE FROM t")).status()));
  // Also when the first names a table that does not exist yet.
  EXPECT_TRUE(absl::IsInvalidArgument(sm_->Validate(
      Cmd({S("INSERT INTO later VALUES (';'); DELETE FROM later")}))));
  EXPECT_TRUE(sm_->Validate(Cmd({S("INSERT INTO later VALUES (';');")})).ok());
  EXPECT_TRUE(sm_->Query(S("SELECT 1; -- the end")).ok());
  // A read sent as a write would spend an entry and lose its rows.
  const absl::Status read = sm_->Validate(Cmd({S("SELECT * FROM t")}));
  EXPECT_TRUE(absl::IsInvalidArgument(read)) << read;
  EXPECT_NE(read.message().find("send it with Query"), absl::string_view::npos);
}

TEST_F(SqliteStateMachineTest, SessionRetryReturnsTheStoredResultOnce) {
  Command c = Cmd({S("INSERT INTO t(v) VALUES ('once')")});
  c.session_id = 9;
  c.sequence = 1;
  CommandResult first = ApplyOk(*sm_, c);
  CommandResult retry = ApplyOk(*sm_, c);
  EXPECT_FALSE(first.duplicate);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.statements[0].last_insert_rowid,
            first.statements[0].last_insert_rowid);
  EXPECT_EQ(Count(*sm_, "t"), 1);
  c.sequence = 0;
  EXPECT_EQ(ApplyOk(*sm_, c).statements[0].status.code(),
            absl::StatusCode::kFailedPrecondition);
  c.sequence = 2;
  EXPECT_FALSE(ApplyOk(*sm_, c).duplicate);
  EXPECT_EQ(Count(*sm_, "t"), 2);
}

TEST_F(SqliteStateMachineTest, ARetryDoesNotMoveATableVersionBack) {
  // Found by the simulator (seed 4012, --sql --sync-disk): a retry's stored
  // result carries its first apply's versions, which were recorded again.
  Command c = Cmd({S("INSERT INTO t(v) VALUES ('once')")});
  c.session_id = 9;
  c.sequence = 1;
  const uint64_t first = ApplyOk(*sm_, c).index;
  const uint64_t later =
      ApplyOk(*sm_, Cmd({S("INSERT INTO t(v) VALUES ('later')")})).index;
  EXPECT_TRUE(ApplyOk(*sm_, c).duplicate);
  EXPECT_EQ(*sm_->GetVersion("t"), later);
  const uint64_t i = sm_->AppliedIndex();
  // In one batch with the later write, too.
  sm_->ApplyBatch(
      {E(i + 1, Cmd({S("INSERT INTO t(v) VALUES ('x')")})), E(i + 2, c)});
  EXPECT_LT(first, later);
  EXPECT_EQ(*sm_->GetVersion("t"), i + 1);
}

TEST_F(SqliteStateMachineTest, BatchAppliesEveryEntryAndNoOps) {
  std::vector<core::Entry> batch = {
      E(2, Cmd({S("INSERT INTO t VALUES (1, 'a')")})),
      core::Entry{1, 3, core::EntryType::kNormal, ""},  // A leader no-op.
      E(4, Cmd({S("INSERT INTO t VALUES (1, 'dup')")})),
      E(5, Cmd({S("INSERT INTO t VALUES (2, 'b')")})),
  };
  std::vector<std::string> results = sm_->ApplyBatch(batch);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[1], "");
  EXPECT_EQ(sm_->AppliedIndex(), 5u);
  EXPECT_EQ(Count(*sm_, "t"), 2);
}

TEST_F(SqliteStateMachineTest, OnConflictRollbackLosesOnlyItsOwnEntry) {
  // INSERT OR ROLLBACK ends the whole SQLite transaction: the batch must be
  // redone so that only the failing entry's effects are lost.
  std::vector<core::Entry> batch = {
      E(2, Cmd({S("INSERT INTO t VALUES (1, 'a')")})),
      E(3, Cmd({S("INSERT INTO t VALUES (5, 'x')"),
                S("INSERT OR ROLLBACK INTO t VALUES (1, 'dup')")})),
      E(4, Cmd({S("INSERT INTO t VALUES (2, 'b')")})),
  };
  std::vector<std::string> results = sm_->ApplyBatch(batch);
  sm_->CheckInvariants();  // The redone batch left memory as the meta.
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(sm_->AppliedIndex(), 4u);
  absl::StatusOr<QueryResult> q = sm_->Query(S("SELECT id FROM t ORDER BY id"));
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->rows.size(), 2u);
  EXPECT_EQ(q->rows[0][0], Value::Integer(1));
  EXPECT_EQ(q->rows[1][0], Value::Integer(2));
  // A replica applying the same entries one by one agrees.
  auto other = OpenMemory();
  ApplyOk(*other, Cmd({S("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")}));
  for (const core::Entry& e : batch) other->Apply(e);
  EXPECT_EQ(other->divergence_hash(), sm_->divergence_hash());
  EXPECT_EQ(other->SerializeForTest(), sm_->SerializeForTest());
}

TEST_F(SqliteStateMachineTest,
       AStatementThatEndsTheTransactionAnswersItsError) {
  // Its entry's result used to be empty, which the server reported as
  // DATA_LOSS "malformed result"; nothing was lost.
  ApplyOk(*sm_,
          Cmd({S("INSERT INTO t VALUES (1, 'a')"), S("CREATE TABLE guarded(v)"),
               S("CREATE TRIGGER no_x BEFORE INSERT ON guarded WHEN "
                 "new.v = 'x' BEGIN SELECT RAISE(ROLLBACK, 'no x "
                 "here'); END")}));
  const uint64_t i = sm_->AppliedIndex();
  Command rollback = Cmd({S("INSERT INTO t VALUES (5, 'x')"),
                          S("INSERT OR ROLLBACK INTO t VALUES (1, 'dup')"),
                          S("INSERT INTO t VALUES (6, 'y')")});
  rollback.session_id = 3;
  rollback.sequence = 1;
  const std::vector<std::string> out = sm_->ApplyBatch(
      {E(i + 1, Cmd({S("INSERT INTO t VALUES (2, 'b')")})), E(i + 2, rollback),
       E(i + 3, Cmd({S("INSERT INTO guarded VALUES ('x')")}))});
  const CommandResult r = Decoded(out[1]);
  ASSERT_EQ(r.statements.size(), 3u);
  EXPECT_TRUE(absl::IsAborted(r.statements[0].status))
      << r.statements[0].status;
  EXPECT_TRUE(absl::IsFailedPrecondition(r.statements[1].status));
  EXPECT_NE(r.statements[1].status.message().find("UNIQUE constraint failed"),
            absl::string_view::npos)
      << r.statements[1].status;
  EXPECT_TRUE(absl::IsAborted(r.statements[2].status));
  const CommandResult raised = Decoded(out[2]);
  ASSERT_EQ(raised.statements.size(), 1u);
  EXPECT_NE(raised.statements[0].status.message().find("no x here"),
            absl::string_view::npos)
      << raised.statements[0].status;
  // The other entries of the batch stay; the session's retry gets the same.
  EXPECT_EQ(Count(*sm_, "t"), 2);
  EXPECT_EQ(Count(*sm_, "guarded"), 0);
  const CommandResult retry = ApplyOk(*sm_, rollback);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.statements[1].status, r.statements[1].status);
}

TEST_F(SqliteStateMachineTest, SnapshotRestoresStateAndAppliedIndex) {
  ApplyOk(*sm_, Cmd({S("INSERT INTO t VALUES (1, 'a')")}));
  absl::StatusOr<std::string> image = sm_->CreateSnapshot();
  ASSERT_TRUE(image.ok());
  auto other = OpenMemory();
  core::Snapshot snap;
  snap.metadata.index = 2;
  snap.data = *image;
  ASSERT_TRUE(other->Restore(snap).ok());
  EXPECT_EQ(other->AppliedIndex(), 2u);
  EXPECT_EQ(other->divergence_hash(), sm_->divergence_hash());
  EXPECT_EQ(Count(*other, "t"), 1);
  EXPECT_EQ(*other->GetVersion("t"), 2u);
  snap.metadata.index = 7;
  EXPECT_EQ(other->Restore(snap).code(), absl::StatusCode::kDataLoss);
  snap.data = "not a database";
  EXPECT_FALSE(other->Restore(snap).ok());
}

TEST_F(SqliteStateMachineTest, ACorruptImageIsRefusedAndChangesNothing) {
  ApplyOk(*sm_, Cmd({S("INSERT INTO t VALUES (1, 'a')")}));
  absl::StatusOr<std::string> image = sm_->CreateSnapshot();
  ASSERT_TRUE(image.ok());
  core::Snapshot snap;
  snap.metadata.index = 2;
  snap.data = *image;
  EXPECT_TRUE(sm_->ValidateSnapshot(snap).ok());
  auto other = OpenMemory();
  ApplyOk(*other, Cmd({S("CREATE TABLE kept(x)")}));
  const uint64_t hash = other->divergence_hash();
  // Garbage, a truncated image, pages overwritten past the header, and an
  // image whose applied index is not the snapshot's.
  std::vector<core::Snapshot> bad(4, snap);
  bad[0].data = std::string(8192, '\x42');
  bad[1].data = image->substr(0, 100);
  for (size_t i = 1024; i < bad[2].data.size(); i += 7) bad[2].data[i] ^= 0x5a;
  bad[3].metadata.index = 9;
  for (const core::Snapshot& b : bad) {
    const absl::Status v = sm_->ValidateSnapshot(b);
    EXPECT_EQ(v.code(), absl::StatusCode::kDataLoss) << v;
    EXPECT_FALSE(other->Restore(b).ok());
    EXPECT_EQ(other->AppliedIndex(), 1u);
    EXPECT_EQ(other->divergence_hash(), hash);
    EXPECT_EQ(Count(*other, "kept"), 0);
  }
}

TEST(SqliteImage, AnImageWhoseTextIsNotUtf8IsRefused) {
  // A sound database with an applied index, but its text in UTF-16: the
  // divergence hash and the change log take text as its stored bytes.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw,
                         "PRAGMA encoding = 'UTF-16le';"
                         "CREATE TABLE _raftsql_meta(key TEXT PRIMARY KEY, "
                         "value);"
                         "INSERT INTO _raftsql_meta VALUES('applied_index', 2);"
                         "CREATE TABLE t(k INTEGER PRIMARY KEY, v);"
                         "INSERT INTO t VALUES (1, 'a')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(raw, "main", &size, 0);
  ASSERT_NE(bytes, nullptr);
  core::Snapshot snap;
  snap.metadata.index = 2;
  snap.data.assign(reinterpret_cast<const char*>(bytes),
                   static_cast<size_t>(size));
  sqlite3_free(bytes);
  sqlite3_close(raw);
  auto sm = OpenMemory();
  const absl::Status v = sm->ValidateSnapshot(snap);
  EXPECT_EQ(v.code(), absl::StatusCode::kDataLoss) << v;
  EXPECT_NE(v.message().find("not UTF-8"), absl::string_view::npos) << v;
  EXPECT_FALSE(sm->Restore(snap).ok());
}

TEST_F(SqliteStateMachineTest, QueryReturnsTypedRowsAndRefusesWrites) {
  ApplyOk(*sm_, Cmd({S("CREATE TABLE k(i, r, s, b, n)"),
                     S("INSERT INTO k VALUES (1, 2.5, 'x', x'00ff', NULL)")}));
  absl::StatusOr<QueryResult> q = sm_->Query(S("SELECT * FROM k"));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->columns, (std::vector<std::string>{"i", "r", "s", "b", "n"}));
  ASSERT_EQ(q->rows.size(), 1u);
  EXPECT_EQ(q->rows[0][0], Value::Integer(1));
  EXPECT_EQ(q->rows[0][1], Value::Real(2.5));
  EXPECT_EQ(q->rows[0][2], Value::Text("x"));
  EXPECT_EQ(q->rows[0][3], Value::Blob(std::string("\0\xff", 2)));
  EXPECT_EQ(q->rows[0][4], Value::Null());
  EXPECT_EQ(sm_->Query(S("DELETE FROM k")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sm_->Query(S("SELECT * FROM nope")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SqliteFile, ReopenedDatabaseKeepsItsAppliedIndex) {
  TempDir dir;
  const std::string path = dir.File("state.db");
  {
    absl::StatusOr<std::unique_ptr<SqliteStateMachine>> sm =
        SqliteStateMachine::Open(SqliteOptions{path});
    ASSERT_TRUE(sm.ok()) << sm.status();
    ApplyOk(**sm, Cmd({S("CREATE TABLE t(x)")}));
    ApplyOk(**sm, Cmd({S("INSERT INTO t VALUES (1)")}));
  }
  absl::StatusOr<std::unique_ptr<SqliteStateMachine>> sm =
      SqliteStateMachine::Open(SqliteOptions{path});
  ASSERT_TRUE(sm.ok());
  // The runtime resumes after the applied index: nothing is applied twice.
  EXPECT_EQ((*sm)->AppliedIndex(), 2u);
  EXPECT_EQ(Count(**sm, "t"), 1);
  EXPECT_EQ(*(*sm)->GetVersion("t"), 2u);
}

TEST(SqliteFile, ARequestedSyncReachesTheAppliedIndexOffTheCaller) {
  TempDir dir;
  const std::string path = dir.File("state.db");
  {
    std::unique_ptr<SqliteStateMachine> sm = OpenFile(path);
    ApplyOk(*sm, Cmd({S("CREATE TABLE t(x)")}));
    ApplyOk(*sm, Cmd({S("INSERT INTO t VALUES (1)")}));
    // Applied, not asked for: not known durable.
    EXPECT_EQ(*sm->DurableIndex(), 0u);
    sm->RequestSync();
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (*sm->DurableIndex() < 2 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    EXPECT_EQ(*sm->DurableIndex(), 2u);
    ApplyOk(*sm, Cmd({S("INSERT INTO t VALUES (2)")}));
    EXPECT_TRUE(sm->Sync().ok());  // On the caller: at once.
    EXPECT_EQ(*sm->DurableIndex(), 3u);
  }
  // What a reopened file holds is synced at the open.
  EXPECT_EQ(*OpenFile(path)->DurableIndex(), 3u);
}

TEST(SqliteFile, VersionsOfAnOlderDatabaseMoveIntoTheMetaTable) {
  TempDir dir;
  const std::string path = dir.File("state.db");
  {
    auto sm = SqliteStateMachine::Open(SqliteOptions{path});
    ASSERT_TRUE(sm.ok()) << sm.status();
    ApplyOk(**sm, Cmd({S("CREATE TABLE Readings(x)")}));
    ApplyOk(**sm, Cmd({S("INSERT INTO Readings VALUES (1)")}));
  }
  // Rewrite the file into the layout of older releases: versions in a
  // table of their own.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db,
                   "DELETE FROM _raftsql_meta WHERE key LIKE 'version:%';"
                   "CREATE TABLE _raftsql_versions(name TEXT PRIMARY KEY "
                   "COLLATE NOCASE, version INTEGER NOT NULL) WITHOUT "
                   "ROWID;"
                   "INSERT INTO _raftsql_versions VALUES ('Readings', 2);",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);

  auto sm = SqliteStateMachine::Open(SqliteOptions{path});
  ASSERT_TRUE(sm.ok()) << sm.status();
  EXPECT_EQ(*(*sm)->GetVersion("readings"), 2u);
  EXPECT_EQ(*(*sm)->GetVersion("READINGS"), 2u);
  absl::StatusOr<QueryResult> old = (*sm)->Query(
      S("SELECT count(*) FROM sqlite_schema WHERE name = '_raftsql_versions'"));
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->rows[0][0].integer, 0);
  ApplyOk(**sm, Cmd({S("INSERT INTO readings VALUES (2)")}));
  EXPECT_EQ(*(*sm)->GetVersion("Readings"), 3u);
}

// With the checkpoint thread, and with inline checkpoints on the writer.
class WalBound : public ::testing::TestWithParam<bool> {};

TEST_P(WalBound, WalStaysBoundedUnderSteadyWrites) {
  TempDir dir;
  const std::string path = dir.File("a.db");
  SqliteOptions o{path};
  o.wal_checkpoint_frames = 500;  // The writer catches up at 2,000.
  o.background_checkpoints = GetParam();
  auto a = SqliteStateMachine::Open(o);
  ASSERT_TRUE(a.ok());
  ApplyOk(**a, Cmd({S("CREATE TABLE t(x)")}));
  // About 4 WAL frames per command: 24,000 frames (94 MB) if nothing were
  // checkpointed, as before the fix (the checkpoint connection did nothing).
  for (int i = 0; i < 6000; ++i) {
    ApplyOk(**a, Cmd({S("INSERT INTO t VALUES (randomblob(500))")}));
  }
  const auto wal = std::filesystem::file_size(path + "-wal");
  const auto db = std::filesystem::file_size(path);
  // Frames of a 4 KiB page, with slack for commits during a checkpoint.
  EXPECT_LT(wal, 2u * 4096 * 2000 + (1u << 20));
  EXPECT_GT(db, 2u << 20);  // Rows reached the database file.
  EXPECT_EQ(Count(**a, "t"), 6000);
}

INSTANTIATE_TEST_SUITE_P(SqliteFile, WalBound, ::testing::Bool());

TEST(SqliteFile, SnapshotOfOneFileReplicaRestoresAnother) {
  TempDir dir;
  auto a = SqliteStateMachine::Open(SqliteOptions{dir.File("a.db")});
  auto b = SqliteStateMachine::Open(SqliteOptions{dir.File("b.db")});
  ASSERT_TRUE(a.ok() && b.ok());
  ApplyOk(**a, Cmd({S("CREATE TABLE t(x)")}));
  ApplyOk(**a, Cmd({S("INSERT INTO t VALUES (1), (2)")}));
  ApplyOk(**b, Cmd({S("CREATE TABLE old(y)")}));
  // b has read before (its read connection has seen the old database).
  EXPECT_EQ(Count(**b, "old"), 0);
  absl::StatusOr<std::string> image = (*a)->CreateSnapshot();
  ASSERT_TRUE(image.ok()) << image.status();
  core::Snapshot snap;
  snap.metadata.index = 2;
  snap.data = *image;
  absl::Status s = (*b)->Restore(snap);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ((*b)->AppliedIndex(), 2u);
  EXPECT_EQ(Count(**b, "t"), 2);
  EXPECT_EQ((*b)->divergence_hash(), (*a)->divergence_hash());
  ApplyOk(**b, Cmd({S("INSERT INTO t VALUES (3)")}));
  EXPECT_EQ(Count(**b, "t"), 3);
}

TEST(SqliteFile, ValidationOfARepeatedStatementStillChecksItsParameters) {
  TempDir dir;
  auto sm = SqliteStateMachine::Open(SqliteOptions{dir.File("a.db")});
  ASSERT_TRUE(sm.ok());
  ApplyOk(**sm, Cmd({S("CREATE TABLE t(x)")}));
  const Command good = Cmd({S("INSERT INTO t VALUES (:x)")});
  Command named = good;
  named.statements[0].named.emplace_back("x", Value::Integer(1));
  EXPECT_TRUE((*sm)->Validate(named).ok());
  EXPECT_TRUE((*sm)->Validate(named).ok());  // From the cache.
  Command wrong = good;
  wrong.statements[0].named.emplace_back("nosuch", Value::Integer(1));
  EXPECT_EQ((*sm)->Validate(wrong).code(), absl::StatusCode::kInvalidArgument);
  const Command refused = Cmd({S("ATTACH 'x.db' AS x")});
  EXPECT_EQ((*sm)->Validate(refused).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*sm)->Validate(refused).code(),
            absl::StatusCode::kPermissionDenied);
}

// Whether a decoded view holds exactly `c`.
bool ViewHolds(const CommandView& v, const Command& c) {
  auto same_value = [](const ValueView& a, const Value& b) {
    return a.type == b.type && a.integer == b.integer && a.real == b.real &&
           a.bytes == b.bytes;
  };
  if (v.statements.size() != c.statements.size() ||
      v.transaction != c.transaction || v.session_id != c.session_id ||
      v.sequence != c.sequence || v.timestamp_ms != c.timestamp_ms ||
      v.random_seed != c.random_seed || v.request_id != c.request_id) {
    return false;
  }
  for (size_t i = 0; i < c.statements.size(); ++i) {
    const StatementView& a = v.statements[i];
    const Statement& b = c.statements[i];
    if (a.sql != b.sql || a.positional.size() != b.positional.size() ||
        a.named.size() != b.named.size()) {
      return false;
    }
    for (size_t k = 0; k < b.positional.size(); ++k) {
      if (!same_value(a.positional[k], b.positional[k])) return false;
    }
    for (size_t k = 0; k < b.named.size(); ++k) {
      if (a.named[k].first != b.named[k].first ||
          !same_value(a.named[k].second, b.named[k].second)) {
        return false;
      }
    }
  }
  return true;
}

TEST(Command, DecodingIntoAReusedViewLeavesNothingOfThePreviousOne) {
  Command big =
      Cmd({Statement{"INSERT INTO t VALUES (?, ?, :a)",
                     {Value::Text(std::string(100, 'x')), Value::Blob("b")},
                     {{"a", Value::Real(2.5)}}},
           S("DELETE FROM t")},
          true);
  big.session_id = 9;
  big.sequence = 3;
  Command small = Cmd({S("UPDATE t SET v = ?", {Value::Integer(4)})});
  const std::string big_bytes = big.Encode();
  const std::string small_bytes = small.Encode();
  CommandView scratch;
  ASSERT_TRUE(scratch.Decode(big_bytes).ok());
  EXPECT_TRUE(ViewHolds(scratch, big));
  ASSERT_TRUE(scratch.Decode(small_bytes).ok());
  EXPECT_TRUE(ViewHolds(scratch, small));
  EXPECT_FALSE(ViewHolds(scratch, big));
  EXPECT_FALSE(scratch.Decode("junk").ok());
  // The view points into the bytes: nothing was copied.
  EXPECT_GE(scratch.statements[0].sql.data(), small_bytes.data());
  EXPECT_LT(scratch.statements[0].sql.data(),
            small_bytes.data() + small_bytes.size());
}

TEST(Command, EncodingRoundTripsAndRejectsGarbage) {
  Command c = Cmd({Statement{"INSERT INTO t VALUES (?, :n)",
                             {Value::Integer(-5), Value::Real(1.5),
                              Value::Blob(std::string("\0x", 2))},
                             {{"n", Value::Text("t")}}}},
                  true);
  c.session_id = 3;
  c.sequence = 4;
  c.request_id = 0xfeedface12345678ull;
  absl::StatusOr<Command> back = Command::Decode(c.Encode());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, c);
  EXPECT_EQ(Command::PeekRequestId(c.Encode()), c.request_id);
  EXPECT_EQ(Command::PeekRequestId("garbage that is long"), 0u);
  EXPECT_FALSE(Command::Decode("garbage").ok());
  std::string truncated = c.Encode();
  truncated.pop_back();
  EXPECT_FALSE(Command::Decode(truncated).ok());
}

TEST(CommandResult, VersionsAreReadWithoutDecodingTheRest) {
  CommandResult r;
  StatementResult failed;
  failed.status = absl::InvalidArgumentError("no such table: x");
  StatementResult returning;
  returning.columns = {"id"};
  returning.rows = {{Value::Integer(7)}};
  r.statements = {failed, returning};
  r.index = 9;
  r.versions = {{"edge_commands", 9}, {"t", 9}};
  std::vector<std::string> seen;
  EXPECT_TRUE(CommandResult::ForEachVersion(
      r.Encode(), [&seen](std::string_view t) { seen.emplace_back(t); }));
  EXPECT_EQ(seen, (std::vector<std::string>{"edge_commands", "t"}));
  EXPECT_EQ(r.FirstFailure(), failed.status);
  auto none = [](std::string_view) { ADD_FAILURE(); };
  EXPECT_FALSE(CommandResult::ForEachVersion("garbage", none));
  std::string truncated = r.Encode();
  truncated.resize(truncated.size() / 2);
  EXPECT_FALSE(
      CommandResult::ForEachVersion(truncated, [](std::string_view) {}));
}

TEST(Utf8, ValidAndInvalidForms) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  for (const char* bad :
       {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "a\x80"
        "b"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << bad;
  }
  EXPECT_EQ(ValidUtf8("a\xff"
                      "b\xc3\xa9"),
            "a\xef\xbf\xbd"
            "b\xc3\xa9");
  EXPECT_TRUE(IsValidUtf8(TruncatedMessage("bad \xff byte")));
}

}  // namespace
}  // namespace raftsql::sm
