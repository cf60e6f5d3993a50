// DivergenceMonitor: every check interval, asks each peer for its divergence
// checkpoints (PeerService.Checkpoints, over the peers' mutual TLS), decides
// with sm::Decide whether this replica has diverged, and if so reports it
// once through `on_diverged`. A diverged replica stays diverged until an
// operator resyncs it (README: "When a replica diverges"): an automatic
// resync would erase the evidence of the bug that caused it.
//
// Thread-safety: runs on a thread of its own; Stop from any thread.
#ifndef RAFTSQL_SERVER_DIVERGENCE_MONITOR_H_
#define RAFTSQL_SERVER_DIVERGENCE_MONITOR_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/raftsql.grpc.pb.h"
#include "net/tls.h"
#include "sm/divergence.h"

namespace raftsql::server {

class DivergenceMonitor {
 public:
  struct Options {
    uint64_t id = 0;
    int check_ms = 5000;
    // How long one peer may take to answer.
    int peer_deadline_ms = 1000;
    net::Tls tls;
    // This replica's checkpoints; the peers' addresses by id (this node
    // excluded); called once when this replica is found diverged.
    std::function<std::vector<sm::Checkpoint>()> mine;
    std::function<std::map<uint64_t, std::string>()> peers;
    std::function<void(const sm::DivergenceVerdict&)> on_diverged;
  };

  explicit DivergenceMonitor(Options options);
  ~DivergenceMonitor() { Stop(); }
  void Stop();

  // One round, on the caller's thread: what the peers answered and the
  // verdict (public for tests).
  sm::DivergenceVerdict CheckOnce();

 private:
  void Run();
  // The checkpoints `address` answers with (empty if it does not).
  std::vector<sm::Checkpoint> Ask(uint64_t id, const std::string& address);

  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // Guarded by mu_.
  bool reported_ = false;  // Monitor thread only.
  // Monitor thread only (CheckOnce's callers: one at a time).
  std::map<std::pair<uint64_t, std::string>,
           std::unique_ptr<v1::PeerService::Stub>>
      stubs_;
  std::thread thread_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_DIVERGENCE_MONITOR_H_
