#include "net/grpc_transport.h"

#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "net/convert.h"
#include "net/raftsql.grpc.pb.h"
#include "obs/loop_phases.h"
#include "obs/write_trace.h"

namespace raftsql::net {

void PrepareGrpc() {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "20", 0);
  // Debian builds Abseil with its debug-only deadlock detector on, and gRPC
  // locks absl::Mutex everywhere: the detector's lock graph cost 3% of all
  // CPU under load.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const Tls& tls,
                                           const std::string& server_name) {
  grpc::ChannelArguments args;
  if (tls.enabled() && !server_name.empty()) {
    args.SetSslTargetNameOverride(server_name);
  }
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
                                   ChannelCredentials(tls), args);
}

// One peer: a bounded queue and one long-lived stream with at most one
// batch being written (so batches arrive in order, and whatever queues
// meanwhile travels together in the next). A write starts on the thread
// that sends (the Raft loop) when the stream is idle, and the next one from
// the previous one's completion on a gRPC thread: no thread of our own, no
// extra hand-off. A stream costs far less per batch than a unary call (no
// call set-up, headers or status per batch), which is most of a write's CPU
// on a small machine.
class GrpcTransport::Peer {
 public:
  Peer(GrpcTransport* owner, uint64_t id) : owner_(owner), id_(id) {}
  ~Peer() {
    std::unique_lock<std::mutex> l(mu_);
    stop_ = true;
    std::shared_ptr<Stream> s = stream_;
    const bool idle = s != nullptr && !writing_ && Unhold(*s);
    l.unlock();
    // gRPC may run callbacks inline at the end of any call into it: never
    // call it with mu_ held.
    if (s != nullptr) s->ctx.TryCancel();
    if (idle) s->RemoveHold();
    l.lock();
    cv_.wait(l, [this] { return live_streams_ == 0; });
  }

  size_t queued() {
    std::unique_lock<std::mutex> l(mu_);
    return queue_.size();
  }

  void Enqueue(core::Message m) {
    std::unique_lock<std::mutex> l(mu_);
    if (stop_) return;
    if (queue_.size() >= owner_->options_.max_queued_messages) {
      queue_.pop_front();
      owner_->dropped_.fetch_add(1);
    }
    queue_.push_back(std::move(m));
    // The write starts at Flush (or with the previous write's completion).
  }

  void Flush() {
    std::unique_lock<std::mutex> l(mu_);
    MaybeWrite(l);
  }

 private:
  // The stream holds itself open (a reactor hold) until the peer gives it
  // up, so every write the peer starts finds it alive; it is freed once
  // gRPC is done with it (OnDone) and the peer no longer refers to it.
  struct Stream final : grpc::ClientWriteReactor<v1::RaftBatch> {
    explicit Stream(Peer* p) : peer(p) {}
    void OnWriteDone(bool ok) override { peer->OnWriteDone(ok); }
    void OnDone(const grpc::Status&) override { peer->OnStreamDone(this); }
    Peer* const peer;
    std::shared_ptr<Stream> self;  // until OnDone
    grpc::ClientContext ctx;
    v1::RaftBatchAck ack;
    v1::RaftBatch batch;
    size_t messages = 0;  // in `batch`
    bool snapshot = false;
    bool held = true;
  };

  // Marks `s` given up (mu_ held); true if the caller is to remove its
  // hold (outside mu_: that may end the stream inline).
  static bool Unhold(Stream& s) {
    if (!s.held) return false;
    s.held = false;
    return true;
  }

  // Writes the next batch if the stream is idle and the back-off is over,
  // opening a stream if there is none. Called with mu_ held; releases it
  // around calls into gRPC.
  void MaybeWrite(std::unique_lock<std::mutex>& l) {
    if (queue_.empty() || stop_) return;
    const auto now = std::chrono::steady_clock::now();
    if (writing_) {
      // A peer that stops reading stalls the write: give the stream up.
      if (now - write_started_ >
          std::chrono::milliseconds(owner_->options_.write_timeout_ms)) {
        std::shared_ptr<Stream> stalled = stream_;
        l.unlock();
        stalled->ctx.TryCancel();
        l.lock();
      }
      return;
    }
    if (stream_ != nullptr && !stream_->held) return;  // Still ending.
    if (now < retry_at_) return;                       // Raft resends.
    const bool open = stream_ == nullptr;
    if (open && !Open(l)) return;
    std::shared_ptr<Stream> s = stream_;
    s->batch.Clear();
    s->batch.set_from_address(owner_->options_.self_address);
    s->batch.set_client_address(owner_->options_.client_address);
    s->messages = 0;
    s->snapshot = false;
    size_t bytes = 0;
    while (!queue_.empty() &&
           (s->messages == 0 || bytes < owner_->options_.max_batch_bytes)) {
      core::Message& m = queue_.front();
      bytes += ApproximateBatchBytes(m);
      s->snapshot |= m.type == core::MessageType::kSnap;
      ToProto(std::move(m), s->batch.add_messages());
      ++s->messages;
      queue_.pop_front();
    }
    writing_ = true;
    write_started_ = now;
    l.unlock();
    s->StartWrite(&s->batch);
    if (open) s->StartCall();
    l.lock();
  }

  // Sets up a stream to the peer's current address (mu_ held; started by
  // the caller). False, with the queue dropped and the peer reported, if
  // the address is unknown.
  bool Open(std::unique_lock<std::mutex>& l) {
    const std::string address = owner_->callbacks_.resolve(id_);
    if (address.empty()) {
      owner_->dropped_.fetch_add(queue_.size());
      queue_.clear();
      l.unlock();
      if (owner_->callbacks_.on_unreachable)
        owner_->callbacks_.on_unreachable(id_);
      l.lock();
      return false;
    }
    if (address != address_ || stub_ == nullptr) {
      address_ = address;
      // Only node id_'s certificate names node-<id_>: an address book
      // pointed elsewhere cannot reroute Raft traffic to another party.
      stub_ = v1::PeerService::NewStub(
          MakeChannel(address, owner_->options_.tls, NodeName(id_)));
    }
    stream_ = std::make_shared<Stream>(this);
    ++live_streams_;
    stream_->self = stream_;
    stub_->async()->Stream(&stream_->ctx, &stream_->ack, stream_.get());
    stream_->AddHold();
    return true;
  }

  void OnWriteDone(bool ok) {
    const auto& cb = owner_->callbacks_;
    std::unique_lock<std::mutex> l(mu_);
    writing_ = false;
    std::shared_ptr<Stream> s = stream_;
    if (ok) {
      owner_->sent_.fetch_add(s->messages);
      backoff_ms_ = 0;
      if (!stop_) return MaybeWrite(l);
      const bool release = Unhold(*s);
      l.unlock();
      if (release) s->RemoveHold();
      return;
    }
    // The stream broke: what it carried may be lost. Give it up (it ends
    // once gRPC is done with it) and back off before the next one.
    owner_->broken_streams_.fetch_add(1);
    owner_->dropped_.fetch_add(s->messages);
    backoff_ms_ = std::clamp(backoff_ms_ * 2, owner_->options_.min_backoff_ms,
                             owner_->options_.max_backoff_ms);
    retry_at_ = std::chrono::steady_clock::now() +
                std::chrono::milliseconds(backoff_ms_);
    const bool release = Unhold(*s);
    const bool report = !stop_;
    l.unlock();
    if (release) s->RemoveHold();
    if (!report) return;
    if (cb.on_unreachable) cb.on_unreachable(id_);
    if (s->snapshot && cb.on_snapshot_failed) cb.on_snapshot_failed(id_);
  }

  void OnStreamDone(Stream* s) {
    std::shared_ptr<Stream> last;
    {
      std::lock_guard<std::mutex> l(mu_);
      last = std::move(s->self);
      if (stream_.get() == s) stream_.reset();
    }
    // Frees the stream (its call) here, unless the destructor still holds
    // it: either way before the destructor may return.
    last.reset();
    std::unique_lock<std::mutex> l(mu_);
    --live_streams_;
    cv_.notify_all();
    MaybeWrite(l);  // What queued while it ended.
  }

  GrpcTransport* const owner_;
  const uint64_t id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<core::Message> queue_;
  std::shared_ptr<Stream> stream_;
  int live_streams_ = 0;  // opened and not yet done
  bool writing_ = false;
  std::chrono::steady_clock::time_point write_started_;
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
  peers.clear();  // Waits for their streams, outside the lock.
}

std::map<uint64_t, size_t> GrpcTransport::QueueDepths() {
  std::lock_guard<std::mutex> l(mu_);
  std::map<uint64_t, size_t> out;
  for (const auto& [id, peer] : peers_) out[id] = peer->queued();
  return out;
}

void GrpcTransport::Send(core::Message m) {
  obs::TraceMessage(m, /*received=*/false);
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return;
  std::unique_ptr<Peer>& peer = peers_[m.to];
  if (peer == nullptr) peer = std::make_unique<Peer>(this, m.to);
  peer->Enqueue(std::move(m));
}

void GrpcTransport::Flush() {
  obs::PhaseTimer timer(obs::Phase::kSend);
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return;
  for (auto& [id, peer] : peers_) peer->Flush();
}

}  // namespace raftsql::net
