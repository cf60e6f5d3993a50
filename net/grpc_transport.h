// GrpcTransport: the production core::Transport. Each peer has its own
// bounded queue and at most one RPC in flight, so a slow or dead peer never
// blocks the Raft loop or the other peers:
// - Send() enqueues (the oldest message is dropped when a queue is full:
//   Raft retries, and newer messages carry newer state), and Flush() starts
//   a write (gRPC's callback API, no blocking) to each idle peer, so the
//   messages of one Ready to one peer go together;
// - everything queued meanwhile (up to a byte bound) goes as one RaftBatch
//   from the previous RPC's completion;
// - a failed RPC drops its batch, reports the peer unreachable (and any
//   snapshot chunk in it as failed), and backs off exponentially: messages
//   queue until the next Send after the back-off (Raft sends at least a
//   heartbeat per interval); gRPC reconnects underneath.
#ifndef RAFTSQL_NET_GRPC_TRANSPORT_H_
#define RAFTSQL_NET_GRPC_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/interfaces.h"
#include "net/peer_transport.h"
#include "net/tls.h"

namespace grpc {
class Channel;
}

namespace raftsql::net {

// A channel with large message limits and quick reconnects, secured by
// `tls` (plaintext without a CA). With `server_name` the server's
// certificate must carry that name (peers dial node-<id>); without, the
// address it is dialled by (an IP address or DNS name in its certificate).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const Tls& tls,
                                           const std::string& server_name = "");
// Call before gRPC initializes (the first channel or server): a synchronous
// client polls its channels only during a call, so a reconnect finishing
// between calls was noticed by gRPC's backup poller only every 5 s (a node
// that came up stayed "unreachable" that long); poll every 20 ms. Also
// turns off Abseil's debug deadlock detector.
void PrepareGrpc();

struct GrpcTransportOptions {
  std::string self_address;    // sent with every batch
  std::string client_address;  // ditto, if not self_address
  // This node's certificate and the cluster CA; each peer must prove it is
  // node-<id> (mutual TLS).
  Tls tls;
  size_t max_queued_messages = 4096;
  size_t max_batch_bytes = 4 << 20;
  // A batch not written within this (a peer that stopped reading) gives
  // the stream up.
  int write_timeout_ms = 2000;
  int min_backoff_ms = 10;
  int max_backoff_ms = 1000;
};

struct GrpcTransportCallbacks {
  // The peer's address ("" while unknown: its messages are dropped).
  std::function<std::string(uint64_t id)> resolve;
  // Called on sender threads.
  std::function<void(uint64_t id)> on_unreachable;
  std::function<void(uint64_t id)> on_snapshot_failed;
};

class GrpcTransport final : public PeerTransport {
 public:
  GrpcTransport(GrpcTransportOptions options, GrpcTransportCallbacks callbacks);
  // Cancels every stream and waits until gRPC is done with each.
  ~GrpcTransport() override;

  void Send(core::Message m) override;
  // Starts a write to every idle peer with queued messages: Send only
  // queues, so that a Ready's messages to one peer go as one batch.
  void Flush() override;
  void Stop() override;

  std::map<uint64_t, size_t> QueueDepths() override;
  uint64_t sent() const override { return sent_.load(); }
  uint64_t dropped() const override { return dropped_.load(); }
  uint64_t broken_streams() const override { return broken_streams_.load(); }

 private:
  class Peer;

  const GrpcTransportOptions options_;
  const GrpcTransportCallbacks callbacks_;
  std::mutex mu_;
  bool stopped_ = false;
  std::map<uint64_t, std::unique_ptr<Peer>> peers_;
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> broken_streams_{0};
};

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_GRPC_TRANSPORT_H_
