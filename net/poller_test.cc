#include "net/poller.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace raftsql::net {
namespace {

using Clock = std::chrono::steady_clock;

std::unique_ptr<Poller> NewPoller() {
  absl::StatusOr<std::unique_ptr<Poller>> p = Poller::Create();
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

TEST(Poller, AWaitWithNothingReadyEndsAtItsDeadline) {
  std::unique_ptr<Poller> p = NewPoller();
  const auto began = Clock::now();
  EXPECT_TRUE(p->Wait(began + std::chrono::milliseconds(30)).empty());
  EXPECT_GE(Clock::now() - began, std::chrono::milliseconds(30));
  EXPECT_EQ(p->wakes(), 0u);
}

TEST(Poller, APassedDeadlineOnlyLooks) {
  std::unique_ptr<Poller> p = NewPoller();
  EXPECT_TRUE(p->Wait(Clock::time_point::min()).empty());
}

TEST(Poller, AWakeBeforeTheWaitEndsItAtOnceAndOnlyOnce) {
  std::unique_ptr<Poller> p = NewPoller();
  p->Wake();
  p->Wake();
  const auto far = Clock::now() + std::chrono::hours(1);
  EXPECT_TRUE(p->Wait(far).empty());
  EXPECT_EQ(p->wakes(), 1u);
  // Both wakes were consumed: the next wait sleeps to its deadline.
  EXPECT_TRUE(p->Wait(Clock::now() + std::chrono::milliseconds(10)).empty());
  EXPECT_EQ(p->wakes(), 1u);
}

TEST(Poller, AWakeFromAnotherThreadEndsAWait) {
  std::unique_ptr<Poller> p = NewPoller();
  std::thread waker([&] { p->Wake(); });
  EXPECT_TRUE(p->Wait(Clock::now() + std::chrono::hours(1)).empty());
  waker.join();
  EXPECT_EQ(p->wakes(), 1u);
}

TEST(Poller, AReadySocketIsReportedWithItsTokenUntilRemoved) {
  std::unique_ptr<Poller> p = NewPoller();
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  ASSERT_TRUE(p->Add(fds[0], EPOLLIN, 42).ok());
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  const auto far = Clock::now() + std::chrono::hours(1);
  const std::vector<Poller::Ready>& r = p->Wait(far);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].token, 42u);
  EXPECT_TRUE(r[0].events & EPOLLIN);
  // Level-triggered: still ready while unread; gone once removed.
  EXPECT_EQ(p->Wait(far).size(), 1u);
  ASSERT_TRUE(p->Modify(fds[0], EPOLLIN | EPOLLOUT, 7).ok());
  EXPECT_EQ(p->Wait(far).at(0).token, 7u);
  p->Remove(fds[0]);
  EXPECT_TRUE(p->Wait(Clock::now() + std::chrono::milliseconds(5)).empty());
  EXPECT_FALSE(p->Add(-1, EPOLLIN, 1).ok());
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace raftsql::net
