// Test-only: a one-node raftsql server on loopback (real RocksDB, SQLite and
// gRPC) that elects itself, in a scratch directory it removes when it goes.
#ifndef RAFTSQL_SERVER_ONE_NODE_SERVER_H_
#define RAFTSQL_SERVER_ONE_NODE_SERVER_H_

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/raft_server.h"
#include "server/service.h"
#include "tools/process.h"

namespace raftsql::server {

class OneNodeServer {
 public:
  OneNodeServer() {
    char dir[] = "/tmp/raftsql-node-XXXXXX";
    if (mkdtemp(dir) != nullptr) dir_ = dir;
  }
  ~OneNodeServer() {
    Stop(1000);
    node_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Stops the node, then its gRPC server (calls get `deadline_ms`).
  void Stop(int deadline_ms) {
    if (node_ != nullptr) node_->Shutdown();
    if (frontend_ != nullptr) frontend_->Shutdown(deadline_ms);
  }

  // Stops the node and starts it again on its data (on a new port).
  absl::Status Restart(const std::function<void(ServerOptions&)>& adjust = {}) {
    Stop(1000);
    frontend_.reset();
    node_.reset();
    return Start(adjust);
  }

  // Starts the node, `adjust` having changed its options first, and waits
  // (at most 20 s) until it leads.
  absl::Status Start(const std::function<void(ServerOptions&)>& adjust = {}) {
    if (dir_.empty()) return absl::InternalError("no scratch directory");
    ServerOptions o;
    o.id = 1;
    o.listen = absl::StrCat("127.0.0.1:", tools::FreePort());
    o.peers = {{1, o.listen}};
    o.data_dir = dir_ + "/data";
    o.tick_ms = 5;
    if (adjust) adjust(o);
    auto node = RaftServer::Open(o);
    if (!node.ok()) return node.status();
    node_ = std::move(*node);
    auto frontend = GrpcFrontend::Start(node_.get());
    if (!frontend.ok()) return frontend.status();
    frontend_ = std::move(*frontend);
    node_->Start();
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::promise<bool> leads;
      node_->State([&leads](absl::StatusOr<NodeState> s) {
        leads.set_value(s.ok() && s->role == "Leader");
      });
      if (leads.get_future().get()) return absl::OkStatus();
      std::this_thread::yield();
    }
    return absl::DeadlineExceededError("the node did not elect itself");
  }

  // The node's answer to `c` (waits for it).
  absl::StatusOr<sm::CommandResult> Execute(sm::Command c) {
    std::promise<absl::StatusOr<sm::CommandResult>> p;
    node_->Execute(std::move(c), [&p](absl::StatusOr<sm::CommandResult> r) {
      p.set_value(std::move(r));
    });
    return p.get_future().get();
  }
  // Execute's status, or its first failed statement's.
  absl::Status ExecuteOk(sm::Command c) {
    absl::StatusOr<sm::CommandResult> r = Execute(std::move(c));
    return r.ok() ? r->FirstFailure() : r.status();
  }
  // The first value of a linearizable read of `sql`; NULL if it fails or
  // returns no row.
  sm::Value QueryValue(const std::string& sql) {
    std::promise<absl::StatusOr<sm::QueryResult>> p;
    node_->Query(
        sm::Statement{sql, {}, {}}, true, sm::ReadLimits{},
        [&p](absl::StatusOr<sm::QueryResult> r) { p.set_value(std::move(r)); });
    absl::StatusOr<sm::QueryResult> r = p.get_future().get();
    if (!r.ok() || r->rows.empty() || r->rows[0].empty()) {
      return sm::Value::Null();
    }
    return r->rows[0][0];
  }
  // Reads `sql` until its first value is the integer `want` (true), or
  // `timeout_s` passed (false).
  bool WaitFor(const std::string& sql, int64_t want, int timeout_s = 20) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (QueryValue(sql).integer == want) return true;
      std::this_thread::yield();
    }
    return false;
  }

  const std::string& endpoint() const { return node_->options().listen; }
  const std::string& dir() const { return dir_; }
  RaftServer& node() { return *node_; }

 private:
  std::string dir_;
  std::unique_ptr<RaftServer> node_;
  std::unique_ptr<GrpcFrontend> frontend_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_ONE_NODE_SERVER_H_
