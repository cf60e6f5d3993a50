// DatabaseService.ExecuteStream against a one-node RaftServer on loopback
// (real RocksDB, SQLite and gRPC; the node elects itself).
#include "server/execute_stream.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "net/execute_stream_client.h"
#include "net/raftsql.grpc.pb.h"
#include "server/one_node_server.h"
#include "server/service.h"
#include "tools/process.h"

namespace raftsql::server {
namespace {

using Stream = grpc::ClientReaderWriter<v1::ExecuteStreamRequest,
                                        v1::ExecuteStreamResponse>;

constexpr size_t kMaxRequestBytes = 64 << 10;
constexpr size_t kStreamHeldBytes = 1 << 20;

v1::ExecuteRequest Sql(const std::string& sql, int64_t key = 0) {
  v1::ExecuteRequest r;
  v1::Statement* s = r.add_statements();
  s->set_sql(sql);
  if (key != 0) s->add_positional()->set_integer(key);
  return r;
}

void Add(v1::ExecuteStreamRequest* message, uint64_t tag,
         v1::ExecuteRequest request) {
  v1::TaggedExecute* t = message->add_requests();
  t->set_tag(tag);
  *t->mutable_request() = std::move(request);
}

class ExecuteStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_
                    .Start([](ServerOptions& o) {
                      o.max_request_bytes = kMaxRequestBytes;
                      o.stream_held_bytes_max = kStreamHeldBytes;
                    })
                    .ok());
    stub_ = v1::DatabaseService::NewStub(grpc::CreateChannel(
        server_.endpoint(), grpc::InsecureChannelCredentials()));
  }

  // Sends `messages` (from a thread of their own, as a client would while
  // it reads), closes the sending side and reads every answer by tag.
  std::map<uint64_t, v1::TaggedResult> RoundTrip(
      const std::vector<v1::ExecuteStreamRequest>& messages,
      grpc::Status* end) {
    grpc::ClientContext ctx;
    std::unique_ptr<Stream> stream = stub_->ExecuteStream(&ctx);
    std::thread writer([&] {
      for (const auto& m : messages) {
        if (!stream->Write(m)) break;
      }
      stream->WritesDone();
    });
    std::map<uint64_t, v1::TaggedResult> answers;
    v1::ExecuteStreamResponse response;
    while (stream->Read(&response)) {
      for (const v1::TaggedResult& r : response.results()) {
        EXPECT_TRUE(answers.emplace(r.tag(), r).second)
            << "tag " << r.tag() << " answered twice";
      }
    }
    writer.join();
    *end = stream->Finish();
    return answers;
  }

  int64_t Count(const std::string& table) {
    grpc::ClientContext ctx;
    v1::QueryRequest q;
    q.mutable_statement()->set_sql("SELECT count(*) FROM " + table);
    q.set_consistency(v1::LINEARIZABLE);
    v1::QueryResponse r;
    const grpc::Status s = stub_->Query(&ctx, q, &r);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return s.ok() ? r.rows(0).values(0).integer() : -1;
  }

  OneNodeServer server_;
  std::unique_ptr<v1::DatabaseService::Stub> stub_;
};

TEST_F(ExecuteStreamTest, AnswersEveryPipelinedRequestByItsTag) {
  std::vector<v1::ExecuteStreamRequest> messages(2);
  Add(&messages[0], 1, Sql("CREATE TABLE t(k INTEGER PRIMARY KEY)"));
  Add(&messages[0], 2, Sql("INSERT INTO t VALUES (?)", 1));
  Add(&messages[0], 3, Sql("INSERT INTO nope VALUES (1)"));
  Add(&messages[0], 4, Sql("SELEC 1"));
  for (int i = 0; i < 200; ++i) {
    Add(&messages[1], 100 + i, Sql("INSERT INTO t VALUES (?)", 2 + i));
  }
  grpc::Status end;
  std::map<uint64_t, v1::TaggedResult> answers = RoundTrip(messages, &end);
  EXPECT_TRUE(end.ok()) << end.error_message();
  ASSERT_EQ(answers.size(), 204u);
  EXPECT_EQ(answers[1].code(), 0);
  EXPECT_EQ(answers[2].code(), 0);
  EXPECT_EQ(answers[2].response().results(0).rows_affected(), 1);
  EXPECT_GT(answers[2].response().index(), answers[1].response().index());
  // An unknown table fails when it applies; bad syntax before the log.
  EXPECT_EQ(answers[3].code(), 0);
  EXPECT_NE(answers[3].response().results(0).error().find("no such table"),
            std::string::npos);
  EXPECT_EQ(answers[4].code(), grpc::StatusCode::INVALID_ARGUMENT);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(answers[100 + i].code(), 0) << i;
  EXPECT_EQ(Count("t"), 201);
}

TEST_F(ExecuteStreamTest, ABadRequestFailsAloneAndTheStreamGoesOn) {
  std::vector<v1::ExecuteStreamRequest> messages(1);
  Add(&messages[0], 1, Sql("CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)"));
  v1::ExecuteRequest big = Sql("INSERT INTO t VALUES (7, ?)");
  big.mutable_statements(0)->add_positional()->set_text(
      std::string(kMaxRequestBytes + 1, 'x'));
  Add(&messages[0], 2, big);
  v1::ExecuteRequest sessionless = Sql("INSERT INTO t VALUES (8, 'a')");
  sessionless.set_session_id(5);  // A session needs a sequence number.
  Add(&messages[0], 3, sessionless);
  Add(&messages[0], 4, Sql("INSERT INTO t VALUES (9, 'b')"));
  grpc::Status end;
  std::map<uint64_t, v1::TaggedResult> answers = RoundTrip(messages, &end);
  EXPECT_TRUE(end.ok()) << end.error_message();
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[2].code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(answers[2].error().find("too large"), std::string::npos);
  EXPECT_EQ(answers[3].code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(answers[4].code(), 0);
  EXPECT_EQ(Count("t"), 1);
}

TEST_F(ExecuteStreamTest, ARetriedSessionRequestAppliesOnce) {
  std::vector<v1::ExecuteStreamRequest> messages(2);
  Add(&messages[0], 1, Sql("CREATE TABLE t(k INTEGER PRIMARY KEY)"));
  v1::ExecuteRequest once = Sql("INSERT INTO t VALUES (1)");
  once.set_session_id(77);
  once.set_sequence(1);
  Add(&messages[0], 2, once);
  Add(&messages[1], 3, once);  // The client's retry.
  grpc::Status end;
  std::map<uint64_t, v1::TaggedResult> answers = RoundTrip(messages, &end);
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[2].code(), 0);
  EXPECT_EQ(answers[3].code(), 0);
  EXPECT_FALSE(answers[2].response().duplicate());
  EXPECT_TRUE(answers[3].response().duplicate());
  EXPECT_EQ(Count("t"), 1);
}

TEST_F(ExecuteStreamTest, MoreRequestsThanTheBoundAreAllAnswered) {
  // Over twice kMaxStreamInFlight: the server pauses reading and resumes.
  std::vector<v1::ExecuteStreamRequest> messages(6);
  Add(&messages[0], 1, Sql("CREATE TABLE t(k INTEGER PRIMARY KEY)"));
  uint64_t tag = 2;
  for (auto& m : messages) {
    for (int i = 0; i < 500; ++i, ++tag) {
      Add(&m, tag, Sql("INSERT INTO t VALUES (?)", static_cast<int64_t>(tag)));
    }
  }
  grpc::Status end;
  std::map<uint64_t, v1::TaggedResult> answers = RoundTrip(messages, &end);
  EXPECT_TRUE(end.ok()) << end.error_message();
  ASSERT_EQ(answers.size(), 3001u);
  for (const auto& [t, r] : answers) EXPECT_EQ(r.code(), 0) << t;
  EXPECT_EQ(Count("t"), 3000);
}

TEST_F(ExecuteStreamTest, LargeRequestsPastTheByteBoundAreAllAnswered) {
  // 120 requests of 50 KB, one to a message (the message size limit):
  // six times the stream's byte bound, far below its count bound. The
  // server pauses reading at the bytes and resumes.
  const uint64_t pauses = ExecuteStreamBytePauses();
  std::vector<v1::ExecuteStreamRequest> messages(121);
  Add(&messages[0], 1, Sql("CREATE TABLE t(k INTEGER PRIMARY KEY, v)"));
  uint64_t tag = 2;
  const std::string blob(50'000, 'b');
  for (size_t m = 1; m < messages.size(); ++m) {
    for (int i = 0; i < 1; ++i, ++tag) {
      v1::ExecuteRequest r =
          Sql("INSERT INTO t VALUES (?, ?)", static_cast<int64_t>(tag));
      r.mutable_statements(0)->add_positional()->set_blob(blob);
      Add(&messages[m], tag, std::move(r));
    }
  }
  grpc::Status end;
  std::map<uint64_t, v1::TaggedResult> answers = RoundTrip(messages, &end);
  EXPECT_TRUE(end.ok()) << end.error_message();
  ASSERT_EQ(answers.size(), 121u);
  for (const auto& [t, r] : answers) EXPECT_EQ(r.code(), 0) << t;
  EXPECT_EQ(Count("t"), 120);
  EXPECT_GT(ExecuteStreamBytePauses(), pauses);
}

TEST_F(ExecuteStreamTest, AnErrorEchoingAHugeTokenIsCut) {
  std::vector<v1::ExecuteStreamRequest> messages(1);
  Add(&messages[0], 1,
      Sql("INSERT INTO " + std::string(30'000, 'x') + " VALUES (1)"));
  grpc::Status end;
  std::map<uint64_t, v1::TaggedResult> answers = RoundTrip(messages, &end);
  ASSERT_EQ(answers.size(), 1u);
  ASSERT_EQ(answers[1].response().results_size(), 1);
  const v1::StatementResult& r = answers[1].response().results(0);
  EXPECT_NE(r.code(), 0);
  EXPECT_LT(r.error().size(), 1200u) << r.error().size();
}

TEST_F(ExecuteStreamTest, AClientThatCancelsMidStreamLeavesTheServerServing) {
  {
    grpc::ClientContext ctx;
    std::unique_ptr<Stream> stream = stub_->ExecuteStream(&ctx);
    v1::ExecuteStreamRequest m;
    Add(&m, 1, Sql("CREATE TABLE t(k INTEGER PRIMARY KEY)"));
    for (int i = 0; i < 300; ++i)
      Add(&m, 2 + i, Sql("INSERT INTO t VALUES (?)", i + 1));
    ASSERT_TRUE(stream->Write(m));
    ctx.TryCancel();
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // The node goes on; whatever of the cancelled stream was proposed
  // applies (its answers had nowhere to go).
  std::vector<v1::ExecuteStreamRequest> messages(1);
  Add(&messages[0], 1, Sql("CREATE TABLE IF NOT EXISTS u(k)"));
  Add(&messages[0], 2, Sql("INSERT INTO u VALUES (1)"));
  grpc::Status end;
  std::map<uint64_t, v1::TaggedResult> answers = RoundTrip(messages, &end);
  EXPECT_TRUE(end.ok()) << end.error_message();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[2].code(), 0);
  EXPECT_EQ(Count("u"), 1);
}

// Collects a client's answers by tag (each must come exactly once).
struct Answers {
  void Add(uint64_t tag, const absl::StatusOr<v1::ExecuteResponse>& r) {
    std::lock_guard<std::mutex> l(mu);
    if (!by_tag.emplace(tag, r.status()).second) ++duplicates;
    cv.notify_all();
  }
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(30),
                       [&] { return by_tag.size() >= n; });
  }
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, absl::Status> by_tag;
  int duplicates = 0;
  net::ExecuteStreamClient::OnAnswer Callback() {
    return [this](uint64_t tag, absl::StatusOr<v1::ExecuteResponse> r) {
      Add(tag, r);
    };
  }
};

// Tag 0 creates table t, tags 1..rows insert a row each.
void SendTableAndRows(net::ExecuteStreamClient& client, int rows) {
  ASSERT_TRUE(client.Send(0, Sql("CREATE TABLE t(k INTEGER PRIMARY KEY)")));
  for (int i = 1; i <= rows; ++i) {
    ASSERT_TRUE(client.Send(i, Sql("INSERT INTO t VALUES (?)", i)));
  }
}

TEST_F(ExecuteStreamTest, TheStreamClientAnswersEveryRequestExactlyOnce) {
  Answers answers;
  net::ExecuteStreamClient client(stub_.get(), answers.Callback());
  SendTableAndRows(client, 500);
  EXPECT_TRUE(client.Close().ok());
  EXPECT_FALSE(client.Send(999, Sql("INSERT INTO t VALUES (999)")));
  ASSERT_EQ(answers.by_tag.size(), 501u);
  EXPECT_EQ(answers.duplicates, 0);
  for (const auto& [tag, st] : answers.by_tag) EXPECT_TRUE(st.ok()) << tag;
  EXPECT_EQ(Count("t"), 500);
}

TEST_F(ExecuteStreamTest, AServerThatStopsLeavesNoRequestUnanswered) {
  Answers answers;
  net::ExecuteStreamClient client(stub_.get(), answers.Callback());
  SendTableAndRows(client, 300);
  // The node stops with requests in flight: each is answered, by the
  // server (done, or "outcome unknown") or by the client when the stream
  // ends; none twice, and Close returns.
  server_.Stop(0);
  ASSERT_TRUE(answers.WaitFor(301));
  (void)client.Close();
  EXPECT_EQ(answers.duplicates, 0);
  for (const auto& [tag, st] : answers.by_tag) {
    EXPECT_TRUE(st.ok() || absl::IsUnavailable(st)) << tag << ": " << st;
  }
}

}  // namespace
}  // namespace raftsql::server
