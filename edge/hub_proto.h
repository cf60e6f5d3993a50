// The hub's side of net/edge.proto over edge/hub_sql: what a device's
// messages become (validated at the boundary) and what the hub's results
// become on the wire. Shared by the server's edge service and the
// simulator's hub sessions, so both speak and check the same protocol.
#ifndef RAFTSQL_EDGE_HUB_PROTO_H_
#define RAFTSQL_EDGE_HUB_PROTO_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "edge/hub_sql.h"
#include "net/edge.pb.h"
#include "sm/command.h"

namespace raftsql::edge {

// What an upload refused for load asks the edge to wait.
inline constexpr uint32_t kRetryAfterMs = 100;

// The upload, validated (INVALID_ARGUMENT: store nothing, answer it). The
// count is checked before any reading is converted.
absl::StatusOr<Upload> UploadOf(const v1::Upload& u);
// The Ack of upload `batch`: its acked sequence, or why not, with a retry
// hint when sending again later may succeed (no leader, a bound reached).
v1::EdgeDown AckOf(uint64_t batch, const absl::StatusOr<uint64_t>& acked);
// The acked sequence a Hello or Upload command's outcome returns.
absl::StatusOr<StreamAck> AckOfResult(
    const absl::StatusOr<sm::CommandResult>& r);
// The outcome a device reports, validated (INVALID_ARGUMENT ends the
// session: the device breaks the protocol).
absl::StatusOr<CommandStatus> OutcomeOf(const v1::CommandOutcome& o);
absl::Status ValidateTwinReport(const v1::TwinReport& t);
// The commands a DeliverCommand marked (none if another session did
// first, or the command is no longer due), ready to send.
std::vector<v1::EdgeDown> MarkedCommands(
    const absl::StatusOr<sm::CommandResult>& r);
// The desired twin a DesiredQuery returned, if any.
std::optional<v1::EdgeDown> DesiredOf(const absl::StatusOr<sm::QueryResult>& q);
// The first failed statement's status, or OK.
absl::Status FailureOf(const absl::StatusOr<sm::CommandResult>& r);

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_HUB_PROTO_H_
