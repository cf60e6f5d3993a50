// The edge's local store (DESIGN.md §6): one SQLite file in WAL mode that
// survives restarts and holds
// - the store-and-forward buffer of readings not yet acknowledged by the
//   hub, each with its sequence number, bounded by bytes and by age, with
//   a full-buffer policy (drop the oldest, or refuse the new) and counters
//   of what was dropped and why;
// - the store's incarnation, made once when the file is created: a wiped
//   disk starts a new one, so its sequences start again at 1 without being
//   taken for duplicates;
// - the commands executed, each with its outcome, written in the same
//   transaction as the simulated actuator's state, so a redelivered command
//   is answered again from the record and never runs twice;
// - the twin's applied desired state and its version, so that a restarted
//   agent applies it again before it reports.
// One process owns the file (exclusive locking: a second agent on the same
// store waits busy_timeout and fails with "database is locked"; and WAL
// needs no shared memory). Not thread-safe: the agent calls it from one
// thread.
#ifndef RAFTSQL_EDGE_EDGE_STORE_H_
#define RAFTSQL_EDGE_EDGE_STORE_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "edge/hub_sql.h"

namespace raftsql::edge {

enum class FullPolicy { kDropOldest, kRejectNew };

struct StoreOptions {
  std::string path;  // The SQLite file (":memory:" for tests).
  // What the buffer holds at most: the readings' bytes as counted by
  // ReadingBytes, and their age since they were stored.
  uint64_t max_bytes = uint64_t{64} << 20;
  int64_t max_age_ms = int64_t{7} * 24 * 3600 * 1000;
  FullPolicy policy = FullPolicy::kDropOldest;
  // Fsync every commit (FULL) or only at checkpoints (NORMAL: a power cut
  // may lose the last readings, never corrupt the file).
  bool sync_every_commit = false;
  // How long an open waits for another process that holds the file.
  int busy_timeout_ms = 5000;
  // The SQLite VFS to open the file with (null: the default; the
  // simulator's SimFs).
  const char* vfs = nullptr;
  // A store SQLite cannot read (a damaged disk or card: "file is not a
  // database", "malformed") is moved aside to <path>.corrupt and a new
  // one made, a new incarnation, so that the device keeps working; what
  // the old one held and the hub had not acknowledged is lost (the hub
  // keeps the rest). False: Open fails with DATA_LOSS.
  bool replace_corrupt = true;
  // Renames a file (null: the file system's rename), for moving a corrupt
  // store aside; NOT_FOUND if there is no such file.
  std::function<absl::Status(const std::string&, const std::string&)> rename;
  // Where a new incarnation's id comes from: 0 the OS's randomness, else
  // this seed (the simulator's, so that a run repeats).
  uint64_t incarnation_seed = 0;
};

// What a reading costs in the buffer (its texts plus a row's overhead).
inline uint64_t ReadingBytes(const Reading& r) {
  return 48 + r.sensor.size() + r.unit.size();
}

struct StoreCounters {
  uint64_t stored = 0;          // Appended since the incarnation began.
  uint64_t dropped_full = 0;    // Oldest readings dropped for room.
  uint64_t dropped_age = 0;     // Dropped past max_age_ms.
  uint64_t rejected_full = 0;   // New readings refused (kRejectNew).
  uint64_t refused_by_hub = 0;  // Dropped: the hub refused their batch.
  uint64_t dropped() const {
    return dropped_full + dropped_age + rejected_full + refused_by_hub;
  }
};

// A command's outcome as the edge records it.
struct Outcome {
  CommandStatus result = CommandStatus::kDone;
  std::string detail;
};

class EdgeStore {
 public:
  static absl::StatusOr<std::unique_ptr<EdgeStore>> Open(
      const StoreOptions& options);
  ~EdgeStore();

  const std::string& incarnation() const { return incarnation_; }

  // Stores a reading with the next sequence (set in `r`), making room
  // under the policy first. False if it was refused (kRejectNew, full).
  absl::StatusOr<bool> Append(Reading& r, int64_t now_ms);
  // Drops readings stored before now_ms - max_age_ms.
  absl::Status DropExpired(int64_t now_ms);
  // Up to `max` readings with sequence > `after`, in order.
  absl::StatusOr<std::vector<Reading>> Pending(uint64_t after, size_t max);
  // The hub holds everything up to `sequence`: it leaves the buffer.
  absl::Status Acked(uint64_t sequence);
  // The hub refused these sequences for good: they leave the buffer,
  // counted.
  absl::Status Refused(uint64_t first, uint64_t last);

  // Makes every committed change durable (a checkpoint: it syncs the WAL,
  // then the file). The agent calls it before it
  // uploads and after a command ran: what the hub holds or was told must
  // survive a power cut, or the edge would give a sequence the hub holds to
  // another reading, or run a command again. Commits in between stay
  // cheap (synchronous=NORMAL).
  absl::Status MakeDurable();
  // Every sequence up to this one survives a power cut.
  uint64_t durable_sequence() const { return durable_sequence_; }

  // The oldest sequence held (the next one to be assigned if empty).
  uint64_t oldest() const;
  uint64_t backlog() const { return count_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t last_sequence() const { return last_sequence_; }
  const StoreCounters& counters() const { return counters_; }

  // Runs command `id` at most once: if it ran before, its recorded outcome;
  // else `run` (given the store's database, inside the transaction that
  // records the outcome, for an actuator that keeps its state there).
  using Run = std::function<Outcome(sqlite3* db)>;
  absl::StatusOr<Outcome> ExecuteOnce(const std::string& id, const Run& run);
  // How many commands ran (tests and figures).
  absl::StatusOr<int64_t> Executed();

  // The desired version the twin last applied (0: none), and that desired
  // document ("" if none).
  uint64_t twin_version() const { return twin_version_; }
  const std::string& twin_desired() const { return twin_desired_; }
  absl::Status SetTwin(uint64_t version, const std::string& desired_json);

  sqlite3* db() { return db_; }

 private:
  EdgeStore(StoreOptions options, sqlite3* db);
  // Open without the corrupt store's replacement; DATA_LOSS if SQLite
  // cannot read the file.
  static absl::StatusOr<std::unique_ptr<EdgeStore>> OpenOnce(
      const StoreOptions& options);
  absl::Status Init();
  absl::Status Exec(const std::string& sql);
  absl::Status SaveCounters();
  // Drops the oldest readings until `need` more bytes fit.
  absl::Status MakeRoom(uint64_t need);
  // Deletes the readings `where` (?1 = arg, ?2 = arg2) says, counting
  // them in `counter` (if any).
  absl::Status DropWhere(const std::string& where, int64_t arg,
                         uint64_t* counter, int64_t arg2 = 0);

  const StoreOptions options_;
  sqlite3* db_;
  std::string incarnation_;
  uint64_t last_sequence_ = 0;
  uint64_t count_ = 0;
  uint64_t bytes_ = 0;
  uint64_t oldest_ = 0;
  uint64_t twin_version_ = 0;
  std::string twin_desired_;
  // 0 after Open: what the file holds may not have reached the disk yet.
  uint64_t durable_sequence_ = 0;
  StoreCounters counters_;
};

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_EDGE_STORE_H_
