#include "net/grpc_transport.h"

#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <utility>
#include <vector>

#include "net/convert.h"
#include "net/raftsql.grpc.pb.h"

namespace raftsql::net {

void PrepareGrpc() {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "20", 0);
}

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

// One peer: a bounded queue and at most one RPC in flight (so batches
// arrive in order). The RPC starts on the thread that sends (the Raft loop)
// when the peer is idle, and the next batch starts from the previous one's
// completion on a gRPC thread: no thread of our own, no extra hand-off.
class GrpcTransport::Peer {
 public:
  Peer(GrpcTransport* owner, uint64_t id) : owner_(owner), id_(id) {}
  ~Peer() {
    std::unique_lock<std::mutex> l(mu_);
    stop_ = true;
    if (in_flight_ != nullptr) in_flight_->ctx.TryCancel();
    cv_.wait(l, [this] { return in_flight_ == nullptr; });
  }

  void Enqueue(core::Message m) {
    std::unique_lock<std::mutex> l(mu_);
    if (stop_) return;
    if (queue_.size() >= owner_->options_.max_queued_messages) {
      queue_.pop_front();
      owner_->dropped_.fetch_add(1);
    }
    queue_.push_back(std::move(m));
    MaybeStart(l);
  }

 private:
  struct Call {
    grpc::ClientContext ctx;
    v1::RaftBatch request;
    v1::RaftBatchAck ack;
    size_t messages = 0;
    bool snapshot = false;
  };

  // Starts the next batch if none is in flight and the back-off is over.
  // Called with mu_ held; releases it before starting the RPC.
  void MaybeStart(std::unique_lock<std::mutex>& l) {
    if (in_flight_ != nullptr || queue_.empty() || stop_) return;
    if (std::chrono::steady_clock::now() < retry_at_) return;  // Raft resends.
    const std::string address = owner_->callbacks_.resolve(id_);
    if (address.empty()) {
      owner_->dropped_.fetch_add(queue_.size());
      queue_.clear();
      l.unlock();
      if (owner_->callbacks_.on_unreachable)
        owner_->callbacks_.on_unreachable(id_);
      return;
    }
    if (address != address_ || stub_ == nullptr) {
      address_ = address;
      stub_ = v1::PeerService::NewStub(MakeChannel(address));
    }
    auto call = std::make_unique<Call>();
    call->request.set_from_address(owner_->options_.self_address);
    size_t bytes = 0;
    while (!queue_.empty() &&
           (call->messages == 0 || bytes < owner_->options_.max_batch_bytes)) {
      const core::Message& m = queue_.front();
      bytes += ApproximateSize(m);
      call->snapshot |= m.type == core::MessageType::kSnap;
      ToProto(m, call->request.add_messages());
      ++call->messages;
      queue_.pop_front();
    }
    call->ctx.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(owner_->options_.rpc_timeout_ms));
    in_flight_ = call.get();
    v1::PeerService::Stub* stub = stub_.get();
    Call* raw = call.release();
    l.unlock();
    stub->async()->Send(&raw->ctx, &raw->request, &raw->ack,
                        [this, raw](grpc::Status status) {
                          OnDone(std::unique_ptr<Call>(raw), status);
                        });
  }

  void OnDone(std::unique_ptr<Call> call, const grpc::Status& status) {
    const auto& cb = owner_->callbacks_;
    std::unique_lock<std::mutex> l(mu_);
    in_flight_ = nullptr;
    if (status.ok()) {
      owner_->sent_.fetch_add(call->messages);
      backoff_ms_ = 0;
    } else {
      owner_->failed_rpcs_.fetch_add(1);
      owner_->dropped_.fetch_add(call->messages);
      backoff_ms_ = std::clamp(backoff_ms_ * 2, owner_->options_.min_backoff_ms,
                               owner_->options_.max_backoff_ms);
      retry_at_ = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(backoff_ms_);
    }
    if (stop_) {
      cv_.notify_all();
      return;
    }
    MaybeStart(l);  // Unlocks if it starts one.
    if (l.owns_lock()) l.unlock();
    if (!status.ok()) {
      if (cb.on_unreachable) cb.on_unreachable(id_);
      if (call->snapshot && cb.on_snapshot_failed) cb.on_snapshot_failed(id_);
    }
  }

  GrpcTransport* const owner_;
  const uint64_t id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<core::Message> queue_;
  Call* in_flight_ = nullptr;
  bool stop_ = false;
  int backoff_ms_ = 0;
  std::chrono::steady_clock::time_point retry_at_;
  std::string address_;
  std::unique_ptr<v1::PeerService::Stub> stub_;
};

GrpcTransport::GrpcTransport(GrpcTransportOptions options,
                             GrpcTransportCallbacks callbacks)
    : options_(options), callbacks_(std::move(callbacks)) {
  PrepareGrpc();  // Built before the node's gRPC server starts.
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
