#include "sm/sqlite_state_machine.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/deterministic_vfs.h"
#include "sm/sqlite_util.h"
#include "sm/wal_checkpointer.h"

namespace raftsql::sm {
namespace {

// WITHOUT ROWID: the key's b-tree is the table, so each apply writes one
// page, not a table page and an index page. The applied index, the
// divergence hash and every table's version ("version:<name>", see
// VersionKey) share that one page: a batch's commit writes it once (a
// table of versions of its own cost a third WAL frame per commit, 5-8% of
// 1-row apply throughput).
constexpr char kMetaSchema[] =
    "CREATE TABLE IF NOT EXISTS _raftsql_meta("
    "  key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS _raftsql_sessions("
    "  session_id INTEGER PRIMARY KEY, sequence INTEGER NOT NULL,"
    "  result BLOB NOT NULL, owner TEXT NOT NULL DEFAULT '',"
    "  last_used_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS _raftsql_users("
    "  name TEXT PRIMARY KEY, hash TEXT NOT NULL,"
    "  permissions INTEGER NOT NULL) WITHOUT ROWID;";

// PRAGMAs that only read the schema: allowed. Every other PRAGMA could change
// durability, journaling or the schema itself and is refused.
constexpr const char* kReadOnlyPragmas[] = {
    "table_info",  "table_xinfo",      "index_list",        "index_info",
    "index_xinfo", "foreign_key_list", "foreign_key_check", "integrity_check",
    "quick_check", "table_list",
};

// Our meta tables. (SQLite's own schema table is written by DDL through the
// authorizer too; defensive mode already stops users writing it directly.)
bool IsInternalTable(const char* name) {
  return name != nullptr && absl::StartsWithIgnoreCase(name, "_raftsql");
}

int AuthorizerCallback(void* ctx, int action, const char* a1, const char* a2,
                       const char* db, const char*) {
  auto* policy = static_cast<SqliteStateMachine::Policy*>(ctx);
  if (policy->internal) return SQLITE_OK;
  auto refuse = [&](std::string why) {
    policy->refusal = std::move(why);
    return SQLITE_DENY;
  };
  switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return refuse(
          "ATTACH and DETACH are not allowed: every replica must "
          "see the same single database");
    case SQLITE_PRAGMA:
      for (const char* ok : kReadOnlyPragmas) {
        if (a1 != nullptr && absl::EqualsIgnoreCase(a1, ok)) {
          return SQLITE_OK;
        }
      }
      return refuse(absl::StrCat("PRAGMA ", a1 ? a1 : "",
                                 " is not allowed: it would change settings "
                                 "or the schema outside replication"));
    case SQLITE_READ:
      // Sessions' stored results, password hashes and the meta rows are
      // nobody's to read (nor to copy into a table of their own).
      if (IsInternalTable(a1)) {
        return refuse(absl::StrCat("table ", a1, " is internal to raftsql"));
      }
      return SQLITE_OK;
    case SQLITE_FUNCTION:
      if (a2 != nullptr && absl::EqualsIgnoreCase(a2, "load_extension")) {
        return refuse("load_extension() is not allowed");
      }
      return SQLITE_OK;
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return refuse(
          "transaction control is not allowed in statements: use "
          "the command's transaction flag");
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
      return refuse(
          "temporary objects are not allowed: they live in one "
          "connection and are not replicated");
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
      if (db != nullptr && std::strcmp(db, "main") != 0) {
        return refuse("only the main database can be written");
      }
      if (IsInternalTable(a1)) {
        return refuse(absl::StrCat("table ", a1, " is internal to raftsql"));
      }
      return SQLITE_OK;
    case SQLITE_CREATE_TABLE:
    case SQLITE_DROP_TABLE:
      if (IsInternalTable(a1)) {
        return refuse(absl::StrCat("table ", a1, " is internal to raftsql"));
      }
      if (policy->ddl_tables != nullptr) policy->ddl_tables->insert(a1);
      return SQLITE_OK;
    case SQLITE_ALTER_TABLE:
    case SQLITE_CREATE_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_DROP_TRIGGER:
      if (IsInternalTable(a2)) {
        return refuse(absl::StrCat("table ", a2, " is internal to raftsql"));
      }
      if (policy->ddl_tables != nullptr && a2 != nullptr) {
        policy->ddl_tables->insert(a2);
      }
      return SQLITE_OK;
    default:
      return SQLITE_OK;
  }
}

void PreUpdateCallback(void* ctx, sqlite3* db, int op, const char* db_name,
                       const char* table, sqlite3_int64 key1,
                       sqlite3_int64 key2) {
  static_cast<SqliteStateMachine*>(ctx)->OnPreUpdate(db, op, db_name, table,
                                                     key1, key2);
}

int ProgressCallback(void* ctx) {
  return static_cast<SqliteStateMachine*>(ctx)->OnProgress() ? 1 : 0;
}

// random() and randomblob(N) from the command's seed.
void RandomFn(sqlite3_context* ctx, int, sqlite3_value**) {
  auto* sm = static_cast<SqliteStateMachine*>(sqlite3_user_data(ctx));
  sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(sm->prng().Next()));
}

void RandomBlobFn(sqlite3_context* ctx, int, sqlite3_value** argv) {
  auto* sm = static_cast<SqliteStateMachine*>(sqlite3_user_data(ctx));
  sqlite3_int64 n = sqlite3_value_int64(argv[0]);
  if (n < 1) n = 1;
  if (n > 1 << 20) {
    sqlite3_result_error_toobig(ctx);
    return;
  }
  std::string blob(static_cast<size_t>(n), '\0');
  for (char& c : blob) c = static_cast<char>(sm->prng().Next());
  sqlite3_result_blob64(ctx, blob.data(), blob.size(), SQLITE_TRANSIENT);
}

absl::Status Configure(sqlite3* db, SqliteStateMachine::Policy* policy) {
  int on = 0;
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, &on);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, &on);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, &on);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_extended_result_codes(db, 1);
  if (sqlite3_set_authorizer(db, AuthorizerCallback, policy) != SQLITE_OK) {
    return absl::InternalError("cannot install the SQLite authorizer");
  }
  return absl::OkStatus();
}

absl::StatusOr<sqlite3*> OpenConnection(const std::string& path, int flags,
                                        const char* vfs) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs);
  if (rc != SQLITE_OK) {
    absl::Status s = SqliteError(db, rc);
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

}  // namespace

SqliteStateMachine::SqliteStateMachine(const SqliteOptions& options)
    : options_(options) {
  write_policy_.ddl_tables = &statement_ddl_tables_;
}

SqliteStateMachine::~SqliteStateMachine() {
  checkpointer_.reset();
  for (auto& [sql, stmt] : internal_stmts_) sqlite3_finalize(stmt);
  for (auto& [sql, stmt] : user_stmts_) sqlite3_finalize(stmt.stmt);
  for (auto& [sql, stmt] : check_stmts_) sqlite3_finalize(stmt);
  read_pool_.reset();
  sqlite3_close(db_);
  sqlite3_close(check_db_);
}

absl::StatusOr<std::unique_ptr<SqliteStateMachine>> SqliteStateMachine::Open(
    const SqliteOptions& options) {
  ConfigureSqliteProcess();
  std::unique_ptr<SqliteStateMachine> sm(new SqliteStateMachine(options));
  absl::Status s = sm->Init();
  if (!s.ok()) return s;
  return sm;
}

absl::Status SqliteStateMachine::Init() {
  // One connection for everything: in memory, or a file on a custom VFS
  // (the simulator's disk) driven by one thread.
  const bool memory = options_.path == ":memory:" || options_.vfs != nullptr;
  const int rw =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  absl::StatusOr<sqlite3*> db = OpenConnection(
      options_.path, rw,
      options_.vfs != nullptr ? options_.vfs : DeterministicVfsName());
  if (!db.ok()) return db.status();
  db_ = *db;
  absl::Status s = Configure(db_, &write_policy_);
  if (!s.ok()) return s;
  sqlite3_preupdate_hook(db_, PreUpdateCallback, this);
  sqlite3_progress_handler(db_, WriteBudget::kCheckEverySteps, ProgressCallback,
                           this);
  const int fn = SQLITE_UTF8;
  if (sqlite3_create_function(db_, "random", 0, fn, this, RandomFn, nullptr,
                              nullptr) != SQLITE_OK ||
      sqlite3_create_function(db_, "randomblob", 1, fn, this, RandomBlobFn,
                              nullptr, nullptr) != SQLITE_OK) {
    return SqliteError(db_, sqlite3_errcode(db_));
  }
  write_policy_.internal = true;
  if (options_.vfs != nullptr) {
    // As in production (WAL, synchronous=NORMAL: the last commits may be
    // lost, never consistency), with the WAL index in process memory
    // (exclusive locking: no shared-memory file). A crash of the simulated
    // disk then runs SQLite's own WAL recovery.
    s = Exec(
        "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; "
        "PRAGMA synchronous=NORMAL;");
    if (!s.ok()) return s;
  }
  if (!memory) {
    // WAL lets reads run beside the apply loop. synchronous=NORMAL may lose
    // the last transactions on power failure, never consistency: the applied
    // index rolls back with them and the log replays them.
    s = Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    if (!s.ok()) return s;
    if (options_.background_checkpoints) {
      db = OpenConnection(options_.path,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                          nullptr);
      if (!db.ok()) return db.status();
      checkpointer_ = std::make_unique<WalCheckpointer>(
          *db, options_.wal_checkpoint_frames);
      checkpointer_->Attach(db_);
    } else {
      sqlite3_wal_autocheckpoint(db_, options_.wal_checkpoint_frames);
    }
  }
  s = Exec(kMetaSchema);
  write_policy_.internal = false;
  if (!s.ok()) return s;
  if (!memory) {
    if (options_.read_connections < 1) {
      return absl::InvalidArgumentError("read_connections must be positive");
    }
    std::vector<sqlite3*> readers;
    for (int i = 0; i < options_.read_connections && s.ok(); ++i) {
      db = OpenConnection(options_.path,
                          SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
      if (!db.ok()) {
        s = db.status();
        break;
      }
      readers.push_back(*db);
      read_policies_.push_back(std::make_unique<Policy>());
      s = Configure(*db, read_policies_.back().get());
    }
    if (!s.ok()) {
      for (sqlite3* r : readers) sqlite3_close(r);
      return s;
    }
    read_pool_ = std::make_unique<ReadPool>(std::move(readers));
  }
  if (memory) {
    // One thread drives an in-memory machine (the simulator): validate on
    // the write connection itself, which holds the schema.
    check_db_ = nullptr;
  } else {
    db = OpenConnection(options_.path,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr);
    if (!db.ok()) return db.status();
    check_db_ = *db;
    s = Configure(check_db_, &check_policy_);
    if (!s.ok()) return s;
  }
  return LoadMeta();
}

absl::Status SqliteStateMachine::Exec(const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    absl::Status s = SqliteError(db_, rc);
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

sqlite3_stmt* SqliteStateMachine::InternalStmt(const char* sql) {
  sqlite3_stmt*& stmt = internal_stmts_[sql];
  if (stmt == nullptr) {
    write_policy_.internal = true;
    const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                      &stmt, nullptr);
    write_policy_.internal = false;
    CHECK(rc == SQLITE_OK);
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  return stmt;
}

absl::Status SqliteStateMachine::Internal(const char* sql) {
  sqlite3_stmt* stmt = InternalStmt(sql);
  write_policy_.internal = true;
  const int rc = sqlite3_step(stmt);
  write_policy_.internal = false;
  sqlite3_reset(stmt);
  if (rc != SQLITE_DONE) return SqliteError(db_, rc);
  return absl::OkStatus();
}

absl::StatusOr<SqliteStateMachine::UserStatement> SqliteStateMachine::UserStmt(
    std::string_view sql) {
  statement_ddl_tables_.clear();
  // Statements run one at a time, so a cached one is never in use twice.
  if (const UserStatement* cached = FindUserStmt(sql)) return *cached;
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  const int rc =
      sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, write_policy_.refusal);
  if (stmt == nullptr) return absl::InvalidArgumentError("empty statement");
  absl::Status single = CheckSingleStatement(tail, sql.data() + sql.size());
  if (!single.ok()) {
    sqlite3_finalize(stmt);
    return single;
  }
  return UserStatement{stmt, false, MentionsNoCase(sql, "fail"),
                       MentionsNoCase(sql, "trigger"),
                       sqlite3_bind_parameter_count(stmt)};
}

const SqliteStateMachine::UserStatement* SqliteStateMachine::FindUserStmt(
    std::string_view sql) const {
  if (last_found_ != nullptr && last_found_->first == sql) {
    return &last_found_->second;
  }
  auto it = user_stmts_.find(sql);
  if (it == user_stmts_.end()) return nullptr;
  last_found_ = &*it;
  return &it->second;
}

void SqliteStateMachine::ReleaseUserStmt(std::string_view sql,
                                         const UserStatement& stmt) {
  if (!statement_ddl_tables_.empty()) {
    // The schema changed: every cached statement would be re-prepared inside
    // its next step, and those steps would count towards that command's
    // write budget on this replica only (one that restarted since has no
    // such statement). Start the cache afresh, as a restarted replica does.
    if (!stmt.cached) sqlite3_finalize(stmt.stmt);
    for (auto& [text, old] : user_stmts_) sqlite3_finalize(old.stmt);
    last_found_ = nullptr;
    user_stmts_.clear();
    return;
  }
  // The bindings stay (they point into the entry's bytes, which may be gone
  // by then, and only a step reads them): the next run binds every
  // parameter or clears them first (RunStatement).
  sqlite3_reset(stmt.stmt);
  if (stmt.cached) return;
  if (user_stmts_.size() >= kMaxCachedStatements) {
    for (auto& [text, old] : user_stmts_) sqlite3_finalize(old.stmt);
    last_found_ = nullptr;
    user_stmts_.clear();
  }
  UserStatement entry = stmt;
  entry.cached = true;
  user_stmts_.emplace(std::string(sql), entry);
}

absl::Status SqliteStateMachine::MigrateVersions() {
  // Databases (and snapshots) written before the versions moved into
  // _raftsql_meta keep them in _raftsql_versions: move them over in one
  // transaction, then drop that table. Internal: past the authorizer.
  {
    Stmt exists;
    sqlite3_prepare_v2(db_,
                       "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND "
                       "name = '_raftsql_versions'",
                       -1, exists.out(), nullptr);
    if (sqlite3_step(exists.get()) != SQLITE_ROW) return absl::OkStatus();
  }
  write_policy_.internal = true;
  absl::Status s = Exec("BEGIN IMMEDIATE");
  if (s.ok()) s = CopyOldVersions();
  if (s.ok()) s = Exec("DROP TABLE _raftsql_versions");
  if (s.ok()) s = Exec("COMMIT");
  if (!s.ok()) Exec("ROLLBACK").IgnoreError();
  write_policy_.internal = false;
  return s;
}

absl::Status SqliteStateMachine::CopyOldVersions() {
  Stmt rows;
  Stmt insert;
  if (sqlite3_prepare_v2(db_, "SELECT name, version FROM _raftsql_versions", -1,
                         rows.out(), nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(
          db_, "INSERT OR REPLACE INTO _raftsql_meta(key, value) VALUES(?, ?)",
          -1, insert.out(), nullptr) != SQLITE_OK) {
    return SqliteError(db_, sqlite3_errcode(db_));
  }
  while (sqlite3_step(rows.get()) == SQLITE_ROW) {
    const auto* name =
        reinterpret_cast<const char*>(sqlite3_column_text(rows.get(), 0));
    const std::string key = VersionKey(name != nullptr ? name : "");
    sqlite3_bind_text(insert.get(), 1, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert.get(), 2, sqlite3_column_int64(rows.get(), 1));
    const int rc = sqlite3_step(insert.get());
    sqlite3_reset(insert.get());
    if (rc != SQLITE_DONE) return SqliteError(db_, rc);
  }
  return absl::OkStatus();
}

absl::Status SqliteStateMachine::MigrateSessions() {
  // Sessions of databases (and snapshots) written before they had owners
  // and times: add the columns (owner '' and time 0: the first sweep ends
  // them, as sessions idle since before the upgrade).
  Stmt cols;
  write_policy_.internal = true;
  sqlite3_prepare_v2(db_,
                     "SELECT 1 FROM pragma_table_info('_raftsql_sessions')"
                     " WHERE name = 'owner'",
                     -1, cols.out(), nullptr);
  const bool has_owner = sqlite3_step(cols.get()) == SQLITE_ROW;
  absl::Status s = absl::OkStatus();
  if (!has_owner) {
    s = Exec(
        "ALTER TABLE _raftsql_sessions ADD COLUMN owner TEXT NOT NULL "
        "DEFAULT ''; ALTER TABLE _raftsql_sessions ADD COLUMN last_used_ms "
        "INTEGER NOT NULL DEFAULT 0;");
  }
  write_policy_.internal = false;
  return s;
}

absl::Status SqliteStateMachine::LoadMeta() {
  absl::Status migrated = MigrateVersions();
  if (migrated.ok()) migrated = MigrateSessions();
  if (!migrated.ok()) return migrated;
  Stmt stmt;
  write_policy_.internal = true;  // Past the authorizer (it guards reads).
  const int rc = sqlite3_prepare_v2(db_, "SELECT key, value FROM _raftsql_meta",
                                    -1, stmt.out(), nullptr);
  write_policy_.internal = false;
  if (rc != SQLITE_OK) return SqliteError(db_, rc);
  applied_ = 0;
  hash_ = 0;
  session_sweep_period_ = 0;
  WriteLimits limits;  // The defaults, for settings never changed.
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    const std::string key =
        reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    const auto value =
        static_cast<uint64_t>(sqlite3_column_int64(stmt.get(), 1));
    if (key == "applied_index") applied_ = value;
    if (key == "divergence_hash") hash_ = value;
    if (key == "session_sweep_period") session_sweep_period_ = value;
    if (absl::StartsWith(key, kSettingPrefix)) {
      // A value out of range (written by another build) keeps the default.
      (void)ApplySetting(absl::string_view(key).substr(kSettingPrefix.size()),
                         value, &limits);
    }
  }
  SetWriteLimits(limits);
  RefreshHasTriggers();
  return LoadUsers();
}

absl::Status SqliteStateMachine::LoadUsers() {
  Stmt stmt;
  write_policy_.internal = true;
  const int rc = sqlite3_prepare_v2(
      db_, "SELECT name, hash, permissions FROM _raftsql_users", -1, stmt.out(),
      nullptr);
  write_policy_.internal = false;
  if (rc != SQLITE_OK) return SqliteError(db_, rc);
  std::map<std::string, User, std::less<>> users;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    User u;
    u.name = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    u.password_hash =
        reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 1));
    u.permissions = static_cast<uint32_t>(sqlite3_column_int64(stmt.get(), 2));
    users.emplace(u.name, std::move(u));
  }
  std::lock_guard<std::mutex> l(users_mu_);
  users_ = std::move(users);
  return absl::OkStatus();
}

std::optional<User> SqliteStateMachine::FindUser(absl::string_view name) const {
  std::lock_guard<std::mutex> l(users_mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return std::nullopt;
  return it->second;
}

std::vector<User> SqliteStateMachine::Users() const {
  std::lock_guard<std::mutex> l(users_mu_);
  std::vector<User> out;
  for (const auto& [name, u] : users_) out.push_back(u);
  return out;
}

void SqliteStateMachine::SetWriteLimits(const WriteLimits& limits) {
  budget_.set_limits(limits);
  sqlite3_limit(db_, SQLITE_LIMIT_LENGTH,
                static_cast<int>(limits.value_bytes_max));
}

void SqliteStateMachine::RefreshHasTriggers() {
  sqlite3_stmt* stmt =
      InternalStmt("SELECT 1 FROM sqlite_schema WHERE type = 'trigger'");
  write_policy_.internal = true;
  has_triggers_ = sqlite3_step(stmt) == SQLITE_ROW;
  write_policy_.internal = false;
  sqlite3_reset(stmt);
}

bool SqliteStateMachine::NeedsSavepoints(const CommandView& cmd) const {
  if (has_triggers_) return true;
  if (cmd.transaction && cmd.statements.size() > 1) return true;
  for (const StatementView& st : cmd.statements) {
    // Conservative: any mention of FAIL (OR FAIL, RAISE(FAIL)); known from
    // the cache for a text seen before.
    const UserStatement* cached = FindUserStmt(st.sql);
    if (cached != nullptr ? cached->mentions_fail
                          : MentionsNoCase(st.sql, "fail")) {
      return true;
    }
  }
  return false;
}

}  // namespace raftsql::sm
