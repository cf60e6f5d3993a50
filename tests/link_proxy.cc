#include "tests/link_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace raftsql::verify {
namespace {

constexpr int kPollMs = 50;  // How soon a pump or the acceptor sees
                             // a stop or a cut.
constexpr size_t kBufferBytes = 64 << 10;

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

// Writes all of `n` bytes; false if the socket failed.
bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    // MSG_NOSIGNAL: a connection the proxy cut must not raise SIGPIPE.
    const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

LinkProxy::LinkProxy(int target_port) : target_port_(target_port) {
  listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(0);
  socklen_t len = sizeof(a);
  if (listener_ < 0 ||
      bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(listener_, 16) != 0 ||
      getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return;
  }
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
}

LinkProxy::~LinkProxy() {
  stop_.store(true);
  if (acceptor_.joinable()) acceptor_.join();
  if (listener_ >= 0) close(listener_);
  CloseCarried();
  std::vector<std::thread> pumps;
  {
    std::lock_guard<std::mutex> l(mu_);
    pumps.swap(pumps_);
  }
  for (std::thread& t : pumps) t.join();
}

std::string LinkProxy::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

void LinkProxy::Cut() {
  cut_.store(true);
  CloseCarried();
}

void LinkProxy::Mend() { cut_.store(false); }

void LinkProxy::CloseCarried() {
  std::lock_guard<std::mutex> l(mu_);
  // shutdown, not close: the pump owns the descriptors and closes them.
  for (int fd : carried_) shutdown(fd, SHUT_RDWR);
}

void LinkProxy::Accept() {
  while (!stop_.load()) {
    pollfd p{listener_, POLLIN, 0};
    if (poll(&p, 1, kPollMs) <= 0) continue;
    const int node = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (node < 0) continue;
    ++accepted_;
    if (cut_.load()) {
      close(node);
      continue;
    }
    const int peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in target = Loopback(target_port_);
    if (peer < 0 || connect(peer, reinterpret_cast<const sockaddr*>(&target),
                            sizeof(target)) != 0) {
      close(node);
      if (peer >= 0) close(peer);
      continue;
    }
    std::lock_guard<std::mutex> l(mu_);
    carried_.insert(node);
    carried_.insert(peer);
    pumps_.emplace_back([this, node, peer] { Pump(node, peer); });
  }
}

void LinkProxy::Pump(int a, int b) {
  std::vector<char> buffer(kBufferBytes);
  pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  while (!stop_.load() && !cut_.load()) {
    if (poll(fds, 2, kPollMs) <= 0) continue;
    bool open = true;
    for (int i = 0; i < 2 && open; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer.data(), buffer.size());
      open = n > 0 &&
             WriteAll(fds[1 - i].fd, buffer.data(), static_cast<size_t>(n));
    }
    if (!open) break;
  }
  std::lock_guard<std::mutex> l(mu_);
  carried_.erase(a);
  carried_.erase(b);
  close(a);
  close(b);
}

}  // namespace raftsql::verify
