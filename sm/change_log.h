// ChangeLog: the committed row changes that Watch serves, kept beside the
// database (not in it) in segment files `<db>.changes/<first index>.log`,
// bounded by bytes (the oldest segments go first).
//
// Why beside the database: in it, every captured row would be written a
// second time into SQLite (doubling the apply cost of the hub's ingest),
// replicated through snapshots nobody watches from, and deleted again
// through the log. Here the apply loop appends one record per entry that
// changed rows, plus a marker for the batch, in one write(2) per batch,
// before the batch's COMMIT; it never fsyncs on the way (Sync does, when
// the state machine syncs). What that costs:
// - A node's change log is its own: after a snapshot install it starts
//   at the snapshot's index (older indexes are "compacted" there), and a
//   power cut that took the log's tail but not SQLite's starts it over at
//   the applied index. Every other restart keeps it: records beyond the
//   database's applied index are dropped (the log replays them).
// - Readers see what the loop appended, each from its own descriptor, so a
//   slow reader costs disk, never the loop's time or memory; one that falls
//   behind the oldest kept segment gets OUT_OF_RANGE ("compacted").
//
// Thread-safety: Append and Reset on the apply thread; Sync and cursors on
// any thread (the shared state is behind a mutex).
#ifndef RAFTSQL_SM_CHANGE_LOG_H_
#define RAFTSQL_SM_CHANGE_LOG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sm/command.h"

namespace raftsql::sm {

// One committed row change.
struct Change {
  enum class Op : uint8_t {
    kInsert = 0,
    kUpdate = 1,
    kDelete = 2,
    kSchema = 3
  };
  uint64_t index = 0;  // The log entry that made it.
  std::string table;
  Op op = Op::kInsert;
  // Rowid tables: the row's rowid (after an update), and before it when an
  // update moved it (else equal). WITHOUT ROWID tables: 0 (the values hold
  // the key).
  int64_t rowid = 0;
  int64_t old_rowid = 0;
  // Insert, update: the new row, in column order. Delete: the old row.
  // Schema (the table was created, altered or dropped): none.
  std::vector<Value> values;
  bool operator==(const Change&) const = default;
};

// Appends `change` in the log's record encoding (ChangeCapture builds
// entries' records from the preupdate hook directly; tests use this).
void EncodeChange(const Change& change, std::string* out);

struct ChangeLogOptions {
  // Kept at most (whole segments: the newest is never dropped).
  uint64_t max_bytes = uint64_t{256} << 20;
  uint64_t segment_bytes = uint64_t{16} << 20;
};

class ChangeLog {
 public:
  // Opens (or creates) the log in `dir` for a database whose applied index
  // is `applied`: records beyond it are dropped; a log that does not reach
  // it (a power cut) or cannot be read starts over after it.
  static absl::StatusOr<std::unique_ptr<ChangeLog>> Open(
      std::string dir, uint64_t applied, ChangeLogOptions options = {});
  ~ChangeLog();

  // The apply loop, before the batch's COMMIT: `entries` (records made by
  // ChangeCapture, possibly empty) and the batch's last index. An I/O
  // error stops nothing: the log starts over after `covered` (readers
  // then see OUT_OF_RANGE).
  void Append(std::string_view entries, uint64_t covered);
  // A snapshot replaced the database at `index`: the log starts after it.
  void Reset(uint64_t index);
  // Makes every record appended before the call survive a power cut. Any
  // thread (the state machine's syncer: state_syncer.h): it syncs the
  // segments by name, not through the apply thread's descriptor.
  absl::Status Sync() const;

  // The oldest index a reader may start from, and the last index covered
  // (every change at or below it is in the log, from first_index() on).
  uint64_t first_index() const;
  uint64_t covered() const;
  // Called (on the apply thread, after each Append or Reset) with nothing
  // held; must be quick. Any thread may set it.
  void SetListener(std::function<void()> listener);

  // A reader from an index on, with its own descriptors.
  class Cursor {
   public:
    // Changes with index >= from, at most about `max_bytes` of them (at
    // least one entry's), in order; empty only when it has read all there
    // is (records before `from` are skipped on the way, up to the end of
    // what the log holds).
    // `*covered` becomes the index through which the reader has seen
    // everything (the log's marker). OUT_OF_RANGE once the log dropped or
    // restarted past where this cursor reads.
    absl::StatusOr<std::vector<Change>> Next(size_t max_bytes,
                                             uint64_t* covered);
    ~Cursor();
    // Bytes read from the files so far (tests).
    uint64_t bytes_read() const { return bytes_read_; }

   private:
    friend class ChangeLog;
    Cursor(const ChangeLog* log, uint64_t from) : log_(log), from_(from) {}
    // Opens segment `first` at `offset`, where every record's index is at
    // least covered + 1.
    absl::Status OpenSegment(uint64_t first, uint64_t offset = 0,
                             uint64_t covered = 0);
    const ChangeLog* log_;
    uint64_t from_;
    uint64_t generation_ = 0;  // The log's, when this cursor started.
    uint64_t segment_ = 0;     // First index of the open segment.
    int fd_ = -1;
    uint64_t offset_ = 0;
    uint64_t covered_ = 0;
    uint64_t bytes_read_ = 0;
    std::string buffer_;
  };
  // OUT_OF_RANGE if `from` is below first_index() ("compacted: the oldest
  // index this node holds is N").
  absl::StatusOr<std::unique_ptr<Cursor>> Read(uint64_t from) const;

  // Bytes in the kept segments (tests, Status).
  uint64_t bytes() const;
  // Segments ascending by first index, sizes adding up to bytes(), the
  // newest open for appends; first_index() at or above the oldest's.
  void CheckInvariants() const;

 private:
  ChangeLog(std::string dir, ChangeLogOptions options)
      : dir_(std::move(dir)), options_(options) {}
  std::string SegmentPath(uint64_t first) const;
  absl::Status Recover(uint64_t applied);
  // Recover's parts: the bytes of segment `first` if it ends with the
  // marker of `last` (DATA_LOSS if not: a power cut took its tail) ...
  absl::StatusOr<uint64_t> CompleteSegmentBytes(uint64_t first,
                                                uint64_t last) const;
  // ... and segment `first` read through: truncated after its last record
  // at or below `applied`; `*covered` becomes its last marker's index (if
  // any), and its marks are added. Returns the bytes kept.
  absl::StatusOr<uint64_t> ReadThrough(uint64_t first, uint64_t applied,
                                       uint64_t* covered);
  // Drops every segment and starts one for indexes after `index`.
  absl::Status StartOver(uint64_t index);
  absl::Status NewSegment(uint64_t first);
  void DropOldSegments();
  void Notify();

  const std::string dir_;
  const ChangeLogOptions options_;
  int fd_ = -1;  // The newest segment's, for appends (apply thread).

  mutable std::mutex mu_;
  // Guarded by mu_: segment first index -> its bytes (what readers may
  // read of it), the log's start, what it covers, and a count of starts
  // over (a cursor from an earlier one is out of range).
  std::map<uint64_t, uint64_t> segments_;
  uint64_t first_index_ = 1;
  uint64_t covered_ = 0;
  uint64_t generation_ = 0;
  // Segments from this first index on may hold bytes not yet synced (a
  // segment before it was complete when a sync covered it).
  mutable uint64_t unsynced_from_ = 0;
  std::function<void()> listener_;
  // Where a reader may start within a segment: from `offset` on, every
  // record's index is at least `index` (one mark per kMarkBytes at most,
  // at batch boundaries), so that a reader from an index reads its
  // segment from near there, not from its start. A reopen marks only the
  // segment it reads through: an older one is read from its start (at
  // most segment_bytes).
  struct Mark {
    uint64_t index;
    uint64_t offset;
  };
  static constexpr uint64_t kMarkBytes = 64 << 10;
  std::map<uint64_t, std::vector<Mark>> marks_;  // Guarded by mu_.
  void AddMark(uint64_t segment, uint64_t index, uint64_t offset);
  void AddMarkLocked(uint64_t segment, uint64_t index, uint64_t offset);
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_CHANGE_LOG_H_
