#include "edge/hub_sql.h"

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "edge/json_check.h"
#include "gtest/gtest.h"
#include "sm/test_util.h"

namespace raftsql::edge {
namespace {

using sm::ApplyOk;
using sm::CommandResult;
using sm::QueryValue;
using sm::SqliteStateMachine;

constexpr int64_t kNow = 1'800'000'000'000;
constexpr int64_t kLock = 30'000;

Reading R(uint64_t seq, double value = 1.5) {
  return Reading{"temp", value, "C", kNow - 1000, seq};
}

Upload Batch(std::vector<uint64_t> seqs, uint64_t oldest = 0) {
  Upload u;
  for (uint64_t s : seqs) u.readings.push_back(R(s));
  u.oldest_sequence = oldest != 0 ? oldest : (seqs.empty() ? 0 : seqs[0]);
  return u;
}

class HubSqlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sm_ = sm::OpenMemory();
    ExpectOk(ApplyOk(*sm_, SchemaCommand()));
    CommandResult hello =
        ApplyOk(*sm_, HelloCommand("d1", "inc1", "s1", 1, kNow));
    EXPECT_EQ(Acked(hello), 0u);
    stream_ = AckedOf(hello)->stream;
  }

  static void ExpectOk(const CommandResult& r) {
    for (const sm::StatementResult& s : r.statements) {
      EXPECT_TRUE(s.status.ok()) << s.status;
    }
  }
  static uint64_t Acked(const CommandResult& r) {
    absl::StatusOr<StreamAck> a = AckedOf(r);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? a->acked : ~uint64_t{0};
  }
  uint64_t Upload(const edge::Upload& u, uint64_t stream = 0) {
    return Acked(ApplyOk(
        *sm_, UploadCommand("d1", stream == 0 ? stream_ : stream, u, kNow)));
  }
  int64_t Readings() { return sm::Count(*sm_, "edge_readings"); }
  std::string Status(const std::string& id) {
    return QueryValue(
               *sm_, "SELECT status FROM edge_commands WHERE id = '" + id + "'")
        .bytes;
  }
  void Issue(const std::string& id, int64_t expires_ms = kNow + 60'000,
             uint32_t attempts = 3) {
    HubCommand c;
    c.id = id;
    c.device = "d1";
    c.name = "open_valve";
    c.params_json = R"({"percent": 40})";
    c.expires_ms = expires_ms;
    c.max_attempts = attempts;
    ASSERT_TRUE(ValidateCommand(c).ok());
    ExpectOk(ApplyOk(*sm_, IssueCommand(c, kNow)));
  }
  // Whether the delivery of `id` at `now` was marked (one row back).
  bool Deliver(const std::string& id, int64_t now,
               const std::string& incarnation = "inc1") {
    CommandResult r =
        ApplyOk(*sm_, DeliverCommand("d1", incarnation, id, now, kLock));
    ExpectOk(r);
    return r.statements.size() == 2 && r.statements[1].rows.size() == 1;
  }

  std::unique_ptr<SqliteStateMachine> sm_;
  uint64_t stream_ = 0;  // d1's for inc1.
};

TEST_F(HubSqlTest, TheUpgradeOfCurrentTablesChangesNothing) {
  Issue("c1");
  EXPECT_TRUE(UpgradeStatus(ApplyOk(*sm_, UpgradeCommand())).ok());
  EXPECT_TRUE(UpgradeStatus(ApplyOk(*sm_, UpgradeCommand())).ok());
  EXPECT_TRUE(Deliver("c1", kNow));
}

// A hub made by the first release with edge tables (before 527c98c): its
// edge_commands had no delivered_to, so every delivery failed.
TEST(HubSqlUpgrade, TablesOfTheFirstReleaseAreBroughtUpToDate) {
  std::unique_ptr<SqliteStateMachine> sm = sm::OpenMemory();
  sm::Command old;
  old.statements.push_back(sm::Statement{
      "CREATE TABLE edge_commands(seq INTEGER PRIMARY KEY, id TEXT NOT NULL "
      "UNIQUE, device TEXT NOT NULL, name TEXT NOT NULL, params TEXT NOT "
      "NULL CHECK(json_valid(params) AND json_type(params) = 'object'), "
      "created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, "
      "max_attempts INTEGER NOT NULL CHECK(max_attempts >= 1), attempts "
      "INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT 'queued' "
      "CHECK(status IN ('queued', 'delivered', 'done', 'rejected', "
      "'failed', 'expired')), detail TEXT NOT NULL DEFAULT '', delivered_ms "
      "INTEGER, updated_ms INTEGER NOT NULL)",
      {},
      {}});
  ASSERT_TRUE(ApplyOk(*sm, old).FirstFailure().ok());
  ASSERT_TRUE(ApplyOk(*sm, SchemaCommand()).FirstFailure().ok());
  HubCommand c;
  c.id = "c1";
  c.device = "d1";
  c.name = "open_valve";
  c.params_json = "{}";
  c.expires_ms = kNow + 60'000;
  c.max_attempts = 3;
  ASSERT_TRUE(ApplyOk(*sm, IssueCommand(c, kNow)).FirstFailure().ok());
  EXPECT_FALSE(ApplyOk(*sm, DeliverCommand("d1", "inc1", "c1", kNow, kLock))
                   .FirstFailure()
                   .ok());

  EXPECT_TRUE(UpgradeStatus(ApplyOk(*sm, UpgradeCommand())).ok());
  CommandResult delivered =
      ApplyOk(*sm, DeliverCommand("d1", "inc1", "c1", kNow, kLock));
  EXPECT_TRUE(delivered.FirstFailure().ok()) << delivered.FirstFailure();
  EXPECT_EQ(QueryValue(*sm, "SELECT delivered_to FROM edge_commands").bytes,
            "inc1");
}

TEST_F(HubSqlTest, ContiguousUploadsAreAckedToTheirLastSequence) {
  EXPECT_EQ(Upload(Batch({1, 2, 3})), 3u);
  EXPECT_EQ(Upload(Batch({4, 5})), 5u);
  EXPECT_EQ(Readings(), 5);
}

TEST_F(HubSqlTest, RetriedAndDuplicatedBatchesAreStoredOnce) {
  EXPECT_EQ(Upload(Batch({1, 2, 3})), 3u);
  EXPECT_EQ(Upload(Batch({1, 2, 3})), 3u);
  EXPECT_EQ(Upload(Batch({2, 3, 4})), 4u);
  EXPECT_EQ(Readings(), 4);
}

TEST_F(HubSqlTest, AReorderedBatchIsAckedOnceTheGapFills) {
  EXPECT_EQ(Upload(Batch({4, 5, 6}, 1)), 0u);  // 1-3 still to come.
  EXPECT_EQ(Upload(Batch({1, 2})), 2u);
  EXPECT_EQ(Upload(Batch({3})), 6u);
  EXPECT_EQ(Readings(), 6);
}

TEST_F(HubSqlTest, AnUploadWithGapsIsAckedOverWhatIsStored) {
  EXPECT_EQ(Upload(Batch({2, 4}, 1)), 0u);  // Not contiguous, 1 missing.
  EXPECT_EQ(Upload(Batch({6, 7}, 1)), 0u);  // Contiguous, past 1.
  EXPECT_EQ(Upload(Batch({1, 3})), 4u);     // Fills 1 and 3, not 5.
  EXPECT_EQ(Upload(Batch({5})), 7u);
  EXPECT_EQ(Upload(Batch({3, 9})), 7u);  // Stored, and 8 still missing.
  EXPECT_EQ(Readings(), 8);
}

TEST_F(HubSqlTest, AckPassesWhatTheEdgeDropped) {
  EXPECT_EQ(Upload(Batch({1, 2})), 2u);
  // The edge dropped 3-9 (its buffer was full) and holds 10 on.
  EXPECT_EQ(Upload(Batch({10, 11}, 10)), 11u);
}

TEST_F(HubSqlTest, AckNeverGoesBack) {
  EXPECT_EQ(Upload(Batch({1, 2, 3})), 3u);
  EXPECT_EQ(Upload(Batch({}, 1)), 3u);
  EXPECT_EQ(Upload(Batch({2})), 3u);
}

TEST_F(HubSqlTest, IncarnationsAreSeparateStreams) {
  EXPECT_EQ(Upload(Batch({1, 2, 3})), 3u);
  // The edge's disk was wiped: a new incarnation starts again at 1.
  absl::StatusOr<StreamAck> wiped =
      AckedOf(ApplyOk(*sm_, HelloCommand("d1", "inc2", "s2", 1, kNow)));
  ASSERT_TRUE(wiped.ok());
  EXPECT_EQ(wiped->acked, 0u);
  EXPECT_NE(wiped->stream, stream_);
  EXPECT_EQ(Upload(Batch({1, 2}), wiped->stream), 2u);
  EXPECT_EQ(Readings(), 5);
  EXPECT_EQ(QueryValue(*sm_,
                       "SELECT count(*) FROM edge_readings_by_device "
                       "WHERE device = 'd1' AND incarnation = 'inc2'")
                .integer,
            2);
}

TEST_F(HubSqlTest, UploadWithoutHelloStoresNothing) {
  absl::StatusOr<StreamAck> a =
      AckedOf(ApplyOk(*sm_, UploadCommand("d1", 999, Batch({1}), kNow)));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(HubSqlTest, AnotherDevicesStreamIsRefused) {
  absl::StatusOr<StreamAck> a =
      AckedOf(ApplyOk(*sm_, UploadCommand("d2", stream_, Batch({1}), kNow)));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Readings(), 0);
}

TEST_F(HubSqlTest, LargeUploadsSpanSeveralInsertStatements) {
  std::vector<uint64_t> seqs;
  for (uint64_t s = 1; s <= kMaxReadingsPerUpload; ++s) seqs.push_back(s);
  EXPECT_EQ(Upload(Batch(seqs)), kMaxReadingsPerUpload);
  EXPECT_EQ(Readings(), static_cast<int64_t>(kMaxReadingsPerUpload));
}

TEST_F(HubSqlTest, DeviceRowShowsTheEdgesBuffer) {
  edge::Upload u = Batch({1});
  u.backlog = 17;
  u.dropped = 4;
  Upload(u);
  EXPECT_EQ(QueryValue(*sm_, "SELECT backlog FROM edge_device_status").integer,
            17);
  EXPECT_EQ(QueryValue(*sm_, "SELECT dropped FROM edge_devices").integer, 4);
  EXPECT_EQ(QueryValue(*sm_, "SELECT acked FROM edge_device_status").integer,
            1);
}

TEST_F(HubSqlTest, AnOlderUploadAppliedLastLeavesTheNewerBuffer) {
  edge::Upload older = Batch({1, 2});
  older.backlog = 50;
  older.dropped = 1;
  edge::Upload newer = Batch({3, 4}, 1);
  newer.backlog = 0;
  newer.dropped = 2;
  Upload(newer);
  Upload(older);  // Sent first, committed last (a retry).
  EXPECT_EQ(QueryValue(*sm_, "SELECT backlog FROM edge_devices").integer, 0);
  EXPECT_EQ(QueryValue(*sm_, "SELECT dropped FROM edge_devices").integer, 2);
  EXPECT_EQ(QueryValue(*sm_, "SELECT acked FROM edge_device_status").integer,
            4);
}

TEST_F(HubSqlTest, GoodbyeOfAnOlderSessionLeavesTheNewerConnected) {
  ApplyOk(*sm_, HelloCommand("d1", "inc1", "s2", 2, kNow));
  ExpectOk(ApplyOk(*sm_, GoodbyeCommand("d1", "s1", kNow)));
  EXPECT_EQ(QueryValue(*sm_, "SELECT connected FROM edge_devices").integer, 1);
  ExpectOk(ApplyOk(*sm_, GoodbyeCommand("d1", "s2", kNow)));
  EXPECT_EQ(QueryValue(*sm_, "SELECT connected FROM edge_devices").integer, 0);
}

TEST_F(HubSqlTest, ARestartedNodeForgetsTheSessionsOfItsLastProcess) {
  // d1 is connected through node 1 (session "s1"); d2 through node 1 by
  // the new process ("1-new-1"); d3 moved to node 2.
  ApplyOk(*sm_, HelloCommand("d2", "inc1", "1-new-1", 1, kNow));
  ApplyOk(*sm_, HelloCommand("d3", "inc1", "1-old-1", 1, kNow));
  ApplyOk(*sm_, HelloCommand("d3", "inc1", "2-x-1", 2, kNow));
  ExpectOk(ApplyOk(*sm_, ForgetSessionsCommand(1, "1-new-", kNow)));
  EXPECT_EQ(QueryValue(*sm_,
                       "SELECT group_concat(device || '=' || connected) "
                       "FROM (SELECT * FROM edge_devices ORDER BY "
                       "device)")
                .bytes,
            "d1=0,d2=1,d3=1");
}

TEST(UploadValidation, RefusesBadReadingsWithTheirSequence) {
  auto code = [](edge::Upload u) { return ValidateUpload(u).code(); };
  EXPECT_EQ(code(Batch({1, 2})), absl::StatusCode::kOk);
  edge::Upload nan = Batch({1, 2});
  nan.readings[1].value = std::nan("");
  EXPECT_EQ(code(nan), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ValidateUpload(nan).message().find("sequence 2"),
            std::string::npos);
  edge::Upload inf = Batch({1});
  inf.readings[0].value = -std::numeric_limits<double>::infinity();
  EXPECT_EQ(code(inf), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Batch({2, 1})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Batch({1, 1})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Batch({0})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Batch({uint64_t{1} << 63})),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Batch({3}, 4)), absl::StatusCode::kInvalidArgument);
  edge::Upload sensor = Batch({1});
  sensor.readings[0].sensor = "";
  EXPECT_EQ(code(sensor), absl::StatusCode::kInvalidArgument);
  sensor.readings[0].sensor = std::string(kMaxSensorBytes + 1, 's');
  EXPECT_EQ(code(sensor), absl::StatusCode::kInvalidArgument);
  sensor.readings[0].sensor = "\xff";
  EXPECT_EQ(code(sensor), absl::StatusCode::kInvalidArgument);
  std::vector<uint64_t> many;
  for (uint64_t s = 1; s <= kMaxReadingsPerUpload + 1; ++s) many.push_back(s);
  EXPECT_EQ(code(Batch(many)), absl::StatusCode::kInvalidArgument);
}

TEST(NameValidation, AcceptsIdsAndRefusesTheRest) {
  EXPECT_TRUE(ValidateName("device", "pump-7.site_A@x:1", 64).ok());
  EXPECT_FALSE(ValidateName("device", "", 64).ok());
  EXPECT_FALSE(ValidateName("device", "a b", 64).ok());
  EXPECT_FALSE(ValidateName("device", "a'b", 64).ok());
  EXPECT_FALSE(ValidateName("device", std::string(65, 'a'), 64).ok());
}

TEST(JsonCheck, AcceptsJsonAndRefusesWhatIsNot) {
  for (const char* ok :
       {"{}", " {\"a\": [1, -2.5e3, true, null, \"x\\u00e9\"]}",
        "{\"a\":{\"b\":{}}}"}) {
    EXPECT_TRUE(IsJson(ok, true)) << ok;
  }
  EXPECT_TRUE(IsJson("[1]", false));
  for (const char* bad :
       {"", "[1]", "{", "{a:1}", "{\"a\":01}", "{\"a\":1,}", "{\"a\":1} x",
        "{\"a\":\"\x01\"}", "{\"a\":.5}", "{\"a\":\"\\x\"}", "{\"a\":tru}"}) {
    EXPECT_FALSE(IsJson(bad, true)) << bad;
  }
  std::string deep(kMaxJsonDepth + 2, '[');
  deep = "{\"a\":" + deep + std::string(kMaxJsonDepth + 2, ']') + "}";
  EXPECT_FALSE(IsJson(deep, true));
}

TEST_F(HubSqlTest, ACommandIsDeliveredThenAnsweredOnce) {
  Issue("c1");
  EXPECT_EQ(Status("c1"), "queued");
  ASSERT_TRUE(Deliver("c1", kNow + 1));
  EXPECT_EQ(Status("c1"), "delivered");
  // Another session's delivery within the lock finds it taken.
  EXPECT_FALSE(Deliver("c1", kNow + 2));
  ExpectOk(ApplyOk(*sm_, OutcomeCommand("d1", "c1", CommandStatus::kDone,
                                        "opened", kNow + 3)));
  EXPECT_EQ(Status("c1"), "done");
  // A late repeat of the answer changes nothing.
  ApplyOk(*sm_,
          OutcomeCommand("d1", "c1", CommandStatus::kFailed, "x", kNow + 4));
  EXPECT_EQ(Status("c1"), "done");
  EXPECT_FALSE(Deliver("c1", kNow + kLock * 2));
}

TEST_F(HubSqlTest, AnotherDeviceCannotAnswerOrTakeACommand) {
  Issue("c1");
  CommandResult r =
      ApplyOk(*sm_, DeliverCommand("d2", "inc1", "c1", kNow, kLock));
  EXPECT_TRUE(r.statements.back().rows.empty());
  ASSERT_TRUE(Deliver("c1", kNow));
  ApplyOk(*sm_, OutcomeCommand("d2", "c1", CommandStatus::kDone, "", kNow + 1));
  EXPECT_EQ(Status("c1"), "delivered");
}

TEST_F(HubSqlTest, AnUnansweredCommandIsRedeliveredAfterItsLockUpToMax) {
  Issue("c1", kNow + 10 * kLock, /*attempts=*/2);
  ASSERT_TRUE(Deliver("c1", kNow));
  EXPECT_FALSE(Deliver("c1", kNow + kLock - 1));
  ASSERT_TRUE(Deliver("c1", kNow + kLock));
  EXPECT_EQ(QueryValue(*sm_, "SELECT attempts FROM edge_commands").integer, 2);
  EXPECT_FALSE(Deliver("c1", kNow + 3 * kLock));  // Out of attempts.
  ExpectOk(ApplyOk(*sm_, ExpireCommand(kNow + 3 * kLock, kLock, 100)));
  EXPECT_EQ(Status("c1"), "expired");
  EXPECT_EQ(QueryValue(*sm_, "SELECT detail FROM edge_commands").bytes,
            "no answer after 2 attempts");
}

TEST_F(HubSqlTest, ACommandIsNotRedeliveredToANewStore) {
  // Found by the simulator (seed 7, --edges=3 --sql-disk): a device ran a
  // command, lost its disk (and the record) before its answer reached the
  // hub, and ran it again when it was redelivered.
  Issue("c1", kNow + 10 * kLock, /*attempts=*/3);
  ASSERT_TRUE(Deliver("c1", kNow, "inc1"));
  EXPECT_FALSE(Deliver("c1", kNow + kLock, "inc2"));
  EXPECT_EQ(Status("c1"), "expired");
  EXPECT_EQ(QueryValue(*sm_, "SELECT detail FROM edge_commands").bytes,
            "delivered to a store of the device that is gone (inc1): not "
            "delivered again, it may have run");
  // The same store gets it again after the lock.
  Issue("c2", kNow + 10 * kLock, /*attempts=*/3);
  ASSERT_TRUE(Deliver("c2", kNow, "inc1"));
  EXPECT_TRUE(Deliver("c2", kNow + kLock, "inc1"));
}

TEST_F(HubSqlTest, AnExpiredCommandIsNeverDelivered) {
  Issue("c1", kNow + 100);
  Issue("c2", kNow + 100);
  ASSERT_TRUE(Deliver("c2", kNow));
  EXPECT_FALSE(Deliver("c1", kNow + 100));
  ExpectOk(ApplyOk(*sm_, ExpireCommand(kNow + 100, kLock, 100)));
  EXPECT_EQ(Status("c1"), "expired");
  EXPECT_EQ(
      QueryValue(*sm_, "SELECT detail FROM edge_commands WHERE id='c1'").bytes,
      "expired before delivery");
  EXPECT_EQ(
      QueryValue(*sm_, "SELECT detail FROM edge_commands WHERE id='c2'").bytes,
      "expired before an answer");
}

TEST_F(HubSqlTest, ExpirySweepsInBoundedBatches) {
  for (int i = 0; i < 5; ++i) Issue("c" + std::to_string(i), kNow + 1);
  ApplyOk(*sm_, ExpireCommand(kNow + 1, kLock, 2));
  EXPECT_EQ(QueryValue(*sm_,
                       "SELECT count(*) FROM edge_commands WHERE "
                       "status = 'expired'")
                .integer,
            2);
}

TEST_F(HubSqlTest, IssuingAnIdAgainLeavesTheFirst) {
  Issue("c1");
  HubCommand again;
  again.id = "c1";
  again.device = "d1";
  again.name = "close_valve";
  again.expires_ms = kNow + 1;
  CommandResult r = ApplyOk(*sm_, IssueCommand(again, kNow));
  ExpectOk(r);
  EXPECT_TRUE(r.statements[0].rows.empty());
  EXPECT_EQ(QueryValue(*sm_, "SELECT name FROM edge_commands").bytes,
            "open_valve");
}

TEST_F(HubSqlTest, OpenCommandsComeInIssueOrder) {
  Issue("b");
  Issue("a");
  Issue("c");
  ASSERT_TRUE(Deliver("a", kNow));
  ApplyOk(*sm_, OutcomeCommand("d1", "a", CommandStatus::kDone, "", kNow));
  absl::StatusOr<sm::QueryResult> q = sm_->Query(OpenCommandsQuery("d1", 10));
  ASSERT_TRUE(q.ok()) << q.status();
  std::vector<HubCommand> open = CommandsOf(*q);
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].id, "b");
  EXPECT_EQ(open[1].id, "c");
  EXPECT_EQ(open[0].params_json, R"({"percent": 40})");
  EXPECT_TRUE(DueForDelivery(open[0], kNow, kLock));
  EXPECT_FALSE(DueForDelivery(open[0], kNow + 60'000, kLock));
}

TEST_F(HubSqlTest, TwinDeltaShowsWhatTheReportLacks) {
  ExpectOk(ApplyOk(
      *sm_, SetDesiredCommand("d1", R"({"rate": 5, "mode": "eco"})", kNow)));
  CommandResult r = ApplyOk(
      *sm_, SetDesiredCommand("d1", R"({"mode": null, "led": true})", kNow));
  ExpectOk(r);
  ASSERT_EQ(r.statements[0].rows.size(), 1u);
  EXPECT_EQ(r.statements[0].rows[0][1].integer, 2);
  EXPECT_EQ(QueryValue(*sm_, "SELECT count(*) FROM edge_twin_delta").integer,
            2);
  ExpectOk(ApplyOk(
      *sm_, ReportTwinCommand("d1", R"({"rate": 5, "led": false})", 2, kNow)));
  absl::StatusOr<sm::QueryResult> q =
      sm_->Query(sm::S("SELECT key FROM edge_twin_delta"));
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->rows.size(), 1u);
  EXPECT_EQ(q->rows[0][0].bytes, "led");
  ExpectOk(ApplyOk(
      *sm_, ReportTwinCommand("d1", R"({"rate": 5, "led": true})", 2, kNow)));
  EXPECT_EQ(QueryValue(*sm_, "SELECT count(*) FROM edge_twin_delta").integer,
            0);
  EXPECT_EQ(
      QueryValue(*sm_, "SELECT twin_delta FROM edge_device_status").integer, 0);
}

TEST_F(HubSqlTest, AnOlderTwinReportDoesNotUndoANewerOne) {
  // Found by the simulator (seed 1, --edges=3 --sql-disk): two reports of
  // one session, forwarded separately, applied in the other order.
  ExpectOk(ApplyOk(*sm_, SetDesiredCommand("d1", R"({"rate": 5})", kNow)));
  ExpectOk(ApplyOk(*sm_, SetDesiredCommand("d1", R"({"rate": 7})", kNow)));
  ExpectOk(ApplyOk(*sm_, ReportTwinCommand("d1", R"({"rate": 7})", 2, kNow)));
  ExpectOk(ApplyOk(*sm_, ReportTwinCommand("d1", R"({"rate": 5})", 1, kNow)));
  EXPECT_EQ(QueryValue(*sm_, "SELECT reported_desired_version FROM edge_twins")
                .integer,
            2);
  EXPECT_EQ(QueryValue(*sm_, "SELECT count(*) FROM edge_twin_delta").integer,
            0);
}

TEST_F(HubSqlTest, RetentionDeletesOldReadingsInBoundedSteps) {
  for (int64_t t = 0; t < 5; ++t) {
    ApplyOk(*sm_,
            UploadCommand("d1", stream_, Batch({static_cast<uint64_t>(t + 1)}),
                          kNow + t * 1000));
  }
  Retention r;
  r.streams = {stream_};
  r.per_stream = 2;
  r.before_ms = kNow + 3000;  // Readings 1-3 are older.
  ExpectOk(ApplyOk(*sm_, RetentionCommand(r, kNow)));
  EXPECT_EQ(Readings(), 3);  // A step looks at two.
  EXPECT_EQ(QueryValue(*sm_, "SELECT min(seq) FROM edge_readings").integer, 3);
  ExpectOk(ApplyOk(*sm_, RetentionCommand(r, kNow)));
  EXPECT_EQ(Readings(), 2);
  ExpectOk(ApplyOk(*sm_, RetentionCommand(r, kNow)));
  EXPECT_EQ(Readings(), 2);  // 4 and 5 are newer.
  // The stream's ack stays where it was.
  EXPECT_EQ(Upload(Batch({6})), 6u);
}

TEST_F(HubSqlTest, RetentionKeepsTheNewestSequencesOfAStream) {
  std::vector<uint64_t> seqs;
  for (uint64_t s = 1; s <= 10; ++s) seqs.push_back(s);
  EXPECT_EQ(Upload(Batch(seqs)), 10u);
  Retention r;
  r.streams = {stream_};
  r.max_per_device = 4;
  ExpectOk(ApplyOk(*sm_, RetentionCommand(r, kNow)));
  EXPECT_EQ(Readings(), 4);
  EXPECT_EQ(QueryValue(*sm_, "SELECT min(seq) FROM edge_readings").integer, 7);
  // Streams outside the step are left alone.
  r.streams = {stream_ + 1};
  r.max_per_device = 1;
  ExpectOk(ApplyOk(*sm_, RetentionCommand(r, kNow)));
  EXPECT_EQ(Readings(), 4);
  absl::StatusOr<sm::QueryResult> q = sm_->Query(StreamsQuery(0, 10));
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->rows.size(), 1u);
  EXPECT_EQ(static_cast<uint64_t>(q->rows[0][0].integer), stream_);
}

TEST_F(HubSqlTest, RetentionCountsTheDevicesNewerIncarnations) {
  // d1 wiped its disk twice: incarnations 1 (10 readings), 2 (6), 3 (3).
  std::vector<uint64_t> ten = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(Upload(Batch(ten)), 10u);
  auto stream_of = [&](const char* inc) {
    return AckedOf(ApplyOk(*sm_, HelloCommand("d1", inc, "s1", 1, kNow)))
        ->stream;
  };
  const uint64_t second = stream_of("inc2");
  ExpectOk(ApplyOk(
      *sm_, UploadCommand("d1", second, Batch({1, 2, 3, 4, 5, 6}), kNow)));
  const uint64_t third = stream_of("inc3");
  ExpectOk(ApplyOk(*sm_, UploadCommand("d1", third, Batch({1, 2, 3}), kNow)));
  Retention r;
  r.streams = {stream_, second, third};
  r.max_per_device = 8;
  ExpectOk(ApplyOk(*sm_, RetentionCommand(r, kNow)));
  // The newest 8: all 3 of the third, 5 of the second, none of the first.
  auto count = [&](uint64_t stream) {
    return QueryValue(*sm_,
                      "SELECT count(*) FROM edge_readings WHERE "
                      "stream = " +
                          std::to_string(stream))
        .integer;
  };
  EXPECT_EQ(count(third), 3);
  EXPECT_EQ(count(second), 5);
  EXPECT_EQ(count(stream_), 0);
}

TEST_F(HubSqlTest, SchemaCommandRunsTwice) {
  ExpectOk(ApplyOk(*sm_, SchemaCommand()));
}

}  // namespace
}  // namespace raftsql::edge
