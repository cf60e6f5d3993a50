// Linearizable reads that run before their read index is asked (issue 17):
// kept when the index comes back at most at the state they saw, run again
// when a write committed in between, and left to the ordinary path when
// they fail or outgrow kEarlyReadBytes.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/one_node_server.h"

namespace raftsql::server {
namespace {

sm::Command Sql(const std::string& sql) {
  sm::Command c;
  c.statements.push_back(sm::Statement{sql, {}, {}});
  return c;
}

absl::StatusOr<sm::QueryResult> Read(RaftServer& node, const std::string& sql) {
  std::promise<absl::StatusOr<sm::QueryResult>> p;
  node.Query(
      sm::Statement{sql, {}, {}}, /*linearizable=*/true, sm::ReadLimits{},
      [&p](absl::StatusOr<sm::QueryResult> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

struct Early {
  uint64_t kept = 0;
  uint64_t redone = 0;
};

Early Counts(RaftServer& node) {
  const NodeMetrics m = node.Metrics(NodeState{});
  return Early{m.early_reads_kept, m.early_reads_redone};
}

class EarlyReadTest : public ::testing::Test {
 protected:
  void Start(const std::function<void(ServerOptions&)>& adjust = {}) {
    ASSERT_TRUE(server_.Start(adjust).ok());
    ASSERT_TRUE(server_
                    .ExecuteOk(Sql("CREATE TABLE t(id INTEGER PRIMARY KEY, "
                                   "v INTEGER, b BLOB)"))
                    .ok());
    ASSERT_TRUE(
        server_.ExecuteOk(Sql("INSERT INTO t VALUES(1, 1, NULL)")).ok());
  }
  OneNodeServer server_;
};

TEST_F(EarlyReadTest, ReadsOnAQuietLeaderAreAnsweredFromTheirEarlyRun) {
  Start();
  const Early before = Counts(server_.node());
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<sm::QueryResult> r =
        Read(server_.node(), "SELECT v FROM t WHERE id = 1");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->rows.size(), 1u);
    EXPECT_EQ(r->rows[0][0].integer, 1);
  }
  std::promise<absl::StatusOr<uint64_t>> version;
  server_.node().GetVersion(
      "t", /*linearizable=*/true, sm::ReadLimits{},
      [&version](absl::StatusOr<uint64_t> v) { version.set_value(v); });
  absl::StatusOr<uint64_t> v = version.get_future().get();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_GT(*v, 0u);  // Written twice.
  const Early after = Counts(server_.node());
  EXPECT_EQ(after.kept - before.kept, 6u);
  EXPECT_EQ(after.redone, before.redone);
}

TEST_F(EarlyReadTest, AWriteCommittedAfterTheEarlyRunMakesTheReadRunAgain) {
  // Between the early run and the read index: a write that completes
  // before the read index is asked must be seen.
  std::atomic<bool> write_next{false};
  Start([this, &write_next](ServerOptions& o) {
    o.after_early_read_for_test = [this, &write_next] {
      if (!write_next.exchange(false)) return;
      ASSERT_TRUE(
          server_.ExecuteOk(Sql("UPDATE t SET v = 2 WHERE id = 1")).ok());
    };
  });
  const Early before = Counts(server_.node());
  write_next = true;
  absl::StatusOr<sm::QueryResult> r =
      Read(server_.node(), "SELECT v FROM t WHERE id = 1");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0][0].integer, 2);  // Not the early run's 1.
  const Early after = Counts(server_.node());
  EXPECT_EQ(after.redone - before.redone, 1u);
  EXPECT_EQ(after.kept, before.kept);
}

TEST_F(EarlyReadTest, AReadTheEarlyRunCannotHoldRunsTheOrdinaryWay) {
  Start();
  ASSERT_TRUE(server_
                  .ExecuteOk(Sql(
                      "INSERT INTO t VALUES(2, 2, zeroblob(" +
                      std::to_string(RaftServer::kEarlyReadBytes * 2) + "))"))
                  .ok());
  const Early before = Counts(server_.node());
  absl::StatusOr<sm::QueryResult> big =
      Read(server_.node(), "SELECT b FROM t WHERE id = 2");
  ASSERT_TRUE(big.ok()) << big.status();
  ASSERT_EQ(big->rows.size(), 1u);
  EXPECT_EQ(big->rows[0][0].bytes.size(), RaftServer::kEarlyReadBytes * 2);
  absl::StatusOr<sm::QueryResult> missing =
      Read(server_.node(), "SELECT * FROM no_such_table");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no_such_table"), std::string::npos)
      << missing.status();
  const Early after = Counts(server_.node());
  EXPECT_EQ(after.kept, before.kept);
  EXPECT_EQ(after.redone, before.redone);
}

TEST_F(EarlyReadTest, AtMostTheBoundOfEarlyReadsHoldAResultAtOnce) {
  // Early reads held after their run (the hook waits) fill the bound; the
  // next read does not run early, and is answered meanwhile.
  std::mutex mu;
  std::condition_variable cv;
  int held = 0;
  bool release = false;
  Start([&](ServerOptions& o) {
    o.after_early_read_for_test = [&] {
      std::unique_lock<std::mutex> l(mu);
      ++held;
      cv.notify_all();
      cv.wait(l, [&] { return release; });
    };
  });
  std::vector<std::thread> readers;
  for (int i = 0; i < RaftServer::kMaxEarlyReads; ++i) {
    readers.emplace_back([this] {
      EXPECT_TRUE(Read(server_.node(), "SELECT v FROM t WHERE id = 1").ok());
    });
  }
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return held == RaftServer::kMaxEarlyReads; });
  }
  std::promise<absl::StatusOr<sm::QueryResult>> answer;
  std::future<absl::StatusOr<sm::QueryResult>> past = answer.get_future();
  std::thread one_more([this, &answer] {
    answer.set_value(Read(server_.node(), "SELECT v FROM t WHERE id = 1"));
  });
  // Answered while the others are held (were it early, the hook held it).
  EXPECT_EQ(past.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_EQ(held, RaftServer::kMaxEarlyReads);  // It did not run early.
    release = true;
  }
  cv.notify_all();
  for (std::thread& t : readers) t.join();
  one_more.join();
  absl::StatusOr<sm::QueryResult> r = past.get();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0][0].integer, 1);
}

}  // namespace
}  // namespace raftsql::server
