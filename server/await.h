// A thread waiting for a RaftServer answer (the HTTP API's handlers hold a
// thread per request; gRPC's do not wait).
#ifndef RAFTSQL_SERVER_AWAIT_H_
#define RAFTSQL_SERVER_AWAIT_H_

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/raft_server.h"

namespace raftsql::server {

// `start` given a callback; its outcome, or DEADLINE_EXCEEDED ("not
// answered in time: <what>") at `deadline`. The callback may still run
// later: it holds its own promise.
template <typename T>
absl::StatusOr<T> Await(const std::function<void(RaftServer::Done<T>)>& start,
                        std::chrono::steady_clock::time_point deadline,
                        absl::string_view what) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<T>>>();
  std::future<absl::StatusOr<T>> answer = promise->get_future();
  start([promise](absl::StatusOr<T> r) { promise->set_value(std::move(r)); });
  if (answer.wait_until(deadline) != std::future_status::ready) {
    return absl::DeadlineExceededError(
        absl::StrCat("not answered in time: ", what));
  }
  return answer.get();
}

// The longest the node takes to answer a request: the wait for a leader,
// the request's own timeout, and a second for the answer's way back.
inline std::chrono::milliseconds RequestBound(const ServerOptions& o) {
  return std::chrono::milliseconds(o.leader_wait_ms + o.request_timeout_ms +
                                   1000);
}

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_AWAIT_H_
