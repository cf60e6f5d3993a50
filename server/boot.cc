#include "server/boot.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
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
  char head[16] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return absl::NotFoundError(absl::StrCat("cannot read ", path));
    }
    in.read(head, sizeof(head));
  }
  const bool is_file = IsSqliteFile(absl::string_view(head, sizeof(head)));
  uint64_t applied = 0;
  const LoadSink sink = [&](std::vector<sm::Statement> statements) {
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
    if (absl::Status failed = r->Cause(); !failed.ok()) return failed;
    ++applied;
    return absl::OkStatus();
  };
  // Half the request limit: a command's encoding adds to the statements'.
  const size_t command_bytes = node.options().max_request_bytes / 2;
  absl::StatusOr<LoadTotals> totals =
      is_file ? LoadSqliteFile(path, command_bytes, sink)
              : LoadSqlText(path, command_bytes, sink);
  if (!totals.ok()) {
    return absl::Status(
        totals.status().code(),
        absl::StrCat("booting from ", path, ": ", totals.status().message(),
                     " (", applied, " commands applied before it)"));
  }
  return totals;
}

}  // namespace raftsql::server
