#include "net/stream_transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/convert.h"
#include "net/host_port.h"
#include "net/raftsql.pb.h"
#include "net/tls_session.h"
#include "obs/log.h"
#include "obs/loop_phases.h"
#include "obs/write_trace.h"

namespace raftsql::net {
namespace {

constexpr uint64_t kListenToken = 0;
constexpr uint64_t kOutTag = 1;
constexpr uint64_t kInTag = 2;
constexpr size_t kLengthBytes = 4;
// A connection's read buffer starts here and grows to the frame it reads.
constexpr size_t kInitialReadBytes = 256 << 10;
// An idle connection keeps a read buffer up to this size.
constexpr size_t kKeepReadBytes = 16 << 20;

uint64_t OutToken(uint64_t id) { return (id << 2) | kOutTag; }
uint64_t InToken(uint64_t serial) { return (serial << 2) | kInTag; }

std::string Errno(const char* what) {
  return absl::StrCat(what, ": ", strerror(errno));
}

// host:port (or [v6]:port) into a socket address. Numeric hosts need no
// lookup; a name is looked up here (on the loop: prefer numeric addresses).
absl::StatusOr<std::pair<sockaddr_storage, socklen_t>> SocketAddress(
    const std::string& address, bool passive) {
  const auto [host, port] = HostPort(address);
  if (port < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", address, "\" is not host:port"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(),
                             std::to_string(port).c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve \"", address, "\": ", gai_strerror(rc)));
  }
  std::pair<sockaddr_storage, socklen_t> out{};
  memcpy(&out.first, found->ai_addr, found->ai_addrlen);
  out.second = found->ai_addrlen;
  freeaddrinfo(found);
  return out;
}

void NoDelay(int fd) {
  const int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void PutLength(char* p, uint32_t n) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((n >> (8 * i)) & 0xff);
}

uint32_t GetLength(const char* p) {
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) {
    n |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return n;
}

// One step of I/O on a connection, plaintext or TLS, in TlsStep's terms.
TlsStep WriteSome(int fd, ssl_st* ssl, const char* data, size_t n) {
  if (ssl != nullptr) return TlsWrite(ssl, data, n);
  TlsStep r;
  const ssize_t k = send(fd, data, n, MSG_NOSIGNAL);
  if (k > 0) {
    r.bytes = static_cast<size_t>(k);
  } else if (k < 0 &&
             (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    r.what = TlsStep::kWantWrite;
  } else {
    r.what = TlsStep::kFailed;
    r.error = Errno("send");
  }
  return r;
}

TlsStep ReadSome(int fd, ssl_st* ssl, char* out, size_t n) {
  if (ssl != nullptr) return TlsRead(ssl, out, n);
  TlsStep r;
  const ssize_t k = recv(fd, out, n, 0);
  if (k > 0) {
    r.bytes = static_cast<size_t>(k);
  } else if (k == 0) {
    r.what = TlsStep::kClosed;
  } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    r.what = TlsStep::kWantRead;
  } else {
    r.what = TlsStep::kFailed;
    r.error = Errno("recv");
  }
  return r;
}

}  // namespace

// The frame being written. Not a std::string: resizing one zero-fills
// it, a pass over each 4 MiB batch of a snapshot before the batch is
// serialized over it.
class FrameBuffer {
 public:
  // Room for `n` bytes, their content unspecified.
  char* Resize(size_t n) {
    if (n > capacity_) {
      bytes_.reset(new char[n]);
      capacity_ = n;
    }
    size_ = n;
    return bytes_.get();
  }
  void Assign(const char* from, size_t n) { std::memcpy(Resize(n), from, n); }
  void clear() { size_ = 0; }
  const char* data() const { return bytes_.get(); }
  size_t size() const { return size_; }

 private:
  std::unique_ptr<char[]> bytes_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// One peer this node sends to: its queue, and the connection that carries
// it, written only.
struct StreamTransport::Out {
  explicit Out(uint64_t peer) : id(peer) {}
  const uint64_t id;
  std::atomic<size_t> queued{0};  // queue.size(), for QueueDepths
  std::deque<core::Message> queue;
  int fd = -1;
  SslSession ssl;           // with TLS
  bool connected = false;   // TCP
  bool ready = false;       // and TLS: frames may be written
  bool want_write = false;  // EPOLLOUT registered
  FrameBuffer frame;        // being written: [preface] length, batch
  size_t written = 0;
  size_t frame_messages = 0;
  bool frame_snapshot = false;
  Clock::time_point progress;  // the last byte written, or the connect
  int backoff_ms = 0;
  Clock::time_point retry_at;
};

// One connection a peer dialled, read only.
struct StreamTransport::In {
  int fd = -1;
  SslSession ssl;           // with TLS
  bool ready = false;       // TLS set up (at once without)
  bool want_write = false;  // EPOLLOUT registered (a handshake's)
  uint64_t peer = 0;        // the node its certificate names (0 without TLS)
  uint64_t sender = 0;      // the node its messages come from, once known
  // Read and not yet parsed: buf[0, used) of `capacity` bytes. Grown
  // without zeroing and kept between frames (a snapshot's 4 MiB batches
  // would otherwise each allocate, fault in and free their buffer), down to
  // nothing once idle above kKeepReadBytes.
  std::unique_ptr<char[]> buf;
  size_t capacity = 0;
  size_t used = 0;

  // Room for `n` bytes in all (what is read so far kept).
  void Reserve(size_t n) {
    if (capacity >= n) return;
    const size_t grown = std::max({n, capacity * 2, kInitialReadBytes});
    std::unique_ptr<char[]> more(new char[grown]);
    if (used > 0) memcpy(more.get(), buf.get(), used);
    buf = std::move(more);
    capacity = grown;
  }
  bool preface = false;
  bool done = false;  // to be closed (a close, an error, bad input)
  Clock::time_point accepted;
  std::string from;  // the sender's address, once a batch named it
};

absl::StatusOr<std::unique_ptr<StreamTransport>> StreamTransport::Create(
    StreamTransportOptions options, StreamTransportCallbacks callbacks,
    Poller* poller) {
  std::unique_ptr<TlsEndpoint> tls;
  if (options.tls.enabled()) {
    absl::StatusOr<std::unique_ptr<TlsEndpoint>> t =
        TlsEndpoint::Create(options.tls);
    if (!t.ok()) return t.status();
    tls = std::move(*t);
  }
  absl::StatusOr<std::pair<sockaddr_storage, socklen_t>> addr =
      SocketAddress(options.listen, /*passive=*/true);
  if (!addr.ok()) return addr.status();
  const int fd = socket(addr->first.ss_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(Errno("socket"));
  const int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr->first), addr->second) !=
          0 ||
      listen(fd, 128) != 0) {
    const std::string why = Errno("bind/listen");
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, " (", why, ")"));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  int port = 0;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    port = ntohs(bound.ss_family == AF_INET6
                     ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  absl::Status added = poller->Add(fd, EPOLLIN, kListenToken);
  if (!added.ok()) {
    close(fd);
    return added;
  }
  return std::unique_ptr<StreamTransport>(
      new StreamTransport(std::move(options), std::move(callbacks), poller,
                          std::move(tls), fd, port));
}

StreamTransport::StreamTransport(StreamTransportOptions options,
                                 StreamTransportCallbacks callbacks,
                                 Poller* poller,
                                 std::unique_ptr<TlsEndpoint> tls,
                                 int listen_fd, int port)
    : options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      poller_(poller),
      tls_(std::move(tls)),
      listen_fd_(listen_fd),
      port_(port) {}

StreamTransport::~StreamTransport() { Stop(); }

void StreamTransport::Stop() {
  if (stopped_) return;
  stopped_ = true;
  poller_->Remove(listen_fd_);
  close(listen_fd_);
  listen_fd_ = -1;
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [id, out] : peers_) {
    if (out->fd >= 0) {
      poller_->Remove(out->fd);
      out->ssl.reset();
      close(out->fd);
      out->fd = -1;
    }
  }
  for (auto& [token, in] : incoming_) {
    poller_->Remove(in->fd);
    close(in->fd);
  }
  incoming_.clear();
}

std::map<uint64_t, size_t> StreamTransport::QueueDepths() {
  std::lock_guard<std::mutex> l(mu_);
  std::map<uint64_t, size_t> out;
  for (const auto& [id, peer] : peers_) out[id] = peer->queued.load();
  return out;
}

void StreamTransport::Send(core::Message m) {
  obs::TraceMessage(m, /*received=*/false);
  if (stopped_ || m.to == 0 || m.to > (~uint64_t{0} >> 2)) return;
  auto it = peers_.find(m.to);
  if (it == peers_.end()) {
    std::lock_guard<std::mutex> l(mu_);
    it = peers_.emplace(m.to, std::make_unique<Out>(m.to)).first;
  }
  Out& out = *it->second;
  if (out.queue.size() >= options_.max_queued_messages) {
    out.queue.pop_front();
    dropped_.fetch_add(1);
  }
  out.queue.push_back(std::move(m));
  out.queued.store(out.queue.size());
}

void StreamTransport::Flush() {
  obs::PhaseTimer timer(obs::Phase::kSend);
  if (stopped_) return;
  for (auto& [id, out] : peers_) Pump(*out);
}

void StreamTransport::Tick() {
  if (stopped_) return;
  if (accept_paused_) {
    accept_paused_ = false;
    (void)poller_->Modify(listen_fd_, EPOLLIN, kListenToken);
  }
  const auto now = Clock::now();
  const auto write_timeout =
      std::chrono::milliseconds(options_.write_timeout_ms);
  for (auto& [id, out] : peers_) {
    const bool pending = !out->ready || out->written < out->frame.size();
    if (out->fd >= 0 && pending && now - out->progress > write_timeout) {
      Fail(*out, out->ready ? "a write made no progress"
                            : "the connection was not set up in time");
    }
    Pump(*out);
  }
  std::vector<uint64_t> idle;
  for (const auto& [token, in] : incoming_) {
    if (!in->preface && now - in->accepted > std::chrono::milliseconds(
                                                 options_.preface_timeout_ms)) {
      idle.push_back(token);
    }
  }
  for (uint64_t token : idle) Close(token);
}

// Writes as much as the socket takes: the frame under way, then the next
// batch from the queue, until the queue is empty or the socket is full.
void StreamTransport::Pump(Out& out) {
  if (stopped_) return;
  if (out.fd < 0) {
    if (out.queue.empty() || Clock::now() < out.retry_at) return;
    if (!Connect(out)) return;
  }
  if (!out.ready) return;  // The connect's (and handshake's) events first.
  while (true) {
    if (out.written == out.frame.size()) {
      if (out.frame_messages > 0) {
        sent_.fetch_add(out.frame_messages);
        out.frame_messages = 0;
        out.backoff_ms = 0;
      }
      if (out.queue.empty()) break;
      NextFrame(out);
    }
    const TlsStep w =
        WriteSome(out.fd, out.ssl.get(), out.frame.data() + out.written,
                  out.frame.size() - out.written);
    if (w.what == TlsStep::kDone) {
      out.written += w.bytes;
      out.progress = Clock::now();
      continue;
    }
    if (w.what == TlsStep::kWantWrite) break;
    if (w.what == TlsStep::kWantRead) return WantWrite(out, false);
    return Fail(out, w.what == TlsStep::kClosed ? "closed by the peer"
                                                : "send: " + w.error);
  }
  WantWrite(out, out.written < out.frame.size());
}

// A nonblocking connect; false (peer reported) if it cannot even start.
bool StreamTransport::Connect(Out& out) {
  const std::string address = callbacks_.resolve(out.id);
  if (address.empty()) {
    dropped_.fetch_add(out.queue.size());
    out.queue.clear();
    out.queued.store(0);
    if (callbacks_.on_unreachable) callbacks_.on_unreachable(out.id);
    return false;
  }
  absl::StatusOr<std::pair<sockaddr_storage, socklen_t>> addr =
      SocketAddress(address, /*passive=*/false);
  int fd = -1;
  if (addr.ok()) {
    fd = socket(addr->first.ss_family,
                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) {
    out.fd = -1;
    Fail(out,
         addr.ok() ? Errno("socket") : std::string(addr.status().message()));
    return false;
  }
  NoDelay(fd);
  // Data a peer has not acknowledged for this long ends the connection (a
  // peer whose host vanished sends no reset; heartbeats keep data flowing).
  const unsigned user_timeout_ms = static_cast<unsigned>(
      std::max(options_.write_timeout_ms, options_.unacked_timeout_ms));
  (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
                   sizeof(user_timeout_ms));
  out.fd = fd;
  out.connected = false;
  out.ready = false;
  if (tls_ != nullptr) {
    out.ssl = tls_->Dial(fd, out.id);
    if (out.ssl == nullptr) {
      Fail(out, "cannot set up a TLS session");
      return false;
    }
  }
  out.progress = Clock::now();
  const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr->first),
                         addr->second);
  if (rc != 0 && errno != EINPROGRESS) {
    Fail(out, Errno("connect"));
    return false;
  }
  // The preface goes first, ahead of any batch.
  out.frame.Assign(kPreface, kPrefaceBytes);
  out.written = 0;
  out.frame_messages = 0;
  out.frame_snapshot = false;
  out.want_write = true;
  absl::Status s = poller_->Add(fd, EPOLLIN | EPOLLOUT, OutToken(out.id));
  if (!s.ok()) {
    Fail(out, std::string(s.message()));
    return false;
  }
  return true;  // Set up by OnReady: the socket reports writable.
}

// The next batch from the queue (up to max_batch_bytes, at least one
// message) as one frame.
void StreamTransport::NextFrame(Out& out) {
  v1::RaftBatch batch;
  batch.set_from_address(options_.self_address);
  batch.set_client_address(options_.client_address);
  size_t bytes = 0;
  out.frame_messages = 0;
  out.frame_snapshot = false;
  while (!out.queue.empty() &&
         (out.frame_messages == 0 || bytes < options_.max_batch_bytes)) {
    core::Message& m = out.queue.front();
    bytes += ApproximateBatchBytes(m);
    out.frame_snapshot |= m.type == core::MessageType::kSnap;
    ToProto(std::move(m), batch.add_messages());
    ++out.frame_messages;
    out.queue.pop_front();
  }
  out.queued.store(out.queue.size());
  const size_t size = batch.ByteSizeLong();
  char* const frame = out.frame.Resize(kLengthBytes + size);
  PutLength(frame, static_cast<uint32_t>(size));
  batch.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(frame + kLengthBytes));
  out.written = 0;
}

void StreamTransport::WantWrite(Out& out, bool want) {
  if (out.fd < 0 || out.want_write == want) return;
  out.want_write = want;
  (void)poller_->Modify(out.fd, EPOLLIN | (want ? uint32_t{EPOLLOUT} : 0u),
                        OutToken(out.id));
}

// The connection broke (or never came up): what it carried may be lost.
// Close it, back off, and tell Raft; the queue waits for the next one.
void StreamTransport::Fail(Out& out, const std::string& why) {
  if (out.fd >= 0) {
    poller_->Remove(out.fd);
    out.ssl.reset();
    close(out.fd);
    if (out.ready) broken_.fetch_add(1);
  }
  out.fd = -1;
  out.connected = false;
  out.ready = false;
  out.want_write = false;
  const bool snapshot = out.frame_snapshot && out.frame_messages > 0;
  dropped_.fetch_add(out.frame_messages);
  out.frame.clear();
  out.written = 0;
  out.frame_messages = 0;
  out.frame_snapshot = false;
  out.backoff_ms = std::clamp(out.backoff_ms * 2, options_.min_backoff_ms,
                              options_.max_backoff_ms);
  out.retry_at = Clock::now() + std::chrono::milliseconds(out.backoff_ms);
  obs::Log(obs::Level::kDebug, "transport",
           absl::StrCat("node ", options_.self_id, ": connection to node ",
                        out.id, " given up: ", why),
           {{"node", options_.self_id}, {"peer", out.id}});
  if (callbacks_.on_unreachable) callbacks_.on_unreachable(out.id);
  if (snapshot && callbacks_.on_snapshot_failed) {
    callbacks_.on_snapshot_failed(out.id);
  }
}

void StreamTransport::OnReady(const std::vector<Poller::Ready>& ready) {
  if (stopped_) return;
  for (const Poller::Ready& r : ready) {
    if (r.token == kListenToken) {
      Accept();
      continue;
    }
    const uint64_t tag = r.token & 3;
    if (tag == kOutTag) {
      auto it = peers_.find(r.token >> 2);
      if (it == peers_.end() || it->second->fd < 0) continue;
      Out& out = *it->second;
      if (r.events & (EPOLLERR | EPOLLHUP)) {
        int err = 0;
        socklen_t len = sizeof(err);
        (void)getsockopt(out.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        Fail(out, err != 0 ? strerror(err) : "closed by the peer");
        continue;
      }
      if (!out.connected) {
        if (!(r.events & EPOLLOUT)) continue;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(out.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
            err != 0) {
          Fail(out, absl::StrCat("connect: ", strerror(err)));
          continue;
        }
        out.connected = true;
      }
      if (!out.ready) {
        if (!SetUp(out)) continue;
      } else if (r.events & EPOLLIN) {
        // A peer never writes on this connection: a close, an error or
        // data all end it (TLS's own messages are taken by the read).
        char scratch[4096];
        const TlsStep rd =
            ReadSome(out.fd, out.ssl.get(), scratch, sizeof(scratch));
        if (rd.what != TlsStep::kWantRead && rd.what != TlsStep::kWantWrite) {
          Fail(out, rd.what == TlsStep::kDone     ? "the peer wrote to a "
                                                    "connection it only reads"
                    : rd.what == TlsStep::kClosed ? "closed by the peer"
                                                  : rd.error);
          continue;
        }
      }
      Pump(out);
    } else if (tag == kInTag) {
      auto it = incoming_.find(r.token);
      if (it == incoming_.end()) continue;
      In& in = *it->second;
      if (!in.ready) SetUp(in, r.token);
      if (in.ready && !in.done) Read(in);
      if (in.done) Close(r.token);
    }
  }
}

void StreamTransport::Accept() {
  while (true) {
    const int fd =
        accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        // Out of descriptors or memory: the listener stays ready, and the
        // loop would spin on it. Stop watching it until the next tick.
        obs::Log(obs::Level::kWarn, "transport",
                 absl::StrCat(
                     "node ", options_.self_id,
                     ": cannot accept a peer connection: ", strerror(errno)),
                 {{"node", options_.self_id}});
        (void)poller_->Modify(listen_fd_, 0, kListenToken);
        accept_paused_ = true;
      }
      return;  // EAGAIN: all taken.
    }
    if (incoming_.size() >= options_.max_incoming) {
      close(fd);
      refused_.fetch_add(1);
      continue;
    }
    NoDelay(fd);
    const uint64_t token = InToken(next_incoming_++);
    auto in = std::make_unique<In>();
    in->fd = fd;
    in->accepted = Clock::now();
    if (tls_ != nullptr) {
      in->ssl = tls_->Accept(fd);
      if (in->ssl == nullptr) {
        close(fd);
        continue;
      }
    } else {
      in->ready = true;
    }
    if (!poller_->Add(fd, EPOLLIN, token).ok()) {
      close(fd);
      continue;
    }
    incoming_.emplace(token, std::move(in));
  }
}

// Reads what the socket holds (up to kReadBudget) and delivers every whole
// frame; sets in.done when the connection is to be closed.
void StreamTransport::Read(In& in) {
  size_t taken = 0;
  while (taken < kReadBudget) {
    // At least 64 KiB of room: a TLS record (16 KiB) is always read whole,
    // so none waits inside the session while the socket looks idle.
    in.Reserve(in.used + (64 << 10));
    const TlsStep rd = ReadSome(in.fd, in.ssl.get(), in.buf.get() + in.used,
                                in.capacity - in.used);
    if (rd.what == TlsStep::kWantRead || rd.what == TlsStep::kWantWrite) return;
    if (rd.what != TlsStep::kDone) {
      if (rd.what == TlsStep::kFailed) {
        obs::Log(obs::Level::kWarn, "transport",
                 absl::StrCat("node ", options_.self_id,
                              ": a peer connection failed: ", rd.error),
                 {{"node", options_.self_id}});
      }
      in.done = true;
      return;
    }
    in.used += rd.bytes;
    taken += rd.bytes;
    if (!Parse(in)) {
      in.done = true;
      return;
    }
  }
}

bool StreamTransport::Parse(In& in) {
  size_t pos = 0;
  auto refuse = [&](const std::string& why) {
    obs::Log(obs::Level::kWarn, "transport",
             absl::StrCat("node ", options_.self_id, ": a peer connection",
                          in.from.empty() ? "" : " from ", in.from,
                          " closed: ", why),
             {{"node", options_.self_id}});
    return false;
  };
  if (!in.preface) {
    if (in.used < kPrefaceBytes) return true;
    if (memcmp(in.buf.get(), kPreface, kPrefaceBytes) != 0) {
      return refuse(
          "it does not speak the stream peer protocol (every node of a "
          "cluster must run the same --peer_transport)");
    }
    in.preface = true;
    pos = kPrefaceBytes;
  }
  while (in.used - pos >= kLengthBytes) {
    const uint32_t size = GetLength(in.buf.get() + pos);
    if (size > options_.max_frame_bytes) {
      return refuse(absl::StrCat("a frame of ", size, " bytes (the most is ",
                                 options_.max_frame_bytes, ")"));
    }
    if (in.used - pos < kLengthBytes + size) {
      // Room for the whole frame, so that it reads in as few calls as it can.
      // (Taken from the buffer's front first, below.)
      in.Reserve(in.used - pos + kLengthBytes + size + (64 << 10));
      break;
    }
    v1::RaftBatch batch;
    if (!batch.ParseFromArray(in.buf.get() + pos + kLengthBytes,
                              static_cast<int>(size))) {
      return refuse("a frame that is not a RaftBatch");
    }
    pos += kLengthBytes + size;
    std::vector<core::Message> messages;
    messages.reserve(batch.messages_size());
    for (v1::RaftMessage& p : *batch.mutable_messages()) {
      absl::StatusOr<core::Message> m = FromProto(std::move(p));
      if (!m.ok()) return refuse(std::string(m.status().message()));
      if (in.peer != 0 && m->from != in.peer) {
        return refuse(absl::StrCat("node ", in.peer, " sent a message as node ",
                                   m->from));
      }
      messages.push_back(std::move(*m));
    }
    if (in.from.empty()) in.from = batch.from_address();
    if (in.sender == 0 && !messages.empty()) {
      in.sender = messages.front().from;
      Supersede(in);
    }
    if (callbacks_.on_messages && !messages.empty()) {
      callbacks_.on_messages(std::move(messages), batch.from_address(),
                             batch.client_address());
    }
  }
  if (pos > 0) {
    memmove(in.buf.get(), in.buf.get() + pos, in.used - pos);
    in.used -= pos;
  }
  if (in.used == 0 && in.capacity > kKeepReadBytes) {
    in.buf.reset();  // An unusually large frame is over.
    in.capacity = 0;
  }
  return true;
}

// Takes an outgoing connection's TLS handshake a step on (at once without
// TLS); true once frames may be written.
bool StreamTransport::SetUp(Out& out) {
  if (out.ssl != nullptr) {
    const TlsStep h = TlsHandshake(out.ssl.get());
    if (h.what == TlsStep::kWantRead || h.what == TlsStep::kWantWrite) {
      WantWrite(out, h.what == TlsStep::kWantWrite);
      return false;
    }
    if (h.what != TlsStep::kDone) {
      Fail(out, absl::StrCat("TLS handshake: ", h.what == TlsStep::kClosed
                                                    ? "closed by the peer"
                                                    : h.error));
      return false;
    }
  }
  out.ready = true;
  out.progress = Clock::now();
  return true;
}

// The same for an accepted connection: its certificate must name a node,
// whose messages alone it may carry.
void StreamTransport::SetUp(In& in, uint64_t token) {
  const TlsStep h = TlsHandshake(in.ssl.get());
  if (h.what == TlsStep::kWantRead || h.what == TlsStep::kWantWrite) {
    const bool want = h.what == TlsStep::kWantWrite;
    if (want != in.want_write) {
      in.want_write = want;
      (void)poller_->Modify(in.fd, EPOLLIN | (want ? uint32_t{EPOLLOUT} : 0u),
                            token);
    }
    return;
  }
  std::optional<uint64_t> peer;
  if (h.what == TlsStep::kDone) peer = TlsPeerNode(in.ssl.get());
  if (!peer.has_value()) {
    obs::Log(obs::Level::kWarn, "transport",
             absl::StrCat("node ", options_.self_id,
                          ": a peer connection's TLS set-up failed: ",
                          h.what == TlsStep::kDone
                              ? "its certificate does not name a node"
                          : h.what == TlsStep::kClosed ? "closed by the peer"
                                                       : h.error),
             {{"node", options_.self_id}});
    in.done = true;
    return;
  }
  if (in.want_write) {
    in.want_write = false;
    (void)poller_->Modify(in.fd, EPOLLIN, token);
  }
  in.peer = *peer;
  in.sender = *peer;
  in.ready = true;
  Supersede(in);
}

// A node dials each peer once; a second connection from the same node
// means it restarted (or its host did, with no reset to end the first):
// the older ones are closed, so that connections from nodes that vanished
// never pile up to max_incoming.
void StreamTransport::Supersede(const In& newest) {
  std::vector<uint64_t> older;
  for (const auto& [token, in] : incoming_) {
    if (in.get() != &newest && in->sender == newest.sender) {
      older.push_back(token);
    }
  }
  for (uint64_t token : older) Close(token);
}

void StreamTransport::Close(uint64_t token) {
  auto it = incoming_.find(token);
  if (it == incoming_.end()) return;
  poller_->Remove(it->second->fd);
  it->second->ssl.reset();
  close(it->second->fd);
  incoming_.erase(it);
}

}  // namespace raftsql::net
