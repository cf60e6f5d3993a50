// Watch through real gRPC on a one-node server: committed changes in
// order, then new ones as they commit; a resume from an index and a table
// filter; progress while the watched tables are quiet; an index the node
// no longer holds; a node that stops.
#include "server/watch.h"

#include <grpcpp/grpcpp.h>

#include <future>
#include <thread>

#include "gtest/gtest.h"
#include "net/client.h"
#include "server/one_node_server.h"

namespace raftsql::server {
namespace {

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start().ok()); }
  net::Client Client() { return net::Client({server_.endpoint()}); }
  uint64_t Write(const std::string& sql) {
    v1::ExecuteRequest e;
    e.add_statements()->set_sql(sql);
    absl::StatusOr<v1::ExecuteResponse> r = Client().Execute(e);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status();
    if (!r.ok()) return 0;
    EXPECT_EQ(r->results(0).code(), 0) << sql << ": " << r->results(0).error();
    return r->index();
  }
  // Watches until `want` changes arrived (or 10 s passed), then stops.
  std::vector<v1::Change> Collect(v1::WatchRequest request, size_t want,
                                  absl::Status* end = nullptr) {
    std::vector<v1::Change> got;
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    const absl::Status s = Client().Watch(request, [&](const auto& m) {
      got.insert(got.end(), m.changes().begin(), m.changes().end());
      return got.size() < want && std::chrono::steady_clock::now() < until;
    });
    if (end != nullptr) *end = s;
    return got;
  }
  static std::string Show(const v1::Change& c) {
    std::string s = absl::StrCat(c.table(), " ", v1::Change::Op_Name(c.op()),
                                 " ", c.rowid());
    for (const v1::Value& v : c.values()) {
      absl::StrAppend(&s, " ",
                      v.kind_case() == v1::Value::kText
                          ? v.text()
                          : absl::StrCat(v.integer()));
    }
    return s;
  }

  OneNodeServer server_;
};

TEST_F(WatchTest, AWatcherGetsCommittedChangesInOrderThenNewOnes) {
  Write("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  const uint64_t first = Write("INSERT INTO t VALUES (1, 'a'), (2, 'b')");
  std::promise<std::vector<v1::Change>> result;
  std::thread watcher([&] {
    v1::WatchRequest r;
    r.set_from_index(first);
    result.set_value(Collect(r, 5));
  });
  Write("UPDATE t SET v = 'bb' WHERE id = 2");
  Write("DELETE FROM t WHERE id = 1");
  Write("INSERT INTO t VALUES (3, 'c')");
  std::vector<v1::Change> got = result.get_future().get();
  watcher.join();
  std::vector<std::string> shown;
  for (const v1::Change& c : got) shown.push_back(Show(c));
  EXPECT_EQ(shown, (std::vector<std::string>{
                       "t INSERT 1 1 a", "t INSERT 2 2 b", "t UPDATE 2 2 bb",
                       "t DELETE 1 1 a", "t INSERT 3 3 c"}));
  for (size_t i = 1; i < got.size(); ++i) {
    EXPECT_LE(got[i - 1].index(), got[i].index());
  }
}

TEST_F(WatchTest, AWatchResumesFromAnIndexAndKeepsToItsTables) {
  Write("CREATE TABLE a(v)");
  Write("CREATE TABLE b(v)");
  Write("INSERT INTO b VALUES ('old')");
  const uint64_t from = Write("INSERT INTO a VALUES ('skip')");
  Write("INSERT INTO b VALUES ('new')");
  v1::WatchRequest r;
  r.set_from_index(from);
  r.add_tables("B");  // Table names match as SQLite's do.
  std::vector<v1::Change> got = Collect(r, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(Show(got[0]), "b INSERT 2 new");
}

TEST_F(WatchTest, AWatcherOfQuietTablesHearsTheIndexReached) {
  Write("CREATE TABLE quiet(v)");
  Write("CREATE TABLE busy(v)");
  const uint64_t written = Write("INSERT INTO busy VALUES (1)");
  v1::WatchRequest r;
  r.add_tables("quiet");
  uint64_t reached = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  const absl::Status s = Client().Watch(r, [&](const v1::WatchResponse& m) {
    for (const v1::Change& c : m.changes()) {
      EXPECT_EQ(Show(c), "quiet SCHEMA 0");  // Its CREATE, nothing else.
    }
    reached = m.index();
    return reached < written && std::chrono::steady_clock::now() < until;
  });
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_GE(reached, written);
}

TEST_F(WatchTest, AnIndexTheNodeNoLongerHoldsIsOutOfRange) {
  ASSERT_TRUE(server_
                  .Restart([](ServerOptions& o) {
                    o.change_log_bytes = 64 << 10;  // 16 KiB segments.
                  })
                  .ok());
  Write("CREATE TABLE big(v)");
  for (int i = 0; i < 40; ++i) {
    Write("INSERT INTO big VALUES (randomblob(4000))");
  }
  v1::WatchRequest r;
  r.set_from_index(1);
  absl::Status end;
  Collect(r, 1, &end);
  EXPECT_TRUE(absl::IsOutOfRange(end)) << end;
  EXPECT_NE(end.message().find("oldest index"), std::string::npos) << end;
}

TEST_F(WatchTest, AStoppingNodeEndsItsWatchesAsUnavailable) {
  Write("CREATE TABLE t(v)");
  auto stub = v1::DatabaseService::NewStub(grpc::CreateChannel(
      server_.endpoint(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::WatchRequest r;
  auto reader = stub->Watch(&ctx, r);
  v1::WatchResponse m;
  ASSERT_TRUE(reader->Read(&m));  // The schema change.
  std::thread stop([&] { server_.Stop(2000); });
  while (reader->Read(&m)) {
  }
  const grpc::Status s = reader->Finish();
  stop.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

}  // namespace
}  // namespace raftsql::server
