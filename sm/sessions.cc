#include "sm/sessions.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {

absl::Status Sessions::Migrate() {
  auto has = [this](const char* column) {
    Stmt cols;
    StatementPolicy::InternalScope scope(internal_.policy());
    sqlite3_prepare_v2(internal_.db(),
                       "SELECT 1 FROM pragma_table_info('_raftsql_sessions')"
                       " WHERE name = ?",
                       -1, cols.out(), nullptr);
    sqlite3_bind_text(cols.get(), 1, column, -1, SQLITE_STATIC);
    return sqlite3_step(cols.get()) == SQLITE_ROW;
  };
  if (!has("owner")) {
    absl::Status s = internal_.Exec(
        "ALTER TABLE _raftsql_sessions ADD COLUMN owner TEXT NOT NULL "
        "DEFAULT ''; ALTER TABLE _raftsql_sessions ADD COLUMN last_used_ms "
        "INTEGER NOT NULL DEFAULT 0;");
    if (!s.ok()) return s;
  }
  if (has("last_used_index")) return absl::OkStatus();
  return internal_.Exec(
      "ALTER TABLE _raftsql_sessions ADD COLUMN last_used_index INTEGER NOT "
      "NULL DEFAULT 0;");
}

bool Sessions::Answer(const CommandView& cmd, CommandResult* result) {
  CHECK_NE(cmd.session_id, 0u);
  CHECK(result->statements.empty());
  sqlite3_stmt* q = internal_.Get(
      "SELECT sequence, result, owner FROM _raftsql_sessions "
      "WHERE session_id = ?");
  sqlite3_bind_int64(q, 1, static_cast<int64_t>(cmd.session_id));
  int rc;
  {
    StatementPolicy::InternalScope scope(internal_.policy());
    rc = sqlite3_step(q);
  }
  if (rc != SQLITE_ROW) {
    sqlite3_reset(q);
    return false;
  }
  const auto seq = static_cast<uint64_t>(sqlite3_column_int64(q, 0));
  const auto* owner = reinterpret_cast<const char*>(sqlite3_column_text(q, 2));
  if (std::string_view(owner != nullptr ? owner : "") != cmd.user) {
    // A session belongs to the user who opened it: nobody else may replay
    // its results or move its sequence (and so lock its owner out).
    sqlite3_reset(q);
    result->statements.push_back(StatementResult{
        absl::PermissionDeniedError(absl::StrCat("session ", cmd.session_id,
                                                 " belongs to another user")),
        0, 0});
    return true;
  }
  if (cmd.sequence > seq) {
    sqlite3_reset(q);
    return false;
  }
  if (cmd.sequence == seq) {
    // Thesis §6.3: a retried request returns the stored result.
    const auto* p = static_cast<const char*>(sqlite3_column_blob(q, 1));
    absl::StatusOr<CommandResult> stored =
        CommandResult::Decode(std::string_view(p, sqlite3_column_bytes(q, 1)));
    sqlite3_reset(q);
    CHECK(stored.ok());  // We encoded it (Write).
    *result = std::move(*stored);
    result->duplicate = true;
    return true;
  }
  sqlite3_reset(q);
  result->statements.push_back(
      StatementResult{absl::FailedPreconditionError(absl::StrCat(
                          "stale request: session ", cmd.session_id,
                          " is at sequence ", seq, ", this is ", cmd.sequence)),
                      0, 0});
  return true;
}

void Sessions::MaybeExpire(int64_t now_ms, uint64_t index, uint64_t idle_ms_max,
                           uint64_t idle_entries_min) {
  // Deterministic: the entry's time and index, and the last sweep's period
  // kept in _raftsql_meta, decide; at most one sweep a period.
  if (now_ms <= 0) return;
  const uint64_t period = static_cast<uint64_t>(now_ms) / kSweepMs;
  if (period <= sweep_period_) return;
  sweep_period_ = period;
  // The time is the proposing node's wall clock, which may jump: a session
  // must also be idle for idle_entries_min entries, or a clock a month
  // ahead would end the session of a write whose retry is on its way (and
  // the retry would apply a second time).
  sqlite3_stmt* del = internal_.Get(
      "DELETE FROM _raftsql_sessions WHERE last_used_ms < ? AND "
      "last_used_index < ?");
  sqlite3_bind_int64(del, 1, now_ms - static_cast<int64_t>(idle_ms_max));
  sqlite3_bind_int64(del, 2,
                     index > idle_entries_min
                         ? static_cast<int64_t>(index - idle_entries_min)
                         : 0);
  internal_.Step(del);
  sqlite3_stmt* mark = internal_.Get(
      "INSERT OR REPLACE INTO _raftsql_meta(key, value) "
      "VALUES('session_sweep_period', ?)");
  sqlite3_bind_int64(mark, 1, static_cast<int64_t>(period));
  internal_.Step(mark);
}

void Sessions::Write(const CommandView& cmd, const CommandResult& result) {
  CHECK_NE(cmd.session_id, 0u);
  sqlite3_stmt* up = internal_.Get(
      "INSERT OR REPLACE INTO _raftsql_sessions(session_id, sequence, "
      "result, owner, last_used_ms, last_used_index) "
      "VALUES(?, ?, ?, ?, ?, ?)");
  const std::string bytes = result.Encode();
  sqlite3_bind_int64(up, 1, static_cast<int64_t>(cmd.session_id));
  sqlite3_bind_int64(up, 2, static_cast<int64_t>(cmd.sequence));
  sqlite3_bind_blob64(up, 3, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  sqlite3_bind_text(up, 4, cmd.user.data(), static_cast<int>(cmd.user.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(up, 5, cmd.timestamp_ms);
  sqlite3_bind_int64(up, 6, static_cast<int64_t>(result.index));
  internal_.Step(up);
}

absl::StatusOr<uint64_t> Sessions::ReadSequence(sqlite3* db,
                                                uint64_t session_id) {
  Stmt q;
  if (sqlite3_prepare_v2(
          db, "SELECT sequence FROM _raftsql_sessions WHERE session_id = ?", -1,
          q.out(), nullptr) != SQLITE_OK) {
    return SqliteError(db, sqlite3_errcode(db));
  }
  sqlite3_bind_int64(q.get(), 1, static_cast<int64_t>(session_id));
  const int rc = sqlite3_step(q.get());
  if (rc == SQLITE_ROW) {
    return static_cast<uint64_t>(sqlite3_column_int64(q.get(), 0));
  }
  if (rc != SQLITE_DONE) return SqliteError(db, rc);
  return 0;
}

}  // namespace raftsql::sm
