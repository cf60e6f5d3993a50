#include "edge/hub_sql.h"

#include <cmath>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "edge/json_check.h"

namespace raftsql::edge {
namespace {

using sm::Statement;
using sm::Value;

Value Text(absl::string_view s) { return Value::Text(std::string(s)); }
Value Int(int64_t v) { return Value::Integer(v); }

sm::Command Transaction(std::vector<Statement> statements, int64_t now_ms) {
  sm::Command c;
  c.statements = std::move(statements);
  c.transaction = true;
  c.timestamp_ms = now_ms;
  return c;
}

constexpr const char* kSchema[] = {
    "CREATE TABLE IF NOT EXISTS edge_devices("
    "device TEXT PRIMARY KEY, incarnation TEXT NOT NULL, "
    "session TEXT NOT NULL, node INTEGER NOT NULL, "
    "connected INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, "
    "last_seen_ms INTEGER NOT NULL, backlog INTEGER NOT NULL DEFAULT 0, "
    "dropped INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS edge_devices_connected ON "
    "edge_devices(node) WHERE connected = 1",
    "CREATE TABLE IF NOT EXISTS edge_streams("
    "stream INTEGER PRIMARY KEY, device TEXT NOT NULL, "
    "incarnation TEXT NOT NULL, acked INTEGER NOT NULL DEFAULT 0, "
    "first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, "
    "UNIQUE(device, incarnation))",
    // Keyed by integers: comparing (device, incarnation) texts for every
    // row inserted cost a fifth of the ingest rate. No other index: one on
    // hub_time_ms cost another quarter (retention walks each stream by
    // seq instead, see RetentionCommand).
    "CREATE TABLE IF NOT EXISTS edge_readings("
    "stream INTEGER NOT NULL, seq INTEGER NOT NULL, "
    "sensor TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, "
    "device_time_ms INTEGER NOT NULL, hub_time_ms INTEGER NOT NULL, "
    "PRIMARY KEY(stream, seq)) WITHOUT ROWID",
    "CREATE VIEW IF NOT EXISTS edge_readings_by_device AS "
    "SELECT s.device, s.incarnation, r.seq, r.sensor, r.value, r.unit, "
    "r.device_time_ms, r.hub_time_ms FROM edge_readings r "
    "JOIN edge_streams s ON s.stream = r.stream",
    "CREATE TABLE IF NOT EXISTS edge_commands("
    "seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
    "device TEXT NOT NULL, name TEXT NOT NULL, "
    "params TEXT NOT NULL CHECK(json_valid(params) AND "
    "json_type(params) = 'object'), "
    "created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, "
    "max_attempts INTEGER NOT NULL CHECK(max_attempts >= 1), "
    "attempts INTEGER NOT NULL DEFAULT 0, "
    "status TEXT NOT NULL DEFAULT 'queued' CHECK(status IN ('queued', "
    "'delivered', 'done', 'rejected', 'failed', 'expired')), "
    "detail TEXT NOT NULL DEFAULT '', delivered_ms INTEGER, "
    "delivered_to TEXT, updated_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS edge_commands_open ON edge_commands(device, "
    "seq) WHERE status IN ('queued', 'delivered')",
    "CREATE TABLE IF NOT EXISTS edge_twins("
    "device TEXT PRIMARY KEY, desired TEXT NOT NULL DEFAULT '{}', "
    "desired_version INTEGER NOT NULL DEFAULT 0, "
    "reported TEXT NOT NULL DEFAULT '{}', "
    "reported_version INTEGER NOT NULL DEFAULT 0, "
    "reported_desired_version INTEGER NOT NULL DEFAULT 0, "
    "desired_ms INTEGER, reported_ms INTEGER) WITHOUT ROWID",
    "CREATE VIEW IF NOT EXISTS edge_twin_delta AS "
    "SELECT t.device AS device, d.key AS key, d.value AS desired, "
    "r.value AS reported FROM edge_twins t, json_each(t.desired) d "
    "LEFT JOIN json_each(t.reported) r ON r.key = d.key "
    "WHERE r.key IS NULL OR r.type IS NOT d.type OR r.value IS NOT d.value",
    "CREATE VIEW IF NOT EXISTS edge_device_status AS "
    "SELECT d.device, d.connected, d.node, d.last_seen_ms, d.incarnation, "
    "s.acked, d.backlog, d.dropped, "
    "(SELECT count(*) FROM edge_commands c WHERE c.device = d.device AND "
    "c.status IN ('queued', 'delivered')) AS open_commands, "
    "(SELECT count(*) FROM edge_twin_delta x WHERE x.device = d.device) "
    "AS twin_delta FROM edge_devices d LEFT JOIN edge_streams s "
    "ON s.device = d.device AND s.incarnation = d.incarnation",
};

// The stream's acked sequence after the readings of an upload: from
// base = max(acked, oldest - 1), over the run of stored sequences that
// starts at base + 1 (if base + 1 is stored, the run ends at the first
// stored sequence past base without a successor). ?1 stream, ?2 device
// (the stream must be its), ?3 what the edge no longer holds (oldest - 1),
// ?4 now, ?5 the upload's last sequence, ?6 its first if its sequences
// are contiguous (else 0). A contiguous upload from at most base + 1 to
// past base (the usual one) was stored whole by the statements before it,
// so the walk starts at ?5 without a look at the rows below; else it walks
// from base + 1, one lookup per sequence (a walk from base for every
// upload doubled the index lookups of an upload).
constexpr char kAdvance[] =
    "UPDATE edge_streams SET last_seen_ms = ?4, acked = CASE WHEN NOT "
    "EXISTS(SELECT 1 FROM edge_readings WHERE stream = ?1 AND "
    "seq = max(edge_streams.acked, ?3) + 1) THEN max(edge_streams.acked, ?3) "
    "ELSE (SELECT r.seq FROM edge_readings r WHERE r.stream = ?1 AND "
    "r.seq >= CASE WHEN ?5 > max(edge_streams.acked, ?3) AND ?6 > 0 AND "
    "?6 <= max(edge_streams.acked, ?3) + 1 THEN ?5 ELSE "
    "max(edge_streams.acked, ?3) + 1 END AND NOT EXISTS(SELECT 1 FROM "
    "edge_readings n WHERE n.stream = ?1 "
    "AND n.seq = r.seq + 1) ORDER BY r.seq LIMIT 1) END "
    "WHERE stream = ?1 AND device = ?2 RETURNING stream, acked";

// Readings go in statements of this many rows (the last one fewer), so
// that full batches share one cached statement: a 100-reading upload is
// one statement.
constexpr size_t kRowsPerInsert = 128;

std::string InsertSql(size_t rows) {
  // Anonymous parameters, numbered in order (the SQL text travels in every
  // log entry: "(?,?,?,?,?)" per row, not "(?4, ?5, ?6, ?7, ?8)"): the
  // stream and hub time, the rows, then the stream and device again. Into
  // the stream only if it is the device's: a device writes only its own.
  std::string sql =
      "INSERT INTO edge_readings(stream, seq, sensor, value, unit, "
      "device_time_ms, hub_time_ms) SELECT ?, column1, column2, column3, "
      "column4, column5, ? FROM (VALUES ";
  sql.reserve(sql.size() + 12 * rows + 128);
  for (size_t i = 0; i < rows; ++i)
    sql += i == 0 ? "(?,?,?,?,?)" : ",(?,?,?,?,?)";
  sql +=
      ") WHERE EXISTS(SELECT 1 FROM edge_streams WHERE stream = ? AND "
      "device = ?) ON CONFLICT(stream, seq) DO NOTHING";
  return sql;
}

constexpr char kCommandColumns[] =
    "id, device, name, params, created_ms, expires_ms, max_attempts, "
    "attempts, status, delivered_ms";

}  // namespace

const char* CommandStatusName(CommandStatus s) {
  switch (s) {
    case CommandStatus::kQueued:
      return "queued";
    case CommandStatus::kDelivered:
      return "delivered";
    case CommandStatus::kDone:
      return "done";
    case CommandStatus::kRejected:
      return "rejected";
    case CommandStatus::kFailed:
      return "failed";
    case CommandStatus::kExpired:
      return "expired";
  }
  return "queued";
}

absl::Status ValidateName(absl::string_view what, absl::string_view name,
                          size_t max) {
  if (name.empty() || name.size() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be 1 to ", max, " bytes long"));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                    c == '@' || c == ':' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " may hold only [A-Za-z0-9_.@:-]"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateReadingCount(size_t readings) {
  if (readings > kMaxReadingsPerUpload) {
    return absl::InvalidArgumentError(absl::StrCat("an upload holds at most ",
                                                   kMaxReadingsPerUpload,
                                                   " readings, this "
                                                   "one ",
                                                   readings));
  }
  return absl::OkStatus();
}

absl::Status ValidateUpload(const Upload& upload) {
  if (absl::Status s = ValidateReadingCount(upload.readings.size()); !s.ok()) {
    return s;
  }
  uint64_t previous = 0;
  for (size_t i = 0; i < upload.readings.size(); ++i) {
    const Reading& r = upload.readings[i];
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(sm::TruncatedMessage(
          absl::StrCat("reading ", i, " (sequence ", r.sequence, "): ", why)));
    };
    if (r.sensor.empty() || r.sensor.size() > kMaxSensorBytes ||
        !sm::IsValidUtf8(r.sensor)) {
      return bad(absl::StrCat("sensor must be 1 to ", kMaxSensorBytes,
                              " bytes of UTF-8"));
    }
    if (r.unit.size() > kMaxUnitBytes || !sm::IsValidUtf8(r.unit)) {
      return bad(
          absl::StrCat("unit must be at most ", kMaxUnitBytes, " bytes"));
    }
    if (!std::isfinite(r.value)) {
      return bad(absl::StrCat("value ", r.value, " is not a finite number"));
    }
    if (r.sequence == 0 || r.sequence > kMaxSequence) {
      return bad("sequence must be 1 to 2^63-1");
    }
    if (r.sequence <= previous) {
      return bad(absl::StrCat("sequences must increase within an upload (",
                              previous, " came before)"));
    }
    previous = r.sequence;
  }
  if (upload.oldest_sequence > kMaxSequence) {
    return absl::InvalidArgumentError("oldest_sequence beyond 2^63-1");
  }
  if (!upload.readings.empty() &&
      upload.oldest_sequence > upload.readings[0].sequence) {
    return absl::InvalidArgumentError(absl::StrCat(
        "oldest_sequence ", upload.oldest_sequence,
        " is past the upload's first reading ", upload.readings[0].sequence));
  }
  return absl::OkStatus();
}

absl::Status ValidateJsonObject(absl::string_view what, absl::string_view json,
                                size_t max) {
  if (json.size() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " holds ", json.size(), " bytes, at most ", max));
  }
  if (!IsJson(json, /*object=*/true)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a JSON object"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCommand(const HubCommand& c) {
  if (absl::Status s = ValidateName("command id", c.id, kMaxCommandIdBytes);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateName("device", c.device, kMaxCommandIdBytes);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ValidateName("command name", c.name, kMaxCommandNameBytes);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ValidateJsonObject("params", c.params_json, kMaxParamsBytes);
      !s.ok()) {
    return s;
  }
  if (c.max_attempts < 1 || c.max_attempts > kMaxCommandAttempts) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_attempts must be 1 to ", kMaxCommandAttempts));
  }
  if (c.expires_ms <= 0) {
    return absl::InvalidArgumentError("a command needs an expiry");
  }
  return absl::OkStatus();
}

sm::Command SchemaCommand() {
  std::vector<Statement> statements;
  for (const char* sql : kSchema) statements.push_back(Statement{sql, {}, {}});
  return Transaction(std::move(statements), 0);
}

namespace {

// What each release's tables lack, oldest first, and the error SQLite
// gives when the change is already made.
struct Upgrade {
  const char* sql;
  const char* made;
};
constexpr Upgrade kUpgrades[] = {
    {"ALTER TABLE edge_commands ADD COLUMN delivered_to TEXT",
     "duplicate column name: delivered_to"},
};

}  // namespace

sm::Command UpgradeCommand() {
  sm::Command c;
  for (const Upgrade& u : kUpgrades) {
    c.statements.push_back(Statement{u.sql, {}, {}});
  }
  return c;
}

absl::Status UpgradeStatus(const absl::StatusOr<sm::CommandResult>& written) {
  if (!written.ok()) return written.status();
  const sm::CommandResult& result = *written;
  if (result.statements.size() != std::size(kUpgrades)) {
    return absl::InternalError(
        "the upgrade's result has a statement count "
        "that is not the upgrade's");
  }
  for (size_t i = 0; i < std::size(kUpgrades); ++i) {
    const absl::Status& s = result.statements[i].status;
    if (!s.ok() && !absl::StrContains(s.message(), kUpgrades[i].made)) {
      return s;
    }
  }
  return absl::OkStatus();
}

bool IsMissingSchema(const absl::Status& status) {
  return !status.ok() &&
         absl::StrContains(status.message(), "no such table: edge_");
}

sm::Command HelloCommand(absl::string_view device,
                         absl::string_view incarnation,
                         absl::string_view session, uint64_t node,
                         int64_t now_ms) {
  std::vector<Statement> s;
  s.push_back(Statement{
      "INSERT INTO edge_devices(device, incarnation, session, node, "
      "connected, first_seen_ms, last_seen_ms) VALUES(?1, ?2, ?3, ?4, 1, ?5, "
      "?5) ON CONFLICT(device) DO UPDATE SET incarnation = ?2, session = ?3, "
      "node = ?4, connected = 1, last_seen_ms = ?5",
      {Text(device), Text(incarnation), Text(session),
       Int(static_cast<int64_t>(node)), Int(now_ms)},
      {}});
  s.push_back(Statement{
      "INSERT INTO edge_streams(device, incarnation, first_seen_ms, "
      "last_seen_ms) VALUES(?1, ?2, ?3, ?3) ON CONFLICT(device, incarnation) "
      "DO UPDATE SET last_seen_ms = ?3 RETURNING stream, acked",
      {Text(device), Text(incarnation), Int(now_ms)},
      {}});
  return Transaction(std::move(s), now_ms);
}

sm::Command GoodbyeCommand(absl::string_view device, absl::string_view session,
                           int64_t now_ms) {
  return Transaction(
      {Statement{"UPDATE edge_devices SET connected = 0, last_seen_ms = ?3 "
                 "WHERE device = ?1 AND session = ?2",
                 {Text(device), Text(session), Int(now_ms)},
                 {}}},
      now_ms);
}

sm::Command ForgetSessionsCommand(uint64_t node, absl::string_view live_prefix,
                                  int64_t now_ms) {
  return Transaction(
      {Statement{"UPDATE edge_devices SET connected = 0 WHERE node = ?1 AND "
                 "connected = 1 AND substr(session, 1, length(?2)) <> ?2",
                 {Int(static_cast<int64_t>(std::min(node, kMaxSequence))),
                  Text(live_prefix)},
                 {}}},
      now_ms);
}

sm::Command UploadCommand(absl::string_view device, uint64_t stream,
                          const Upload& upload, int64_t now_ms) {
  std::vector<Statement> s;
  const std::vector<Reading>& rs = upload.readings;
  for (size_t from = 0; from < rs.size(); from += kRowsPerInsert) {
    const size_t n = std::min(kRowsPerInsert, rs.size() - from);
    Statement insert{InsertSql(n), {}, {}};
    insert.positional.reserve(4 + 5 * n);
    insert.positional = {Int(static_cast<int64_t>(stream)), Int(now_ms)};
    for (size_t i = from; i < from + n; ++i) {
      insert.positional.push_back(Int(static_cast<int64_t>(rs[i].sequence)));
      insert.positional.push_back(Text(rs[i].sensor));
      insert.positional.push_back(Value::Real(rs[i].value));
      insert.positional.push_back(Text(rs[i].unit));
      insert.positional.push_back(Int(rs[i].device_time_ms));
    }
    insert.positional.push_back(Int(static_cast<int64_t>(stream)));
    insert.positional.push_back(Text(device));
    s.push_back(std::move(insert));
  }
  const uint64_t last = rs.empty() ? 0 : rs.back().sequence;
  // The edge's buffer as this upload saw it, unless a later upload (one
  // holding later sequences of the stream) was applied first: an edge
  // keeps several uploads in flight, and a retried one may commit last.
  s.push_back(Statement{
      "UPDATE edge_devices SET last_seen_ms = ?2, (backlog, dropped) = "
      "(SELECT iif(later, backlog, ?3), iif(later, dropped, ?4) FROM "
      "(SELECT EXISTS(SELECT 1 FROM edge_readings WHERE stream = ?5 AND "
      "seq > ?6) AS later)) WHERE device = ?1",
      {Text(device), Int(now_ms),
       Int(static_cast<int64_t>(std::min(upload.backlog, kMaxSequence))),
       Int(static_cast<int64_t>(std::min(upload.dropped, kMaxSequence))),
       Int(static_cast<int64_t>(stream)), Int(static_cast<int64_t>(last))},
      {}});
  const uint64_t below =
      upload.oldest_sequence == 0 ? 0 : upload.oldest_sequence - 1;
  // Sequences increase within an upload (ValidateUpload), so it is
  // contiguous when it spans as many sequences as it holds.
  const bool contiguous =
      !rs.empty() && last - rs.front().sequence + 1 == rs.size();
  const uint64_t first = contiguous ? rs.front().sequence : 0;
  s.push_back(Statement{
      kAdvance,
      {Int(static_cast<int64_t>(stream)), Text(device),
       Int(static_cast<int64_t>(below)), Int(now_ms),
       Int(static_cast<int64_t>(last)), Int(static_cast<int64_t>(first))},
      {}});
  return Transaction(std::move(s), now_ms);
}

absl::StatusOr<StreamAck> AckedOf(const sm::CommandResult& result) {
  if (absl::Status f = result.FirstFailure(); !f.ok()) return f;
  if (result.statements.empty() || result.statements.back().rows.size() != 1 ||
      result.statements.back().rows[0].size() != 2 ||
      result.statements.back().rows[0][0].type != Value::Type::kInteger ||
      result.statements.back().rows[0][1].type != Value::Type::kInteger) {
    return absl::NotFoundError(
        "no stream: the device's session must say Hello first");
  }
  const std::vector<Value>& row = result.statements.back().rows[0];
  return StreamAck{static_cast<uint64_t>(row[0].integer),
                   static_cast<uint64_t>(row[1].integer)};
}

sm::Statement OpenCommandsQuery(absl::string_view device, int64_t limit) {
  return Statement{
      absl::StrCat("SELECT ", kCommandColumns,
                   " FROM edge_commands WHERE device = ?1 AND status IN "
                   "('queued', 'delivered') ORDER BY seq LIMIT ?2"),
      {Text(device), Int(limit)},
      {}};
}

std::vector<HubCommand> CommandsOf(const sm::QueryResult& rows) {
  std::vector<HubCommand> out;
  for (const std::vector<Value>& row : rows.rows) {
    if (row.size() != 10) continue;
    HubCommand c;
    c.id = row[0].bytes;
    c.device = row[1].bytes;
    c.name = row[2].bytes;
    c.params_json = row[3].bytes;
    c.created_ms = row[4].integer;
    c.expires_ms = row[5].integer;
    c.max_attempts = static_cast<uint32_t>(row[6].integer);
    c.attempts = static_cast<uint32_t>(row[7].integer);
    c.status = row[8].bytes == "delivered" ? CommandStatus::kDelivered
                                           : CommandStatus::kQueued;
    c.delivered_ms = row[9].integer;
    out.push_back(std::move(c));
  }
  return out;
}

bool DueForDelivery(const HubCommand& c, int64_t now_ms, int64_t lock_ms) {
  if (c.expires_ms <= now_ms || c.attempts >= c.max_attempts) return false;
  if (c.status == CommandStatus::kQueued) return true;
  return c.status == CommandStatus::kDelivered &&
         c.delivered_ms + lock_ms <= now_ms;
}

sm::Command DeliverCommand(absl::string_view device,
                           absl::string_view incarnation, absl::string_view id,
                           int64_t now_ms, int64_t lock_ms) {
  const std::vector<Value> args = {Text(device), Text(id), Int(now_ms),
                                   Int(lock_ms), Text(incarnation)};
  return Transaction(
      {Statement{"UPDATE edge_commands SET status = 'expired', updated_ms = "
                 "?3, detail = 'delivered to a store of the device that is "
                 "gone (' || delivered_to || '): not delivered again, it may "
                 "have run' WHERE id = ?2 AND device = ?1 AND status = "
                 "'delivered' AND delivered_ms + ?4 <= ?3 AND delivered_to IS "
                 "NOT ?5",
                 args,
                 {}},
       Statement{
           absl::StrCat("UPDATE edge_commands SET status = 'delivered', "
                        "attempts = attempts + 1, delivered_ms = ?3, "
                        "delivered_to = ?5, updated_ms = ?3 WHERE id = ?2 AND "
                        "device = ?1 AND expires_ms > ?3 AND attempts < "
                        "max_attempts AND (status = 'queued' OR (status = "
                        "'delivered' AND delivered_ms + ?4 <= ?3)) RETURNING ",
                        kCommandColumns),
           args,
           {}}},
      now_ms);
}

sm::Command OutcomeCommand(absl::string_view device, absl::string_view id,
                           CommandStatus outcome, absl::string_view detail,
                           int64_t now_ms) {
  return Transaction(
      {Statement{"UPDATE edge_commands SET status = ?3, detail = ?4, "
                 "updated_ms = ?5 WHERE id = ?2 AND device = ?1 AND "
                 "status = 'delivered'",
                 {Text(device), Text(id), Text(CommandStatusName(outcome)),
                  Text(sm::TruncatedMessage(detail)), Int(now_ms)},
                 {}}},
      now_ms);
}

sm::Command IssueCommand(const HubCommand& c, int64_t now_ms) {
  return Transaction(
      {Statement{"INSERT INTO edge_commands(id, device, name, params, "
                 "created_ms, expires_ms, max_attempts, updated_ms) "
                 "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5) "
                 "ON CONFLICT(id) DO NOTHING RETURNING seq",
                 {Text(c.id), Text(c.device), Text(c.name), Text(c.params_json),
                  Int(now_ms), Int(c.expires_ms), Int(c.max_attempts)},
                 {}}},
      now_ms);
}

sm::Command ExpireCommand(int64_t now_ms, int64_t lock_ms, int64_t limit) {
  return Transaction(
      {Statement{
          "UPDATE edge_commands SET status = 'expired', updated_ms = ?1, "
          "detail = CASE WHEN expires_ms > ?1 THEN 'no answer after ' || "
          "attempts || ' attempts' WHEN attempts = 0 THEN "
          "'expired before delivery' ELSE 'expired before an answer' END "
          "WHERE seq IN (SELECT seq FROM edge_commands WHERE status IN "
          "('queued', 'delivered') AND (expires_ms <= ?1 OR "
          "(attempts >= max_attempts AND delivered_ms + ?2 <= ?1)) "
          "ORDER BY seq LIMIT ?3)",
          {Int(now_ms), Int(lock_ms), Int(limit)},
          {}}},
      now_ms);
}

sm::Command RetentionCommand(const Retention& r, int64_t now_ms) {
  // One statement per stream: its `per_stream` lowest sequences (the
  // primary key's order, no scan beyond them), of which those stored before
  // the cutoff, or more than (max_per_device - what the device's newer
  // streams hold) below the ack, go. (One statement over several streams
  // had SQLite scan each stream whole.) A device has few streams, found by
  // the (device, incarnation) index.
  std::vector<Statement> statements;
  for (uint64_t stream : r.streams) {
    statements.push_back(Statement{
        "DELETE FROM edge_readings WHERE stream = ?1 AND seq IN (SELECT seq "
        "FROM edge_readings WHERE stream = ?1 ORDER BY seq LIMIT ?2) AND "
        "(hub_time_ms < ?3 OR seq <= (SELECT s.acked - ?4 + (SELECT "
        "coalesce(sum(n.acked), 0) FROM edge_streams n WHERE n.device = "
        "s.device AND n.stream > s.stream) FROM edge_streams s WHERE "
        "s.stream = ?1))",
        {Int(static_cast<int64_t>(std::min(stream, kMaxSequence))),
         Int(r.per_stream), Int(r.before_ms),
         Int(r.max_per_device > 0 ? r.max_per_device : int64_t{1} << 62)},
        {}});
  }
  return Transaction(std::move(statements), now_ms);
}

sm::Statement StreamsQuery(uint64_t after, int64_t limit) {
  return Statement{
      "SELECT stream FROM edge_streams WHERE stream > ?1 ORDER BY stream "
      "LIMIT ?2",
      {Int(static_cast<int64_t>(std::min(after, kMaxSequence))), Int(limit)},
      {}};
}

sm::Command SetDesiredCommand(absl::string_view device,
                              absl::string_view patch_json, int64_t now_ms) {
  return Transaction(
      {Statement{"INSERT INTO edge_twins(device, desired, desired_version, "
                 "desired_ms) VALUES(?1, json_patch('{}', ?2), 1, ?3) "
                 "ON CONFLICT(device) DO UPDATE SET desired = "
                 "json_patch(desired, ?2), desired_version = "
                 "desired_version + 1, desired_ms = ?3 "
                 "RETURNING desired, desired_version",
                 {Text(device), Text(patch_json), Int(now_ms)},
                 {}}},
      now_ms);
}

sm::Command ReportTwinCommand(absl::string_view device,
                              absl::string_view reported_json,
                              uint64_t desired_version, int64_t now_ms) {
  return Transaction(
      {Statement{
          "INSERT INTO edge_twins(device, reported, reported_version, "
          "reported_desired_version, reported_ms) "
          "VALUES(?1, json(?2), 1, ?3, ?4) ON CONFLICT(device) DO "
          "UPDATE SET reported = json(?2), reported_version = "
          "reported_version + 1, reported_desired_version = ?3, "
          "reported_ms = ?4 WHERE ?3 >= reported_desired_version",
          {Text(device), Text(reported_json),
           Int(static_cast<int64_t>(std::min(desired_version, kMaxSequence))),
           Int(now_ms)},
          {}}},
      now_ms);
}

sm::Statement DesiredQuery(absl::string_view device) {
  return Statement{
      "SELECT desired, desired_version FROM edge_twins WHERE device = ?1",
      {Text(device)},
      {}};
}

}  // namespace raftsql::edge
