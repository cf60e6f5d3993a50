// A client's writes go out in sessions that carry one call at a time.
#include "net/session_pool.h"

#include <set>

#include "gtest/gtest.h"

namespace raftsql::net {
namespace {

TEST(SessionPool, CallsAtOnceGetSessionsOfTheirOwn) {
  SessionPool pool(0, 7);
  SessionPool::Lease a = pool.Acquire();
  SessionPool::Lease b = pool.Acquire();
  EXPECT_NE(a.id(), b.id());
  EXPECT_NE(a.id(), 0u);
  EXPECT_EQ(a.NextSequence(), 1u);
  EXPECT_EQ(b.NextSequence(), 1u);
  EXPECT_EQ(pool.made(), 2u);
}

TEST(SessionPool, AReturnedSessionGoesOnWithItsSequence) {
  SessionPool pool(0, 7);
  uint64_t id = 0;
  {
    SessionPool::Lease a = pool.Acquire();
    id = a.id();
    a.NextSequence();
    a.NextSequence();
  }
  SessionPool::Lease again = pool.Acquire();
  EXPECT_EQ(again.id(), id);
  EXPECT_EQ(again.NextSequence(), 3u);
  EXPECT_EQ(pool.made(), 1u);
}

TEST(SessionPool, AFixedSessionIsTakenInTurn) {
  SessionPool pool(42, 7);
  {
    SessionPool::Lease a = pool.Acquire();
    EXPECT_EQ(a.id(), 42u);
    EXPECT_EQ(a.NextSequence(), 1u);
  }
  SessionPool::Lease b = pool.Acquire();
  EXPECT_EQ(b.id(), 42u);
  EXPECT_EQ(b.NextSequence(), 2u);
  EXPECT_EQ(pool.made(), 1u);
}

TEST(SessionPool, KeepsAtMostItsBoundOfIdleSessions) {
  SessionPool pool(0, 7);
  std::set<uint64_t> first;
  {
    std::vector<SessionPool::Lease> held;
    for (size_t i = 0; i < SessionPool::kMaxIdleSessions + 10; ++i) {
      held.push_back(pool.Acquire());
      first.insert(held.back().id());
    }
  }
  EXPECT_EQ(first.size(), SessionPool::kMaxIdleSessions + 10);
  std::vector<SessionPool::Lease> again;
  for (size_t i = 0; i < SessionPool::kMaxIdleSessions + 1; ++i) {
    again.push_back(pool.Acquire());
  }
  // The bound's worth came back for reuse; one more is new.
  EXPECT_EQ(pool.made(), SessionPool::kMaxIdleSessions + 11);
}

}  // namespace
}  // namespace raftsql::net
