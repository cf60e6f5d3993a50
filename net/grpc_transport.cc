#include "net/grpc_transport.h"

#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "net/convert.h"
#include "net/raftsql.grpc.pb.h"

namespace raftsql::net {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  // Reconnect quickly after a peer restarts. (The "min" back-off is also the
  // least time a connection attempt is given: at 100 ms, attempts to a node
  // that was just starting were cut off for seconds.)
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  // A numeric IPv4 address skips the DNS resolver, whose re-resolution
  // back-off kept a channel to a node that was not yet up failing for
  // seconds.
  const bool numeric =
      !address.empty() &&
      address.find_first_not_of("0123456789.:") == std::string::npos;
  return grpc::CreateCustomChannel(numeric ? "ipv4:" + address : address,
                                   grpc::InsecureChannelCredentials(), args);
}

namespace {

size_t ApproximateSize(const core::Message& m) {
  size_t n = 64 + m.context.size();
  for (const core::Entry& e : m.entries) n += e.Size();
  if (m.snapshot.has_value()) n += m.snapshot->data.size();
  return n;
}

}  // namespace

class GrpcTransport::Peer {
 public:
  Peer(GrpcTransport* owner, uint64_t id)
      : owner_(owner), id_(id), thread_([this] { Run(); }) {}
  ~Peer() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void Enqueue(core::Message m) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (queue_.size() >= owner_->options_.max_queued_messages) {
        queue_.pop_front();
        owner_->dropped_.fetch_add(1);
      }
      queue_.push_back(std::move(m));
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    int backoff_ms = 0;
    while (true) {
      std::vector<core::Message> batch;
      {
        std::unique_lock<std::mutex> l(mu_);
        if (backoff_ms > 0) {
          cv_.wait_for(l, std::chrono::milliseconds(backoff_ms),
                       [this] { return stop_; });
        }
        cv_.wait(l, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        size_t bytes = 0;
        while (!queue_.empty() &&
               (batch.empty() || bytes < owner_->options_.max_batch_bytes)) {
          bytes += ApproximateSize(queue_.front());
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (Deliver(batch)) {
        backoff_ms = 0;
        owner_->sent_.fetch_add(batch.size());
        continue;
      }
      owner_->failed_rpcs_.fetch_add(1);
      owner_->dropped_.fetch_add(batch.size());
      const auto& cb = owner_->callbacks_;
      if (cb.on_unreachable) cb.on_unreachable(id_);
      if (cb.on_snapshot_failed &&
          std::any_of(batch.begin(), batch.end(), [](const core::Message& m) {
            return m.type == core::MessageType::kSnap;
          })) {
        cb.on_snapshot_failed(id_);
      }
      backoff_ms = std::clamp(backoff_ms * 2, owner_->options_.min_backoff_ms,
                              owner_->options_.max_backoff_ms);
    }
  }

  bool Deliver(const std::vector<core::Message>& batch) {
    const std::string address = owner_->callbacks_.resolve(id_);
    if (address.empty()) return false;
    if (address != address_ || stub_ == nullptr) {
      address_ = address;
      stub_ = v1::PeerService::NewStub(MakeChannel(address));
    }
    v1::RaftBatch request;
    request.set_from_address(owner_->options_.self_address);
    for (const core::Message& m : batch) ToProto(m, request.add_messages());
    v1::RaftBatchAck ack;
    grpc::ClientContext ctx;
    ctx.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(owner_->options_.rpc_timeout_ms));
    return stub_->Send(&ctx, request, &ack).ok();
  }

  GrpcTransport* const owner_;
  const uint64_t id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<core::Message> queue_;
  bool stop_ = false;
  std::string address_;
  std::unique_ptr<v1::PeerService::Stub> stub_;
  std::thread thread_;  // Last: starts after the members above exist.
};

GrpcTransport::GrpcTransport(GrpcTransportOptions options,
                             GrpcTransportCallbacks callbacks)
    : options_(options), callbacks_(std::move(callbacks)) {
  // Notice reconnects between calls quickly (see Client); read when gRPC
  // initializes, and the transport is built before the node's gRPC server.
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "20", 0);
}

GrpcTransport::~GrpcTransport() { Stop(); }

void GrpcTransport::Stop() {
  std::map<uint64_t, std::unique_ptr<Peer>> peers;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopped_ = true;
    peers.swap(peers_);
  }
  peers.clear();  // Joins the senders outside the lock.
}

void GrpcTransport::Send(core::Message m) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return;
  std::unique_ptr<Peer>& peer = peers_[m.to];
  if (peer == nullptr) peer = std::make_unique<Peer>(this, m.to);
  peer->Enqueue(std::move(m));
}

}  // namespace raftsql::net
