// Booting a new cluster from a file in one step (rqlite's boot): the node
// that starts a single-node cluster loads a SQLite file or SQL text (a
// .dump) through its own Raft log before it serves any client. Nodes that
// join later receive the data as they would any other: by the log, or by a
// snapshot once the log was compacted. Through Raft, not by placing the
// file: an image no log entry produced would give a joining node a state
// its log cannot explain.
#ifndef RAFTSQL_SERVER_BOOT_H_
#define RAFTSQL_SERVER_BOOT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/load_plan.h"
#include "server/raft_server.h"

namespace raftsql::server {

// INVALID_ARGUMENT unless `o` starts a new single-node cluster: --peers
// naming this node alone, no --join, and no node state in the data
// directory (a restart of a booted node must not load the file again).
absl::Status CheckBootable(const ServerOptions& o);

// Loads `path` (a SQLite file, checked with quick_check, or SQL text)
// through `node`'s Raft log, in commands of half the request limit, each
// applied before the next is sent. A failure names its cause and how many
// commands applied before it.
absl::StatusOr<LoadTotals> BootFromFile(RaftServer& node,
                                        const std::string& path);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_BOOT_H_
