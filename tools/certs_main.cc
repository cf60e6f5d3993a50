// raftsql_certs: creates a cluster's certificates (tools/certs.h).
//
//   raftsql_certs ca --dir=DIR
//   raftsql_certs node --dir=DIR --id=N [--hosts=10.0.0.5,db1.example]
//   raftsql_certs client --dir=DIR --user=NAME
//   raftsql_certs local --dir=DIR --nodes=3     (CA, node-1..3, client-root)
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "tools/certs.h"

ABSL_FLAG(std::string, dir, "certs", "Directory of the certificates.");
ABSL_FLAG(uint64_t, id, 0, "node: the node's id.");
ABSL_FLAG(std::string, hosts, "",
          "node: more addresses (IPs or DNS names, comma-separated) the node "
          "serves on, besides 127.0.0.1 and localhost.");
ABSL_FLAG(std::string, user, "", "client: the user name (CN).");
ABSL_FLAG(int, nodes, 3, "local: how many nodes.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "raftsql_certs ca|node|client|local --dir=DIR [--id=N --hosts=...] "
      "[--user=NAME] [--nodes=N]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: %s\n", absl::ProgramUsageMessage().data());
    return 2;
  }
  const std::string what = args[1];
  const std::string dir = absl::GetFlag(FLAGS_dir);
  absl::Status s;
  if (what == "ca") {
    s = raftsql::tools::CreateCa(dir);
  } else if (what == "node") {
    std::vector<std::string> hosts;
    for (absl::string_view h :
         absl::StrSplit(absl::GetFlag(FLAGS_hosts), ',', absl::SkipEmpty())) {
      hosts.emplace_back(h);
    }
    s = raftsql::tools::CreateNodeCert(dir, absl::GetFlag(FLAGS_id), hosts);
  } else if (what == "client") {
    s = raftsql::tools::CreateClientCert(dir, absl::GetFlag(FLAGS_user));
  } else if (what == "local") {
    s = raftsql::tools::EnsureLocalClusterCerts(dir,
                                                absl::GetFlag(FLAGS_nodes));
  } else {
    std::fprintf(stderr, "usage: %s\n", absl::ProgramUsageMessage().data());
    return 2;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "raftsql_certs: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("raftsql_certs: %s done in %s\n", what.c_str(), dir.c_str());
  return 0;
}
