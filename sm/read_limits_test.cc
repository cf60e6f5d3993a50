// Reads are bounded: an endless read is interrupted at its deadline or when
// its client goes, others proceed meanwhile on other connections, and a
// result too large fails while rows arrive.
#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "sm/read_pool.h"
#include "sm/sqlite_state_machine.h"
#include "sm/temp_dir.h"
#include "sm/test_util.h"

namespace raftsql::sm {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr char kEndlessRead[] =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
    "SELECT count(*) FROM c";

std::unique_ptr<SqliteStateMachine> OpenFile(const TempDir& dir,
                                             int connections) {
  SqliteOptions o;
  o.path = dir.File("db.sqlite");
  o.read_connections = connections;
  auto sm = SqliteStateMachine::Open(o);
  EXPECT_TRUE(sm.ok()) << sm.status();
  return std::move(*sm);
}

ReadLimits Within(int ms) {
  ReadLimits l;
  l.deadline = Clock::now() + milliseconds(ms);
  return l;
}

// Waits (bounded) until `flag` is set.
bool WaitFor(const std::atomic<bool>& flag) {
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (!flag.load() && Clock::now() < until) std::this_thread::yield();
  return flag.load();
}

// An endless read on a thread of its own, holding one of the pool's
// connections until it is stopped (or goes).
class EndlessRead {
 public:
  explicit EndlessRead(SqliteStateMachine& sm) {
    limits_.cancelled = [this] {
      running_ = true;  // Polled only while the read runs.
      return stop_.load();
    };
    thread_ = std::thread(
        [this, &sm] { result_ = sm.Query(S(kEndlessRead), limits_); });
  }
  ~EndlessRead() { (void)Stop(); }
  // Whether it runs (waits, bounded).
  bool Running() const { return WaitFor(running_); }
  absl::StatusOr<QueryResult> Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return result_;
  }

 private:
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  ReadLimits limits_;
  absl::StatusOr<QueryResult> result_;
  std::thread thread_;
};

TEST(ReadLimits, AnEndlessReadIsCancelledAndOthersProceedMeanwhile) {
  TempDir dir;
  auto sm = OpenFile(dir, 2);
  EndlessRead endless(*sm);
  ASSERT_TRUE(endless.Running());
  // The other connection serves while the endless read holds one.
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<QueryResult> q = sm->Query(S("SELECT 1"), Within(5000));
    ASSERT_TRUE(q.ok()) << q.status();
  }
  const absl::StatusOr<QueryResult> stuck = endless.Stop();
  EXPECT_TRUE(absl::IsCancelled(stuck.status())) << stuck.status();
}

TEST(ReadLimits, AnEndlessReadStopsAtItsDeadline) {
  TempDir dir;
  auto sm = OpenFile(dir, 1);
  const auto start = Clock::now();
  absl::StatusOr<QueryResult> q = sm->Query(S(kEndlessRead), Within(200));
  EXPECT_TRUE(absl::IsDeadlineExceeded(q.status())) << q.status();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  // The connection serves the next read.
  EXPECT_TRUE(sm->Query(S("SELECT 1"), Within(5000)).ok());
}

TEST(ReadLimits, AReadWaitingForABusyPoolGivesUpAtItsDeadline) {
  TempDir dir;
  auto sm = OpenFile(dir, 1);
  EndlessRead endless(*sm);
  ASSERT_TRUE(endless.Running());
  absl::StatusOr<QueryResult> waited = sm->Query(S("SELECT 1"), Within(100));
  EXPECT_TRUE(absl::IsDeadlineExceeded(waited.status())) << waited.status();
}

// Issue 17: a read tried on its caller's thread stops at its step budget,
// or at once with no free connection, and says to run it elsewhere; one
// within its budget answers.
TEST(ReadLimits, AReadTriedInPlaceStopsAtItsStepsOrWithNoFreeConnection) {
  TempDir dir;
  auto sm = OpenFile(dir, 1);
  ReadLimits here;
  here.max_steps = 10000;
  here.wait_for_connection = false;
  absl::StatusOr<QueryResult> point = sm->Query(S("SELECT 1"), here);
  ASSERT_TRUE(point.ok()) << point.status();
  absl::StatusOr<QueryResult> long_read = sm->Query(S(kEndlessRead), here);
  EXPECT_TRUE(IsTryElsewhere(long_read.status())) << long_read.status();

  {
    EndlessRead endless(*sm);
    ASSERT_TRUE(endless.Running());
    absl::StatusOr<QueryResult> busy = sm->Query(S("SELECT 1"), here);
    EXPECT_TRUE(IsTryElsewhere(busy.status())) << busy.status();
  }
  // A read's own errors are its own.
  absl::StatusOr<QueryResult> bad = sm->Query(S("SELECT * FROM nowhere"), here);
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(IsTryElsewhere(bad.status()));
}

TEST(ReadLimits, InMemoryAnEndlessReadStopsAtItsDeadline) {
  auto sm = OpenMemory();
  absl::StatusOr<QueryResult> q = sm->Query(S(kEndlessRead), Within(100));
  EXPECT_TRUE(absl::IsDeadlineExceeded(q.status())) << q.status();
  // Writes on the same connection still run under their own budget.
  ApplyOk(*sm, Cmd({S("CREATE TABLE t(v)")}));
  EXPECT_EQ(Count(*sm, "t"), 0);
}

TEST(ReadLimits, AResultTooLargeFailsWhileRowsArrive) {
  for (const bool memory : {false, true}) {
    TempDir dir;
    auto sm = memory ? OpenMemory() : OpenFile(dir, 1);
    ApplyOk(*sm, Cmd({S("CREATE TABLE b(v)")}));
    ApplyOk(*sm,
            Cmd({S("INSERT INTO b SELECT zeroblob(1000000) FROM (WITH "
                   "RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c "
                   "LIMIT 10) SELECT x FROM c)")}));
    ReadLimits small;
    small.max_result_bytes = 4'000'000;
    absl::StatusOr<QueryResult> q = sm->Query(S("SELECT v FROM b"), small);
    EXPECT_TRUE(absl::IsResourceExhausted(q.status())) << q.status();
    EXPECT_TRUE(sm->Query(S("SELECT length(v) FROM b"), small).ok());
  }
}

TEST(ReadLimits, AnErrorEchoingAHugeTokenIsCut) {
  auto sm = OpenMemory();
  const std::string token(100'000, 'x');
  absl::StatusOr<QueryResult> q = sm->Query(S("SELECT * FROM " + token));
  ASSERT_FALSE(q.ok());
  EXPECT_LT(q.status().message().size(), kMaxErrorMessageBytes + 64);
  EXPECT_NE(q.status().message().find("more bytes"), absl::string_view::npos);
  absl::StatusOr<uint64_t> v = sm->GetVersion(std::string(100'000, 't'));
  EXPECT_TRUE(absl::IsNotFound(v.status()));
  EXPECT_LT(v.status().message().size(), kMaxErrorMessageBytes + 64);
}

TEST(TruncatedMessage, CutsAtACharacterBoundary) {
  std::string s(kMaxErrorMessageBytes - 1, 'a');
  s += "\xc3\xa9\xc3\xa9";  // é é: the cut would fall inside the first.
  const std::string cut = TruncatedMessage(s);
  EXPECT_EQ(cut.substr(0, kMaxErrorMessageBytes - 1),
            std::string(kMaxErrorMessageBytes - 1, 'a'));
  EXPECT_EQ(cut[kMaxErrorMessageBytes - 1], '.');
  EXPECT_EQ(TruncatedMessage("short"), "short");
}

}  // namespace
}  // namespace raftsql::sm
