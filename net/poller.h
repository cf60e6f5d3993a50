// Poller: the Raft loop's wait. One thread (the loop) waits for sockets it
// owns to become ready, for a deadline (the next tick), or for Wake() from
// any other thread (a task posted to its inbox), whichever comes first:
// epoll and an eventfd. The peer stream transport (net/stream_transport.h)
// registers its sockets here, so a peer's message is read by the thread
// that steps it, with no thread in between.
#ifndef RAFTSQL_NET_POLLER_H_
#define RAFTSQL_NET_POLLER_H_

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

namespace raftsql::net {

class Poller {
 public:
  // The most ready sockets one Wait returns (the rest come at the next).
  static constexpr int kMaxEvents = 64;

  struct Ready {
    uint64_t token;   // as registered
    uint32_t events;  // EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, ...
  };

  static absl::StatusOr<std::unique_ptr<Poller>> Create();
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Watches `fd` for `events` (level-triggered); Wait reports it with
  // `token`. The caller keeps the descriptor open until Remove.
  absl::Status Add(int fd, uint32_t events, uint64_t token);
  absl::Status Modify(int fd, uint32_t events, uint64_t token);
  void Remove(int fd);

  // Waits until a watched socket is ready, Wake() was called since the last
  // Wait, or `deadline` passes. The result is valid until the next Wait.
  const std::vector<Ready>& Wait(
      std::chrono::steady_clock::time_point deadline);
  // Any thread: the next (or current) Wait returns at once.
  void Wake();

  uint64_t wakes() const { return wakes_; }  // Waits ended by Wake (loop).

 private:
  Poller(int epoll_fd, int event_fd);
  absl::Status Control(int op, int fd, uint32_t events, uint64_t token);

  const int epoll_fd_;
  const int event_fd_;
  std::vector<Ready> ready_;
  uint64_t wakes_ = 0;
};

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_POLLER_H_
