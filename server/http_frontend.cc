#include "server/http_frontend.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "net/host_port.h"
#include "server/auth.h"
#include "server/console.h"
#include "server/http_rqlite.h"
#include "server/http_v1.h"
#include "server/request_log.h"

namespace raftsql::server {

namespace {

// httplib hands each accepted connection to this queue: `threads` serve
// them, at most `max_queued` wait, and the accepting thread waits for room
// beyond that (new connections then wait in the kernel's backlog).
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(size_t threads, size_t max_queued) : max_queued_(max_queued) {
    for (size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { Work(); });
    }
  }
  ~BoundedPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> l(mu_);
    room_.wait(l, [this] { return queue_.size() < max_queued_ || stop_; });
    queue_.push_back(std::move(fn));
    work_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_ && threads_.empty()) return;
      stop_ = true;
    }
    work_.notify_all();
    room_.notify_all();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> l(mu_);
        work_.wait(l, [this] { return !queue_.empty() || stop_; });
        if (queue_.empty()) return;  // Stopping, nothing left.
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      room_.notify_one();
      fn();
    }
  }

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable room_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// The node's certificate and key, and the cluster CA for client
// certificates (asked for, not required: a client may send a password).
bool SetUpTls(const net::Tls& tls, SSL_CTX& ctx) {
  BIO* certs = BIO_new_mem_buf(tls.cert_pem.data(),
                               static_cast<int>(tls.cert_pem.size()));
  X509* leaf = PEM_read_bio_X509(certs, nullptr, nullptr, nullptr);
  bool ok = leaf != nullptr && SSL_CTX_use_certificate(&ctx, leaf) == 1;
  X509_free(leaf);
  while (ok) {  // The rest of the chain, if any.
    X509* extra = PEM_read_bio_X509(certs, nullptr, nullptr, nullptr);
    if (extra == nullptr) break;
    if (SSL_CTX_add_extra_chain_cert(&ctx, extra) != 1) {
      X509_free(extra);
      ok = false;
    }
  }
  BIO_free(certs);
  ERR_clear_error();  // The chain ends with a "no start line".
  BIO* key_bio =
      BIO_new_mem_buf(tls.key_pem.data(), static_cast<int>(tls.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  ok = ok && key != nullptr && SSL_CTX_use_PrivateKey(&ctx, key) == 1 &&
       SSL_CTX_check_private_key(&ctx) == 1;
  EVP_PKEY_free(key);
  BIO* ca_bio =
      BIO_new_mem_buf(tls.ca_pem.data(), static_cast<int>(tls.ca_pem.size()));
  X509_STORE* store = SSL_CTX_get_cert_store(&ctx);
  int cas = 0;
  while (X509* ca = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, ca) == 1) ++cas;
    X509_free(ca);
  }
  BIO_free(ca_bio);
  ERR_clear_error();
  SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  return ok && cas > 0;
}

// The name (CN) of the client certificate the handshake verified, if any.
std::optional<std::string> CertificateName(const httplib::Request& req) {
  if (req.ssl == nullptr || SSL_get_verify_result(req.ssl) != X509_V_OK) {
    return std::nullopt;
  }
  X509* cert = SSL_get1_peer_certificate(req.ssl);
  if (cert == nullptr) return std::nullopt;
  std::optional<std::string> name;
  char cn[256];
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
                                          NID_commonName, cn, sizeof(cn));
  if (n > 0 && static_cast<size_t>(n) < sizeof(cn)) name.emplace(cn, n);
  X509_free(cert);
  return name;
}

// When the request the calling thread serves began (its pre-routing).
thread_local std::chrono::steady_clock::time_point request_start;

// A request's path as /metrics labels it: the API's routes, or "other"
// (a bounded set of labels whatever clients send).
std::string RouteOf(const std::string& path) {
  for (const char* route :
       {"/db/execute", "/db/query", "/db/request", "/status", "/nodes",
        "/readyz", "/livez", "/metrics", "/db/backup", "/db/load", "/console",
        "/console/approval", "/"}) {
    if (path == route) return path;
  }
  for (const char* method :
       {"execute", "query", "get_version", "status", "get_settings",
        "set_setting", "list_users", "put_user", "drop_user", "add_node",
        "remove_node", "transfer_leadership", "issue_edge_command",
        "set_edge_desired"}) {
    if (path == absl::StrCat("/v1/", method)) return path;
  }
  return "other";
}

std::string MethodOf(const std::string& method) {
  for (const char* known :
       {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}) {
    if (method == known) return method;
  }
  return "OTHER";
}

// The caller of `req`, by its client certificate or Basic credentials.
absl::StatusOr<Principal> Authorize(Authenticator& auth,
                                    const httplib::Request& req,
                                    uint32_t needed) {
  Authenticator::Credentials c;
  c.certificate_name = CertificateName(req);
  if (req.has_header("Authorization")) {
    c.authorization = req.get_header_value("Authorization");
  }
  return auth.Authorize(c, needed);
}

}  // namespace

struct HttpFrontend::Impl {
  std::unique_ptr<httplib::Server> server;
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<RqliteApi> api;
  int port = 0;
  int listening_fd = -1;  // httplib's listening socket, once bound.
  std::thread listener;
  std::once_flag stopped;
};

HttpFrontend::HttpFrontend(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

HttpFrontend::~HttpFrontend() { Shutdown(); }

int HttpFrontend::port() const { return impl_->port; }

void HttpFrontend::Shutdown() {
  std::call_once(impl_->stopped, [this] {
    impl_->server->stop();
    if (impl_->listener.joinable()) impl_->listener.join();
  });
}

absl::StatusOr<std::unique_ptr<HttpFrontend>> HttpFrontend::Start(
    RaftServer* node, const HttpOptions& options) {
  const auto [host, port] = net::HostPort(options.listen);
  if (port < 0 || host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_listen: '", options.listen, "' is not host:port"));
  }
  if (options.threads == 0 || options.max_queued_connections == 0) {
    return absl::InvalidArgumentError(
        "the HTTP API needs at least one thread and one queued connection");
  }
  auto impl = std::make_unique<Impl>();
  const net::Tls& tls = node->options().tls;
  if (tls.enabled()) {
    bool tls_ok = false;
    impl->server = std::make_unique<httplib::SSLServer>(
        [&tls, &tls_ok](SSL_CTX& ctx) { return tls_ok = SetUpTls(tls, ctx); });
    if (!tls_ok || !impl->server->is_valid()) {
      return absl::InvalidArgumentError(
          "the HTTP API could not use the node's certificate, key and CA");
    }
  } else {
    impl->server = std::make_unique<httplib::Server>();
  }
  httplib::Server& server = *impl->server;
  const size_t threads = options.threads;
  const size_t queued = options.max_queued_connections;
  server.new_task_queue = [threads, queued] {
    return new BoundedPool(threads, queued);
  };
  server.set_tcp_nodelay(true);
  // httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed
  // when Debian built it): 64 clients connecting at once overflowed it
  // (185 ListenOverflows in a 2 s run) and waited 1 s for their SYN to be
  // sent again, or failed. The listening socket is kept here (its
  // options are set before bind, as httplib's defaults did, minus
  // SO_REUSEPORT: no other process shares the port) and listens again
  // with a backlog as long as the queue of connections.
  int* listening = &impl->listening_fd;
  server.set_socket_options([listening](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    *listening = sock;  // The last one tried is the one bound.
  });
  // httplib has one limit for every body: /db/load's. The others' is
  // checked before their body is read (below).
  server.set_payload_max_length(
      std::max<uint64_t>(options.max_body_bytes, options.max_load_bytes));
  server.set_keep_alive_max_count(1000);
  impl->auth = std::make_unique<Authenticator>(
      tls.enabled(),
      [node](const std::string& name) { return node->FindUser(name); });
  Authenticator* auth = impl->auth.get();
  const RqliteApi::Authorize authorize = [auth](const httplib::Request& req,
                                                uint32_t needed) {
    return Authorize(*auth, req, needed);
  };
  impl->api = std::make_unique<RqliteApi>(node, options, authorize);
  impl->api->Register(server);
  RegisterV1(server, node, authorize);
  RegisterConsole(server, node, authorize);
  // Every request's route, status and time, for /metrics.
  server.set_pre_routing_handler([max_body = options.max_body_bytes](
                                     const httplib::Request& req,
                                     httplib::Response& res) {
    request_start = std::chrono::steady_clock::now();
    if (req.path == "/db/load") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    // Before the body is read: no other request may bring more.
    uint64_t length = 0;
    const std::string declared = req.get_header_value("Content-Length");
    if (!declared.empty() &&
        (!absl::SimpleAtoi(declared, &length) || length > max_body)) {
      res.status = 413;
      res.set_content(
          absl::StrCat("{\"error\":\"too large: a request body holds at most ",
                       max_body, " bytes\"}"),
          "application/json; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (absl::StrContains(req.get_header_value("Transfer-Encoding"),
                          "chunked")) {
      res.status = 411;
      res.set_content(
          "{\"error\":\"a request body needs a Content-Length (only "
          "/db/load takes a chunked one)\"}",
          "application/json; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_logger([node](const httplib::Request& req,
                           const httplib::Response& res) {
    const std::string route =
        absl::StrCat(MethodOf(req.method), " ", RouteOf(req.path));
    const double seconds = std::chrono::duration<double>(
                               std::chrono::steady_clock::now() - request_start)
                               .count();
    // Logged before it is counted: once counted, its line is out.
    LogIfSlow(*node, "http", route, absl::StrCat(res.status), seconds);
    node->request_metrics().Record("http", route, absl::StrCat(res.status),
                                   seconds);
  });

  impl->port = port == 0 ? server.bind_to_any_port(host)
                         : (server.bind_to_port(host, port) ? port : -1);
  if (impl->port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("the HTTP API cannot listen on ", options.listen));
  }
  if (impl->listening_fd < 0 ||
      ::listen(impl->listening_fd,
               static_cast<int>(options.max_queued_connections)) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "the HTTP API cannot set its listen backlog on ", options.listen));
  }
  node->SetHttpAddress(absl::StrCat(tls.enabled() ? "https://" : "http://",
                                    host, ":", impl->port));
  impl->listener = std::thread([s = &server] { s->listen_after_bind(); });
  // httplib's stop() does nothing until the listener runs: a Shutdown
  // right after Start would wait for ever. Return once it runs.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  return std::unique_ptr<HttpFrontend>(new HttpFrontend(std::move(impl)));
}

}  // namespace raftsql::server
