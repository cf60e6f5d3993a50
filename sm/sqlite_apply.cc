// Applying committed entries: a transaction per batch, a savepoint per entry
// and per statement, meta tables written with the effects.
#include <sqlite3.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "obs/log.h"
#include "obs/loop_phases.h"
#include "obs/write_trace.h"
#include "sm/deterministic_vfs.h"
#include "sm/sqlite_state_machine.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {

void SqliteStateMachine::OnPreUpdate(sqlite3* db, int op, const char* db_name,
                                     const char* table, int64_t key1,
                                     int64_t key2) {
  if (write_policy_.internal()) return;
  // db_name == "main", without a library call per row.
  if (db_name[0] != 'm' || db_name[1] != 'a' || db_name[2] != 'i' ||
      db_name[3] != 'n' || db_name[4] != '\0') {
    return;
  }
  preupdate_row_.Reset(db, op, table, key1, key2);
  budget_.AddRowBytes(hasher_.OnPreUpdate(preupdate_row_));
  if (changes_ != nullptr) capture_.OnPreUpdate(preupdate_row_);
}

std::string SqliteStateMachine::Apply(const core::Entry& entry) {
  obs::PhaseTimer timer(obs::Phase::kApply);
  CompleteSwap(/*wait=*/true);  // The node waits for it; a caller may not.
  std::string result;
  const std::span<const core::Entry> one(&entry, 1);
  ApplyInTransactionOrAlone(one, &result);
  AfterBatch(one);
  return result;
}

void SqliteStateMachine::ApplyBatch(const std::vector<core::Entry>& entries,
                                    std::vector<std::string>* results) {
  obs::PhaseTimer timer(obs::Phase::kApply);
  if (!entries.empty()) {
    obs::TraceWrite(entries.back().index, obs::WriteStage::kApplyStart);
  }
  CompleteSwap(/*wait=*/true);  // The node waits for it; a caller may not.
  results->resize(entries.size());
  ApplyInTransactionOrAlone(entries, results->data());
  AfterBatch(entries);
  if (!entries.empty()) {
    obs::TraceWrite(entries.back().index, obs::WriteStage::kApplied);
  }
}

void SqliteStateMachine::ApplyInTransactionOrAlone(
    std::span<const core::Entry> entries, std::string* out) {
  size_t done = 0;
  while (done < entries.size()) {
    const std::span<const core::Entry> rest = entries.subspan(done);
    const uint64_t applied_before = applied_;
    const uint64_t hash_before = hash_;
    const uint64_t sweep_before = sessions_->sweep_period();
    const size_t applied = ApplyInTransaction(rest, out + done);
    if (!transaction_lost_) {
      ApplyConnectionSwitches();
      ReclaimFreePages();
      done += applied;
      continue;
    }
    // A statement's ON CONFLICT ROLLBACK (or a spent budget) ended our
    // transaction and with it the whole batch (nothing was committed). Redo
    // the rest one entry per transaction: then such a statement only loses
    // its own entry's effects, exactly as on a replica that applied the
    // entries one by one. (A setting change ends a batch, so none was in
    // force in the part that rolled back.)
    sessions_->set_sweep_period(sweep_before);
    applied_ = applied_before;
    hash_ = hash_before;
    ApplyAlone(rest, out + done);
    return;
  }
}

void SqliteStateMachine::ApplyAlone(std::span<const core::Entry> entries,
                                    std::string* out) {
  for (size_t i = 0; i < entries.size(); ++i) {
    // The entry that spent its budget would spend it again (same state, same
    // command): record its failure without running it a second time.
    const bool spent = entries[i].index == budget_failed_index_;
    if (!spent) ApplyInTransaction(entries.subspan(i, 1), &out[i]);
    if (spent || transaction_lost_) {
      // The entry's effects are gone; record it as applied, with its result.
      transaction_lost_ = false;
      versions_->Clear();
      capture_.Clear();  // Its changes are gone with it.
      CHECK(internal_->Run("BEGIN IMMEDIATE").ok());
      RecordLostEntry(entries[i], &out[i]);
      WriteMeta(entries[i].index);
      CHECK(internal_->Run("COMMIT").ok());
      PublishVisible();
      checkpoints_.Record(entries[i].index, hash_);
      checkpoints_.Commit();
    }
    ApplyConnectionSwitches();
  }
  budget_failed_index_ = 0;
}

void SqliteStateMachine::RecordLostEntry(const core::Entry& entry,
                                         std::string* out) {
  CHECK(scratch_.Decode(entry.data).ok());  // It ran: it decoded.
  const CommandView& cmd = scratch_;
  CommandResult& result = ResetResult(entry.index);
  if (entry.index == budget_failed_index_) {
    // Spent now or in the first pass: every statement fails alike.
    result.statements.assign(cmd.statements.size(),
                             StatementResult{budget_error_, 0, 0});
  } else {
    CHECK_EQ(lost_result_.index, entry.index);
    result.statements = lost_result_.statements;
  }
  // A retry gets the same answer, without running it again.
  if (cmd.session_id != 0) sessions_->Write(cmd, result);
  result.EncodeTo(out);
}

size_t SqliteStateMachine::ApplyInTransaction(
    std::span<const core::Entry> entries, std::string* out) {
  transaction_lost_ = false;
  batch_ends_ = false;
  versions_->Clear();
  capture_.Clear();
  CHECK(internal_->Run("BEGIN IMMEDIATE").ok());
  size_t applied = 0;
  for (const core::Entry& e : entries) {
    // Rule 2: in order, once. The caller skips what is already applied.
    CHECK_EQ(e.index, applied_ + 1);
    capture_.BeginEntry(e.index);
    ApplyEntry(e, out++);
    if (transaction_lost_) {
      checkpoints_.Abandon();
      capture_.Clear();  // The batch is redone.
      return applied;
    }
    capture_.EndEntry();
    applied_ = e.index;
    checkpoints_.Record(e.index, hash_);
    ++applied;
    if (batch_ends_) break;
  }
  WriteMeta(applied_);
  const absl::Status commit = internal_->Run("COMMIT");
  // A failed commit (disk full, I/O error) leaves the applied index behind
  // the results we would return: stop; a restart replays from the log.
  if (!commit.ok()) {
    obs::Log(obs::Level::kError, "fatal",
             absl::StrFormat("state machine commit failed: %s",
                             std::string(commit.message()).c_str()));
    CHECK(commit.ok());
  }
  PublishVisible();
  checkpoints_.Commit();
  CHECK_GT(applied, 0u);
  return applied;
}

void SqliteStateMachine::ApplyEntry(const core::Entry& entry,
                                    std::string* out) {
  out->clear();
  if (entry.type != core::EntryType::kNormal || entry.data.empty()) return;
  if (std::optional<absl::StatusOr<SettingChange>> setting =
          SettingChange::Decode(entry.data)) {
    ApplySettingChange(*setting, entry.index, out);
    return;
  }
  if (std::optional<absl::StatusOr<UserChange>> user =
          UserChange::Decode(entry.data)) {
    ApplyUserChange(*user, entry.index, out);
    return;
  }
  budget_.BeginCommand();
  // One scratch command for every entry: its storage is reused.
  const absl::Status decoded = scratch_.Decode(entry.data);
  const CommandView& cmd = scratch_;
  if (decoded.ok())
    sessions_->MaybeExpire(cmd.timestamp_ms, entry.index,
                           budget_.limits().session_idle_ms_max,
                           budget_.limits().session_idle_entries_min);
  CommandResult& result = ResetResult(entry.index);
  if (!decoded.ok()) {
    // Only our servers propose; an undecodable entry is applied as a failed
    // no-op on every replica alike.
    result.statements.push_back(StatementResult{decoded, 0, 0});
  } else if (NeedsSavepoints(cmd)) {
    CHECK(internal_->Run("SAVEPOINT entry").ok());
    ApplyWithSavepoints(cmd, entry.index, true, &result);
    if (!transaction_lost_) CHECK(internal_->Run("RELEASE entry").ok());
  } else {
    ApplyWithSavepoints(cmd, entry.index, false, &result);
  }
  if (transaction_lost_) {
    if (budget_.exceeded()) {
      budget_failed_index_ = entry.index;
      budget_error_ = budget_.Error();
    }
    return;
  }
  // A retry answered from its session carries the versions of its first
  // apply: the tables did not change now (recording them again would move
  // a table's version back).
  if (!result.duplicate) versions_->Record(result.versions);
  result.EncodeTo(out);
}

void SqliteStateMachine::ApplyWithSavepoints(const CommandView& cmd,
                                             uint64_t index, bool savepoints,
                                             CommandResult* out) {
  CommandResult& result = *out;
  if (cmd.session_id != 0 && sessions_->Answer(cmd, &result)) return;
  SetDeterministicNow(cmd.timestamp_ms);
  context_.BeginCommand(cmd.random_seed, index);
  returned_bytes_ = 0;
  entry_tables_.Clear();
  uint64_t hash = hash_;
  bool aborted = false;
  for (size_t i = 0; i < cmd.statements.size(); ++i) {
    if (aborted) {
      result.statements.push_back(StatementResult{
          absl::AbortedError("not run: an earlier statement failed and the "
                             "transaction rolled back"),
          0, 0});
      continue;
    }
    hasher_.BeginStatement(hash);
    capture_.BeginStatement();
    statement_ddl_tables_.clear();
    // A lone statement needs no savepoint of its own: the entry's serves.
    // Without savepoints a failing statement undoes itself.
    const bool own_savepoint = savepoints && cmd.statements.size() > 1;
    if (own_savepoint) CHECK(internal_->Run("SAVEPOINT stmt").ok());
    StatementResult r = RunStatement(cmd.statements[i]);
    if (sqlite3_get_autocommit(db_)) {
      // The statement ended SQLite's transaction (ON CONFLICT ROLLBACK,
      // RAISE(ROLLBACK), a spent budget): see ApplyInTransactionOrAlone.
      transaction_lost_ = true;
      KeepLostResult(cmd, index, std::move(r), &result);
      return;
    }
    if (!r.status.ok() && savepoints) {
      CHECK(internal_
                ->Run(own_savepoint ? "ROLLBACK TO stmt" : "ROLLBACK TO entry")
                .ok());
    }
    if (own_savepoint) CHECK(internal_->Run("RELEASE stmt").ok());
    if (r.status.ok() && statement_mentions_trigger_) RefreshHasTriggers();
    if (r.status.ok()) {
      for (const std::string& t : hasher_.statement_tables()) {
        entry_tables_.Add(t);
      }
      hash = hasher_.statement_hash();
    } else {
      capture_.StatementFailed();  // It undid itself, or was rolled back.
      aborted = cmd.transaction;
    }
    result.statements.push_back(std::move(r));
  }
  if (aborted) {
    // All or nothing: undo the statements that succeeded (a lone failed
    // statement undid itself).
    if (savepoints) CHECK(internal_->Run("ROLLBACK TO entry").ok());
    for (StatementResult& r : result.statements) {
      if (r.status.ok()) {
        r = StatementResult{absl::AbortedError("rolled back: a later statement "
                                               "of the transaction failed"),
                            0, 0};
      }
    }
    entry_tables_.Clear();
    capture_.EntryFailed();
    hash = hash_;
  }
  hash_ = hash;
  for (const std::string& t : entry_tables_) {
    result.versions.emplace_back(t, index);
  }
  if (result.versions.size() > 1) {
    std::sort(result.versions.begin(), result.versions.end());
  }
  if (cmd.session_id != 0) sessions_->Write(cmd, result);
}

void SqliteStateMachine::KeepLostResult(const CommandView& cmd, uint64_t index,
                                        StatementResult failed,
                                        CommandResult* result) {
  // Everything the entry did is gone: the statements before the failing one
  // were rolled back with it, and those after it never ran.
  for (StatementResult& r : result->statements) {
    if (r.status.ok()) {
      r = StatementResult{
          absl::AbortedError("rolled back: a later statement ended the "
                             "transaction"),
          0, 0};
    }
  }
  if (failed.status.ok()) {
    // Only a statement that failed ends SQLite's transaction.
    failed.status = absl::InternalError(
        "the statement ended the transaction without an error");
  }
  failed.rows_affected = 0;
  failed.last_insert_rowid = 0;
  result->statements.push_back(std::move(failed));
  while (result->statements.size() < cmd.statements.size()) {
    result->statements.push_back(StatementResult{
        absl::AbortedError("not run: an earlier statement ended the "
                           "transaction"),
        0, 0});
  }
  lost_result_.index = index;
  lost_result_.statements = result->statements;
}

CommandResult& SqliteStateMachine::ResetResult(uint64_t index) {
  // Reused: its vectors keep their storage.
  result_.statements.clear();
  result_.versions.clear();
  result_.duplicate = false;
  result_.index = index;
  return result_;
}

StatementResult SqliteStateMachine::RunStatement(
    const StatementView& statement) {
  StatementResult r;
  write_policy_.BeginStatement();
  statement_mentions_trigger_ = false;
  absl::StatusOr<StatementCache::Prepared> prepared =
      statements_->Acquire(statement.sql);
  if (!prepared.ok()) {
    r.status = prepared.status();
    return r;
  }
  statement_mentions_trigger_ = prepared->mentions_trigger;
  if (prepared->vacuum) {
    // Never inside the batch's transaction: after the batch (AfterBatch).
    vacuum_requested_ = true;
    statements_->Release(statement.sql, *prepared, false);
    return r;
  }
  sqlite3_stmt* stmt = prepared->stmt;
  // A parameter left unbound must read NULL, never the previous run's value
  // (bindings are kept between runs; see StatementCache::Release).
  if (!statement.named.empty() ||
      static_cast<int>(statement.positional.size()) != prepared->parameters) {
    sqlite3_clear_bindings(stmt);
  }
  r.status = BindAll(stmt, statement);
  // sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, so a
  // statement that changed no row (DDL, a read) must not report it.
  const int64_t total_before = sqlite3_total_changes64(db_);
  int rc = SQLITE_DONE;
  if (r.status.ok()) {
    budget_.BeginStatement(stmt);
    context_.BeginStatement(db_);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      KeepReturnedRow(stmt, prepared->written_columns.get(), &r);
    }
    context_.EndStatement(db_, prepared->counts_changes,
                          sqlite3_total_changes64(db_) - total_before);
    budget_.EndStatement();
    StopOnReplicaFailure(rc);
    if (rc != SQLITE_DONE) {
      r.status = SqliteError(db_, rc, write_policy_.refusal());
    }
    if (budget_.exceeded()) {
      // Over a limit, whether SQLite stopped it (an interrupt rolls back the
      // whole transaction) or it finished before the next check: the entry
      // fails as a whole, identically on every replica (see
      // ApplyInTransactionOrAlone).
      r.status = budget_.Error();
      if (!sqlite3_get_autocommit(db_)) CHECK(internal_->Run("ROLLBACK").ok());
    }
  }
  if (!r.status.ok()) {
    // A statement that failed returned nothing.
    r.columns.clear();
    r.rows.clear();
    r.rows_truncated = false;
  }
  if (r.status.ok()) {
    r.rows_affected = sqlite3_total_changes64(db_) == total_before
                          ? 0
                          : sqlite3_changes64(db_);
    // The connection's last rowid may be another command's (or our meta
    // tables'): report it only for a statement that changed rows.
    r.last_insert_rowid =
        r.rows_affected > 0 ? sqlite3_last_insert_rowid(db_) : 0;
    for (const std::string& t : statement_ddl_tables_) {
      capture_.OnSchema(t);
      hasher_.AddStatementTable(t);
      StatementPolicy::InternalScope scope(write_policy_);
      hasher_.HashTable(db_, t);
    }
  }
  statements_->Release(statement.sql, *prepared,
                       !statement_ddl_tables_.empty());
  return r;
}

void SqliteStateMachine::KeepReturnedRow(
    sqlite3_stmt* stmt, const std::vector<std::string>* written_columns,
    StatementResult* r) {
  if (r->rows_truncated) return;
  const int n = sqlite3_column_count(stmt);
  if (r->columns.empty()) {
    const bool written = written_columns != nullptr &&
                         static_cast<int>(written_columns->size()) == n;
    for (int i = 0; i < n; ++i) {
      r->columns.push_back(written ? (*written_columns)[i]
                                   : sqlite3_column_name(stmt, i));
      returned_bytes_ += 16 + r->columns.back().size();
    }
  }
  std::vector<Value> row;
  size_t bytes = 0;
  for (int i = 0; i < n; ++i) {
    row.push_back(ColumnValue(stmt, i));
    bytes += ValueBytes(row.back());
  }
  // The same bound on every replica: the result is replicated state.
  if (returned_bytes_ + bytes > kMaxReturnedBytes) {
    r->rows_truncated = true;
    return;
  }
  returned_bytes_ += bytes;
  r->rows.push_back(std::move(row));
}

void SqliteStateMachine::StopOnReplicaFailure(int rc) {
  // A full disk, an I/O error, corruption or no memory are this replica's,
  // not the command's: recorded as the entry's result they would make this
  // replica diverge from those that applied it. Stop, as on a failed log
  // write (DESIGN.md §2, rule 6); a restart replays the entry from the log
  // once the cause is gone.
  const int primary = rc & 0xff;
  if (primary != SQLITE_FULL && primary != SQLITE_IOERR &&
      primary != SQLITE_CORRUPT && primary != SQLITE_NOMEM &&
      primary != SQLITE_CANTOPEN) {
    return;
  }
  if (options_.vacuum_copy) {
    // Only the copy is lost: its vacuum is abandoned.
    if (copy_failure_.empty()) copy_failure_ = sqlite3_errmsg(db_);
    return;
  }
  obs::Log(
      obs::Level::kError, "fatal",
      absl::StrFormat(
          "state machine: this replica cannot apply entry %llu: %s (code %d, "
          "extended %d, errno %d); stopping (a restart replays it)",
          static_cast<unsigned long long>(applied_ + 1), sqlite3_errmsg(db_),
          rc, sqlite3_extended_errcode(db_), sqlite3_system_errno(db_)));
  CHECK(false);
}

void SqliteStateMachine::WriteMeta(uint64_t index) {
  sqlite3_stmt* meta = internal_->Get(
      "INSERT OR REPLACE INTO _raftsql_meta(key, value) "
      "VALUES('applied_index', ?1), ('divergence_hash', ?2)");
  sqlite3_bind_int64(meta, 1, static_cast<int64_t>(index));
  sqlite3_bind_int64(meta, 2, static_cast<int64_t>(hash_));
  internal_->Step(meta);
  versions_->Write();
  applied_ = index;
  if (changes_ != nullptr) {
    // Before the COMMIT: a crash between the two leaves records beyond the
    // applied index, which the next open drops (the log replays them).
    if (capture_.overflowed()) {
      changes_->Reset(index);
    } else {
      changes_->Append(capture_.batch(), index);
    }
  }
  capture_.Clear();
}

}  // namespace raftsql::sm
