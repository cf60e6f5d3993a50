#include "server/edge_service.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/escaping.h"
#include "edge/hub_sql.h"
#include "gtest/gtest.h"
#include "net/client.h"
#include "net/edge.grpc.pb.h"
#include "server/one_node_server.h"

namespace raftsql::server {
namespace {

namespace pb = ::raftsql::edge::v1;
constexpr char kToken[] = "token-of-pump-1";

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One device's session, synchronously, every call bounded by a deadline.
class Device {
 public:
  Device(const std::string& endpoint, const std::string& id,
         const std::string& token,
         const grpc::ChannelArguments& args = grpc::ChannelArguments()) {
    auto channel = grpc::CreateCustomChannel(
        endpoint, grpc::InsecureChannelCredentials(), args);
    stub_ = pb::EdgeService::NewStub(channel);
    if (!id.empty()) {
      ctx_.AddMetadata("authorization",
                       "Basic " + absl::Base64Escape(id + ":" + token));
    }
    ctx_.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(20));
    stream_ = stub_->Session(&ctx_);
  }

  bool Send(const pb::EdgeUp& up) { return stream_->Write(up); }
  // Sends upload `batch` of one reading, `sequence`, and reads nothing.
  bool SendOne(uint64_t batch, uint64_t sequence) {
    pb::EdgeUp up;
    up.mutable_upload()->set_batch(batch);
    up.mutable_upload()->set_oldest_sequence(sequence);
    pb::Reading* r = up.mutable_upload()->add_readings();
    r->set_sensor("temp");
    r->set_value(1);
    r->set_device_time_ms(1);
    r->set_sequence(sequence);
    return Send(up);
  }
  // The next message (false if the stream ended).
  bool Next(pb::EdgeDown* down) { return stream_->Read(down); }
  // The next message of `kind`, skipping others.
  pb::EdgeDown NextOf(pb::EdgeDown::KindCase kind) {
    pb::EdgeDown down;
    while (Next(&down)) {
      if (down.kind_case() == kind) return down;
    }
    ADD_FAILURE() << "the stream ended before a message of kind " << kind;
    return down;
  }
  uint64_t Hello(const std::string& incarnation = "inc-1") {
    pb::EdgeUp up;
    up.mutable_hello()->set_incarnation(incarnation);
    EXPECT_TRUE(Send(up));
    return NextOf(pb::EdgeDown::kWelcome).welcome().acked_sequence();
  }
  // `oldest`: the oldest sequence the edge says it holds (0: `first`).
  pb::Ack Upload(uint64_t batch, uint64_t first, uint64_t count,
                 double value = 20.5, uint64_t oldest = 0) {
    pb::EdgeUp up;
    pb::Upload* u = up.mutable_upload();
    u->set_batch(batch);
    u->set_oldest_sequence(oldest != 0 ? oldest : first);
    for (uint64_t s = first; s < first + count; ++s) {
      pb::Reading* r = u->add_readings();
      r->set_sensor("temp");
      r->set_value(value);
      r->set_unit("C");
      r->set_device_time_ms(1000 + static_cast<int64_t>(s));
      r->set_sequence(s);
    }
    EXPECT_TRUE(Send(up));
    pb::Ack ack = NextOf(pb::EdgeDown::kAck).ack();
    EXPECT_EQ(ack.batch(), batch);
    return ack;
  }
  void Answer(const std::string& id, pb::CommandOutcome::Result result) {
    pb::EdgeUp up;
    up.mutable_outcome()->set_id(id);
    up.mutable_outcome()->set_result(result);
    up.mutable_outcome()->set_detail("ok");
    EXPECT_TRUE(Send(up));
  }
  grpc::Status End() {
    stream_->WritesDone();
    pb::EdgeDown down;
    while (Next(&down)) {
    }
    return stream_->Finish();
  }
  void Drain() {
    pb::EdgeDown down;
    while (Next(&down)) {
    }
  }
  void CloseSend() { stream_->WritesDone(); }
  grpc::Status Finish() {
    pb::EdgeDown down;
    while (Next(&down)) {
    }
    return stream_->Finish();
  }

 private:
  std::unique_ptr<pb::EdgeService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::EdgeUp, pb::EdgeDown>> stream_;
};

class EdgeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_
                    .Start([](ServerOptions& o) {
                      o.edge.command_lock_ms = 300;
                      o.edge.sweep_ms = 50;
                      o.edge.readings_max_per_device = 1000;
                    })
                    .ok());
    ASSERT_TRUE(server_.node().PutUser("pump-1", kToken, sm::kPermDevice).ok());
    ASSERT_TRUE(server_.node()
                    .PutUser("operator", "operator-password", sm::kPermQuery)
                    .ok());
  }

  absl::StatusOr<sm::CommandResult> Execute(sm::Command c) {
    return server_.Execute(std::move(c));
  }
  sm::Value Query(const std::string& sql) { return server_.QueryValue(sql); }
  void Issue(const std::string& id, uint32_t attempts = 3) {
    edge::HubCommand c;
    c.id = id;
    c.device = "pump-1";
    c.name = "set_speed";
    c.params_json = R"({"rpm": 1200})";
    c.expires_ms = WallMs() + 60'000;
    c.max_attempts = attempts;
    ASSERT_TRUE(edge::ValidateCommand(c).ok());
    ASSERT_TRUE(Execute(edge::IssueCommand(c, WallMs())).ok());
  }
  std::string StatusOf(const std::string& id) {
    return Query("SELECT status FROM edge_commands WHERE id = '" + id + "'")
        .bytes;
  }

  OneNodeServer server_;
};

TEST_F(EdgeServiceTest, BadCredentialsAreRefusedAndStoreNothing) {
  EXPECT_EQ(Device(server_.endpoint(), "", "").Finish().error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Device(server_.endpoint(), "pump-1", "wrong-token-x")
                .Finish()
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Device(server_.endpoint(), "pump-2", kToken).Finish().error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Device(server_.endpoint(), "operator", "operator-password")
                .Finish()
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Nothing was written (the leader may have made the empty tables).
  EXPECT_EQ(Query("SELECT count(*) FROM edge_devices").integer, 0);
  EXPECT_EQ(Query("SELECT count(*) FROM edge_streams").integer, 0);
}

TEST_F(EdgeServiceTest, UploadsAreStoredOnceAndAcked) {
  Device d(server_.endpoint(), "pump-1", kToken);
  EXPECT_EQ(d.Hello(), 0u);
  pb::Ack a = d.Upload(1, 1, 100);
  EXPECT_EQ(a.code(), 0) << a.error();
  EXPECT_EQ(a.acked_sequence(), 100u);
  a = d.Upload(2, 51, 100);  // Half of it a retry.
  EXPECT_EQ(a.acked_sequence(), 150u);
  EXPECT_EQ(Query("SELECT count(*) FROM edge_readings").integer, 150);
  EXPECT_EQ(Query("SELECT connected FROM edge_devices").integer, 1);
  EXPECT_TRUE(d.End().ok());
  EXPECT_EQ(Query("SELECT acked FROM edge_streams").integer, 150);
}

TEST_F(EdgeServiceTest, TheLeaderKeepsTheNewestReadingsOfEachDevice) {
  Device d(server_.endpoint(), "pump-1", kToken);
  d.Hello();
  EXPECT_EQ(d.Upload(1, 1, 1000).acked_sequence(), 1000u);
  EXPECT_EQ(d.Upload(2, 1001, 200).acked_sequence(), 1200u);
  // The sweep deletes what is more than 1,000 below the ack.
  EXPECT_TRUE(server_.WaitFor("SELECT count(*) FROM edge_readings", 1000));
  EXPECT_EQ(Query("SELECT min(seq) FROM edge_readings").integer, 201);
  d.End();
}

TEST_F(EdgeServiceTest, ANewSessionResumesFromTheAck) {
  {
    Device d(server_.endpoint(), "pump-1", kToken);
    d.Hello();
    d.Upload(1, 1, 10);
    d.End();
  }
  {
    Device d(server_.endpoint(), "pump-1", kToken);
    EXPECT_EQ(d.Hello(), 10u);
    d.End();
  }
  Device wiped(server_.endpoint(), "pump-1", kToken);
  EXPECT_EQ(wiped.Hello("inc-2"), 0u);
  EXPECT_EQ(wiped.Upload(1, 1, 5).acked_sequence(), 5u);
  wiped.End();
  EXPECT_EQ(Query("SELECT count(*) FROM edge_readings").integer, 15);
}

TEST_F(EdgeServiceTest, BadReadingsAreRefusedAndTheSessionGoesOn) {
  Device d(server_.endpoint(), "pump-1", kToken);
  d.Hello();
  pb::Ack a = d.Upload(1, 1, 3, std::nan(""));
  EXPECT_EQ(a.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(a.error().find("not a finite number"), std::string::npos);
  a = d.Upload(2, 1, 3);
  EXPECT_EQ(a.code(), 0);
  EXPECT_EQ(a.acked_sequence(), 3u);
  EXPECT_EQ(Query("SELECT count(*) FROM edge_readings").integer, 3);
}

TEST_F(EdgeServiceTest, OversizedAndDisorderedBatchesAreRefusedAlone) {
  Device d(server_.endpoint(), "pump-1", kToken);
  d.Hello();
  pb::Ack a = d.Upload(1, 1, edge::kMaxReadingsPerUpload + 1);
  EXPECT_EQ(a.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(a.error().find("at most 1000"), std::string::npos) << a.error();
  pb::EdgeUp up;
  pb::Upload* u = up.mutable_upload();
  u->set_batch(2);
  for (uint64_t seq : {5, 4}) {  // A regression within the batch.
    pb::Reading* r = u->add_readings();
    r->set_sensor("temp");
    r->set_value(1);
    r->set_sequence(seq);
  }
  ASSERT_TRUE(d.Send(up));
  a = d.NextOf(pb::EdgeDown::kAck).ack();
  EXPECT_EQ(a.batch(), 2u);
  EXPECT_EQ(a.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(a.error().find("must increase"), std::string::npos) << a.error();
  EXPECT_EQ(Query("SELECT count(*) FROM edge_readings").integer, 0);
  // A gap is stored, and acked only up to it.
  EXPECT_EQ(d.Upload(3, 1, 3).acked_sequence(), 3u);
  // 4 and 5 missing, and the edge still holds them (oldest 4).
  a = d.Upload(4, 6, 2, 20.5, /*oldest=*/4);
  EXPECT_EQ(a.code(), 0);
  EXPECT_EQ(a.acked_sequence(), 3u);
  EXPECT_EQ(d.Upload(5, 4, 2).acked_sequence(), 7u);
  d.End();
}

TEST_F(EdgeServiceTest, UploadBeforeHelloEndsTheSession) {
  Device d(server_.endpoint(), "pump-1", kToken);
  pb::EdgeUp up;
  up.mutable_upload()->set_batch(1);
  d.Send(up);
  EXPECT_EQ(d.Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(EdgeServiceTest, CommandsAreDeliveredInOrderAndAnswered) {
  Device d(server_.endpoint(), "pump-1", kToken);
  d.Hello();
  Issue("c1");
  Issue("c2");
  pb::Command c1 = d.NextOf(pb::EdgeDown::kCommand).command();
  pb::Command c2 = d.NextOf(pb::EdgeDown::kCommand).command();
  EXPECT_EQ(c1.id(), "c1");
  EXPECT_EQ(c2.id(), "c2");
  EXPECT_EQ(c1.params_json(), R"({"rpm": 1200})");
  EXPECT_EQ(c1.attempt(), 1u);
  d.Answer("c1", pb::CommandOutcome::DONE);
  d.Answer("c2", pb::CommandOutcome::REJECTED);
  d.End();
  EXPECT_EQ(StatusOf("c1"), "done");
  EXPECT_EQ(StatusOf("c2"), "rejected");
}

// Tables an older release made (without edge_commands.delivered_to) are
// brought up to date by the first session: its commands arrive.
TEST_F(EdgeServiceTest, CommandsReachDevicesOfAHubAnOlderReleaseMade) {
  ASSERT_TRUE(Execute(edge::SchemaCommand()).ok());
  sm::Command drop;
  drop.statements.push_back(sm::Statement{
      "ALTER TABLE edge_commands DROP COLUMN delivered_to", {}, {}});
  absl::StatusOr<sm::CommandResult> dropped = Execute(drop);
  ASSERT_TRUE(dropped.ok() && dropped->FirstFailure().ok());
  ASSERT_TRUE(server_.Restart().ok());  // The new release starts on them.
  Device d(server_.endpoint(), "pump-1", kToken);
  d.Hello();
  Issue("c1");
  EXPECT_EQ(d.NextOf(pb::EdgeDown::kCommand).command().id(), "c1");
  d.Answer("c1", pb::CommandOutcome::DONE);
  d.End();
  EXPECT_EQ(StatusOf("c1"), "done");
}

TEST_F(EdgeServiceTest, AnUnansweredCommandIsDeliveredAgainAfterABreak) {
  {
    Device d(server_.endpoint(), "pump-1", kToken);
    d.Hello();
    Issue("c1");
    EXPECT_EQ(d.NextOf(pb::EdgeDown::kCommand).command().attempt(), 1u);
    d.End();  // Without an answer.
  }
  Device d(server_.endpoint(), "pump-1", kToken);
  d.Hello();
  pb::Command again = d.NextOf(pb::EdgeDown::kCommand).command();
  EXPECT_EQ(again.id(), "c1");
  EXPECT_EQ(again.attempt(), 2u);
  d.Answer("c1", pb::CommandOutcome::DONE);
  d.End();
  EXPECT_EQ(StatusOf("c1"), "done");
}

TEST_F(EdgeServiceTest, ACommandOutOfAttemptsEndsExpired) {
  Device d(server_.endpoint(), "pump-1", kToken);
  d.Hello();
  Issue("c1", /*attempts=*/1);
  EXPECT_EQ(d.NextOf(pb::EdgeDown::kCommand).command().id(), "c1");
  // The leader's sweep ends it once its lock has run out.
  EXPECT_TRUE(server_.WaitFor(
      "SELECT count(*) FROM edge_commands WHERE status = 'expired'", 1));
  EXPECT_EQ(StatusOf("c1"), "expired");
  d.End();
}

TEST_F(EdgeServiceTest,
       DesiredStateReachesTheDeviceAndItsReportClearsTheDelta) {
  Device d(server_.endpoint(), "pump-1", kToken);
  d.Hello();
  ASSERT_TRUE(
      Execute(edge::SetDesiredCommand("pump-1", R"({"interval_s": 5})", 1))
          .ok());
  pb::DesiredTwin desired = d.NextOf(pb::EdgeDown::kDesired).desired();
  EXPECT_EQ(desired.version(), 1u);
  EXPECT_EQ(desired.desired_json(), R"({"interval_s":5})");
  EXPECT_EQ(Query("SELECT count(*) FROM edge_twin_delta").integer, 1);
  pb::EdgeUp up;
  up.mutable_twin()->set_reported_json(R"({"interval_s": 5})");
  up.mutable_twin()->set_desired_version(1);
  d.Send(up);
  d.End();
  EXPECT_EQ(Query("SELECT count(*) FROM edge_twin_delta").integer, 0);
}

TEST_F(EdgeServiceTest, OperatorsIssueCommandsAndDesiredStateThroughTheApi) {
  net::Client client({server_.endpoint()});
  Device d(server_.endpoint(), "pump-1", kToken);
  d.Hello();
  v1::IssueEdgeCommandRequest r;
  r.set_device("pump-1");
  r.set_name("set_speed");
  r.set_params_json(R"({"rpm": 900})");
  auto issued = client.IssueEdgeCommand(r);
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_TRUE(issued->created());
  EXPECT_FALSE(issued->id().empty());
  pb::Command c = d.NextOf(pb::EdgeDown::kCommand).command();
  EXPECT_EQ(c.id(), issued->id());
  EXPECT_GT(c.expires_ms(), c.created_ms());
  // The same id again changes nothing.
  r.set_id(issued->id());
  auto again = client.IssueEdgeCommand(r);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created());
  // What does not validate is refused before the log.
  for (auto bad :
       {std::make_pair("params_json", "[1]"),
        std::make_pair("name", "two words"), std::make_pair("expires", "")}) {
    v1::IssueEdgeCommandRequest b = r;
    b.clear_id();
    if (std::string(bad.first) == "params_json") b.set_params_json(bad.second);
    if (std::string(bad.first) == "name") b.set_name(bad.second);
    if (std::string(bad.first) == "expires") b.set_expires_in_ms(10);
    EXPECT_EQ(client.IssueEdgeCommand(b).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad.first;
  }
  auto desired = client.SetEdgeDesired("pump-1", R"({"sample_ms": 500})");
  ASSERT_TRUE(desired.ok()) << desired.status();
  EXPECT_EQ(desired->version(), 1u);
  EXPECT_EQ(d.NextOf(pb::EdgeDown::kDesired).desired().version(), 1u);
  EXPECT_EQ(client.SetEdgeDesired("pump-1", "not json").status().code(),
            absl::StatusCode::kInvalidArgument);
  d.End();
  EXPECT_EQ(Query("SELECT count(*) FROM edge_commands").integer, 1);
}

// Found by CI (a segfault in this test binary, 1 run of many): the edge
// service's sweeper and sessions read through the node after it stopped
// and before the gRPC server did, and the node had dropped its reader pool.
TEST_F(EdgeServiceTest, ReadsAfterTheNodeStoppedAreRefused) {
  Device d(server_.endpoint(), "pump-1", kToken);
  d.Hello();
  server_.node().Shutdown();
  std::promise<absl::StatusOr<sm::QueryResult>> p;
  server_.node().Query(
      sm::Statement{"SELECT 1", {}, {}}, /*linearizable=*/false,
      sm::ReadLimits{},
      [&p](absl::StatusOr<sm::QueryResult> r) { p.set_value(std::move(r)); });
  EXPECT_EQ(p.get_future().get().status().code(),
            absl::StatusCode::kUnavailable);
  // The session ends as the server stops, without a crash or a hang.
  server_.Stop(1000);
  EXPECT_FALSE(d.Finish().ok());
}

TEST_F(EdgeServiceTest, ANewerSessionOfTheDeviceEndsTheOlder) {
  Device older(server_.endpoint(), "pump-1", kToken);
  older.Hello();
  Device newer(server_.endpoint(), "pump-1", kToken);
  newer.Hello();
  EXPECT_EQ(older.Finish().error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(newer.Upload(1, 1, 1).acked_sequence(), 1u);
  newer.End();
}

TEST_F(EdgeServiceTest, ASessionThatNeverReadsStopsBeingReadAndLosesNothing) {
  ASSERT_TRUE(server_.node().PutUser("pump-2", kToken, sm::kPermDevice).ok());
  // A device with a small receive window that does not read its acks.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  Device mute(server_.endpoint(), "pump-1", kToken, args);
  mute.Hello();
  constexpr int kUploads = 1000;
  std::thread writer([&] {
    for (int i = 1; i <= kUploads; ++i) {
      if (!mute.SendOne(static_cast<uint64_t>(i), static_cast<uint64_t>(i))) {
        return;
      }
    }
  });
  const std::string stored =
      "SELECT count(*) FROM edge_readings_by_device WHERE device = 'pump-1'";
  // Its acks fill its window, the hub stops reading it: without that bound
  // the 1,000 uploads are stored well within a second.
  EXPECT_FALSE(server_.WaitFor(stored, kUploads, /*timeout_s=*/5));
  EXPECT_GT(Query(stored).integer, 0);
  // Meanwhile the node serves other devices.
  Device other(server_.endpoint(), "pump-2", kToken);
  other.Hello();
  EXPECT_EQ(other.Upload(1, 1, 10).acked_sequence(), 10u);
  other.End();
  // Once it reads, everything it sent is stored.
  std::thread reader([&] { mute.Drain(); });
  writer.join();
  EXPECT_TRUE(server_.WaitFor(stored, kUploads));
  EXPECT_EQ(Query("SELECT acked FROM edge_streams s JOIN edge_devices d ON "
                  "d.device = s.device AND d.incarnation = s.incarnation "
                  "WHERE d.device = 'pump-1'")
                .integer,
            kUploads);
  mute.CloseSend();
  reader.join();
  EXPECT_TRUE(mute.Finish().ok());
}

TEST_F(EdgeServiceTest, ARestartedNodeShowsItsEarlierDevicesDisconnected) {
  auto options = [](ServerOptions& o) {
    o.edge.command_lock_ms = 300;
    o.edge.sweep_ms = 50;
  };
  // A device this node served before, in an earlier process, that never
  // said goodbye (the process died).
  ASSERT_TRUE(
      Execute(edge::HelloCommand("pump-9", "inc-1", "1-0-1", 1, WallMs()))
          .ok());
  Device live(server_.endpoint(), "pump-1", kToken);
  live.Hello();
  live.End();
  ASSERT_TRUE(server_.Restart(options).ok());
  Device again(server_.endpoint(), "pump-1", kToken);
  again.Hello();
  EXPECT_TRUE(server_.WaitFor(
      "SELECT connected FROM edge_devices WHERE device = 'pump-9'", 0));
  EXPECT_EQ(Query("SELECT connected FROM edge_devices WHERE device = 'pump-1'")
                .integer,
            1);
  again.End();
}

}  // namespace
}  // namespace raftsql::server
