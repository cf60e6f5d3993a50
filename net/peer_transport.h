// PeerTransport: what a node's server needs of the transport that carries
// its Raft messages, besides core::Transport's Send and Flush: counters
// for /metrics and Status, and a stop. Two implement it: GrpcTransport
// (gRPC streams on gRPC's threads) and StreamTransport (length-prefixed
// batches on plain sockets, driven by the Raft loop's own poller).
#ifndef RAFTSQL_NET_PEER_TRANSPORT_H_
#define RAFTSQL_NET_PEER_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <map>

#include "core/interfaces.h"

namespace raftsql::net {

// About how many bytes `m` takes in a batch (the transports' batch bound).
inline size_t ApproximateBatchBytes(const core::Message& m) {
  size_t n = 64 + m.context.size();
  for (const core::Entry& e : m.entries) n += e.Size();
  if (m.snapshot.has_value()) n += m.snapshot->data.size();
  return n;
}

class PeerTransport : public core::Transport {
 public:
  // Ends every connection; Send and Flush do nothing after it.
  virtual void Stop() = 0;
  // Messages queued for each peer and not yet written (any thread).
  virtual std::map<uint64_t, size_t> QueueDepths() = 0;
  // Any thread.
  virtual uint64_t sent() const = 0;
  virtual uint64_t dropped() const = 0;
  virtual uint64_t broken_streams() const = 0;
};

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_PEER_TRANSPORT_H_
