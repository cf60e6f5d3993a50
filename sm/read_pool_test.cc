// The read pool on its own: leases, a retire while a read holds a
// connection, a refill, with the pool's invariants checked at each step.
#include "sm/read_pool.h"

#include <sqlite3.h>

#include "gtest/gtest.h"
#include "sm/temp_dir.h"

namespace raftsql::sm {
namespace {

std::vector<ReadPool::Connection> Open(const TempDir& dir, int n) {
  std::vector<ReadPool::Connection> out;
  for (int i = 0; i < n; ++i) {
    ReadPool::Connection c;
    EXPECT_EQ(sqlite3_open(dir.File("db.sqlite").c_str(), &c.db), SQLITE_OK);
    c.policy = std::make_unique<StatementPolicy>();
    out.push_back(std::move(c));
  }
  return out;
}

TEST(ReadPool, ARetiredLeaseKeepsItsConnectionUntilItEnds) {
  TempDir dir;
  ReadPool pool(Open(dir, 2));
  pool.CheckInvariants();
  ReadLimits limits;
  {
    absl::StatusOr<ReadPool::Lease> lease = pool.Acquire(limits);
    ASSERT_TRUE(lease.ok());
    pool.CheckInvariants();
    pool.Retire(absl::UnavailableError("swapping"));
    pool.CheckInvariants();
    EXPECT_EQ(pool.size(), 0u);
    EXPECT_EQ(pool.retired(), 1u);  // The idle one closed at once.
    EXPECT_TRUE(absl::IsUnavailable(lease->Interruption()));
    EXPECT_NE(lease->db(), nullptr);
    pool.Refill(Open(dir, 2));
    pool.CheckInvariants();
    EXPECT_EQ(pool.size(), 2u);
  }
  EXPECT_EQ(pool.retired(), 0u);
  pool.CheckInvariants();
  absl::StatusOr<ReadPool::Lease> again = pool.Acquire(limits);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->Interruption().ok());
}

TEST(ReadPool, AReadFindsNoConnectionUntilItsDeadline) {
  TempDir dir;
  ReadPool pool(Open(dir, 1));
  ReadLimits first;
  absl::StatusOr<ReadPool::Lease> held = pool.Acquire(first);
  ASSERT_TRUE(held.ok());
  ReadLimits second;
  second.deadline = std::chrono::steady_clock::now();
  absl::StatusOr<ReadPool::Lease> waited = pool.Acquire(second);
  EXPECT_TRUE(absl::IsDeadlineExceeded(waited.status())) << waited.status();
  pool.CheckInvariants();
}

}  // namespace
}  // namespace raftsql::sm
