// Snapshots: the state machine's side (snapshot_image.h holds the images).
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "obs/log.h"
#include "obs/loop_phases.h"
#include "sm/image_sink.h"
#include "sm/image_trailer.h"
#include "sm/snapshot_image.h"
#include "sm/sqlite_state_machine.h"
#include "sm/sqlite_util.h"
#include "sm/vacuum.h"

namespace raftsql::sm {

absl::StatusOr<std::string> SqliteStateMachine::CreateSnapshot() {
  return SerializeDatabase(db_);
}

absl::Status SqliteStateMachine::Sync() {
  const absl::Status s = SyncNow();
  if (s.ok() && syncer_ != nullptr) syncer_->Synced(applied_, swaps_);
  return s;
}

void SqliteStateMachine::RequestSync() {
  if (syncer_ != nullptr) syncer_->Request(applied_, swaps_);
}

absl::StatusOr<uint64_t> SqliteStateMachine::DurableIndex() {
  if (syncer_ == nullptr) return core::StateMachine::DurableIndex();
  return syncer_->Durable();
}

absl::Status SqliteStateMachine::SyncFilesByName(bool after_swap) const {
  if (after_swap) {
    absl::Status s = SyncParentDirectory(options_.path);
    if (!s.ok()) return s;
  }
  // The WAL: what the writer committed before the request. No WAL:
  // nothing was written since the open's sync or the last swap (whose file
  // is durable).
  absl::Status s = SyncFileByName(options_.path + "-wal");
  if (!s.ok()) return s;
  return changes_ != nullptr ? changes_->Sync() : absl::OkStatus();
}

absl::Status SqliteStateMachine::SyncNow() {
  absl::Status s = SyncDatabase();
  if (!s.ok()) return s;
  return changes_ != nullptr ? changes_->Sync() : absl::OkStatus();
}

absl::Status SqliteStateMachine::SyncDatabase() {
  obs::PhaseTimer timer(obs::Phase::kSnapshot);
  CompleteSwap(/*wait=*/true);
  // A swap's last rename first: until it is durable a crash brings the
  // swapped-in file back at its swap index (file_swap.h), below what the
  // caller is about to rely on.
  if (swap_ != nullptr) {
    absl::Status s = swap_->SyncDirectory();
    if (!s.ok()) return s;
  }
  // Commits go to the WAL (synchronous=NORMAL leaves them unsynced); a
  // checkpoint syncs the database file before it lets the WAL start over,
  // so syncing the WAL makes every commit so far durable.
  sqlite3_file* wal = nullptr;
  const int rc =
      sqlite3_file_control(db_, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
  if (rc != SQLITE_OK) return SqliteError(db_, rc);
  if (wal == nullptr || wal->pMethods == nullptr) {
    return absl::OkStatus();  // No WAL yet: nothing was written.
  }
  if (wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL) != SQLITE_OK) {
    return absl::DataLossError("cannot sync the database's WAL");
  }
  return absl::OkStatus();
}

std::string SqliteStateMachine::SerializeForTest() {
  absl::StatusOr<std::string> s = CreateSnapshot();
  CHECK(s.ok());
  return *s;
}

absl::Status SqliteStateMachine::ValidateSnapshot(
    const core::Snapshot& snapshot) const {
  absl::StatusOr<absl::string_view> bytes = UnframeImage(snapshot.data);
  if (!bytes.ok()) return bytes.status();
  SnapshotImage image;
  absl::Status s = image.Open(*bytes);
  if (!s.ok()) return s;
  return image.Check(snapshot.metadata.index);
}

absl::Status SqliteStateMachine::Restore(const core::Snapshot& snapshot) {
  obs::PhaseTimer timer(obs::Phase::kSnapshot);
  CompleteSwap(/*wait=*/true);
  if (std::optional<uint64_t> index =
          ImageSink::ReferencedIndex(snapshot.data)) {
    return RestoreReceived(snapshot.metadata.index, *index);
  }
  // Load the image into a scratch connection, check it, then copy it page by
  // page over ours: the backup API works for files and memory alike and is
  // atomic, so a refused image leaves our state as it was.
  absl::StatusOr<absl::string_view> bytes = UnframeImage(snapshot.data);
  if (!bytes.ok()) return bytes.status();
  SnapshotImage image;
  absl::Status s = image.Open(*bytes);
  if (s.ok()) s = image.Check(snapshot.metadata.index);
  if (!s.ok()) return s;
  AbandonVacuum("a snapshot from the leader replaces the database");
  return RestoreFrom(image, snapshot.metadata.index);
}

absl::Status SqliteStateMachine::RestoreReceived(uint64_t index,
                                                 uint64_t referenced) {
  if (sink_ == nullptr || referenced != index) {
    return absl::DataLossError(
        absl::StrCat("the snapshot at ", index, " refers to a received image (",
                     referenced, ") this database does not hold"));
  }
  if (!sink_->checked_and_installed()) {
    // A restart between the image's install and this restore: it is
    // checked again (at start-up, before the node serves).
    SnapshotImage image;
    absl::Status s =
        image.OpenFile(sink_->received_path(), sink_->check_vfs_name());
    if (s.ok()) s = image.Check(index);
    if (!s.ok()) return s;
  }
  AbandonVacuum("a snapshot from the leader replaces the database");
  if (single_connection()) {
    // One thread (the simulator's disk): the swap at once.
    absl::Status s = SwapIn(index, sink_->received_path());
    if (!s.ok()) return s;
    sink_->Restored();
    return absl::OkStatus();
  }
  // The renames and their directory syncs (4-176 ms measured on the loop)
  // run on a thread, as a vacuum's do: the node keeps what commits
  // meanwhile (ApplyPaused) and the loop goes on with Raft. The applied
  // index is the image's from now on; reads wait for the reopen.
  auto swap = std::make_unique<SwapInFlight>();
  swap->began = std::chrono::steady_clock::now();
  swap->from = sink_->received_path();
  CloseForSwap();
  applied_ = index;
  if (changes_ != nullptr) changes_->Reset(index);
  SwapInFlight* raw = swap.get();
  swap->thread = std::thread([this, raw] {
    raw->status = SwapFiles(raw->from);
    raw->done.store(true);
  });
  swap_in_flight_ = std::move(swap);
  return absl::OkStatus();
}

absl::Status SqliteStateMachine::SwapIn(uint64_t index,
                                        const std::string& from) {
  CloseForSwap();
  absl::Status s = SwapFiles(from);
  return s.ok() ? ReopenAfterSwap(index, from) : s;
}

void SqliteStateMachine::CloseForSwap() {
  const auto began = std::chrono::steady_clock::now();
  // Every connection to the old file goes first: its image in the making,
  // the readers (a running read is interrupted with this, and its
  // connection closes when it lets go), the validator's, the writer's.
  if (images_ != nullptr && options_.vfs == nullptr) images_->Reset(nullptr);
  if (read_pool_ != nullptr) {
    read_pool_->Retire(absl::UnavailableError(
        "this replica is swapping in a new database file (a snapshot from "
        "its leader, or a vacuum); read again"));
  }
  {
    std::lock_guard<std::mutex> l(validator_mu_);
    validator_.reset();
  }
  CloseWriter();
  last_swap_.close_ms = MillisecondsSince(began);
}

absl::Status SqliteStateMachine::SwapFiles(const std::string& from) {
  const auto began = std::chrono::steady_clock::now();
  // The old file keeps a name of its own, so that the rename over it does
  // not free its pages on this thread (seconds for gigabytes): the deleter
  // does.
  std::string old;
  if (deleter_ != nullptr) {
    old = deleter_->TrashName(options_.path);
    if (link(options_.path.c_str(), old.c_str()) != 0) old.clear();
  }
  absl::Status s = swap_->Begin(from);
  // The last rename's directory sync waits for the next Sync (file_swap.h):
  // never the loop's.
  if (s.ok()) s = swap_->Finish(/*sync_last=*/false);
  if (!old.empty()) deleter_->Delete(old);
  last_swap_.files_ms = MillisecondsSince(began);
  return s;
}

absl::Status SqliteStateMachine::ReopenAfterSwap(uint64_t index,
                                                 const std::string& from) {
  const auto began = std::chrono::steady_clock::now();
  absl::Status s = OpenWriter();
  if (s.ok()) s = OpenReaders();
  last_swap_.open_ms = MillisecondsSince(began);
  if (!s.ok()) return s;
  if (options_.vfs != nullptr) images_->Reset(db_);
  s = LoadMeta();
  if (!s.ok()) return s;
  if (applied_ != index) {
    return absl::DataLossError(
        absl::StrCat(from, " held index ", applied_, ", not ", index));
  }
  ++swaps_;
  return absl::OkStatus();
}

void SqliteStateMachine::ReopenOrStop(const SwapInFlight& swap,
                                      const char* what) {
  absl::Status s = swap.status;
  if (s.ok()) s = ReopenAfterSwap(applied_, swap.from);
  if (s.ok()) return;
  // The renames failed, or the file did not reopen: this replica's disk (a
  // failed swap on the loop stopped the node too).
  obs::Log(obs::Level::kError, "fatal",
           absl::StrFormat("state machine: %s did not swap in: %s; stopping (a "
                           "restart completes or drops the swap)",
                           what, std::string(s.message()).c_str()));
  CHECK(false);
}

void SqliteStateMachine::CompleteRestore(long long paused_ms) {
  ReopenOrStop(*swap_in_flight_, "the received snapshot image");
  sink_->Restored();
  obs::Log(obs::Level::kInfo, "snapshot",
           absl::StrFormat("snapshot image %llu swapped in; apply paused %lld "
                           "ms (closing %lld ms and reopening %lld ms on the "
                           "loop, the files %lld ms on a thread)",
                           static_cast<unsigned long long>(applied_), paused_ms,
                           last_swap_.close_ms, last_swap_.open_ms,
                           last_swap_.files_ms));
  swap_in_flight_.reset();
}

absl::Status SqliteStateMachine::RestoreFrom(SnapshotImage& image,
                                             uint64_t index) {
  absl::Status s;
  sqlite3_backup* backup = sqlite3_backup_init(db_, "main", image.db(), "main");
  if (backup == nullptr) return SqliteError(db_, sqlite3_errcode(db_));
  const int rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return SqliteError(db_, rc);
  s = LoadMeta();
  if (!s.ok()) return s;
  CHECK_EQ(applied_, index);  // Image.Check saw it.
  if (changes_ != nullptr) changes_->Reset(index);
  return absl::OkStatus();
}

}  // namespace raftsql::sm
