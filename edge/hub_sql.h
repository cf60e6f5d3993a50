// The hub's side of the edge protocol as SQL (DESIGN.md §6): the replicated
// tables that hold devices, readings, commands and twins, and the commands
// and reads that change and read them. Everything here only builds
// sm::Command and sm::Statement values: the server's edge service proposes
// them through Raft like any write (and the simulator can apply them to its
// state machines), so every status change is in the log and a new leader
// carries on where the old one stopped. Every value travels as a bound
// parameter, times included, so every replica computes the same rows.
//
// The tables (operators read them, and the views, with Query):
//   edge_devices   one row per device that ever opened a session: its
//                  incarnation, session, node, connected, last_seen_ms,
//                  backlog and dropped (as its edge last reported them)
//   edge_streams   stream (an integer) for each (device, incarnation),
//                  and acked: the highest sequence stored contiguously
//                  (or passed over: Upload's oldest_sequence)
//   edge_readings  (stream, seq) -> sensor, value, unit, device_time_ms,
//                  hub_time_ms; stored once per key
//   views: edge_readings_by_device (the readings with device and
//          incarnation),
//   edge_commands  seq (delivery order), id (unique: issuing the same id
//                  again is a no-op), device, name, params (a JSON
//                  object), created_ms, expires_ms, max_attempts, attempts,
//                  status (queued, delivered, done, rejected, failed,
//                  expired), detail, delivered_ms, delivered_to (the
//                  store incarnation it went to), updated_ms
//   edge_twins     device -> desired (JSON object) and desired_version,
//                  reported and reported_version, and the desired version
//                  the report reflects
//          edge_twin_delta (device, key, desired, reported: each desired
//          key whose reported value differs) and edge_device_status.
#ifndef RAFTSQL_EDGE_HUB_SQL_H_
#define RAFTSQL_EDGE_HUB_SQL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sm/command.h"

namespace raftsql::edge {

// Bounds on what a device sends (INVALID_ARGUMENT beyond).
inline constexpr size_t kMaxReadingsPerUpload = 1000;
inline constexpr size_t kMaxSensorBytes = 64;
inline constexpr size_t kMaxUnitBytes = 16;
inline constexpr size_t kMaxIncarnationBytes = 64;
inline constexpr size_t kMaxDetailBytes = 1024;
inline constexpr size_t kMaxTwinJsonBytes = 64 << 10;
// Bounds on what an operator or a rule issues.
inline constexpr size_t kMaxCommandIdBytes = 128;
inline constexpr size_t kMaxCommandNameBytes = 64;
inline constexpr size_t kMaxParamsBytes = 16 << 10;
inline constexpr uint32_t kMaxCommandAttempts = 100;
// Sequences are SQLite integers.
inline constexpr uint64_t kMaxSequence = (uint64_t{1} << 63) - 1;

struct Reading {
  std::string sensor;
  double value = 0;
  std::string unit;
  int64_t device_time_ms = 0;
  uint64_t sequence = 0;
};

struct Upload {
  std::vector<Reading> readings;
  uint64_t oldest_sequence = 0;
  uint64_t backlog = 0;
  uint64_t dropped = 0;
};

enum class CommandStatus {
  kQueued,
  kDelivered,
  kDone,
  kRejected,
  kFailed,
  kExpired
};
const char* CommandStatusName(CommandStatus s);

// A command as the hub stores it.
struct HubCommand {
  std::string id;
  std::string device;
  std::string name;
  std::string params_json = "{}";
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  uint32_t max_attempts = 3;
  uint32_t attempts = 0;
  CommandStatus status = CommandStatus::kQueued;
  int64_t delivered_ms = 0;  // 0: never delivered.
};

// OK if `name` can be a device id, an incarnation or a command id: 1 to
// `max` bytes of [A-Za-z0-9_.@:-]. INVALID_ARGUMENT naming `what` if not.
absl::Status ValidateName(absl::string_view what, absl::string_view name,
                          size_t max);
// INVALID_ARGUMENT naming the first bad reading (empty or oversized
// sensor or unit, a value that is not finite, sequence 0 or beyond
// kMaxSequence, sequences not strictly increasing) or an oldest_sequence
// past the first reading.
absl::Status ValidateUpload(const Upload& upload);
// ValidateUpload's first check alone, for a caller that has the count
// before it converts the readings.
absl::Status ValidateReadingCount(size_t readings);
// INVALID_ARGUMENT unless `json` is a JSON object of at most `max` bytes.
absl::Status ValidateJsonObject(absl::string_view what, absl::string_view json,
                                size_t max);
absl::Status ValidateCommand(const HubCommand& c);

// Creates the tables, indexes and views if missing (idempotent).
sm::Command SchemaCommand();
// Whether `status` says the edge tables are missing (the schema command
// has not run yet): the caller proposes SchemaCommand and tries again.
bool IsMissingSchema(const absl::Status& status);
// Brings edge tables an older version made up to this version's; runs
// after SchemaCommand (which makes whatever is missing as a whole). Each
// statement adds what one version lacked: hubs made before 2026-12-05's
// second release lack edge_commands.delivered_to. Not a transaction:
// SQLite has no ADD COLUMN IF NOT EXISTS, so a statement whose change is
// already there fails, the same way on every replica, and the rest run.
sm::Command UpgradeCommand();
// OK if UpgradeCommand's result leaves the tables current: every
// statement made its change or found it made. A write that failed as a
// whole gives its status.
absl::Status UpgradeStatus(const absl::StatusOr<sm::CommandResult>& result);

// A session opens: the device's row shows it connected through `session`
// on `node`, and its stream for `incarnation` exists. The result's last
// statement returns the stream and its acked sequence (AckedOf).
sm::Command HelloCommand(absl::string_view device,
                         absl::string_view incarnation,
                         absl::string_view session, uint64_t node,
                         int64_t now_ms);
// The session ends: the device shows disconnected, unless a newer session
// took it over meanwhile.
sm::Command GoodbyeCommand(absl::string_view device, absl::string_view session,
                           int64_t now_ms);
// Node `node` started: the sessions an earlier process of it served ended
// without a goodbye. Each process names its sessions with its own
// `live_prefix`; devices still shown connected through `node` under
// another prefix show disconnected (a device that reconnected elsewhere
// shows that session, and is left alone).
sm::Command ForgetSessionsCommand(uint64_t node, absl::string_view live_prefix,
                                  int64_t now_ms);
// Stores a validated upload in `device`'s `stream` (as its Hello returned
// it), in one transaction: its readings once each, the stream's acked
// sequence advanced over what is now contiguous, and the device's
// last_seen_ms, backlog and dropped.
sm::Command UploadCommand(absl::string_view device, uint64_t stream,
                          const Upload& upload, int64_t now_ms);
struct StreamAck {
  uint64_t stream = 0;
  uint64_t acked = 0;
};
// The stream and acked sequence a Hello or Upload command's result
// returns; the first failed statement's status if the command failed,
// NOT_FOUND if the stream is not the device's.
absl::StatusOr<StreamAck> AckedOf(const sm::CommandResult& result);

// The device's open commands (queued, or delivered and unanswered), in
// delivery order, at most `limit` (rows for CommandsOf).
sm::Statement OpenCommandsQuery(absl::string_view device, int64_t limit);
std::vector<HubCommand> CommandsOf(const sm::QueryResult& rows);
// Whether the session should deliver `c` now: it is queued, or delivered
// and unanswered for lock_ms, and neither expired nor out of attempts.
bool DueForDelivery(const HubCommand& c, int64_t now_ms, int64_t lock_ms);
// Marks `id` delivered to the device's store `incarnation` (one more
// attempt) if it is still due at now_ms. The result's last statement
// returns the command's row (CommandsOf's columns) if it was marked, no
// row if another session did first or it is no longer due: only a marked
// command is sent. A command delivered unanswered to another incarnation
// is not delivered again: that store, and the record that the command
// ran, is gone (a wiped disk), so it ends expired with the reason; at
// most once wins over exactly once.
sm::Command DeliverCommand(absl::string_view device,
                           absl::string_view incarnation, absl::string_view id,
                           int64_t now_ms, int64_t lock_ms);
// The device's answer: done, rejected or failed, if the command is still
// delivered and unanswered (a late or repeated answer changes nothing).
sm::Command OutcomeCommand(absl::string_view device, absl::string_view id,
                           CommandStatus outcome, absl::string_view detail,
                           int64_t now_ms);
// Queues a validated command (created_ms is set to now_ms); an id that
// exists already is left as it is. The result returns the new row's seq,
// or no row if the id existed.
sm::Command IssueCommand(const HubCommand& c, int64_t now_ms);
// Ends up to `limit` open commands that can no longer complete: expired,
// or delivered max_attempts times and unanswered for lock_ms. Each ends
// "expired" with the reason in detail.
sm::Command ExpireCommand(int64_t now_ms, int64_t lock_ms, int64_t limit);

// Retention, in bounded steps: a step looks at a few streams (from
// StreamsQuery, in turn) and at the per_stream lowest sequences of each,
// and deletes those stored (hub time) before before_ms, and those beyond
// the device's newest max_per_device readings (0: no such bound). Newest
// is counted by sequence: the device's newer streams (later incarnations)
// hold their acked sequences, so a stream keeps max_per_device less those
// below its own ack, and an old incarnation's stream empties once the new
// ones hold max_per_device. Its cost is streams x per_stream rows, whatever
// the table's size.
struct Retention {
  std::vector<uint64_t> streams;
  int64_t per_stream = 1000;
  int64_t before_ms = 0;
  int64_t max_per_device = 0;
};
sm::Command RetentionCommand(const Retention& r, int64_t now_ms);
// Up to `limit` stream ids above `after`, in order.
sm::Statement StreamsQuery(uint64_t after, int64_t limit);

// Merges `patch_json` (RFC 7396: null removes a key) into the device's
// desired state and bumps its version. The result returns the new desired
// document and version.
sm::Command SetDesiredCommand(absl::string_view device,
                              absl::string_view patch_json, int64_t now_ms);
// Stores the device's reported state (a whole JSON object), unless the
// hub holds a report of a later desired version: reports may arrive out of
// order (each is its own write, forwarded on its own), and an older one
// must not undo a newer. A wiped edge's first report (version 0) is
// refused that way; it reports again once it applied the desired state.
sm::Command ReportTwinCommand(absl::string_view device,
                              absl::string_view reported_json,
                              uint64_t desired_version, int64_t now_ms);
// The device's desired document and version (no row: none set).
sm::Statement DesiredQuery(absl::string_view device);

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_HUB_SQL_H_
