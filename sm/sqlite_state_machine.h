// SqliteStateMachine: applies committed SQL commands to a SQLite database
// (DESIGN.md §3).
//
// - Deterministic: random(), randomblob() and the clock come from the
//   command's leader-fixed seed and timestamp; statements that cannot be
//   deterministic or safe are refused (see Validate).
// - Exactly once: the applied index, per-table versions, client sessions and
//   the divergence hash live in meta tables written in the same SQLite
//   transaction as the command's effects, so a crash between apply and ack
//   never applies a command twice.
// - Entries are applied in batches: one transaction, a savepoint per entry.
//
// This class is the core::StateMachine adaptor and the apply loop; each other
// job is a part of its own: the authorizer (statement_policy.h), validation
// before the log (statement_validator.h), prepared statements
// (statement_cache.h, internal_statements.h), sessions (sessions.h), table
// versions (table_versions.h), the divergence hash (change_hasher.h),
// snapshot images (snapshot_image.h), the read connections (read_pool.h).
//
// Thread-safety: Apply/ApplyBatch/Restore/CreateSnapshot run on one thread
// (the Raft loop). Query, GetVersion and Validate may run on other threads:
// they use their own connections, each behind its own mutex.
#ifndef RAFTSQL_SM_SQLITE_STATE_MACHINE_H_
#define RAFTSQL_SM_SQLITE_STATE_MACHINE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/interfaces.h"
#include "sm/change_capture.h"
#include "sm/change_hasher.h"
#include "sm/change_log.h"
#include "sm/command.h"
#include "sm/command_context.h"
#include "sm/divergence.h"
#include "sm/file_deleter.h"
#include "sm/file_swap.h"
#include "sm/image_sink.h"
#include "sm/image_source.h"
#include "sm/internal_statements.h"
#include "sm/read_pool.h"
#include "sm/sessions.h"
#include "sm/state_syncer.h"
#include "sm/statement_cache.h"
#include "sm/statement_policy.h"
#include "sm/statement_validator.h"
#include "sm/table_versions.h"
#include "sm/users.h"
#include "sm/write_budget.h"

struct sqlite3;
struct sqlite3_stmt;

namespace raftsql::sm {

class SnapshotImage;
class Vacuum;

class WalCheckpointer;

struct SqliteOptions {
  // A file (created if missing), or ":memory:" (the simulator). A file gets
  // a separate read connection (WAL); memory uses one connection.
  std::string path = ":memory:";
  // Bound on rows one Query returns.
  size_t max_query_rows = 100'000;
  // Files: read connections, so that this many reads run at once (a slow
  // one holds one of them). Memory databases have one connection.
  int read_connections = 4;
  // A registered VFS for a file database used by one thread through one
  // connection (the simulator's disk); it must provide the deterministic
  // clock. Null: the platform's files (with WAL and separate readers).
  const char* vfs = nullptr;
  // Platform files: a thread checkpoints the WAL once it holds this many
  // frames (pages); the writer copies the rest itself (see
  // wal_checkpointer.h: SQLite starts the WAL over only once all is
  // copied). SQLite's default; with 4,000 the slowest insert of a 3-node
  // load on one disk took 120 ms, with 1,000 40 ms (a checkpoint's fsync
  // shares the disk with the Raft log's).
  int wal_checkpoint_frames = 1000;
  // False: the writer checkpoints inline at wal_checkpoint_frames, as SQLite
  // does by default (no thread; sm_benchmark's like-for-like comparison).
  bool background_checkpoints = true;
  // Replicas compare their divergence hash at indexes that are multiples
  // of this (sm/divergence.h).
  uint64_t divergence_checkpoint_entries = 1000;
  // A new database returns free pages to the file system, a bounded number
  // per batch (auto_vacuum = INCREMENTAL): its file shrinks after deletes,
  // but every write keeps SQLite's pointer-map pages, which costs apply
  // throughput (figures in the README). Off: free pages are reused.
  // Only pages move, never rowids, so replicas may choose differently.
  bool incremental_vacuum = false;
  // The copy a vacuum brings up to date (vacuum.h): VACUUM entries do
  // nothing in it, and a failure of its disk marks it failed (see
  // copy_failure) instead of stopping the process.
  bool vacuum_copy = false;
  // Bytes per second a vacuum's copy (VACUUM INTO) writes at most, so that
  // the disk keeps room for the log's and the database's writes (0: no
  // limit).
  uint64_t vacuum_bytes_per_second = 0;
  // How a received image's file is renamed into place (file_swap.h); null:
  // the platform's rename. The simulator's disk brings its own.
  RenameFile rename_file;
  // Platform files: the committed row changes Watch serves are kept in
  // `<path>.changes/` (change_log.h), at most this many bytes (0: none
  // kept, and Watch is unavailable).
  uint64_t change_log_bytes = uint64_t{256} << 20;
};

// Process-wide SQLite settings, applied once before SQLite initializes:
// memory statistics off (with them on, every malloc and free inside SQLite
// takes a global mutex; they were 4% of a 1-row apply). Open calls it; a
// process that also uses SQLite directly calls it before its first sqlite3
// call, or the settings may come too late (SQLite then keeps its defaults).
void ConfigureSqliteProcess();

class SqliteStateMachine final : public core::StateMachine {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteStateMachine>> Open(
      const SqliteOptions& options);
  ~SqliteStateMachine() override;

  // Checks a command before it is proposed. PermissionDenied for a refused
  // statement (ATTACH, load_extension, dangerous PRAGMAs, temp objects,
  // transaction control, writes to internal tables), InvalidArgument for SQL
  // that does not parse. Names unknown now may exist when the command
  // applies, so they are left to Apply.
  absl::Status Validate(const Command& command);

  // Each result is CommandResult::Encode() for a command entry, "" otherwise.
  std::string Apply(const core::Entry& entry) override;
  using core::StateMachine::ApplyBatch;
  void ApplyBatch(const std::vector<core::Entry>& entries,
                  std::vector<std::string>* results) override;
  absl::Status Restore(const core::Snapshot& snapshot) override;
  // The image is a sound SQLite database (quick_check) that holds the state
  // at the snapshot's index; DATA_LOSS otherwise.
  absl::Status ValidateSnapshot(const core::Snapshot& snapshot) const override;
  uint64_t AppliedIndex() const override { return applied_; }
  // Thread-safe: a lower bound on the applied index of the state any read
  // that starts after this call sees (set after each commit, and when a
  // database is opened; a swapped-in database only moves it forward).
  uint64_t visible_index() const {
    return visible_.load(std::memory_order_acquire);
  }
  absl::StatusOr<std::string> SnapshotData() override {
    return CreateSnapshot();
  }
  // A file database is durable: images for followers come from its file
  // (image_source.h), and the log is compacted after Sync() with no copy.
  // Null for a memory database.
  core::SnapshotSource* snapshot_source() override { return images_.get(); }
  // ... and images from a leader are received into a file beside it
  // (image_sink.h), then restored from there.
  core::SnapshotSink* snapshot_sink() override { return sink_.get(); }
  ImageSink* image_sink() { return sink_.get(); }
  ImageSource* image_source() { return images_.get(); }
  // A backup: an image of the database as applied now, held by a read
  // transaction of its own (writes go on; the WAL is not restarted past
  // it until the source goes), read chunk by chunk with ImageSource::Read
  // by one thread at a time once ImageSource::Wait returned. Call on the
  // apply thread. FAILED_PRECONDITION for a memory or simulated database.
  absl::StatusOr<std::unique_ptr<ImageSource>> BeginBackup();
  // Syncs the WAL: every committed batch survives a crash. (Checkpoints
  // sync the database file before the WAL is reused.)
  absl::Status Sync() override;
  // The same without waiting (state_syncer.h): platform files sync on a
  // thread, the simulator's disk at the next tick.
  void RequestSync() override;
  absl::StatusOr<uint64_t> DurableIndex() override;
  // While a vacuum's file swap runs on its thread (renames, directory
  // syncs: up to a second on a busy disk): the node keeps the entries and
  // the loop goes on. Apply, Restore and Sync wait for the swap; reads and
  // Validate answer UNAVAILABLE meanwhile.
  bool ApplyPaused() const override { return swap_in_flight_ != nullptr; }
  // Waits for a swap's files and reopens (what OnTick does once they are
  // done): tests.
  void FinishSwapForTest() { CompleteSwap(/*wait=*/true); }

  // A consistent image of the database (including its applied index).
  absl::StatusOr<std::string> CreateSnapshot();
  // Runs a read-only statement on a read connection (thread-safe; files
  // have read_connections of them). InvalidArgument for a statement that
  // writes; ResourceExhausted beyond max_query_rows or the limits' result
  // bytes; DEADLINE_EXCEEDED or CANCELLED when interrupted by the limits
  // (also while it waits for a free connection).
  absl::StatusOr<QueryResult> Query(const Statement& statement,
                                    const ReadLimits& limits = {});
  // Whether reads run on connections of their own (files), so that one
  // bounded by max_steps may run on any thread without waiting.
  bool has_read_connections() const { return read_pool_ != nullptr; }
  // Clients' statements kept by the idle read connections.
  size_t kept_read_statements() const {
    return read_pool_ != nullptr ? read_pool_->kept_statements() : 0;
  }
  // Query's result in pages of at most `page_bytes` each (values and names
  // as ValueBytes counts them), handed to `emit` as they fill, while the
  // read holds its connection: any size, in bounded memory. The first page
  // carries the columns; an empty result is one page without rows. An
  // error from `emit` (the client went away) ends the read with it;
  // RESOURCE_EXHAUSTED if one row alone exceeds a page.
  using PageSink = std::function<absl::Status(QueryResult page)>;
  absl::Status QueryPages(const Statement& statement, const ReadLimits& limits,
                          size_t page_bytes, const PageSink& emit);
  // The log index of the last committed entry that changed `table` (0 if
  // never written); NotFound if there is no such table.
  absl::StatusOr<uint64_t> GetVersion(const std::string& table,
                                      const ReadLimits& limits = {});
  // The last sequence applied for a client session (0 if none).
  absl::StatusOr<uint64_t> SessionSequence(uint64_t session_id);
  // Running hash over every change applied: equal on replicas that agree.
  uint64_t divergence_hash() const { return hash_; }
  // The divergence hash at recent checkpoints (thread-safe).
  std::vector<Checkpoint> Checkpoints() const {
    return checkpoints_.Checkpoints();
  }
  // This replica's state differs from the cluster's (`why`): from now on
  // reads are refused (UNAVAILABLE, so that clients read elsewhere) until
  // it is resynced. Thread-safe.
  void MarkDiverged(const std::string& why);
  // Why reads are refused ("" while they are not). Thread-safe.
  std::string divergence() const;
  // The database bytes (tests compare replicas with it).
  std::string SerializeForTest();
  // The committed row changes (Watch); null without one (memory, the
  // simulator's disk, change_log_bytes 0). Cursors may read it on any
  // thread.
  ChangeLog* change_log() const { return changes_.get(); }
  // Between batches, on the apply thread: what is kept in memory mirrors
  // _raftsql_meta (applied index, divergence hash, session sweep, write
  // settings); connections are closed exactly while a swap runs; a vacuum
  // in progress shows as vacuuming(); and every part's own invariants.
  // Reads the meta table: tests.
  void CheckInvariants();

  // Called by SQLite's preupdate hook (public for the C callback only).
  void OnPreUpdate(sqlite3* db, int op, const char* db_name, const char* table,
                   int64_t key1, int64_t key2);
  // The stored user `name` (thread-safe; as this replica has applied).
  std::optional<User> FindUser(absl::string_view name) const;
  std::vector<User> Users() const;

  // Called by SQLite's progress handler (public for the C callback only):
  // true interrupts the running statement (the write budget is spent).
  bool OnProgress();
  // The cluster's write limits as this replica last applied them.
  const WriteSettings& write_settings() const { return budget_.limits(); }

  // VACUUM: this replica's file is rebuilt after the entry applies (files
  // in the background, vacuum.h; memory and the simulator's disk at once).
  // How many rebuilds completed, and whether one runs (thread-safe).
  uint64_t vacuums_done() const { return vacuums_done_.load(); }
  bool vacuuming() const { return vacuuming_.load(); }
  // A vacuum's copy: why its disk failed it ("" while it did not).
  const std::string& copy_failure() const { return copy_failure_; }
  // Finishes a background vacuum once its copy caught up.
  void OnTick() override;
  // The swap pauses this replica's apply (ApplyPaused), so a leader's
  // answers wait for it: while held, a caught-up vacuum keeps its copy up
  // to date and waits. A server run with --vacuum_handoff holds it on a
  // leader until leadership has moved (loop thread).
  void HoldVacuumSwap(bool hold) { hold_vacuum_swap_ = hold; }
  // A vacuum has caught up and waits for the hold to end (loop thread).
  bool VacuumWaitsToSwap() const;
  // Waits (at most `bound`) until a running vacuum's copy has caught up;
  // false if it did not (tests).
  bool WaitForVacuumCopyForTest(std::chrono::milliseconds bound);

 private:
  // Restore from the received image a snapshot refers to (its file
  // becomes ours: SwapIn), or from `image` (a copy).
  absl::Status RestoreReceived(uint64_t index, uint64_t referenced);
  // `from` (complete, holding the state at `index`) becomes the database;
  // what each part of it took goes into last_swap_.
  absl::Status SwapIn(uint64_t index, const std::string& from);
  // SwapIn's parts: every connection closed (loop); the files (any
  // thread); the connections opened again and the index checked (loop).
  void CloseForSwap();
  absl::Status SwapFiles(const std::string& from);
  absl::Status ReopenAfterSwap(uint64_t index, const std::string& from);
  // Ends a vacuum's swap whose files part is done (`wait`: waits for it):
  // reopens, reports, and resumes applying. A failure stops the process,
  // as a failed swap on the loop did.
  void CompleteSwap(bool wait);
  // CompleteSwap's end for a received image's swap.
  void CompleteRestore(long long paused_ms);
  struct SwapInFlight;
  // Reopens after `swap`'s files part; a failure (its renames', or the
  // reopen's) stops the process: `what` did not swap in.
  void ReopenOrStop(const SwapInFlight& swap, const char* what);
  absl::Status RestoreFrom(SnapshotImage& image, uint64_t index);
  explicit SqliteStateMachine(const SqliteOptions& options);
  absl::Status Init();
  // One connection does everything (memory, or the simulator's disk).
  bool single_connection() const;
  // The write connection and what lives on it; CloseWriter ends them all.
  absl::Status OpenWriter();
  void CloseWriter();
  // The read connections and the validator's (or the validator on db_).
  absl::Status OpenReaders();
  // A new database returns free pages to the file system (auto_vacuum =
  // INCREMENTAL, set in Init): this does it, a bounded number at a time,
  // once kReclaimMinFreePages pages are free.
  void ReclaimFreePages();
  static constexpr int64_t kReclaimMinFreePages = 256;
  bool incremental_vacuum_ = false;  // The database's auto_vacuum mode.
  static constexpr const char* kReclaimSql = "PRAGMA incremental_vacuum(256)";
  absl::Status LoadMeta();
  // Applies `entries` in transactions of a batch each (a setting change
  // ends one), or, should a statement end SQLite's transaction, the rest
  // each in its own (see the .cc).
  void ApplyInTransactionOrAlone(std::span<const core::Entry> entries,
                                 std::string* out);
  // Applies `entries` one transaction each.
  void ApplyAlone(std::span<const core::Entry> entries, std::string* out);
  // Applies a prefix of `entries` in one transaction, their results into
  // out[0..]: up to a setting change or the end. How many it applied (0 if
  // the transaction was lost: nothing is committed then).
  size_t ApplyInTransaction(std::span<const core::Entry> entries,
                            std::string* out);
  // Sets SQLite's switches (foreign keys, ...) on the write connection as
  // the settings say, if they changed; between transactions only.
  void ApplyConnectionSwitches();
  void ApplyEntry(const core::Entry& entry, std::string* out);
  // A SettingChange entry: validated, stored in _raftsql_meta, in force
  // from the next entry on.
  void ApplySettingChange(const absl::StatusOr<SettingChange>& change,
                          uint64_t index, std::string* out);
  // The result of an entry whose transaction was lost (its effects are
  // gone): a spent budget fails every statement with its error, a
  // statement that ended the transaction keeps lost_result_. A session
  // stores it, so that a retry gets the same answer.
  void RecordLostEntry(const core::Entry& entry, std::string* out);
  // The statement `failed` ended SQLite's transaction while `cmd` applied at
  // `index`: completes `*result` (every statement failed or not run) and
  // keeps it in lost_result_.
  void KeepLostResult(const CommandView& cmd, uint64_t index,
                      StatementResult failed, CommandResult* result);
  // result_, emptied for the entry at `index`.
  CommandResult& ResetResult(uint64_t index);
  void SetWriteSettings(const WriteSettings& limits);
  // A UserChange entry: validated, written to _raftsql_users and the
  // in-memory copy.
  void ApplyUserChange(const absl::StatusOr<UserChange>& change, uint64_t index,
                       std::string* out);
  absl::Status LoadUsers();
  // A client's read on a connection whose kept statements are `statements`.
  absl::Status RunQuery(StatementCache& statements, StatementPolicy& policy,
                        const Statement& statement,
                        const std::function<absl::Status()>& interruption,
                        size_t page_bytes, const PageSink& emit);
  absl::Status RunPrepared(const StatementCache::Prepared& prepared,
                           StatementPolicy& policy, const Statement& statement,
                           const std::function<absl::Status()>& interruption,
                           size_t page_bytes, const PageSink& emit);
  // Runs `read` (of our own internal statements) on a read connection.
  absl::StatusOr<uint64_t> InternalRead(
      const ReadLimits& limits,
      const std::function<absl::StatusOr<uint64_t>(sqlite3*)>& read);
  // Applies `cmd` at `index` into `*result`, which the caller has reset.
  void ApplyWithSavepoints(const CommandView& cmd, uint64_t index,
                           bool savepoints, CommandResult* result);
  StatementResult RunStatement(const StatementView& statement);
  // Adds the row `stmt` returned to `*r` (RETURNING), within
  // kMaxReturnedBytes for the command.
  void KeepReturnedRow(sqlite3_stmt* stmt,
                       const std::vector<std::string>* written_columns,
                       StatementResult* r);
  // Stops the process if `rc` is a failure of this replica (full disk, I/O,
  // corruption, memory) rather than of the statement.
  void StopOnReplicaFailure(int rc);
  // Writes the applied index, divergence hash and the batch's table
  // versions, inside the open transaction; and the batch's captured
  // changes to the change log, before the COMMIT.
  void WriteMeta(uint64_t index);

  // After each batch: feeds a running vacuum, finishes one that caught up,
  // starts one a VACUUM entry asked for (sqlite_vacuum.cc).
  void AfterBatch(std::span<const core::Entry> entries);
  // Queues `batch` (the entries just applied; none on a tick) for a
  // running vacuum, swaps in one that caught up, drops one that failed.
  void AdvanceVacuum(std::span<const core::Entry> batch);
  void StartVacuum();
  // Swaps the copy in, once it has applied `last` (the batch just applied).
  void FinishVacuum(std::span<const core::Entry> last);
  void AbandonVacuum(const char* why);
  bool vacuum_requested_ = false;   // By a VACUUM in this batch.
  std::unique_ptr<Vacuum> vacuum_;  // Platform files, while one runs.
  std::chrono::steady_clock::time_point vacuum_began_;
  // The last SwapIn's parts: connections closed, renames and deletes (with
  // their directory syncs), connections opened again.
  struct SwapParts {
    long long close_ms = 0;
    long long files_ms = 0;
    long long open_ms = 0;
  } last_swap_;
  // A vacuum's swap whose copy closes and whose files move on `thread`.
  // A vacuum's swap, or (no vacuum) a received image's.
  struct SwapInFlight {
    std::unique_ptr<Vacuum> vacuum;
    std::thread thread;
    std::atomic<bool> done{false};
    // Read after the join: the copy's close failed (nothing moved: the
    // database reopens as it was), or the files part's status.
    absl::Status not_closed;
    absl::Status status;
    std::string from;
    uint64_t copied_at = 0;
    double before_mb = 0;
    size_t last_entries = 0;
    long long finish_ms = 0;  // The copy's last batch.
    long long close_ms = 0;   // The copy's close (thread).
    std::chrono::steady_clock::time_point began;
  };
  std::unique_ptr<SwapInFlight> swap_in_flight_;
  std::atomic<uint64_t> vacuums_done_{0};
  std::atomic<bool> vacuuming_{false};
  bool hold_vacuum_swap_ = false;
  std::string copy_failure_;  // options_.vacuum_copy only.

  SqliteOptions options_;
  sqlite3* db_ = nullptr;  // The replicated (write) connection.
  StatementPolicy write_policy_;
  // Our own statements on db_ (null until db_ is open).
  std::unique_ptr<InternalStatements> internal_;
  std::unique_ptr<StatementCache> statements_;  // Clients' on db_.
  std::unique_ptr<Sessions> sessions_;
  std::unique_ptr<TableVersions> versions_;
  ChangeHasher hasher_;
  ChangeCapture capture_;       // While changes_ is set.
  PreUpdateRow preupdate_row_;  // The hook's row, read by both.
  std::unique_ptr<ChangeLog> changes_;
  // Files: the read connections (Query/GetVersion), each with its policy.
  // Memory: null, and reads use db_ under memory_read_mu_.
  std::unique_ptr<ReadPool> read_pool_;
  std::mutex memory_read_mu_;
  const ReadLimits* memory_read_ = nullptr;  // While a memory read runs.
  absl::Status memory_read_interruption_;
  // Validate: its own connection (files) or db_ (memory).
  StatementPolicy check_policy_;
  std::mutex validator_mu_;  // Null validator_ while a file swap runs.
  std::unique_ptr<StatementValidator> validator_;
  // Files: WAL checkpoints run mostly on a thread of their own, with their
  // own connection (done by the writer, a checkpoint's page writes and fsync
  // stalled the apply loop every few hundred entries).
  std::unique_ptr<WalCheckpointer> checkpointer_;
  std::unique_ptr<ImageSource> images_;  // Files only.
  std::unique_ptr<ImageSink> sink_;      // Files only.
  std::unique_ptr<FileSwap> swap_;       // Files only.
  // Platform files: deletes large files off the loop.
  std::unique_ptr<FileDeleter> deleter_;
  // Files (not a vacuum's copy): makes what was applied durable when the
  // node asks (RequestSync), off the loop.
  std::unique_ptr<StateSyncer> syncer_;
  // File swaps completed (a received image, a vacuum): the first sync
  // after one syncs the directory its last rename left unsynced.
  uint64_t swaps_ = 0;
  // Sync's work on the apply thread, through SQLite's handle of the WAL:
  // the database (a swap's directory, the WAL), then the change log.
  absl::Status SyncNow();
  absl::Status SyncDatabase();
  // The syncer thread's: the WAL, the change log and, `after_swap`, the
  // directory, each by name (nothing the apply thread holds).
  absl::Status SyncFilesByName(bool after_swap) const;

  uint64_t applied_ = 0;  // Invariant: equals the meta table's value.
  std::atomic<uint64_t> visible_{0};  // visible_index()
  void PublishVisible() { visible_.store(applied_, std::memory_order_release); }
  uint64_t hash_ = 0;
  CheckpointLog checkpoints_;
  mutable std::mutex diverged_mu_;
  std::string diverged_;  // Guarded by diverged_mu_.
  absl::Status ReadRefusal() const;
  // What the running command's SQL sees beyond the database.
  CommandContext context_;
  // Bytes of rows the running command's statements returned.
  size_t returned_bytes_ = 0;

  // What _raftsql_users holds, for the server's authentication (any
  // thread). Written by the apply thread after each change it applies.
  mutable std::mutex users_mu_;
  std::map<std::string, User, std::less<>> users_;

  WriteBudget budget_;
  // The entry (its index) whose command spent its budget in a batch that
  // is being redone entry by entry, and the error it got (0: none).
  uint64_t budget_failed_index_ = 0;
  absl::Status budget_error_;

  // The tables the running entry's successful statements changed.
  TableList entry_tables_;
  std::set<std::string> statement_ddl_tables_;  // schema changed
  CommandView scratch_;                         // ApplyEntry decodes into it.
  CommandResult result_;  // ApplyEntry's result, reused likewise.
  // The running statement's text mentions TRIGGER (set by RunStatement).
  bool statement_mentions_trigger_ = false;
  // A user statement's ON CONFLICT ROLLBACK ended our transaction.
  bool transaction_lost_ = false;
  // The last entry that lost the transaction, and its result.
  CommandResult lost_result_;
  // The running entry changed a setting: the batch ends after it.
  bool batch_ends_ = false;
  // The switches set on the write connection (none before the first).
  std::optional<WriteSettings> switches_;
  // Savepoints per entry and statement are needed only where a failing
  // statement can leave part of its effects behind: OR FAIL, RAISE(FAIL) in
  // a trigger, or the earlier statements of an all-or-nothing command. (A
  // statement that fails otherwise undoes itself.)
  bool has_triggers_ = false;
  bool NeedsSavepoints(const CommandView& cmd) const;
  void RefreshHasTriggers();
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_SQLITE_STATE_MACHINE_H_
