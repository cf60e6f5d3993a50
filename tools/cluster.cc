// cluster: starts an N-node raftsql cluster on 127.0.0.1, prints its
// endpoints, and stops every node cleanly (SIGTERM, by PID) on Ctrl-C or
// SIGTERM.
//
//   bazel run //tools:cluster -- --nodes=3 [--dir=/tmp/raftsql] [-- flags]
//
// Flags after "--" go to every raftsql_server.
#include <signal.h>
#include <stdlib.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "tools/local_cluster.h"
#include "tools/process.h"

ABSL_FLAG(int, nodes, 3, "How many nodes (1-9).");
ABSL_FLAG(std::string, dir, "",
          "Where the nodes' data, logs and certificates go (default: a new "
          "directory under /tmp).");
ABSL_FLAG(std::string, server, "",
          "The raftsql_server binary (default: the one built beside this "
          "tool).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "a local raftsql cluster: starts N nodes on 127.0.0.1 (TLS, HTTP), "
      "prints their endpoints, stops them on Ctrl-C or SIGTERM.\n"
      "  cluster [--nodes=3] [--dir=DIR] [--server=PATH] [-- server flags]");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  raftsql::tools::LocalClusterOptions o;
  o.http = true;
  o.nodes = absl::GetFlag(FLAGS_nodes);
  o.dir = absl::GetFlag(FLAGS_dir);
  o.server_binary = absl::GetFlag(FLAGS_server);
  // What follows "--" goes to every node.
  for (size_t i = 1; i < rest.size(); ++i) o.extra_flags.push_back(rest[i]);
  if (o.nodes < 1 || o.nodes > 9) {
    std::fprintf(stderr, "cluster: --nodes must be 1..9\n");
    return 2;
  }
  if (o.server_binary.empty()) {
    o.server_binary =
        raftsql::tools::FindBinary(argv[0], "server/raftsql_server");
  }
  if (o.dir.empty()) {
    char tmpl[] = "/tmp/raftsql-cluster-XXXXXX";
    o.dir = mkdtemp(tmpl);
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  raftsql::tools::LocalCluster cluster(o);
  if (absl::Status s = cluster.Start(); !s.ok()) {
    std::fprintf(stderr, "cluster: %s\n", s.ToString().c_str());
    return 1;
  }
  auto leader = cluster.WaitForLeader(15'000);
  std::printf("raftsql cluster of %d nodes, data and logs in %s\n", o.nodes,
              o.dir.c_str());
  for (int i = 1; i <= o.nodes; ++i) {
    std::printf("  node %d  %s  https://%s  pid %d%s\n", i,
                cluster.Endpoint(i).c_str(), cluster.HttpEndpoint(i).c_str(),
                cluster.Pid(i),
                leader.ok() && *leader == i ? "  (leader)" : "");
  }
  std::printf("certs:  %s (CA, node and client-root certificates)\n",
              cluster.certs_dir().c_str());
  std::printf("shell:  bazel run //tools:shell -- --certs_dir=%s --nodes=%s\n",
              cluster.certs_dir().c_str(),
              absl::StrJoin(cluster.Endpoints(), ",").c_str());
  std::printf(
      "http:   curl --cacert %s/ca.crt --cert %s/client-root.crt --key "
      "%s/client-root.key https://%s/status\n",
      cluster.certs_dir().c_str(), cluster.certs_dir().c_str(),
      cluster.certs_dir().c_str(), cluster.HttpEndpoint(1).c_str());
  std::printf("Ctrl-C stops the cluster.\n");
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::printf("stopping...\n");
  for (int i = 1; i <= o.nodes; ++i) cluster.StopNode(i, SIGTERM);
  std::printf("stopped\n");
  return 0;
}
