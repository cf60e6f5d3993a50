// LinkProxy: one direction of a link between two nodes, for the nemesis
// (tests/verify_nemesis.cc). A node is told to reach its peer at the
// proxy's port (LocalCluster::SetPeerRoute); the proxy forwards each
// connection's bytes both ways to the peer's real port, or cuts the link:
// it closes every connection it carries and closes new ones at once, so
// that nothing passes until it is mended. Only 127.0.0.1.
#ifndef RAFTSQL_TESTS_LINK_PROXY_H_
#define RAFTSQL_TESTS_LINK_PROXY_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace raftsql::verify {

class LinkProxy {
 public:
  // Forwards to 127.0.0.1:`target_port`; listens on a free port.
  explicit LinkProxy(int target_port);
  // Closes everything and joins its threads.
  ~LinkProxy();
  LinkProxy(const LinkProxy&) = delete;
  LinkProxy& operator=(const LinkProxy&) = delete;

  // 0 if it could not listen.
  int port() const { return port_; }
  std::string address() const;
  // Cut: connections carried now are closed, new ones closed at once.
  void Cut();
  void Mend();
  // Connections accepted since the start (tests).
  uint64_t accepted() const { return accepted_.load(); }

 private:
  void Accept();
  void Pump(int from_node, int to_peer);
  // Shuts down every carried connection (their pumps then end).
  void CloseCarried();

  const int target_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_{false};
  std::atomic<uint64_t> accepted_{0};
  std::mutex mu_;
  std::set<int> carried_;           // Guarded by mu_: open descriptors.
  std::vector<std::thread> pumps_;  // Guarded by mu_.
  std::thread acceptor_;
};

}  // namespace raftsql::verify

#endif  // RAFTSQL_TESTS_LINK_PROXY_H_
