// ChangeCapture: the row changes of the batch being applied, captured from
// SQLite's preupdate hook in the change log's record encoding
// (change_log.h), kept only for what commits: a failed statement's
// changes, an entry rolled back as a whole, and a batch that lost its
// transaction are dropped with them. One record per entry that changed
// rows; the state machine appends the batch's records before its COMMIT.
//
// Bounded: beyond kMaxBatchBytes captured in one batch (a DELETE of a
// large table, say) the batch is marked overflowed and its changes are
// dropped; the change log then starts over after the batch, so that a
// watcher learns it missed changes (OUT_OF_RANGE) rather than missing
// them silently.
//
// Apply thread only.
#ifndef RAFTSQL_SM_CHANGE_CAPTURE_H_
#define RAFTSQL_SM_CHANGE_CAPTURE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "sm/preupdate_row.h"

struct sqlite3;

namespace raftsql::sm {

class ChangeCapture {
 public:
  static constexpr size_t kMaxBatchBytes = size_t{64} << 20;
  // Buffer capacity kept from one batch to the next.
  static constexpr size_t kKeptBytes = size_t{4} << 20;

  void BeginEntry(uint64_t index);
  void BeginStatement();
  // A row the preupdate hook saw change; internal tables are left out.
  void OnPreUpdate(PreUpdateRow& row);
  // `table` was created, altered or dropped by the running statement.
  void OnSchema(std::string_view table);
  // The running statement failed (its changes undid themselves).
  void StatementFailed();
  // The entry's changes were rolled back as a whole.
  void EntryFailed();
  // The entry is done: its changes (if any) become a record of the batch.
  void EndEntry();
  // The batch's records; then Clear (after the append, or a rollback).
  std::string_view batch() const { return batch_; }
  bool overflowed() const { return overflowed_; }
  void Clear();
  // An entry is open exactly between BeginEntry and EndEntry; marks lie
  // within what they mark; the bound holds.
  void CheckInvariants() const;

 private:
  void Begin(char op, std::string_view table, int64_t rowid, int64_t old_rowid,
             int columns);
  std::string batch_;
  std::string entry_;  // [index][count][changes] while open
  bool open_ = false;
  uint32_t count_ = 0;
  size_t statement_mark_ = 0;
  uint32_t statement_count_ = 0;
  bool overflowed_ = false;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_CHANGE_CAPTURE_H_
