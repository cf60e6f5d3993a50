#include "sm/sqlite_state_machine.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "obs/log.h"
#include "sm/anomaly_functions.h"
#include "sm/deterministic_vfs.h"
#include "sm/file_deleter.h"
#include "sm/file_swap.h"
#include "sm/sqlite_util.h"
#include "sm/vacuum.h"
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
    "  last_used_ms INTEGER NOT NULL DEFAULT 0,"
    "  last_used_index INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS _raftsql_users("
    "  name TEXT PRIMARY KEY, hash TEXT NOT NULL,"
    "  permissions INTEGER NOT NULL) WITHOUT ROWID;";

void PreUpdateCallback(void* ctx, sqlite3* db, int op, const char* db_name,
                       const char* table, sqlite3_int64 key1,
                       sqlite3_int64 key2) {
  static_cast<SqliteStateMachine*>(ctx)->OnPreUpdate(db, op, db_name, table,
                                                     key1, key2);
}

int ProgressCallback(void* ctx) {
  return static_cast<SqliteStateMachine*>(ctx)->OnProgress() ? 1 : 0;
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
    : options_(options),
      checkpoints_(
          std::max<uint64_t>(options.divergence_checkpoint_entries, 1)) {
  write_policy_.RecordSchemaChanges(&statement_ddl_tables_);
  write_policy_.set_replicated(true);
  check_policy_.set_replicated(true);
}

SqliteStateMachine::~SqliteStateMachine() {
  syncer_.reset();  // Its thread reads the change log.
  // A swap's files part finishes; the next open completes the rest.
  if (swap_in_flight_ != nullptr) swap_in_flight_->thread.join();
  vacuum_.reset();
  sink_.reset();
  images_.reset();
  checkpointer_.reset();
  validator_.reset();
  swap_.reset();
  deleter_.reset();  // After everything that deletes through it.
  sessions_.reset();
  versions_.reset();
  statements_.reset();
  internal_.reset();
  read_pool_.reset();
  sqlite3_close(db_);
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
  // Where an open's time goes (a restart at 4.7 GB spent 1.3 s here).
  auto lap = std::chrono::steady_clock::now();
  auto took = [&lap] {
    const long long ms = MillisecondsSince(lap);
    lap = std::chrono::steady_clock::now();
    return ms;
  };
  if (!single_connection()) {
    deleter_ = std::make_unique<FileDeleter>();
    // Files a crash left on their way to the deleter.
    deleter_->DeleteBeside(options_.path, FileDeleter::IsTrash);
    Vacuum::Sweep(options_.path, deleter_.get());
  }
  if (options_.path != ":memory:") {
    swap_ = std::make_unique<FileSwap>(options_.path, options_.vfs,
                                       options_.rename_file);
    // A swap a crash interrupted completes before the database opens.
    absl::Status s = swap_->Finish();
    if (!s.ok()) return s;
  }
  const long long files_ms = took();
  absl::Status s = OpenWriter();
  if (!s.ok()) return s;
  const long long writer_ms = took();
  if (options_.vfs != nullptr) {
    images_ = ImageSource::ForConnection(db_);  // A file on the sim's disk.
  } else if (!single_connection()) {
    images_ = ImageSource::ForFile(options_.path, deleter_.get(),
                                   ImageSource::Framing::kWithTrailer);
  }
  if (options_.path != ":memory:") {
    sink_ = std::make_unique<ImageSink>(options_.path, options_.vfs,
                                        deleter_.get());
  }
  s = OpenReaders();
  if (!s.ok()) return s;
  const long long readers_ms = took();
  s = LoadMeta();
  if (!s.ok()) return s;
  const long long meta_ms = took();
  if (!single_connection() && !options_.vacuum_copy &&
      options_.change_log_bytes > 0) {
    ChangeLogOptions o;
    o.max_bytes = options_.change_log_bytes;
    o.segment_bytes =
        std::min(o.segment_bytes, std::max<uint64_t>(o.max_bytes / 4, 1 << 16));
    absl::StatusOr<std::unique_ptr<ChangeLog>> log =
        ChangeLog::Open(options_.path + ".changes", applied_, o);
    if (!log.ok()) return log.status();
    changes_ = std::move(*log);
  }
  const long long changes_ms = took();
  if (options_.path != ":memory:" && !options_.vacuum_copy) {
    // What the database holds now may be in the page cache only (a
    // process that crashed): durable before the node compacts below it.
    // (The change log's segments are synced by the first sync asked for,
    // off the loop: up to change_log_bytes of them.)
    s = SyncDatabase();
    if (!s.ok()) return s;
    const bool threaded = !single_connection();
    syncer_ = std::make_unique<StateSyncer>(
        applied_,
        [this, threaded](bool after_swap) {
          return threaded ? SyncFilesByName(after_swap) : SyncNow();
        },
        threaded);
  }
  if (!single_connection() && !options_.vacuum_copy) {
    obs::Log(
        obs::Level::kInfo, "open",
        absl::StrFormat("database at %llu opened: files %lld ms, writer "
                        "%lld ms, readers %lld ms, meta %lld ms, change "
                        "log %lld ms, sync %lld ms",
                        static_cast<unsigned long long>(applied_), files_ms,
                        writer_ms, readers_ms, meta_ms, changes_ms, took()));
  }
  return absl::OkStatus();
}

bool SqliteStateMachine::single_connection() const {
  // In memory, or a file on a custom VFS (the simulator's disk) driven by
  // one thread.
  return options_.path == ":memory:" || options_.vfs != nullptr;
}

absl::Status SqliteStateMachine::OpenWriter() {
  const int rw =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  absl::StatusOr<sqlite3*> db = OpenConnection(
      options_.path, rw,
      options_.vfs != nullptr ? options_.vfs : DeterministicVfsName());
  if (!db.ok()) return db.status();
  db_ = *db;
  absl::Status s = write_policy_.Install(db_);
  if (!s.ok()) return s;
  internal_ = std::make_unique<InternalStatements>(db_, &write_policy_);
  statements_ = std::make_unique<StatementCache>(db_, &write_policy_);
  sessions_ = std::make_unique<Sessions>(internal_.get());
  versions_ = std::make_unique<TableVersions>(internal_.get());
  sqlite3_preupdate_hook(db_, PreUpdateCallback, this);
  sqlite3_progress_handler(db_, WriteBudget::kCheckEverySteps, ProgressCallback,
                           this);
  s = context_.Install(db_);
  if (s.ok()) s = InstallAnomalyFunctions(db_);
  if (!s.ok()) return s;
  // With incremental_vacuum a new database returns free pages to the file
  // system (ReclaimFreePages): only one without pages yet can choose, before
  // WAL writes its first page; a database keeps the mode it was created
  // with (for an older one the pragma changes nothing).
  const char* vacuum = options_.incremental_vacuum
                           ? "PRAGMA auto_vacuum = INCREMENTAL"
                           : "SELECT 1";
  if (options_.vfs == nullptr) {
    s = internal_->Exec(vacuum);
    if (!s.ok()) return s;
  }
  if (options_.vfs != nullptr) {
    // As in production (WAL, synchronous=NORMAL: the last commits may be
    // lost, never consistency), with the WAL index in process memory
    // (exclusive locking: no shared-memory file). A crash of the simulated
    // disk then runs SQLite's own WAL recovery.
    s = internal_->Exec("PRAGMA locking_mode=EXCLUSIVE;");
    if (s.ok()) s = internal_->Exec(vacuum);
    if (s.ok()) {
      s = internal_->Exec(
          "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    }
    if (!s.ok()) return s;
  }
  if (!single_connection()) {
    // WAL lets reads run beside the apply loop. synchronous=NORMAL may lose
    // the last transactions on power failure, never consistency: the applied
    // index rolls back with them and the log replays them.
    s = internal_->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
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
  return internal_->Exec(kMetaSchema);
}

void SqliteStateMachine::CloseWriter() {
  checkpointer_.reset();
  sessions_.reset();
  versions_.reset();
  statements_.reset();
  internal_.reset();
  // The file is about to be replaced: its WAL is deleted, not copied in.
  int off = 0;
  sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &off);
  CHECK_EQ(sqlite3_close(db_), SQLITE_OK);  // Every statement finalized.
  db_ = nullptr;
}

void SqliteStateMachine::ReclaimFreePages() {
  // Between transactions, a bounded number of pages per batch: never time
  // proportional to the database on the apply loop. Only pages move (rowids
  // stay), so replicas need not do this alike.
  if (!incremental_vacuum_) return;
  sqlite3_stmt* free = internal_->Get("PRAGMA freelist_count");
  int64_t pages = 0;
  {
    StatementPolicy::InternalScope scope(write_policy_);
    if (sqlite3_step(free) == SQLITE_ROW) pages = sqlite3_column_int64(free, 0);
  }
  sqlite3_reset(free);
  if (pages < kReclaimMinFreePages) return;
  CHECK(internal_->Exec(kReclaimSql).ok());
}

absl::Status SqliteStateMachine::OpenReaders() {
  if (single_connection()) {
    // One thread drives it all (the simulator): validate on the write
    // connection itself, which holds the schema.
    std::lock_guard<std::mutex> l(validator_mu_);
    validator_ =
        std::make_unique<StatementValidator>(db_, &write_policy_, false);
    return absl::OkStatus();
  }
  if (options_.read_connections < 1) {
    return absl::InvalidArgumentError("read_connections must be positive");
  }
  absl::Status s = absl::OkStatus();
  std::vector<ReadPool::Connection> readers;
  for (int i = 0; i < options_.read_connections && s.ok(); ++i) {
    absl::StatusOr<sqlite3*> db = OpenConnection(
        options_.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    if (!db.ok()) {
      s = db.status();
      break;
    }
    // A retired reader closes after a file swap: never a checkpoint then.
    int off = 0;
    sqlite3_db_config(*db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &off);
    ReadPool::Connection c{*db, std::make_unique<StatementPolicy>()};
    s = c.policy->Install(*db);
    if (s.ok()) s = InstallReadRandomness(*db);
    if (s.ok()) s = InstallAnomalyFunctions(*db);
    readers.push_back(std::move(c));
  }
  if (!s.ok()) {
    for (ReadPool::Connection& r : readers) sqlite3_close(r.db);
    return s;
  }
  if (read_pool_ == nullptr) {
    read_pool_ = std::make_unique<ReadPool>(std::move(readers));
  } else {
    read_pool_->Refill(std::move(readers));
  }
  absl::StatusOr<sqlite3*> db = OpenConnection(
      options_.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (!db.ok()) return db.status();
  std::lock_guard<std::mutex> l(validator_mu_);
  validator_ = std::make_unique<StatementValidator>(*db, &check_policy_, true);
  absl::Status installed = InstallAnomalyFunctions(*db);
  return installed.ok() ? check_policy_.Install(*db) : installed;
}

absl::StatusOr<std::unique_ptr<ImageSource>> SqliteStateMachine::BeginBackup() {
  if (images_ == nullptr || options_.vfs != nullptr) {
    return absl::FailedPreconditionError("backups are made of a database file");
  }
  if (ApplyPaused()) {
    return absl::UnavailableError(
        "the database file is being swapped (a vacuum): try again");
  }
  std::unique_ptr<ImageSource> source = ImageSource::ForFile(
      options_.path, deleter_.get(), ImageSource::Framing::kRaw);
  core::SnapshotMetadata at;
  at.index = applied_;
  source->Request(at);
  return source;
}

absl::Status SqliteStateMachine::Validate(const Command& command) {
  std::lock_guard<std::mutex> l(validator_mu_);
  if (validator_ == nullptr) {
    return absl::UnavailableError(
        "this replica is swapping in a new database file (a snapshot from "
        "its leader, or a vacuum); nothing was written, try again");
  }
  return validator_->Validate(command);
}

void SqliteStateMachine::CheckInvariants() {
  if (vacuum_ != nullptr) CHECK(vacuuming_.load());
  if (swap_in_flight_ != nullptr) {
    CHECK(db_ == nullptr);
    if (swap_in_flight_->vacuum != nullptr) CHECK(vacuuming_.load());
    return;  // The meta is not readable until the reopen.
  }
  CHECK(db_ != nullptr && internal_ != nullptr);
  capture_.CheckInvariants();
  if (changes_ != nullptr) {
    changes_->CheckInvariants();
    CHECK_EQ(changes_->covered(), applied_);
  }
  write_policy_.CheckInvariants();
  check_policy_.CheckInvariants();
  statements_->CheckInvariants();
  versions_->CheckInvariants();
  checkpoints_.CheckInvariants();
  if (read_pool_ != nullptr) read_pool_->CheckInvariants();
  Stmt stmt;
  StatementPolicy::InternalScope scope(write_policy_);
  CHECK_EQ(sqlite3_prepare_v2(db_, "SELECT key, value FROM _raftsql_meta", -1,
                              stmt.out(), nullptr),
           SQLITE_OK);
  uint64_t applied = 0, hash = 0, sweep = 0;
  WriteSettings limits;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    const std::string key =
        reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    const auto value =
        static_cast<uint64_t>(sqlite3_column_int64(stmt.get(), 1));
    if (key == "applied_index") applied = value;
    if (key == "divergence_hash") hash = value;
    if (key == "session_sweep_period") sweep = value;
    if (absl::StartsWith(key, kSettingPrefix)) {
      (void)ApplySetting(absl::string_view(key).substr(kSettingPrefix.size()),
                         value, &limits);
    }
  }
  CHECK_EQ(applied, applied_);
  CHECK_EQ(hash, hash_);
  CHECK_EQ(sweep, sessions_->sweep_period());
  CHECK(limits == budget_.limits());
}

absl::Status SqliteStateMachine::LoadMeta() {
  absl::Status migrated = versions_->Migrate();
  if (migrated.ok()) migrated = sessions_->Migrate();
  if (!migrated.ok()) return migrated;
  Stmt stmt;
  StatementPolicy::InternalScope scope(write_policy_);
  const int rc = sqlite3_prepare_v2(db_, "SELECT key, value FROM _raftsql_meta",
                                    -1, stmt.out(), nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc);
  applied_ = 0;
  hash_ = 0;
  sessions_->set_sweep_period(0);
  WriteSettings limits;  // The defaults, for settings never changed.
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    const std::string key =
        reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    const auto value =
        static_cast<uint64_t>(sqlite3_column_int64(stmt.get(), 1));
    if (key == "applied_index") applied_ = value;
    if (key == "divergence_hash") hash_ = value;
    if (key == "session_sweep_period") sessions_->set_sweep_period(value);
    if (absl::StartsWith(key, kSettingPrefix)) {
      // A value out of range (written by another build) keeps the default.
      (void)ApplySetting(absl::string_view(key).substr(kSettingPrefix.size()),
                         value, &limits);
    }
  }
  SetWriteSettings(limits);
  PublishVisible();
  {
    // The mode of this database (a restored image brings its own).
    sqlite3_stmt* mode = internal_->Get("PRAGMA auto_vacuum");
    StatementPolicy::InternalScope scope(write_policy_);
    constexpr int64_t kIncremental = 2;
    incremental_vacuum_ = sqlite3_step(mode) == SQLITE_ROW &&
                          sqlite3_column_int64(mode, 0) == kIncremental;
    sqlite3_reset(mode);
  }
  switches_.reset();
  ApplyConnectionSwitches();
  RefreshHasTriggers();
  return LoadUsers();
}

absl::Status SqliteStateMachine::LoadUsers() {
  Stmt stmt;
  StatementPolicy::InternalScope scope(write_policy_);
  const int rc = sqlite3_prepare_v2(
      db_, "SELECT name, hash, permissions FROM _raftsql_users", -1, stmt.out(),
      nullptr);
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

void SqliteStateMachine::MarkDiverged(const std::string& why) {
  std::lock_guard<std::mutex> l(diverged_mu_);
  if (diverged_.empty()) {
    obs::Log(obs::Level::kError, "divergence",
             absl::StrFormat("state machine: DIVERGED: %s; reads refused",
                             why.c_str()));
  }
  diverged_ = why;
}

std::string SqliteStateMachine::divergence() const {
  std::lock_guard<std::mutex> l(diverged_mu_);
  return diverged_;
}

absl::Status SqliteStateMachine::ReadRefusal() const {
  std::lock_guard<std::mutex> l(diverged_mu_);
  if (diverged_.empty()) return absl::OkStatus();
  return absl::UnavailableError(TruncatedMessage(absl::StrCat(
      "this replica's data differs from the cluster's (", diverged_,
      "): it serves no reads until it is resynced; read from another node")));
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

void SqliteStateMachine::SetWriteSettings(const WriteSettings& limits) {
  budget_.set_limits(limits);
  sqlite3_limit(db_, SQLITE_LIMIT_LENGTH,
                static_cast<int>(limits.value_bytes_max));
}

void SqliteStateMachine::RefreshHasTriggers() {
  sqlite3_stmt* stmt =
      internal_->Get("SELECT 1 FROM sqlite_schema WHERE type = 'trigger'");
  {
    StatementPolicy::InternalScope scope(write_policy_);
    has_triggers_ = sqlite3_step(stmt) == SQLITE_ROW;
  }
  sqlite3_reset(stmt);
}

bool SqliteStateMachine::NeedsSavepoints(const CommandView& cmd) const {
  if (has_triggers_) return true;
  if (cmd.transaction && cmd.statements.size() > 1) return true;
  for (const StatementView& st : cmd.statements) {
    // Conservative: any mention of FAIL (OR FAIL, RAISE(FAIL)); known from
    // the cache for a text seen before.
    const StatementCache::Prepared* cached = statements_->Find(st.sql);
    if (cached != nullptr ? cached->mentions_fail
                          : MentionsNoCase(st.sql, "fail")) {
      return true;
    }
  }
  return false;
}

}  // namespace raftsql::sm
