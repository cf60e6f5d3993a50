#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <memory>
#include <mutex>

#include "gtest/gtest.h"
#include "net/convert.h"
#include "net/grpc_transport.h"
#include "net/raftsql.grpc.pb.h"

namespace raftsql::net {
namespace {

int FreePortForTest() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

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
// batches from a stub's stream.
class CollectingPeer final : public v1::PeerService::Service {
 public:
  grpc::Status Stream(grpc::ServerContext*,
                      grpc::ServerReader<v1::RaftBatch>* reader,
                      v1::RaftBatchAck*) override {
    {
      std::lock_guard<std::mutex> l(mu);
      ++streams;
    }
    v1::RaftBatch batch;
    while (reader->Read(&batch)) {
      std::lock_guard<std::mutex> l(mu);
      for (const v1::RaftMessage& p : batch.messages()) {
        absl::StatusOr<core::Message> m = FromProto(p);
        if (!m.ok()) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              std::string(m.status().message()));
        }
        received.push_back(*m);
      }
      from_address = batch.from_address();
      ++batches;
      cv.notify_all();
    }
    return grpc::Status::OK;
  }
  // Waits (bounded) until `n` messages arrived.
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(20),
                       [&] { return received.size() >= n; });
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<core::Message> received;
  std::string from_address;
  int batches = 0;
  int streams = 0;
};

std::unique_ptr<grpc::Server> Serve(grpc::Service* service, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           port);
  builder.RegisterService(service);
  return builder.BuildAndStart();
}

core::Message Heartbeat(uint64_t to, uint64_t commit) {
  core::Message m;
  m.type = core::MessageType::kHeartbeat;
  m.from = 1;
  m.to = to;
  m.term = 3;
  m.commit = commit;
  return m;
}

// Callbacks that send to the local server on `port`, whatever the peer.
GrpcTransportCallbacks ResolveAllTo(int port) {
  GrpcTransportCallbacks cb;
  cb.resolve = [port](uint64_t) { return "127.0.0.1:" + std::to_string(port); };
  return cb;
}

TEST(GrpcTransport, DeliversInOrderInBatchesWithTheSendersAddress) {
  CollectingPeer peer;
  int port = 0;
  std::unique_ptr<grpc::Server> server = Serve(&peer, &port);
  ASSERT_GT(port, 0);
  GrpcTransportOptions o;
  o.self_address = "127.0.0.1:1";
  GrpcTransport transport(o, ResolveAllTo(port));
  for (uint64_t i = 1; i <= 500; ++i) transport.Send(Heartbeat(2, i));
  transport.Flush();
  ASSERT_TRUE(peer.WaitFor(500));
  std::lock_guard<std::mutex> l(peer.mu);
  for (size_t i = 0; i < 500; ++i) EXPECT_EQ(peer.received[i].commit, i + 1);
  EXPECT_LT(peer.batches, 500);  // Queued messages travel together.
  EXPECT_EQ(peer.streams, 1);    // All of them on one stream.
  EXPECT_EQ(peer.from_address, "127.0.0.1:1");
  transport.Stop();
  server->Shutdown();
}

TEST(GrpcTransport, WhatIsSentBeforeAFlushTravelsAsOneBatch) {
  CollectingPeer peer;
  int port = 0;
  std::unique_ptr<grpc::Server> server = Serve(&peer, &port);
  ASSERT_GT(port, 0);
  GrpcTransport transport(GrpcTransportOptions{}, ResolveAllTo(port));
  for (uint64_t i = 1; i <= 3; ++i) transport.Send(Heartbeat(2, i));
  transport.Flush();
  ASSERT_TRUE(peer.WaitFor(3));
  std::lock_guard<std::mutex> l(peer.mu);
  EXPECT_EQ(peer.batches, 1);
}

TEST(GrpcTransport, StreamIsReopenedAfterThePeerRestarts) {
  const int port = FreePortForTest();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  auto serve = [&](CollectingPeer* peer) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    builder.RegisterService(peer);
    return builder.BuildAndStart();
  };
  std::mutex mu;
  std::condition_variable cv;
  int unreachable = 0;
  GrpcTransportOptions o;
  o.min_backoff_ms = 1;
  o.max_backoff_ms = 20;
  GrpcTransportCallbacks cb;
  cb.resolve = [&](uint64_t) { return address; };
  cb.on_unreachable = [&](uint64_t) {
    std::lock_guard<std::mutex> l(mu);
    ++unreachable;
    cv.notify_all();
  };
  GrpcTransport transport(o, cb);

  auto first = std::make_unique<CollectingPeer>();
  std::unique_ptr<grpc::Server> server = serve(first.get());
  ASSERT_NE(server, nullptr);
  for (uint64_t i = 1; i <= 10; ++i) transport.Send(Heartbeat(2, i));
  transport.Flush();
  ASSERT_TRUE(first->WaitFor(10));
  // The peer goes away with the stream open: the next sends break it.
  server->Shutdown(std::chrono::system_clock::now());
  server.reset();
  {
    std::unique_lock<std::mutex> l(mu);
    for (uint64_t i = 0; i < 200 && unreachable == 0; ++i) {
      l.unlock();
      transport.Send(Heartbeat(2, 100));
      transport.Flush();
      l.lock();
      cv.wait_for(l, std::chrono::milliseconds(50),
                  [&] { return unreachable > 0; });
    }
    ASSERT_GT(unreachable, 0);
  }
  // It comes back on the same address: a new stream carries the rest.
  CollectingPeer second;
  server = serve(&second);
  ASSERT_NE(server, nullptr);
  bool got = false;
  for (int i = 0; i < 400 && !got; ++i) {
    transport.Send(Heartbeat(2, 1000 + i));
    transport.Flush();
    std::unique_lock<std::mutex> l(second.mu);
    got = second.cv.wait_for(l, std::chrono::milliseconds(50),
                             [&] { return !second.received.empty(); });
  }
  ASSERT_TRUE(got);
  EXPECT_EQ(second.streams, 1);
  EXPECT_GE(second.received.front().commit, 1000u);
  EXPECT_GE(transport.broken_streams(), 1u);
  transport.Stop();
  server->Shutdown();
  server.reset();  // Before `second`, the service it serves.
}

TEST(GrpcTransport, UnreachablePeerIsReportedAndItsMessagesDropped) {
  std::mutex mu;
  std::condition_variable cv;
  int unreachable = 0, snapshot_failed = 0;
  GrpcTransportOptions o;
  o.max_queued_messages = 8;
  o.write_timeout_ms = 500;
  GrpcTransportCallbacks cb;
  // Node 7 listens nowhere; node 8 has no known address.
  cb.resolve = [](uint64_t id) {
    return id == 7 ? "127.0.0.1:" + std::to_string(FreePortForTest()) : "";
  };
  cb.on_unreachable = [&](uint64_t) {
    std::lock_guard<std::mutex> l(mu);
    ++unreachable;
    cv.notify_all();
  };
  cb.on_snapshot_failed = [&](uint64_t) {
    std::lock_guard<std::mutex> l(mu);
    ++snapshot_failed;
    cv.notify_all();
  };
  GrpcTransport transport(o, cb);
  core::Message snap = Sample();
  snap.to = 7;
  transport.Send(snap);
  for (uint64_t i = 0; i < 100; ++i) transport.Send(Heartbeat(8, i));
  transport.Flush();
  std::unique_lock<std::mutex> l(mu);
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(20), [&] {
    return unreachable >= 2 && snapshot_failed >= 1;
  }));
  l.unlock();
  // Sends never block; the bounded queue kept at most 8 of node 8's 100.
  EXPECT_GE(transport.dropped(), 92u);
  EXPECT_EQ(transport.sent(), 0u);
}

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
  v1::RaftBatchAck ack;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    auto writer = stub->Stream(&ctx, &ack);
    v1::RaftBatch batch;
    ToProto(Sample(), batch.add_messages());
    ASSERT_TRUE(writer->Write(batch));
    ASSERT_TRUE(writer->Write(batch));
    ASSERT_TRUE(writer->WritesDone());
    grpc::Status s = writer->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_EQ(peer.received.size(), 2u);
  EXPECT_EQ(peer.received[1].snapshot, Sample().snapshot);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    auto writer = stub->Stream(&ctx, &ack);
    v1::RaftBatch bad;
    bad.add_messages()->set_type(200);
    writer->Write(bad);
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  server->Shutdown();
}

}  // namespace
}  // namespace raftsql::net
