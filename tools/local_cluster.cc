#include "tools/local_cluster.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/certs.h"
#include "tools/process.h"

namespace raftsql::tools {

LocalCluster::LocalCluster(LocalClusterOptions options)
    : options_(std::move(options)),
      endpoints_(options_.nodes + 1),
      pids_(options_.nodes + 1, -1) {
  if (options_.peer_transport != "grpc") options_.peer_ports = true;
  peer_endpoints_.resize(endpoints_.size());
  http_endpoints_.resize(endpoints_.size());
  for (int i = 1; i <= options_.nodes; ++i) {
    endpoints_[i] = absl::StrCat("127.0.0.1:", FreePort());
    peer_endpoints_[i] = absl::StrCat("127.0.0.1:", FreePort());
    http_endpoints_[i] = absl::StrCat("127.0.0.1:", FreePort());
  }
  if (options_.secure) {
    certs_ = EnsureLocalClusterCerts(certs_dir(), options_.nodes);
    if (certs_.ok()) {
      absl::StatusOr<net::Tls> tls =
          net::LoadTlsDir(certs_dir(), "client-root");
      certs_ = tls.status();
      if (tls.ok()) client_tls_ = std::move(*tls);
    }
  }
  client_ = std::make_unique<net::Client>(Endpoints(), ClientOptionsFor());
}

net::ClientOptions LocalCluster::ClientOptionsFor() const {
  net::ClientOptions o;
  o.tls = client_tls_;
  return o;
}

LocalCluster::~LocalCluster() {
  for (int i = 1; i < static_cast<int>(pids_.size()); ++i) {
    if (pids_[i] > 0) Stop(pids_[i], 5000);
  }
  if (options_.remove_dir) {
    std::error_code ec;
    std::filesystem::remove_all(options_.dir, ec);
  }
}

std::vector<std::string> LocalCluster::Endpoints() const {
  return std::vector<std::string>(endpoints_.begin() + 1, endpoints_.end());
}

std::string LocalCluster::LogPath(int id) const {
  return absl::StrCat(options_.dir, "/node", id, ".log");
}

absl::Status LocalCluster::Start() {
  if (options_.server_binary.empty()) {
    return absl::NotFoundError("raftsql_server binary not found");
  }
  if (!certs_.ok()) return certs_;
  for (int i = 1; i <= options_.nodes; ++i) {
    absl::Status s = StartNode(i);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status LocalCluster::StartNode(int id,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> peers;
  for (int i = 1; i <= options_.nodes; ++i) {
    auto route = routes_.find({id, i});
    peers.push_back(absl::StrCat(
        i, "=", route != routes_.end() ? route->second : PeerEndpoint(i)));
  }
  const std::string data = absl::StrCat(options_.dir, "/node", id);
  std::filesystem::create_directories(data);
  std::vector<std::string> argv = {
      options_.server_binary,
      absl::StrCat("--id=", id),
      absl::StrCat("--listen=", endpoints_[id]),
      absl::StrCat("--data_dir=", data),
  };
  if (options_.peer_ports) {
    argv.push_back(absl::StrCat("--peer_listen=", peer_endpoints_[id]));
  }
  if (options_.peer_transport != "grpc") {
    argv.push_back("--peer_transport=" + options_.peer_transport);
  }
  if (options_.http) {
    argv.push_back(absl::StrCat("--http_listen=", http_endpoints_[id]));
  }
  if (id <= options_.nodes) {
    argv.push_back(absl::StrCat("--peers=", absl::StrJoin(peers, ",")));
  } else {
    for (int i = 1; i < static_cast<int>(pids_.size()); ++i) {
      if (i != id && pids_[i] > 0) {
        argv.push_back(absl::StrCat("--join=", endpoints_[i]));
        break;
      }
    }
  }
  if (options_.secure) {
    // A node that joins later gets its certificate when it first starts.
    absl::Status certs = EnsureLocalClusterCerts(certs_dir(), id);
    if (!certs.ok()) return certs;
    argv.push_back("--certs_dir=" + certs_dir());
  } else {
    argv.push_back("--insecure");
  }
  for (const std::string& f : options_.extra_flags) argv.push_back(f);
  for (const std::string& f : extra) argv.push_back(f);
  const pid_t pid = Spawn(
      argv, LogPath(id),
      options_.node_env ? options_.node_env(id) : std::vector<std::string>{});
  if (pid <= 0) return absl::InternalError("fork failed");
  pids_[id] = pid;
  return absl::OkStatus();
}

int LocalCluster::AddSlot() {
  endpoints_.push_back(absl::StrCat("127.0.0.1:", FreePort()));
  peer_endpoints_.push_back(absl::StrCat("127.0.0.1:", FreePort()));
  http_endpoints_.push_back(absl::StrCat("127.0.0.1:", FreePort()));
  pids_.push_back(-1);
  return static_cast<int>(pids_.size()) - 1;
}

void LocalCluster::StopNode(int id, int signal) {
  if (pids_[id] <= 0) return;
  if (signal == SIGKILL) {
    kill(pids_[id], SIGKILL);
    WaitExit(pids_[id], 10'000);
  } else {
    Stop(pids_[id], 10'000);
  }
  pids_[id] = -1;
}

absl::StatusOr<int> LocalCluster::WaitForLeader(int timeout_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    for (int i = 1; i < static_cast<int>(pids_.size()); ++i) {
      if (pids_[i] <= 0) continue;
      auto s = client_->Status(endpoints_[i]);
      if (!s.ok() || s->leader() == 0) continue;
      const int leader = static_cast<int>(s->leader());
      if (leader < 1 || leader >= static_cast<int>(pids_.size()) ||
          pids_[leader] <= 0) {
        continue;
      }
      auto ls = client_->Status(endpoints_[leader]);
      if (ls.ok() && ls->role() == "Leader") return leader;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("no leader elected in time");
}

}  // namespace raftsql::tools
