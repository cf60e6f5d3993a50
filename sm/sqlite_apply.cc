// Applying committed entries: a transaction per batch, a savepoint per entry
// and per statement, meta tables written with the effects.
#include <sqlite3.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/deterministic_vfs.h"
#include "sm/sqlite_state_machine.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {
namespace {

// A fast, platform-independent running hash (8 bytes per step; the value
// is part of the replicated state, so it must not depend on the machine).
uint64_t MixWord(uint64_t h, uint64_t w) {
  h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

uint64_t Mix(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  h = MixWord(h, n);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if constexpr (std::endian::native == std::endian::big) {
      w = __builtin_bswap64(w);  // The hash is defined little-endian.
    }
    h = MixWord(h, w);
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  for (size_t i = 0; i < n; ++i) tail |= static_cast<uint64_t>(p[i]) << (8 * i);
  return MixWord(h, tail);
}

uint64_t MixDouble(uint64_t h, double d) {
  uint64_t w;
  std::memcpy(&w, &d, sizeof(w));
  return MixWord(h, w);
}

// Mixes one SQLite value: its type, then its content (text and blobs by
// their bytes).
// Adds the value's size to `*bytes`: 8, plus a text's or blob's bytes.
// (sqlite3_value_bytes of a number would convert it to text first.)
uint64_t MixValue(uint64_t h, sqlite3_value* v, uint64_t* bytes = nullptr) {
  const int type = sqlite3_value_type(v);
  h = MixWord(h, static_cast<uint64_t>(type));
  uint64_t size = 8;
  if (type == SQLITE_INTEGER) {
    h = MixWord(h, static_cast<uint64_t>(sqlite3_value_int64(v)));
  } else if (type == SQLITE_FLOAT) {
    h = MixDouble(h, sqlite3_value_double(v));
  } else if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
    // Text as its stored UTF-8 bytes: sqlite3_value_text would copy a value
    // read from a record only to append the terminating NUL.
    const void* blob = sqlite3_value_blob(v);
    const int n = sqlite3_value_bytes(v);
    h = Mix(h, blob, n);
    size += static_cast<uint64_t>(n);
  }
  if (bytes != nullptr) *bytes += size;
  return h;
}

// Mixes the old or new values of the row the preupdate hook is called for,
// and adds their size to `*bytes` (see MixValue).
uint64_t MixRow(uint64_t h, sqlite3* db,
                int (*column)(sqlite3*, int, sqlite3_value**),
                uint64_t* bytes) {
  const int n = sqlite3_preupdate_count(db);
  for (int i = 0; i < n; ++i) {
    sqlite3_value* v = nullptr;
    if (column(db, i, &v) != SQLITE_OK || v == nullptr) continue;
    h = MixValue(h, v, bytes);
  }
  return h;
}

}  // namespace

void SqliteStateMachine::OnPreUpdate(sqlite3* db, int op, const char* db_name,
                                     const char* table, int64_t key1,
                                     int64_t key2) {
  if (write_policy_.internal) return;
  // db_name == "main", without a library call per row.
  if (db_name[0] != 'm' || db_name[1] != 'a' || db_name[2] != 'i' ||
      db_name[3] != 'n' || db_name[4] != '\0') {
    return;
  }
  // Rows of one statement mostly hit one table: remember it and its hash
  // instead of inserting into the set and hashing the name per row.
  if (hook_table_ != table) {
    hook_table_ = table;
    // Commands mostly hit the table the one before hit: its name's hash is
    // kept across statements.
    if (hook_table_name_ != table) {
      hook_table_name_ = table;
      hook_table_hash_ = Mix(0, table, hook_table_name_.size());
    }
    statement_tables_.Add(hook_table_name_);
  }
  uint64_t h = statement_hash_;
  h = MixWord(h, static_cast<uint64_t>(op));
  h = MixWord(h, hook_table_hash_);
  h = MixWord(h, static_cast<uint64_t>(key1));
  h = MixWord(h, static_cast<uint64_t>(key2));
  // The rowid names the row that goes or changes, except in a WITHOUT ROWID
  // table, where SQLite passes 0 for both keys: there the old row's values
  // (its primary key among them) name it.
  uint64_t ignored = 0;
  if (key1 == 0 && key2 == 0 && op != SQLITE_INSERT) {
    h = MixRow(h, db, sqlite3_preupdate_old, &ignored);
  }
  if (op != SQLITE_DELETE) {
    uint64_t bytes = 0;
    h = MixRow(h, db, sqlite3_preupdate_new, &bytes);
    budget_.AddRowBytes(bytes);
  }
  statement_hash_ = h;
}

absl::Status SqliteStateMachine::Validate(const Command& command) {
  if (command.statements.empty()) {
    return absl::InvalidArgumentError("a command needs at least one statement");
  }
  std::lock_guard<std::mutex> lock(check_mu_);
  sqlite3* db = check_db_ != nullptr ? check_db_ : db_;
  Policy& policy = check_db_ != nullptr ? check_policy_ : write_policy_;
  for (const Statement& st : command.statements) {
    // A statement that passed before passes again (the refusals depend on
    // what the SQL does, not on the schema): reuse it, check the bindings.
    if (auto it = check_stmts_.find(st.sql); it != check_stmts_.end()) {
      sqlite3_reset(it->second);
      sqlite3_clear_bindings(it->second);
      absl::Status bind = BindAll(it->second, st);
      sqlite3_clear_bindings(it->second);
      if (!bind.ok()) return bind;
      continue;
    }
    policy.refusal.clear();
    Stmt stmt;
    const char* tail = nullptr;
    const int rc =
        sqlite3_prepare_v3(db, st.sql.c_str(), static_cast<int>(st.sql.size()),
                           SQLITE_PREPARE_PERSISTENT, stmt.out(), &tail);
    if ((rc & 0xff) == SQLITE_AUTH) return SqliteError(db, rc, policy.refusal);
    if (rc != SQLITE_OK) {
      // Unknown tables or columns may exist by the time the command applies
      // (an earlier statement may create them); syntax errors and unknown
      // functions cannot change and are final now.
      const std::string msg = sqlite3_errmsg(db);
      if (msg.find("load_extension") != std::string::npos) {
        return absl::PermissionDeniedError(
            "refused: load_extension() is not allowed");
      }
      if (msg.find("syntax error") != std::string::npos ||
          msg.find("incomplete input") != std::string::npos ||
          msg.find("unrecognized token") != std::string::npos ||
          msg.find("no such function") != std::string::npos) {
        return absl::InvalidArgumentError(msg);
      }
      continue;
    }
    if (stmt.get() == nullptr) {
      return absl::InvalidArgumentError("empty statement");
    }
    absl::Status single =
        CheckSingleStatement(tail, st.sql.data() + st.sql.size());
    if (!single.ok()) return single;
    absl::Status bind = BindAll(stmt.get(), st);
    sqlite3_clear_bindings(stmt.get());
    if (!bind.ok()) return bind;
    if (check_db_ != nullptr) {  // Files only; the simulator keeps none.
      if (check_stmts_.size() >= kMaxCachedStatements) {
        for (auto& [text, old] : check_stmts_) sqlite3_finalize(old);
        check_stmts_.clear();
      }
      check_stmts_.emplace(st.sql, stmt.release());
    }
  }
  return absl::OkStatus();
}

std::string SqliteStateMachine::Apply(const core::Entry& entry) {
  std::string result;
  ApplyInTransactionOrAlone(std::span<const core::Entry>(&entry, 1), &result);
  return result;
}

void SqliteStateMachine::ApplyBatch(const std::vector<core::Entry>& entries,
                                    std::vector<std::string>* results) {
  results->resize(entries.size());
  ApplyInTransactionOrAlone(entries, results->data());
}

void SqliteStateMachine::ApplyInTransactionOrAlone(
    std::span<const core::Entry> entries, std::string* out) {
  const uint64_t applied_before = applied_;
  const uint64_t hash_before = hash_;
  const uint64_t sweep_before = session_sweep_period_;
  ApplyInTransaction(entries, out);
  if (!transaction_lost_) return;
  session_sweep_period_ = sweep_before;  // Its sweep was rolled back too.
  // A statement's ON CONFLICT ROLLBACK ended our transaction and with it the
  // whole batch (nothing was committed). Redo the batch one entry per
  // transaction: then such a statement only loses its own entry's effects,
  // exactly as on a replica that applied the entries one by one.
  applied_ = applied_before;
  hash_ = hash_before;
  for (size_t i = 0; i < entries.size(); ++i) {
    // The entry that spent its budget would spend it again (same state, same
    // command): record its failure without running it a second time.
    const bool spent = entries[i].index == budget_failed_index_;
    if (!spent) ApplyInTransaction(entries.subspan(i, 1), &out[i]);
    if (spent || transaction_lost_) {
      // The entry's effects are gone; record it as applied, with its result.
      transaction_lost_ = false;
      batch_versions_.clear();
      CHECK(Internal("BEGIN IMMEDIATE").ok());
      // Spent now or in the first pass: ApplyEntry names it either way.
      if (budget_failed_index_ == entries[i].index) {
        RecordBudgetFailure(entries[i], &out[i]);
      }
      WriteMeta(entries[i].index);
      CHECK(Internal("COMMIT").ok());
    }
  }
  budget_failed_index_ = 0;
}

void SqliteStateMachine::RecordBudgetFailure(const core::Entry& entry,
                                             std::string* out) {
  CHECK(scratch_.Decode(entry.data).ok());  // It ran: it decoded.
  const CommandView& cmd = scratch_;
  CommandResult& result = ResetResult(entry.index);
  result.statements.assign(cmd.statements.size(),
                           StatementResult{budget_error_, 0, 0});
  if (cmd.session_id != 0) WriteSession(cmd, result);
  result.EncodeTo(out);
}

void SqliteStateMachine::ApplyInTransaction(
    std::span<const core::Entry> entries, std::string* out) {
  transaction_lost_ = false;
  batch_versions_.clear();
  CHECK(Internal("BEGIN IMMEDIATE").ok());
  for (const core::Entry& e : entries) {
    // Rule 2: in order, once. The caller skips what is already applied.
    CHECK_EQ(e.index, applied_ + 1);
    ApplyEntry(e, out++);
    if (transaction_lost_) return;
    applied_ = e.index;
  }
  WriteMeta(applied_);
  const absl::Status commit = Internal("COMMIT");
  // A failed commit (disk full, I/O error) leaves the applied index behind
  // the results we would return: stop; a restart replays from the log.
  if (!commit.ok()) {
    std::fprintf(stderr, "state machine commit failed: %s\n",
                 std::string(commit.message()).c_str());
    CHECK(commit.ok());
  }
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
  if (decoded.ok()) MaybeExpireSessions(cmd.timestamp_ms);
  CommandResult& result = ResetResult(entry.index);
  if (!decoded.ok()) {
    // Only our servers propose; an undecodable entry is applied as a failed
    // no-op on every replica alike.
    result.statements.push_back(StatementResult{decoded, 0, 0});
  } else if (NeedsSavepoints(cmd)) {
    CHECK(Internal("SAVEPOINT entry").ok());
    ApplyWithSavepoints(cmd, entry.index, true, &result);
    if (!transaction_lost_) CHECK(Internal("RELEASE entry").ok());
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
  for (const auto& [name, version] : result.versions) {
    if (result.duplicate) break;
    const std::string& table = name;  // (clang 14 captures no bindings)
    // A batch mostly changes a few tables: a scan, no key built per entry.
    auto it = std::find_if(batch_versions_.begin(), batch_versions_.end(),
                           [&table](const auto& kept) {
                             return IsVersionKeyOf(kept.first, table);
                           });
    if (it != batch_versions_.end()) {
      it->second = version;  // "T" and "t" are one table: the later wins.
    } else {
      batch_versions_.emplace_back(VersionKey(table), version);
    }
  }
  result.EncodeTo(out);
}

void SqliteStateMachine::ApplyWithSavepoints(const CommandView& cmd,
                                             uint64_t index, bool savepoints,
                                             CommandResult* out) {
  CommandResult& result = *out;
  if (cmd.session_id != 0 && AnsweredBySession(cmd, &result)) return;
  SetDeterministicNow(cmd.timestamp_ms);
  // Seeded on first use: most entries never call random().
  prng_seed_ = cmd.random_seed ^ (index * 0x9e3779b97f4a7c15ull);
  prng_seeded_ = false;
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
    statement_tables_.Clear();
    hook_table_ = nullptr;
    statement_ddl_tables_.clear();
    statement_hash_ = hash;
    // A lone statement needs no savepoint of its own: the entry's serves.
    // Without savepoints a failing statement undoes itself.
    const bool own_savepoint = savepoints && cmd.statements.size() > 1;
    if (own_savepoint) CHECK(Internal("SAVEPOINT stmt").ok());
    StatementResult r = RunStatement(cmd.statements[i]);
    if (sqlite3_get_autocommit(db_)) {
      transaction_lost_ = true;  // See ApplyInTransactionOrAlone.
      return;
    }
    if (!r.status.ok() && savepoints) {
      CHECK(Internal(own_savepoint ? "ROLLBACK TO stmt" : "ROLLBACK TO entry")
                .ok());
    }
    if (own_savepoint) CHECK(Internal("RELEASE stmt").ok());
    if (r.status.ok() && statement_mentions_trigger_) RefreshHasTriggers();
    if (r.status.ok()) {
      for (const std::string& t : statement_tables_) entry_tables_.Add(t);
      hash = statement_hash_;
    } else if (cmd.transaction) {
      aborted = true;
    }
    result.statements.push_back(std::move(r));
  }
  if (aborted) {
    // All or nothing: undo the statements that succeeded (a lone failed
    // statement undid itself).
    if (savepoints) CHECK(Internal("ROLLBACK TO entry").ok());
    for (StatementResult& r : result.statements) {
      if (r.status.ok()) {
        r = StatementResult{absl::AbortedError("rolled back: a later statement "
                                               "of the transaction failed"),
                            0, 0};
      }
    }
    entry_tables_.Clear();
    hash = hash_;
  }
  hash_ = hash;
  for (const std::string& t : entry_tables_) {
    result.versions.emplace_back(t, index);
  }
  if (result.versions.size() > 1) {
    std::sort(result.versions.begin(), result.versions.end());
  }
  if (cmd.session_id != 0) WriteSession(cmd, result);
}

bool SqliteStateMachine::AnsweredBySession(const CommandView& cmd,
                                           CommandResult* result) {
  sqlite3_stmt* q = InternalStmt(
      "SELECT sequence, result, owner FROM _raftsql_sessions "
      "WHERE session_id = ?");
  sqlite3_bind_int64(q, 1, static_cast<int64_t>(cmd.session_id));
  write_policy_.internal = true;
  const int rc = sqlite3_step(q);
  write_policy_.internal = false;
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
    CHECK(stored.ok());
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

void SqliteStateMachine::MaybeExpireSessions(int64_t now_ms) {
  // Deterministic: the entry's leader-fixed time, and the last sweep's
  // period kept in _raftsql_meta, decide; at most one sweep a period.
  if (now_ms <= 0) return;
  const uint64_t period = static_cast<uint64_t>(now_ms) / kSessionSweepMs;
  if (period <= session_sweep_period_) return;
  session_sweep_period_ = period;
  const int64_t idle =
      static_cast<int64_t>(budget_.limits().session_idle_ms_max);
  sqlite3_stmt* del =
      InternalStmt("DELETE FROM _raftsql_sessions WHERE last_used_ms < ?");
  sqlite3_bind_int64(del, 1, now_ms - idle);
  sqlite3_stmt* mark = InternalStmt(
      "INSERT OR REPLACE INTO _raftsql_meta(key, value) "
      "VALUES('session_sweep_period', ?)");
  sqlite3_bind_int64(mark, 1, static_cast<int64_t>(period));
  StepInternal(del);
  StepInternal(mark);
}

void SqliteStateMachine::WriteSession(const CommandView& cmd,
                                      const CommandResult& result) {
  sqlite3_stmt* up = InternalStmt(
      "INSERT OR REPLACE INTO _raftsql_sessions(session_id, sequence, "
      "result, owner, last_used_ms) VALUES(?, ?, ?, ?, ?)");
  const std::string bytes = result.Encode();
  sqlite3_bind_int64(up, 1, static_cast<int64_t>(cmd.session_id));
  sqlite3_bind_int64(up, 2, static_cast<int64_t>(cmd.sequence));
  sqlite3_bind_blob64(up, 3, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  sqlite3_bind_text(up, 4, cmd.user.data(), static_cast<int>(cmd.user.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(up, 5, cmd.timestamp_ms);
  StepInternal(up);
}

CommandResult& SqliteStateMachine::ResetResult(uint64_t index) {
  // Reused: its vectors keep their storage.
  result_.statements.clear();
  result_.versions.clear();
  result_.duplicate = false;
  result_.index = index;
  return result_;
}

void SqliteStateMachine::StepInternal(sqlite3_stmt* stmt) {
  write_policy_.internal = true;
  CHECK(sqlite3_step(stmt) == SQLITE_DONE);
  write_policy_.internal = false;
  sqlite3_reset(stmt);
}

void SqliteStateMachine::ApplyUserChange(
    const absl::StatusOr<UserChange>& change, uint64_t index,
    std::string* out) {
  CommandResult& result = ResetResult(index);
  absl::Status s = change.status();
  if (s.ok()) s = ValidateUserName(change->user.name);
  if (s.ok() && change->op == UserChange::Op::kDelete &&
      !FindUser(change->user.name).has_value()) {
    s = absl::NotFoundError(absl::StrCat("no user named ", change->user.name));
  }
  if (s.ok()) {
    const User& u = change->user;
    const bool put = change->op == UserChange::Op::kPut;
    sqlite3_stmt* stmt = InternalStmt(
        put ? "INSERT OR REPLACE INTO _raftsql_users(name, hash, permissions) "
              "VALUES(?, ?, ?)"
            : "DELETE FROM _raftsql_users WHERE name = ?");
    sqlite3_bind_text(stmt, 1, u.name.data(), static_cast<int>(u.name.size()),
                      SQLITE_TRANSIENT);
    if (put) {
      sqlite3_bind_text(stmt, 2, u.password_hash.data(),
                        static_cast<int>(u.password_hash.size()),
                        SQLITE_TRANSIENT);
      sqlite3_bind_int64(stmt, 3, u.permissions);
    }
    StepInternal(stmt);
    std::lock_guard<std::mutex> l(users_mu_);
    if (put) {
      users_[u.name] = u;
    } else {
      users_.erase(u.name);
    }
  }
  result.statements.push_back(StatementResult{s, 0, 0});
  result.EncodeTo(out);
}

void SqliteStateMachine::ApplySettingChange(
    const absl::StatusOr<SettingChange>& change, uint64_t index,
    std::string* out) {
  CommandResult& result = ResetResult(index);
  WriteLimits limits = budget_.limits();
  absl::Status s = change.status();
  if (s.ok()) s = ApplySetting(change->name, change->value, &limits);
  if (s.ok()) {
    sqlite3_stmt* up = InternalStmt(
        "INSERT OR REPLACE INTO _raftsql_meta(key, value) VALUES(?, ?)");
    const std::string key = absl::StrCat(kSettingPrefix, change->name);
    sqlite3_bind_text(up, 1, key.data(), static_cast<int>(key.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(up, 2, static_cast<int64_t>(change->value));
    StepInternal(up);
    // In force from the next entry on; should this batch roll back, the
    // redo applies this entry again and sets them again.
    SetWriteLimits(limits);
  }
  result.statements.push_back(StatementResult{s, 0, 0});
  result.EncodeTo(out);
}

StatementResult SqliteStateMachine::RunStatement(
    const StatementView& statement) {
  StatementResult r;
  write_policy_.refusal.clear();
  statement_mentions_trigger_ = false;
  absl::StatusOr<UserStatement> prepared = UserStmt(statement.sql);
  if (!prepared.ok()) {
    r.status = prepared.status();
    return r;
  }
  statement_mentions_trigger_ = prepared->mentions_trigger;
  sqlite3_stmt* stmt = prepared->stmt;
  // A parameter left unbound must read NULL, never the previous run's value
  // (bindings are kept between runs; see ReleaseUserStmt).
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
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    budget_.EndStatement();
    if (rc != SQLITE_DONE)
      r.status = SqliteError(db_, rc, write_policy_.refusal);
    if (budget_.exceeded()) {
      // Over a limit, whether SQLite stopped it (an interrupt rolls back the
      // whole transaction) or it finished before the next check: the entry
      // fails as a whole, identically on every replica (see
      // ApplyInTransactionOrAlone).
      r.status = budget_.Error();
      if (!sqlite3_get_autocommit(db_)) CHECK(Internal("ROLLBACK").ok());
    }
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
      statement_tables_.Add(t);
      HashTable(t);
    }
  }
  ReleaseUserStmt(statement.sql, *prepared);
  return r;
}

void SqliteStateMachine::HashTable(const std::string& table) {
  write_policy_.internal = true;
  uint64_t h = Mix(statement_hash_, table.data(), table.size());
  Stmt schema;
  sqlite3_prepare_v2(db_,
                     "SELECT sql FROM sqlite_schema WHERE tbl_name = ?1 "
                     "COLLATE NOCASE ORDER BY name",
                     -1, schema.out(), nullptr);
  sqlite3_bind_text(schema.get(), 1, table.c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(schema.get()) == SQLITE_ROW) {
    h = Mix(h, sqlite3_column_text(schema.get(), 0),
            sqlite3_column_bytes(schema.get(), 0));
  }
  Stmt rows;
  std::string quoted = "\"";
  for (char c : table)
    quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  quoted += "\"";
  if (sqlite3_prepare_v2(db_, ("SELECT * FROM " + quoted).c_str(), -1,
                         rows.out(), nullptr) == SQLITE_OK) {
    const int n = sqlite3_column_count(rows.get());
    while (sqlite3_step(rows.get()) == SQLITE_ROW) {
      for (int i = 0; i < n; ++i) {
        h = MixValue(h, sqlite3_column_value(rows.get(), i));
      }
    }
  }
  statement_hash_ = h;
  write_policy_.internal = false;
}

void SqliteStateMachine::WriteMeta(uint64_t index) {
  sqlite3_stmt* meta = InternalStmt(
      "INSERT OR REPLACE INTO _raftsql_meta(key, value) "
      "VALUES('applied_index', ?1), ('divergence_hash', ?2)");
  sqlite3_bind_int64(meta, 1, static_cast<int64_t>(index));
  sqlite3_bind_int64(meta, 2, static_cast<int64_t>(hash_));
  write_policy_.internal = true;
  CHECK(sqlite3_step(meta) == SQLITE_DONE);
  write_policy_.internal = false;
  for (const auto& [key, version] : batch_versions_) {
    sqlite3_stmt* v = InternalStmt(
        "INSERT OR REPLACE INTO _raftsql_meta(key, value) VALUES(?, ?)");
    sqlite3_bind_text(v, 1, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(v, 2, static_cast<int64_t>(version));
    write_policy_.internal = true;
    CHECK(sqlite3_step(v) == SQLITE_DONE);
    write_policy_.internal = false;
  }
  batch_versions_.clear();
  applied_ = index;
}

}  // namespace raftsql::sm
