#include "net/stream_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tools/certs.h"

namespace raftsql::net {
namespace {

using Clock = std::chrono::steady_clock;

// A node's transport with its own poller; what it delivered.
struct Node {
  std::unique_ptr<Poller> poller;
  std::unique_ptr<StreamTransport> transport;
  std::vector<core::Message> delivered;
  std::vector<std::string> from;
  std::vector<uint64_t> unreachable;
  std::map<uint64_t, std::string> addresses;

  // Sockets ready now: accepted, read, written.
  void Turn() {
    transport->OnReady(
        poller->Wait(Clock::now() + std::chrono::milliseconds(1)));
    transport->Tick();
  }
};

std::unique_ptr<Node> Start(uint64_t id, StreamTransportOptions o = {},
                            int port = 0) {
  auto n = std::make_unique<Node>();
  n->poller = std::move(*Poller::Create());
  o.self_id = id;
  o.listen = absl::StrCat("127.0.0.1:", port);
  o.self_address = absl::StrCat("node", id);
  StreamTransportCallbacks cb;
  Node* node = n.get();
  cb.resolve = [node](uint64_t peer) { return node->addresses[peer]; };
  cb.on_unreachable = [node](uint64_t peer) {
    node->unreachable.push_back(peer);
  };
  cb.on_messages = [node](std::vector<core::Message> ms,
                          const std::string& from, const std::string&) {
    for (core::Message& m : ms) node->delivered.push_back(std::move(m));
    node->from.push_back(from);
  };
  absl::StatusOr<std::unique_ptr<StreamTransport>> t =
      StreamTransport::Create(o, cb, n->poller.get());
  EXPECT_TRUE(t.ok()) << t.status();
  n->transport = std::move(*t);
  return n;
}

std::string AddressOf(const Node& n) {
  return absl::StrCat("127.0.0.1:", n.transport->port());
}

// Turns both nodes until `done` (at most 10 s of turns).
template <typename Done>
bool RunUntil(std::vector<Node*> nodes, Done done) {
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (Clock::now() > give_up) return false;
    for (Node* n : nodes) n->Turn();
  }
  return true;
}

core::Message Append(uint64_t from, uint64_t to, uint64_t index,
                     std::string data = "x") {
  core::Message m;
  m.type = core::MessageType::kApp;
  m.from = from;
  m.to = to;
  m.term = 3;
  m.index = index;
  m.log_term = 3;
  core::Entry e;
  e.term = 3;
  e.index = index + 1;
  e.data = std::move(data);
  m.entries.push_back(std::move(e));
  return m;
}

// A plain client socket connected to `n`.
int Dial(const Node& n) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(n.transport->port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

// True once the node has closed `fd` (a read sees the end).
bool ClosedByNode(Node& n, int fd) {
  return RunUntil({&n}, [&] {
    char c;
    const ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno == ECONNRESET);
  });
}

TEST(StreamTransport, AMessageArrivesWithItsFieldsAndTheSendersAddress) {
  auto a = Start(1);
  auto b = Start(2);
  a->addresses[2] = AddressOf(*b);
  a->transport->Send(Append(1, 2, 7, "payload"));
  a->transport->Flush();
  ASSERT_TRUE(
      RunUntil({a.get(), b.get()}, [&] { return !b->delivered.empty(); }));
  const core::Message& m = b->delivered.at(0);
  EXPECT_EQ(m.type, core::MessageType::kApp);
  EXPECT_EQ(m.from, 1u);
  EXPECT_EQ(m.index, 7u);
  ASSERT_EQ(m.entries.size(), 1u);
  EXPECT_EQ(m.entries[0].data, "payload");
  EXPECT_EQ(b->from.at(0), "node1");
  EXPECT_EQ(a->transport->sent(), 1u);
  EXPECT_TRUE(a->unreachable.empty());
}

TEST(StreamTransport, ManyMessagesArriveInTheOrderSent) {
  auto a = Start(1);
  auto b = Start(2);
  a->addresses[2] = AddressOf(*b);
  for (uint64_t i = 0; i < 3000; ++i) {
    a->transport->Send(Append(1, 2, i, std::string(1000, 'a' + i % 26)));
    if (i % 7 == 0) a->transport->Flush();
    if (i % 100 == 0) a->Turn();
  }
  a->transport->Flush();
  ASSERT_TRUE(RunUntil({a.get(), b.get()},
                       [&] { return b->delivered.size() == 3000; }));
  for (uint64_t i = 0; i < 3000; ++i) {
    ASSERT_EQ(b->delivered[i].index, i);
    ASSERT_EQ(b->delivered[i].entries[0].data[0], 'a' + i % 26);
  }
  EXPECT_EQ(a->transport->sent(), 3000u);
  EXPECT_EQ(a->transport->dropped(), 0u);
  // Batched: far fewer frames than messages.
  EXPECT_LT(b->from.size(), 3000u);
}

TEST(StreamTransport, AMessageLargerThanTheSocketsBuffersArrivesWhole) {
  auto a = Start(1);
  auto b = Start(2);
  a->addresses[2] = AddressOf(*b);
  std::string big(24 << 20, 'z');
  big[12345] = 'q';
  a->transport->Send(Append(1, 2, 1, big));
  a->transport->Flush();
  ASSERT_TRUE(
      RunUntil({a.get(), b.get()}, [&] { return !b->delivered.empty(); }));
  EXPECT_EQ(b->delivered[0].entries[0].data, big);
}

TEST(StreamTransport, AQueueOverItsBoundDropsItsOldestMessages) {
  StreamTransportOptions o;
  o.max_queued_messages = 4;
  auto a = Start(1, o);
  for (uint64_t i = 0; i < 10; ++i) a->transport->Send(Append(1, 2, i));
  EXPECT_EQ(a->transport->dropped(), 6u);
  EXPECT_EQ(a->transport->QueueDepths()[2], 4u);
}

TEST(StreamTransport, APeerThatIsDownIsReportedAndReachedOnceItIsUp) {
  // A port nobody listens on (yet).
  auto probe = Start(9);
  const int port = probe->transport->port();
  probe.reset();
  StreamTransportOptions o;
  o.min_backoff_ms = 1;
  o.max_backoff_ms = 5;
  auto a = Start(1, o);
  a->addresses[2] = absl::StrCat("127.0.0.1:", port);
  a->transport->Send(Append(1, 2, 1));
  a->transport->Flush();
  ASSERT_TRUE(RunUntil({a.get()}, [&] { return !a->unreachable.empty(); }));
  EXPECT_EQ(a->unreachable[0], 2u);
  auto b = Start(2, {}, port);
  a->transport->Send(Append(1, 2, 2));  // Raft resends; the queue kept 1.
  ASSERT_TRUE(
      RunUntil({a.get(), b.get()}, [&] { return b->delivered.size() == 2; }));
  EXPECT_EQ(b->delivered[0].index, 1u);
  EXPECT_EQ(b->delivered[1].index, 2u);
}

TEST(StreamTransport, AnUnknownAddressDropsThePeersQueue) {
  auto a = Start(1);
  a->transport->Send(Append(1, 5, 1));
  a->transport->Flush();
  EXPECT_EQ(a->unreachable, std::vector<uint64_t>{5});
  EXPECT_EQ(a->transport->dropped(), 1u);
  EXPECT_EQ(a->transport->QueueDepths()[5], 0u);
}

TEST(StreamTransport, AConnectionWithoutThePrefaceIsClosedAndPeersGoOn) {
  auto a = Start(1);
  auto b = Start(2);
  const int fd = Dial(*b);
  const std::string http = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  ASSERT_EQ(write(fd, http.data(), http.size()),
            static_cast<ssize_t>(http.size()));
  EXPECT_TRUE(ClosedByNode(*b, fd));
  close(fd);
  a->addresses[2] = AddressOf(*b);
  a->transport->Send(Append(1, 2, 1));
  a->transport->Flush();
  EXPECT_TRUE(
      RunUntil({a.get(), b.get()}, [&] { return !b->delivered.empty(); }));
}

TEST(StreamTransport, AFrameLongerThanTheBoundEndsTheConnection) {
  StreamTransportOptions o;
  o.max_frame_bytes = 1 << 20;
  auto b = Start(2, o);
  const int fd = Dial(*b);
  std::string bytes(StreamTransport::kPreface, StreamTransport::kPrefaceBytes);
  bytes += std::string("\x01\x00\x10\x00", 4);  // 1 MiB + 1
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()),
            static_cast<ssize_t>(bytes.size()));
  EXPECT_TRUE(ClosedByNode(*b, fd));
  close(fd);
  EXPECT_TRUE(b->delivered.empty());
}

TEST(StreamTransport, AFrameThatIsNotABatchEndsTheConnection) {
  auto b = Start(2);
  const int fd = Dial(*b);
  std::string bytes(StreamTransport::kPreface, StreamTransport::kPrefaceBytes);
  bytes += std::string("\x03\x00\x00\x00\xff\xff\xff", 7);
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()),
            static_cast<ssize_t>(bytes.size()));
  EXPECT_TRUE(ClosedByNode(*b, fd));
  close(fd);
  EXPECT_TRUE(b->delivered.empty());
}

TEST(StreamTransport, ConnectionsOverTheBoundAreRefused) {
  StreamTransportOptions o;
  o.max_incoming = 2;
  auto b = Start(2, o);
  const int one = Dial(*b);
  const int two = Dial(*b);
  const int three = Dial(*b);
  EXPECT_TRUE(ClosedByNode(*b, three));
  EXPECT_EQ(b->transport->refused_connections(), 1u);
  for (int fd : {one, two, three}) close(fd);
}

TEST(StreamTransport, OutOfDescriptorsItStopsWatchingTheListenerUntilATick) {
  auto b = Start(2);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  const int lowest_free = dup(0);
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  // Room for the client's socket, none for the accepted one.
  rlimit tight = old;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free + 1);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  const int fd = Dial(*b);
  b->transport->OnReady(
      b->poller->Wait(Clock::now() + std::chrono::seconds(1)));  // EMFILE
  // The listener is still ready, but no longer watched: no spinning.
  const bool quiet =
      b->poller->Wait(Clock::now() + std::chrono::milliseconds(20)).empty();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_TRUE(quiet);
  // From the next tick on it accepts again.
  const std::string http = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_EQ(write(fd, http.data(), http.size()),
            static_cast<ssize_t>(http.size()));
  EXPECT_TRUE(ClosedByNode(*b, fd));
  close(fd);
}

TEST(StreamTransport, ANodesNewerConnectionClosesItsOlderOnes) {
  // Room for two connections: without the older ones closed, the third
  // start of node 1 (a restart whose host sent no reset) would be refused.
  StreamTransportOptions o;
  o.max_incoming = 2;
  auto b = Start(2, o);
  std::vector<std::unique_ptr<Node>> restarts;
  for (uint64_t run = 1; run <= 4; ++run) {
    restarts.push_back(Start(1));
    Node& a = *restarts.back();
    a.addresses[2] = AddressOf(*b);
    a.transport->Send(Append(1, 2, run));
    a.transport->Flush();
    ASSERT_TRUE(
        RunUntil({&a, b.get()}, [&] { return b->delivered.size() == run; }))
        << "start " << run;
  }
  EXPECT_EQ(b->transport->refused_connections(), 0u);
  // The first start's connection was closed: it hears of it.
  Node& first = *restarts.front();
  EXPECT_TRUE(RunUntil({&first}, [&] { return !first.unreachable.empty(); }));
}

TEST(StreamTransport,
     AConnectionThatSaysNothingIsClosedAfterThePrefaceTimeout) {
  StreamTransportOptions o;
  o.preface_timeout_ms = 20;
  auto b = Start(2, o);
  const int fd = Dial(*b);
  EXPECT_TRUE(ClosedByNode(*b, fd));
  close(fd);
}

// Mutual TLS with the cluster's certificates (tools/certs.h).
class StreamTransportTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(
        getenv("TEST_TMPDIR") != nullptr ? getenv("TEST_TMPDIR") : "/tmp",
        "/stream-certs-", getpid()));
    ASSERT_TRUE(tools::EnsureLocalClusterCerts(*dir_, 3).ok());
  }
  static Tls TlsOf(const std::string& name) {
    absl::StatusOr<Tls> tls = LoadTlsDir(*dir_, name);
    EXPECT_TRUE(tls.ok()) << tls.status();
    return *tls;
  }
  static std::unique_ptr<Node> StartAs(uint64_t id, const std::string& name) {
    StreamTransportOptions o;
    o.tls = TlsOf(name);
    o.min_backoff_ms = 1;
    o.max_backoff_ms = 5;
    return Start(id, o);
  }
  static std::string* dir_;
};
std::string* StreamTransportTls::dir_ = nullptr;

TEST_F(StreamTransportTls, AMessageArrivesOverMutualTls) {
  auto a = StartAs(1, "node-1");
  auto b = StartAs(2, "node-2");
  a->addresses[2] = AddressOf(*b);
  for (uint64_t i = 0; i < 100; ++i) {
    a->transport->Send(Append(1, 2, i, std::string(20000, 'k')));
  }
  a->transport->Flush();
  ASSERT_TRUE(
      RunUntil({a.get(), b.get()}, [&] { return b->delivered.size() == 100; }));
  EXPECT_EQ(b->delivered[99].index, 99u);
  EXPECT_EQ(b->delivered[99].entries[0].data, std::string(20000, 'k'));
  EXPECT_TRUE(a->unreachable.empty());
}

TEST_F(StreamTransportTls, ANodeShowingAnotherNodesCertificateIsNotSentTo) {
  auto a = StartAs(1, "node-1");
  auto impostor = StartAs(3, "node-3");
  a->addresses[2] = AddressOf(*impostor);  // node 2's address, node 3's key
  a->transport->Send(Append(1, 2, 1));
  a->transport->Flush();
  ASSERT_TRUE(RunUntil({a.get(), impostor.get()},
                       [&] { return !a->unreachable.empty(); }));
  EXPECT_TRUE(impostor->delivered.empty());
  EXPECT_EQ(a->transport->sent(), 0u);
}

TEST_F(StreamTransportTls, AMessageNamingAnotherSenderEndsTheConnection) {
  auto a = StartAs(1, "node-1");
  auto b = StartAs(2, "node-2");
  a->addresses[2] = AddressOf(*b);
  a->transport->Send(Append(3, 2, 1));  // node 1's certificate, node 3's name
  a->transport->Flush();
  ASSERT_TRUE(
      RunUntil({a.get(), b.get()}, [&] { return !a->unreachable.empty(); }));
  EXPECT_TRUE(b->delivered.empty());
}

TEST_F(StreamTransportTls, AClientCertificateCannotSpeakAsAPeer) {
  auto client = StartAs(1, "client-root");
  auto b = StartAs(2, "node-2");
  client->addresses[2] = AddressOf(*b);
  client->transport->Send(Append(1, 2, 1));
  client->transport->Flush();
  ASSERT_TRUE(RunUntil({client.get(), b.get()},
                       [&] { return !client->unreachable.empty(); }));
  EXPECT_TRUE(b->delivered.empty());
}

TEST_F(StreamTransportTls, APlaintextPeerIsRefusedAndTheNodeServesOn) {
  auto b = StartAs(2, "node-2");
  auto plain = Start(1);
  plain->addresses[2] = AddressOf(*b);
  plain->transport->Send(Append(1, 2, 1));
  plain->transport->Flush();
  ASSERT_TRUE(RunUntil({plain.get(), b.get()},
                       [&] { return !plain->unreachable.empty(); }));
  EXPECT_TRUE(b->delivered.empty());
  auto a = StartAs(1, "node-1");
  a->addresses[2] = AddressOf(*b);
  a->transport->Send(Append(1, 2, 2));
  a->transport->Flush();
  EXPECT_TRUE(
      RunUntil({a.get(), b.get()}, [&] { return !b->delivered.empty(); }));
}

TEST_F(StreamTransportTls, KeysThatDoNotLoadAreAnError) {
  auto poller = std::move(*Poller::Create());
  StreamTransportOptions o;
  o.listen = "127.0.0.1:0";
  o.tls = TlsOf("node-1");
  o.tls.key_pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n";
  absl::StatusOr<std::unique_ptr<StreamTransport>> t =
      StreamTransport::Create(o, {}, poller.get());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace raftsql::net
