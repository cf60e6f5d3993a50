#include "tests/link_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace raftsql::verify {
namespace {

// A TCP server on 127.0.0.1 that echoes what each connection sends.
class Echo {
 public:
  Echo() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 8);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;  // The listener was shut down.
        char buf[256];
        for (ssize_t n; (n = read(c, buf, sizeof(buf))) > 0;) {
          if (write(c, buf, static_cast<size_t>(n)) != n) break;
        }
        close(c);
      }
    });
  }
  ~Echo() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `text` and reads as many bytes back; "" if the link is cut.
std::string RoundTrip(int fd, const std::string& text) {
  if (send(fd, text.data(), text.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(text.size())) {
    return "";
  }
  std::string got;
  char buf[256];
  while (got.size() < text.size()) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return "";
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

TEST(LinkProxy, CarriesBytesBothWaysUntilCutAndAgainOnceMended) {
  Echo echo;
  LinkProxy proxy(echo.port());
  ASSERT_GT(proxy.port(), 0);
  const int a = Connect(proxy.port());
  ASSERT_GE(a, 0);
  EXPECT_EQ(RoundTrip(a, "hello"), "hello");
  proxy.Cut();
  // The carried connection is closed; a new one is closed at once.
  EXPECT_EQ(RoundTrip(a, "lost"), "");
  close(a);
  const int b = Connect(proxy.port());
  ASSERT_GE(b, 0);  // The kernel accepts; the proxy then closes it.
  EXPECT_EQ(RoundTrip(b, "lost"), "");
  close(b);
  proxy.Mend();
  const int c = Connect(proxy.port());
  ASSERT_GE(c, 0);
  EXPECT_EQ(RoundTrip(c, "again"), "again");
  close(c);
  EXPECT_EQ(proxy.accepted(), 3u);
}

}  // namespace
}  // namespace raftsql::verify
