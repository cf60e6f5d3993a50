#include "server/boot.h"

#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/await.h"

namespace raftsql::server {

absl::Status CheckBootable(const ServerOptions& o) {
  if (!o.join.empty() || o.peers.size() != 1 || o.peers.count(o.id) == 0) {
    return absl::InvalidArgumentError(
        "--boot_from starts a new single-node cluster: give --peers with "
        "this node alone and no --join (more nodes --join it afterwards)");
  }
  for (const char* state : {"/log", "/db.sqlite"}) {
    std::error_code ec;
    if (std::filesystem::exists(o.data_dir + state, ec) || ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--boot_from boots a new cluster, but ", o.data_dir,
          " already holds a node's state (", o.data_dir, state,
          "): start without --boot_from, or remove the directory"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadTotals> BootFromFile(RaftServer& node,
                                        const std::string& path) {
  const LoadSink sink = [&node](std::vector<sm::Statement> statements) {
    sm::Command cmd;
    cmd.statements = std::move(statements);
    cmd.transaction = true;
    absl::StatusOr<sm::CommandResult> r = Await<sm::CommandResult>(
        [&node, &cmd](RaftServer::Done<sm::CommandResult> done) {
          node.Execute(std::move(cmd), std::move(done));
        },
        std::chrono::steady_clock::now() + RequestBound(node.options()),
        "the boot's command");
    if (!r.ok()) return r.status();
    return r->Cause();
  };
  // Half the request limit: a command's encoding adds to the statements'.
  absl::StatusOr<LoadedFile> loaded =
      LoadFile(path, node.options().max_request_bytes / 2, sink);
  if (!loaded.ok()) {
    return absl::Status(
        loaded.status().code(),
        absl::StrCat("booting from ", path, ": ", loaded.status().message()));
  }
  return loaded->totals;
}

}  // namespace raftsql::server
