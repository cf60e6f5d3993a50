#include "server/divergence_monitor.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "net/grpc_transport.h"
#include "net/raftsql.grpc.pb.h"

namespace raftsql::server {

DivergenceMonitor::DivergenceMonitor(Options options)
    : options_(std::move(options)) {
  if (options_.check_ms > 0) thread_ = std::thread([this] { Run(); });
}

void DivergenceMonitor::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DivergenceMonitor::Run() {
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      if (cv_.wait_for(l, std::chrono::milliseconds(options_.check_ms),
                       [this] { return stopping_; })) {
        return;
      }
    }
    const sm::DivergenceVerdict v = CheckOnce();
    if (v.diverged && !reported_) {
      reported_ = true;
      options_.on_diverged(v);
    }
  }
}

std::vector<sm::Checkpoint> DivergenceMonitor::Ask(uint64_t id,
                                                   const std::string& address) {
  // One channel per peer and address, kept across rounds (a new one per
  // round cost a connection and a TLS handshake every check).
  std::unique_ptr<v1::PeerService::Stub>& stub = stubs_[{id, address}];
  if (stub == nullptr) {
    stub = v1::PeerService::NewStub(
        net::MakeChannel(address, options_.tls, net::NodeName(id)));
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(options_.peer_deadline_ms));
  v1::CheckpointsRequest request;
  v1::CheckpointsResponse response;
  std::vector<sm::Checkpoint> out;
  if (!stub->Checkpoints(&ctx, request, &response).ok()) return out;
  // Bounded like what we keep: a peer's extra checkpoints are ignored.
  for (const v1::Checkpoint& c : response.checkpoints()) {
    if (out.size() >= sm::CheckpointLog::kMaxCheckpoints) break;
    out.push_back(sm::Checkpoint{c.index(), c.hash()});
  }
  return out;
}

sm::DivergenceVerdict DivergenceMonitor::CheckOnce() {
  std::map<uint64_t, std::vector<sm::Checkpoint>> peers;
  size_t replicas = 1;  // This one.
  for (const auto& [id, address] : options_.peers()) {
    if (id == options_.id) continue;
    ++replicas;  // One that does not answer counts as unknown.
    if (address.empty()) continue;
    std::vector<sm::Checkpoint> theirs = Ask(id, address);
    if (!theirs.empty()) peers[id] = std::move(theirs);
  }
  return sm::Decide(options_.mine(), peers, replicas);
}

}  // namespace raftsql::server
