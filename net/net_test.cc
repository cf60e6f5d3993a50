#include <grpcpp/grpcpp.h>

#include <memory>

#include "gtest/gtest.h"
#include "net/convert.h"
#include "net/raftsql.grpc.pb.h"

namespace raftsql::net {
namespace {

core::Message Sample() {
  core::Message m;
  m.type = core::MessageType::kSnap;
  m.to = 2;
  m.from = 1;
  m.term = 7;
  m.log_term = 6;
  m.index = 41;
  m.commit = 40;
  m.entries = {
      core::Entry{6, 42, core::EntryType::kNormal, std::string("a\0b", 3)},
      core::Entry{7, 43, core::EntryType::kConfChange, "0:4:"}};
  m.reject = true;
  m.reject_hint = 9;
  m.context = "ctx";
  m.snapshot = core::Snapshot{core::SnapshotMetadata{40, 6, {{1, 2, 3}, {4}}},
                              std::string("\x00\xff", 2)};
  m.snapshot_offset = 1024;
  m.snapshot_size = 4096;
  return m;
}

TEST(Convert, RaftMessageRoundTripsThroughTheWire) {
  const core::Message m = Sample();
  v1::RaftMessage p;
  ToProto(m, &p);
  std::string wire;
  ASSERT_TRUE(p.SerializeToString(&wire));
  v1::RaftMessage back;
  ASSERT_TRUE(back.ParseFromString(wire));
  absl::StatusOr<core::Message> got = FromProto(back);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->DebugString(), m.DebugString());
  EXPECT_EQ(got->entries, m.entries);
  EXPECT_EQ(got->snapshot, m.snapshot);
  EXPECT_EQ(got->context, m.context);
  EXPECT_EQ(got->snapshot_offset, 1024u);
  EXPECT_EQ(got->snapshot_size, 4096u);
}

TEST(Convert, GarbageAndLocalTypesAreRefused) {
  v1::RaftMessage p;
  p.set_type(200);
  EXPECT_EQ(FromProto(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.set_type(static_cast<uint32_t>(core::MessageType::kHup));
  EXPECT_EQ(FromProto(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.set_type(static_cast<uint32_t>(core::MessageType::kApp));
  p.add_entries()->set_type(99);
  EXPECT_EQ(FromProto(p).status().code(), absl::StatusCode::kInvalidArgument);
  v1::RaftMessage garbage;
  EXPECT_FALSE(garbage.ParseFromString("\xff\xff\xff\xff not a proto"));
}

// The offline gRPC toolchain end to end: a PeerService on loopback receives
// a batch from a stub.
class CollectingPeer final : public v1::PeerService::Service {
 public:
  grpc::Status Send(grpc::ServerContext*, const v1::RaftBatch* batch,
                    v1::RaftBatchAck*) override {
    for (const v1::RaftMessage& p : batch->messages()) {
      absl::StatusOr<core::Message> m = FromProto(p);
      if (!m.ok()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            std::string(m.status().message()));
      }
      received.push_back(*m);
    }
    return grpc::Status::OK;
  }
  std::vector<core::Message> received;
};

TEST(PeerService, BatchReachesAServerOnLoopback) {
  CollectingPeer peer;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&peer);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::PeerService::NewStub(channel);
  v1::RaftBatch batch;
  ToProto(Sample(), batch.add_messages());
  v1::RaftBatchAck ack;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status s = stub->Send(&ctx, batch, &ack);
  EXPECT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(peer.received.size(), 1u);
  EXPECT_EQ(peer.received[0].snapshot, Sample().snapshot);
  v1::RaftBatch bad;
  bad.add_messages()->set_type(200);
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(10));
  EXPECT_EQ(stub->Send(&ctx2, bad, &ack).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  server->Shutdown();
}

}  // namespace
}  // namespace raftsql::net
