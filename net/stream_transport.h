// StreamTransport: Raft messages between nodes over plain TCP connections
// that the Raft loop itself reads and writes (issue 17: fewer threads woken
// per write). With GrpcTransport a peer's message is read by a gRPC thread
// and posted to the loop (two wake-ups a hop, 58-78 us each on the
// critical path at one client); here the loop's poller (net/poller.h)
// wakes the loop on the socket, and the loop writes its sends itself.
//
// Wire: the dialling node writes an 8-byte preface (kPreface: protocol
// and version), then frames, each a 4-byte little-endian length and a
// serialized v1::RaftBatch. Each node dials each peer it sends to (one
// outgoing connection per peer, written only) and accepts the connections
// its peers dial (read only): the same shape as GrpcTransport's streams.
//
// Bounded: a peer's queue (max_queued_messages; the oldest is dropped, Raft
// resends), one batch being written per peer (max_batch_bytes, so at most
// that much plus the socket's buffer in flight), a frame read
// (max_frame_bytes: a longer length ends the connection), incoming
// connections (max_incoming; more are closed at once; a node's newer
// connection closes its older ones), the bytes one
// connection may be read for in one loop iteration (kReadBudget).
// Input from outside is checked: a wrong preface, an oversized or
// malformed frame ends that connection with a log line, never the node.
//
// With TLS (options.tls enabled) every connection is mutual TLS
// (net/tls_session.h): the dialled node must show node-<id>'s certificate,
// and an accepted connection carries only messages from the node its
// certificate names (one that names another ends the connection).
#ifndef RAFTSQL_NET_STREAM_TRANSPORT_H_
#define RAFTSQL_NET_STREAM_TRANSPORT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/interfaces.h"
#include "net/peer_transport.h"
#include "net/poller.h"
#include "net/tls.h"
#include "net/tls_session.h"

namespace raftsql::net {

struct StreamTransportOptions {
  uint64_t self_id = 0;
  std::string listen;          // host:port; port 0 picks one (port())
  std::string self_address;    // sent with every batch (where peers dial)
  std::string client_address;  // ditto, if not self_address
  Tls tls;                     // mutual TLS if enabled
  size_t max_queued_messages = 4096;
  size_t max_batch_bytes = 4 << 20;
  size_t max_frame_bytes = 64 << 20;
  size_t max_incoming = 64;
  // A connection that makes no progress writing for this long (a peer that
  // stopped reading, or a connect that hangs) is given up.
  int write_timeout_ms = 2000;
  // Sent data unacknowledged this long ends a connection (TCP_USER_TIMEOUT:
  // a peer whose host vanished without a reset).
  int unacked_timeout_ms = 5000;
  // An accepted connection that has not sent its preface by then is closed.
  int preface_timeout_ms = 5000;
  int min_backoff_ms = 10;
  int max_backoff_ms = 1000;
};

struct StreamTransportCallbacks {
  // The peer's address ("" while unknown: its messages are dropped).
  std::function<std::string(uint64_t id)> resolve;
  // These run on the loop's thread, inside Flush, OnReady or Tick.
  std::function<void(uint64_t id)> on_unreachable;
  std::function<void(uint64_t id)> on_snapshot_failed;
  // A batch's messages, each decoded and checked (net/convert.h), with the
  // sender's addresses as the batch gave them.
  std::function<void(std::vector<core::Message> messages,
                     const std::string& from_address,
                     const std::string& client_address)>
      on_messages;
};

class StreamTransport final : public PeerTransport {
 public:
  static constexpr char kPreface[9] = "RSQLRAF1";
  static constexpr size_t kPrefaceBytes = 8;
  // The most bytes one connection is read for in one OnReady (then the
  // loop runs its other work; the socket stays ready).
  static constexpr size_t kReadBudget = 2 << 20;

  // Listens on options.listen and registers with `poller` (which outlives
  // the transport). Every other call but QueueDepths and the counters is
  // made on the thread that waits on the poller.
  static absl::StatusOr<std::unique_ptr<StreamTransport>> Create(
      StreamTransportOptions options, StreamTransportCallbacks callbacks,
      Poller* poller);
  ~StreamTransport() override;

  void Send(core::Message m) override;
  // Writes what is queued to every peer whose connection can take it.
  void Flush() override;
  // The poller's ready sockets: accepts, reads and delivers, writes on.
  void OnReady(const std::vector<Poller::Ready>& ready);
  // Stalled writes and prefaces time out; back-offs that ended reconnect.
  void Tick();
  void Stop() override;

  int port() const { return port_; }
  std::map<uint64_t, size_t> QueueDepths() override;
  uint64_t sent() const override { return sent_.load(); }
  uint64_t dropped() const override { return dropped_.load(); }
  uint64_t broken_streams() const override { return broken_.load(); }
  uint64_t refused_connections() const { return refused_.load(); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Out;
  struct In;

  StreamTransport(StreamTransportOptions options,
                  StreamTransportCallbacks callbacks, Poller* poller,
                  std::unique_ptr<TlsEndpoint> tls, int listen_fd, int port);

  void Pump(Out& out);
  bool Connect(Out& out);
  bool SetUp(Out& out);
  void SetUp(In& in, uint64_t token);
  void NextFrame(Out& out);
  void WantWrite(Out& out, bool want);
  void Fail(Out& out, const std::string& why);
  void Accept();
  void Read(In& in);
  // False if the connection is to be closed (why logged).
  bool Parse(In& in);
  void Supersede(const In& newest);
  void Close(uint64_t token);

  const StreamTransportOptions options_;
  const StreamTransportCallbacks callbacks_;
  Poller* const poller_;
  const std::unique_ptr<TlsEndpoint> tls_;  // null: plaintext
  int listen_fd_;
  const int port_;
  bool stopped_ = false;
  bool accept_paused_ = false;  // out of descriptors: until the next tick

  std::mutex mu_;  // peers_'s shape, for QueueDepths on other threads
  std::map<uint64_t, std::unique_ptr<Out>> peers_;
  std::unordered_map<uint64_t, std::unique_ptr<In>> incoming_;
  uint64_t next_incoming_ = 1;
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> broken_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_STREAM_TRANSPORT_H_
