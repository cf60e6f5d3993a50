#include "net/poller.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace raftsql::net {
namespace {

// The eventfd's token: sockets are registered with their own.
constexpr uint64_t kWakeToken = ~uint64_t{0};

absl::Status Errno(const char* what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Poller>> Poller::Create() {
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return Errno("epoll_create1");
  const int event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd < 0) {
    absl::Status s = Errno("eventfd");
    close(epoll_fd);
    return s;
  }
  std::unique_ptr<Poller> p(new Poller(epoll_fd, event_fd));
  absl::Status s = p->Add(event_fd, EPOLLIN, kWakeToken);
  if (!s.ok()) return s;
  return p;
}

Poller::Poller(int epoll_fd, int event_fd)
    : epoll_fd_(epoll_fd), event_fd_(event_fd) {}

Poller::~Poller() {
  close(event_fd_);
  close(epoll_fd_);
}

absl::Status Poller::Control(int op, int fd, uint32_t events, uint64_t token) {
  epoll_event e{};
  e.events = events;
  e.data.u64 = token;
  if (epoll_ctl(epoll_fd_, op, fd, &e) != 0) return Errno("epoll_ctl");
  return absl::OkStatus();
}

absl::Status Poller::Add(int fd, uint32_t events, uint64_t token) {
  return Control(EPOLL_CTL_ADD, fd, events, token);
}

absl::Status Poller::Modify(int fd, uint32_t events, uint64_t token) {
  return Control(EPOLL_CTL_MOD, fd, events, token);
}

void Poller::Remove(int fd) {
  epoll_event e{};
  (void)epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, &e);
}

const std::vector<Poller::Ready>& Poller::Wait(
    std::chrono::steady_clock::time_point deadline) {
  ready_.clear();
  const auto now = std::chrono::steady_clock::now();
  int timeout_ms = 0;  // A deadline passed (time_point::min() too): a look.
  if (deadline > now) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    timeout_ms = static_cast<int>(
        std::min<int64_t>(left.count(), int64_t{24} * 3600 * 1000));
  }
  epoll_event events[kMaxEvents];
  const int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == kWakeToken) {
      uint64_t count = 0;
      (void)!read(event_fd_, &count, sizeof(count));
      ++wakes_;
      continue;
    }
    ready_.push_back({events[i].data.u64, events[i].events});
  }
  return ready_;
}

void Poller::Wake() {
  const uint64_t one = 1;
  (void)!write(event_fd_, &one, sizeof(one));
}

}  // namespace raftsql::net
