// LocalCluster: N raftsql_server processes on 127.0.0.1, each with its own
// data directory, for the cluster tool, the verify scenarios and the load
// benchmark. The destructor stops every node it started (by PID).
#ifndef RAFTSQL_TOOLS_LOCAL_CLUSTER_H_
#define RAFTSQL_TOOLS_LOCAL_CLUSTER_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "net/client.h"

namespace raftsql::tools {

struct LocalClusterOptions {
  int nodes = 3;
  std::string server_binary;  // path to raftsql_server
  std::string dir;            // data and logs go under it
  std::vector<std::string> extra_flags;
  // Mutual TLS between the nodes and TLS for clients, with certificates
  // made under dir/certs (tools/certs.h; the client is "root"). False:
  // plaintext (--insecure).
  bool secure = true;
  // Each node also gets a peer-only port (--peer_listen).
  bool peer_ports = false;
  // The nodes' --peer_transport; any but grpc (the servers' default) gives
  // them peer ports, which the stream transport needs.
  std::string peer_transport = "grpc";
  // Each node also serves the HTTP API (--http_listen, HttpEndpoint).
  bool http = false;
  // The destructor removes `dir` once every node it started has stopped.
  bool remove_dir = false;
  // When set, what node `id`'s process gets in its environment besides
  // this process's ("NAME=value" each).
  std::function<std::vector<std::string>(int id)> node_env;
};

class LocalCluster {
 public:
  explicit LocalCluster(LocalClusterOptions options);
  ~LocalCluster();

  absl::Status Start();
  // Node ids are 1..nodes.
  absl::Status StartNode(int id, const std::vector<std::string>& extra = {});
  // A slot for a node that joins the running cluster (--join through a
  // running member when started); returns its id.
  int AddSlot();
  int size() const { return static_cast<int>(pids_.size()) - 1; }
  // SIGTERM (graceful, waits for exit) or SIGKILL.
  void StopNode(int id, int signal);
  // Node `id` exited by itself and the caller reaped it (WaitExit): its
  // PID is no longer the cluster's to stop.
  void ForgetNode(int id) { pids_[id] = -1; }
  bool Running(int id) const { return pids_[id] > 0; }
  pid_t Pid(int id) const { return pids_[id]; }
  const std::string& Endpoint(int id) const { return endpoints_[id]; }
  // Where node `id` serves HTTP (host:port), with options.http.
  const std::string& HttpEndpoint(int id) const { return http_endpoints_[id]; }
  // Where peers reach node `id` (its Endpoint without peer_ports).
  const std::string& PeerEndpoint(int id) const {
    return options_.peer_ports ? peer_endpoints_[id] : endpoints_[id];
  }
  // Node `from` reaches its peer `to` at `address` (a proxy, say) instead
  // of PeerEndpoint(to), from its next start on.
  void SetPeerRoute(int from, int to, std::string address) {
    routes_[{from, to}] = std::move(address);
  }
  std::vector<std::string> Endpoints() const;
  std::string LogPath(int id) const;
  // Polls Status until a running node reports a leader that is running and
  // agrees; returns its id.
  absl::StatusOr<int> WaitForLeader(int timeout_ms);
  net::Client& client() { return *client_; }
  // What a client of this cluster needs: the CA and client-root's
  // certificate (empty when not secure), and where the files are.
  const net::Tls& client_tls() const { return client_tls_; }
  std::string certs_dir() const { return options_.dir + "/certs"; }
  // Where node `id` keeps its data.
  std::string data_dir(int id) const {
    return options_.dir + "/node" + std::to_string(id);
  }
  // Client options with client_tls() set.
  net::ClientOptions ClientOptionsFor() const;

 private:
  LocalClusterOptions options_;
  std::vector<std::string> endpoints_;  // [0] unused
  std::vector<std::string> peer_endpoints_;
  std::vector<std::string> http_endpoints_;  // [0] unused; with peer_ports
  std::vector<pid_t> pids_;
  std::map<std::pair<int, int>, std::string> routes_;  // SetPeerRoute
  absl::Status certs_;  // Making or loading the certificates.
  net::Tls client_tls_;
  std::unique_ptr<net::Client> client_;
};

}  // namespace raftsql::tools

#endif  // RAFTSQL_TOOLS_LOCAL_CLUSTER_H_
