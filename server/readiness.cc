#include "server/readiness.h"

#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/await.h"

namespace raftsql::server {

Readiness AssessReadiness(const NodeState& state, uint64_t max_lag,
                          bool need_leader) {
  Readiness r{true, "[+]node ok\n"};
  if (need_leader) {
    if (state.leader != 0) {
      absl::StrAppend(&r.report, "[+]leader ok\n");
    } else {
      absl::StrAppend(&r.report, "[-]leader not ok: no leader known\n");
      r.ready = false;
    }
  }
  std::string problem;
  if (state.role == "Stopped") {
    problem = "the node stopped on a log store failure";
  } else if (!state.divergence.empty()) {
    problem = absl::StrCat("this replica diverged: ", state.divergence);
  } else if (state.commit > state.applied + max_lag) {
    problem = absl::StrCat("applied ", state.applied, " of ", state.commit,
                           " committed entries");
  }
  if (problem.empty()) {
    absl::StrAppend(&r.report, "[+]store ok\n");
  } else {
    absl::StrAppend(&r.report, "[-]store not ok: ", problem, "\n");
    r.ready = false;
  }
  return r;
}

ReadinessWatcher::ReadinessWatcher(RaftServer* node,
                                   std::function<void(bool)> on_change,
                                   int interval_ms)
    : node_(node),
      on_change_(std::move(on_change)),
      interval_ms_(interval_ms),
      thread_([this] { Run(); }) {}

ReadinessWatcher::~ReadinessWatcher() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ReadinessWatcher::Run() {
  std::optional<bool> reported;
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    l.unlock();
    const absl::StatusOr<NodeState> s = Await<NodeState>(
        [this](RaftServer::Done<NodeState> done) {
          node_->State(std::move(done));
        },
        std::chrono::steady_clock::now() + std::chrono::seconds(1),
        "the node's state");
    const bool ready =
        s.ok() &&
        AssessReadiness(*s, node_->options().ready_max_lag, true).ready;
    if (reported != ready) {
      on_change_(ready);
      reported = ready;
    }
    l.lock();
    cv_.wait_for(l, std::chrono::milliseconds(interval_ms_),
                 [this] { return stop_; });
  }
}

}  // namespace raftsql::server
