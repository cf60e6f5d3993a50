// Applying committed entries: a transaction per batch, a savepoint per entry
// and per statement, meta tables written with the effects.
#include <sqlite3.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/deterministic_vfs.h"
#include "sm/sqlite_state_machine.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {
namespace {

uint64_t Mix(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

template <typename T>
uint64_t MixValue(uint64_t h, T v) {
  return Mix(h, &v, sizeof(v));
}

}  // namespace

void SqliteStateMachine::OnPreUpdate(sqlite3* db, int op, const char* db_name,
                                     const char* table, int64_t key1,
                                     int64_t key2) {
  if (write_policy_.internal) return;
  if (std::string_view(db_name) != "main") return;
  statement_tables_.insert(table);
  uint64_t h = statement_hash_;
  h = MixValue(h, op);
  h = Mix(h, table, std::strlen(table));
  h = MixValue(h, key1);
  h = MixValue(h, key2);
  if (op != SQLITE_DELETE) {
    const int n = sqlite3_preupdate_count(db);
    for (int i = 0; i < n; ++i) {
      sqlite3_value* v = nullptr;
      if (sqlite3_preupdate_new(db, i, &v) != SQLITE_OK || v == nullptr)
        continue;
      const int type = sqlite3_value_type(v);
      h = MixValue(h, type);
      const int bytes = sqlite3_value_bytes(v);
      if (type == SQLITE_INTEGER) {
        h = MixValue(h, sqlite3_value_int64(v));
      } else if (type == SQLITE_FLOAT) {
        h = MixValue(h, sqlite3_value_double(v));
      } else if (type == SQLITE_TEXT) {
        h = Mix(h, sqlite3_value_text(v), bytes);
      } else if (type == SQLITE_BLOB) {
        h = Mix(h, sqlite3_value_blob(v), bytes);
      }
    }
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
    policy.refusal.clear();
    Stmt stmt;
    const char* tail = nullptr;
    const int rc = sqlite3_prepare_v2(
        db, st.sql.c_str(), static_cast<int>(st.sql.size()), stmt.out(), &tail);
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
    while (tail != nullptr && *tail != '\0' &&
           std::isspace(static_cast<unsigned char>(*tail)))
      ++tail;
    if (tail != nullptr && *tail != '\0' && *tail != ';') {
      return absl::InvalidArgumentError(
          "one SQL statement per Statement: split the text into several");
    }
    absl::Status bind = BindAll(stmt.get(), st);
    if (!bind.ok()) return bind;
  }
  return absl::OkStatus();
}

std::string SqliteStateMachine::Apply(const core::Entry& entry) {
  return ApplyBatch({entry})[0];
}

std::vector<std::string> SqliteStateMachine::ApplyBatch(
    const std::vector<core::Entry>& entries) {
  std::vector<std::string> results;
  results.reserve(entries.size());
  write_policy_.internal = true;
  CHECK(Exec("BEGIN IMMEDIATE").ok());
  write_policy_.internal = false;
  for (const core::Entry& e : entries) {
    // Rule 2: in order, once. The caller skips what is already applied.
    CHECK_EQ(e.index, applied_ + 1);
    write_policy_.internal = true;
    CHECK(Exec("SAVEPOINT entry").ok());
    write_policy_.internal = false;
    results.push_back(ApplyEntry(e));
    write_policy_.internal = true;
    CHECK(Exec("RELEASE entry").ok());
    write_policy_.internal = false;
  }
  write_policy_.internal = true;
  const absl::Status commit = Exec("COMMIT");
  write_policy_.internal = false;
  // A failed commit (disk full, I/O error) leaves the applied index behind
  // the results we would return: stop; a restart replays from the log.
  if (!commit.ok()) {
    std::fprintf(stderr, "state machine commit failed: %s\n",
                 std::string(commit.message()).c_str());
    CHECK(commit.ok());
  }
  return results;
}

std::string SqliteStateMachine::ApplyEntry(const core::Entry& entry) {
  std::set<std::string> tables;
  std::string out;
  if (entry.type == core::EntryType::kNormal && !entry.data.empty()) {
    absl::StatusOr<Command> cmd = Command::Decode(entry.data);
    CommandResult result;
    if (!cmd.ok()) {
      // Only our servers propose; an undecodable entry is applied as a
      // failed no-op on every replica alike.
      result.statements.push_back(StatementResult{cmd.status(), 0, 0});
      result.index = entry.index;
    } else {
      result = ApplyCommand(*cmd, entry.index);
    }
    for (const auto& [table, version] : result.versions) tables.insert(table);
    out = result.Encode();
  }
  WriteMeta(entry.index, tables);
  return out;
}

CommandResult SqliteStateMachine::ApplyCommand(const Command& cmd,
                                               uint64_t index) {
  CommandResult result;
  result.index = index;
  if (cmd.session_id != 0) {
    // Thesis §6.3: a retried request returns the stored result.
    Stmt q;
    write_policy_.internal = true;
    sqlite3_prepare_v2(db_,
                       "SELECT sequence, result FROM _raftsql_sessions WHERE "
                       "session_id = ?",
                       -1, q.out(), nullptr);
    write_policy_.internal = false;
    sqlite3_bind_int64(q.get(), 1, static_cast<int64_t>(cmd.session_id));
    if (sqlite3_step(q.get()) == SQLITE_ROW) {
      const auto seq = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 0));
      if (cmd.sequence <= seq) {
        if (cmd.sequence == seq) {
          const auto* p =
              static_cast<const char*>(sqlite3_column_blob(q.get(), 1));
          absl::StatusOr<CommandResult> stored = CommandResult::Decode(
              std::string_view(p, sqlite3_column_bytes(q.get(), 1)));
          CHECK(stored.ok());
          stored->duplicate = true;
          return *stored;
        }
        result.statements.push_back(StatementResult{
            absl::FailedPreconditionError(absl::StrCat(
                "stale request: session ", cmd.session_id, " is at sequence ",
                seq, ", this is ", cmd.sequence)),
            0, 0});
        return result;
      }
    }
  }
  SetDeterministicNow(cmd.timestamp_ms);
  prng_ = core::Prng(cmd.random_seed ^ (index * 0x9e3779b97f4a7c15ull));
  std::set<std::string> changed;
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
    statement_tables_.clear();
    statement_ddl_tables_.clear();
    statement_hash_ = hash;
    write_policy_.internal = true;
    CHECK(Exec("SAVEPOINT stmt").ok());
    write_policy_.internal = false;
    StatementResult r = RunStatement(cmd.statements[i]);
    write_policy_.internal = true;
    if (!r.status.ok()) CHECK(Exec("ROLLBACK TO stmt").ok());
    CHECK(Exec("RELEASE stmt").ok());
    write_policy_.internal = false;
    if (r.status.ok()) {
      changed.insert(statement_tables_.begin(), statement_tables_.end());
      hash = statement_hash_;
    } else if (cmd.transaction) {
      aborted = true;
    }
    result.statements.push_back(std::move(r));
  }
  if (aborted) {
    // All or nothing: undo the statements that succeeded.
    write_policy_.internal = true;
    CHECK(Exec("ROLLBACK TO entry").ok());
    write_policy_.internal = false;
    for (StatementResult& r : result.statements) {
      if (r.status.ok()) {
        r = StatementResult{absl::AbortedError("rolled back: a later statement "
                                               "of the transaction failed"),
                            0, 0};
      }
    }
    changed.clear();
    hash = hash_;
  }
  hash_ = hash;
  for (const std::string& t : changed) result.versions[t] = index;
  if (cmd.session_id != 0) {
    Stmt up;
    write_policy_.internal = true;
    sqlite3_prepare_v2(db_,
                       "INSERT OR REPLACE INTO _raftsql_sessions(session_id, "
                       "sequence, result) VALUES(?, ?, ?)",
                       -1, up.out(), nullptr);
    write_policy_.internal = false;
    const std::string bytes = result.Encode();
    sqlite3_bind_int64(up.get(), 1, static_cast<int64_t>(cmd.session_id));
    sqlite3_bind_int64(up.get(), 2, static_cast<int64_t>(cmd.sequence));
    sqlite3_bind_blob64(up.get(), 3, bytes.data(), bytes.size(),
                        SQLITE_TRANSIENT);
    write_policy_.internal = true;
    CHECK(sqlite3_step(up.get()) == SQLITE_DONE);
    write_policy_.internal = false;
  }
  return result;
}

StatementResult SqliteStateMachine::RunStatement(const Statement& statement) {
  StatementResult r;
  write_policy_.refusal.clear();
  Stmt stmt;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, statement.sql.c_str(),
                              static_cast<int>(statement.sql.size()),
                              stmt.out(), &tail);
  if (rc != SQLITE_OK) {
    r.status = SqliteError(db_, rc, write_policy_.refusal);
    return r;
  }
  if (stmt.get() == nullptr) {
    r.status = absl::InvalidArgumentError("empty statement");
    return r;
  }
  while (*tail != '\0' &&
         (std::isspace(static_cast<unsigned char>(*tail)) || *tail == ';'))
    ++tail;
  if (*tail != '\0') {
    r.status = absl::InvalidArgumentError(
        "one SQL statement per Statement: split the text into several");
    return r;
  }
  r.status = BindAll(stmt.get(), statement);
  if (!r.status.ok()) return r;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) {
    r.status = SqliteError(db_, rc, write_policy_.refusal);
    return r;
  }
  r.rows_affected =
      sqlite3_stmt_readonly(stmt.get()) ? 0 : sqlite3_changes64(db_);
  r.last_insert_rowid = sqlite3_last_insert_rowid(db_);
  for (const std::string& t : statement_ddl_tables_) {
    statement_tables_.insert(t);
    HashTable(t);
  }
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
        const int type = sqlite3_column_type(rows.get(), i);
        h = MixValue(h, type);
        if (type == SQLITE_INTEGER) {
          h = MixValue(h, sqlite3_column_int64(rows.get(), i));
        } else if (type == SQLITE_FLOAT) {
          h = MixValue(h, sqlite3_column_double(rows.get(), i));
        } else if (type != SQLITE_NULL) {
          h = Mix(h, sqlite3_column_blob(rows.get(), i),
                  sqlite3_column_bytes(rows.get(), i));
        }
      }
    }
  }
  statement_hash_ = h;
  write_policy_.internal = false;
}

void SqliteStateMachine::WriteMeta(uint64_t index,
                                   const std::set<std::string>& tables) {
  write_policy_.internal = true;
  Stmt meta;
  CHECK(
      sqlite3_prepare_v2(db_,
                         "INSERT OR REPLACE INTO _raftsql_meta(key, value) "
                         "VALUES('applied_index', ?1), ('divergence_hash', ?2)",
                         -1, meta.out(), nullptr) == SQLITE_OK);
  sqlite3_bind_int64(meta.get(), 1, static_cast<int64_t>(index));
  sqlite3_bind_int64(meta.get(), 2, static_cast<int64_t>(hash_));
  CHECK(sqlite3_step(meta.get()) == SQLITE_DONE);
  for (const std::string& t : tables) {
    Stmt v;
    CHECK(sqlite3_prepare_v2(db_,
                             "INSERT OR REPLACE INTO _raftsql_versions(name, "
                             "version) VALUES(?, ?)",
                             -1, v.out(), nullptr) == SQLITE_OK);
    sqlite3_bind_text(v.get(), 1, t.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(v.get(), 2, static_cast<int64_t>(index));
    CHECK(sqlite3_step(v.get()) == SQLITE_DONE);
  }
  write_policy_.internal = false;
  applied_ = index;
}

}  // namespace raftsql::sm
