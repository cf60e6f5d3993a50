// SqliteStateMachine's VACUUM (vacuum.h): started after the batch whose
// entry asked for it, fed every later batch, swapped in on the apply
// thread once its copy caught up.
#include <sqlite3.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "core/check.h"
#include "obs/log.h"
#include "obs/loop_phases.h"
#include "sm/sqlite_state_machine.h"
#include "sm/sqlite_util.h"
#include "sm/vacuum.h"

namespace raftsql::sm {
namespace {

double Megabytes(const std::string& path) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  return ec ? -1 : static_cast<double>(bytes) / (1 << 20);
}

}  // namespace

void SqliteStateMachine::AfterBatch(std::span<const core::Entry> entries) {
  AdvanceVacuum(entries);
  if (vacuum_requested_) {
    vacuum_requested_ = false;
    StartVacuum();
  }
}

void SqliteStateMachine::OnTick() {
  obs::PhaseTimer timer(obs::Phase::kSnapshot);
  CompleteSwap(/*wait=*/false);
  if (swap_in_flight_ == nullptr) AdvanceVacuum({});
  // The simulator's disk: a received image's bytes are stored at ticks.
  if (sink_ != nullptr) sink_->StoreTaken();
  // ... and the node's requested syncs are done (a later tick than asked).
  if (syncer_ != nullptr) syncer_->Poll();
}

void SqliteStateMachine::AdvanceVacuum(std::span<const core::Entry> batch) {
  if (vacuum_ == nullptr) return;
  if (!hold_vacuum_swap_ && vacuum_->CaughtUp()) {
    // The copy holds all but this batch: the loop applies it a second
    // time, to the copy, and swaps.
    FinishVacuum(batch);
  } else if (!vacuum_->Add(batch)) {
    AbandonVacuum(std::string(vacuum_->status().message()).c_str());
  }
}

bool SqliteStateMachine::VacuumWaitsToSwap() const {
  return vacuum_ != nullptr && vacuum_->CaughtUp();
}

bool SqliteStateMachine::WaitForVacuumCopyForTest(
    std::chrono::milliseconds bound) {
  return vacuum_ == nullptr || vacuum_->WaitUntilIdle(bound);
}

void SqliteStateMachine::StartVacuum() {
  if (options_.vacuum_copy) return;  // The vacuum making it covers it.
  if (single_connection()) {
    // A small database on one thread (memory, the simulator's disk): at
    // once, between transactions. Only pages move, so a failure (say, no
    // room for the temporary copy) changes nothing replicated.
    // VACUUM attaches its temporary copy: one attachment, for it alone.
    StatementPolicy::InternalScope scope(write_policy_);
    const int attached = sqlite3_limit(db_, SQLITE_LIMIT_ATTACHED, 1);
    if (sqlite3_exec(db_, "VACUUM", nullptr, nullptr, nullptr) == SQLITE_OK) {
      ++vacuums_done_;
    }
    sqlite3_limit(db_, SQLITE_LIMIT_ATTACHED, attached);
    return;
  }
  if (vacuum_ != nullptr) return;  // The one running covers this entry too.
  SqliteOptions copy = options_;
  copy.read_connections = 1;
  copy.background_checkpoints = false;
  copy.vacuum_copy = true;
  vacuum_began_ = std::chrono::steady_clock::now();
  vacuum_ = std::make_unique<Vacuum>(options_.path, copy);
  vacuuming_ = true;
  obs::Log(obs::Level::kInfo, "vacuum",
           absl::StrFormat("vacuum started after index %llu (%.1f MB)",
                           static_cast<unsigned long long>(applied_),
                           Megabytes(options_.path)));
}

void SqliteStateMachine::AbandonVacuum(const char* why) {
  if (vacuum_ == nullptr) return;
  vacuum_.reset();  // Stops its thread, deletes its copy.
  vacuuming_ = false;
  obs::Log(obs::Level::kInfo, "vacuum",
           absl::StrFormat("vacuum abandoned after %lld ms: %s",
                           MillisecondsSince(vacuum_began_), why));
}

void SqliteStateMachine::FinishVacuum(std::span<const core::Entry> last) {
  auto swap = std::make_unique<SwapInFlight>();
  swap->copied_at = vacuum_->copied_at();
  swap->before_mb = Megabytes(options_.path);
  swap->last_entries = last.size();
  const auto finish_began = std::chrono::steady_clock::now();
  const absl::Status finished = vacuum_->Finish(last, applied_);
  swap->finish_ms = MillisecondsSince(finish_began);
  if (!finished.ok()) {
    return AbandonVacuum(std::string(finished.message()).c_str());
  }
  swap->vacuum = std::move(vacuum_);  // vacuuming() until the swap ends.
  // The copy's close (20-450 ms at 2.25 GB) and the renames with their
  // directory syncs (175-886 ms at 4.7 GB on a busy disk) run on a thread,
  // while the node keeps what commits meanwhile (ApplyPaused) and the loop
  // goes on with Raft.
  swap->began = std::chrono::steady_clock::now();
  swap->from = Vacuum::CopyPath(options_.path);
  CloseForSwap();
  SwapInFlight* raw = swap.get();
  swap->thread = std::thread([this, raw] {
    const auto began = std::chrono::steady_clock::now();
    raw->not_closed = raw->vacuum->Close();
    raw->close_ms = MillisecondsSince(began);
    if (raw->not_closed.ok()) raw->status = SwapFiles(raw->from);
    raw->done.store(true);
  });
  swap_in_flight_ = std::move(swap);
}

void SqliteStateMachine::CompleteSwap(bool wait) {
  if (swap_in_flight_ == nullptr) return;
  SwapInFlight& swap = *swap_in_flight_;
  if (!wait && !swap.done.load()) return;
  swap.thread.join();
  vacuuming_ = false;
  const long long paused_ms = MillisecondsSince(swap.began);
  if (swap.vacuum == nullptr) return CompleteRestore(paused_ms);
  if (!swap.not_closed.ok()) {
    // Nothing moved: the database opens again as it was.
    const absl::Status s = ReopenAfterSwap(applied_, options_.path);
    if (!s.ok()) {
      obs::Log(obs::Level::kError, "fatal",
               absl::StrFormat("state machine: the database did not reopen: %s",
                               std::string(s.message()).c_str()));
      CHECK(false);
    }
    obs::Log(obs::Level::kInfo, "vacuum",
             absl::StrFormat("vacuum abandoned after %lld ms: %s",
                             MillisecondsSince(vacuum_began_),
                             std::string(swap.not_closed.message()).c_str()));
    swap_in_flight_.reset();  // Its Vacuum deletes the copy.
    return;
  }
  ReopenOrStop(swap, "the vacuumed copy");
  ++vacuums_done_;
  obs::Log(obs::Level::kInfo, "vacuum",
           absl::StrFormat(
               "vacuum swapped in at index %llu after %lld ms (copied at %llu; "
               "%.1f MB -> %.1f MB; on the apply loop: %zu entries to the copy "
               "%lld ms, closing %lld ms, reopening %lld ms; apply paused %lld "
               "ms for the copy's close %lld ms and the files %lld ms)",
               static_cast<unsigned long long>(applied_),
               MillisecondsSince(vacuum_began_),
               static_cast<unsigned long long>(swap.copied_at), swap.before_mb,
               Megabytes(options_.path), swap.last_entries, swap.finish_ms,
               last_swap_.close_ms, last_swap_.open_ms, paused_ms,
               swap.close_ms, last_swap_.files_ms));
  swap_in_flight_.reset();
}

}  // namespace raftsql::sm
