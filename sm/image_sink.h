// ImageSink: where a durable follower's images from its leader go
// (core::SnapshotSink; issue 14). Chunks are taken into an ImageWriter,
// which stores them in `<database>.received` through the database's own
// VFS (the platform's files, with O_DIRECT where the file system allows
// it, or the simulator's disk) on a thread of its own, or at the node's
// ticks for the simulator; never more than its ring is held in memory. When
// every byte is stored, its CRC-32C must be the one the image's trailer carries
// (image_trailer.h); then the file is synced and checked (quick_check, and the
// applied index it holds against its metadata): on a thread for platform files,
// at once in the simulator. The core then installs a snapshot whose data is
// only Reference(), and the state machine's Restore renames the file into place
// (file_swap.h). The leader hears only bytes stored (held()); the owner learns
// of each step through the progress callback and tells the core.
//
// One image at a time: a new transfer deletes a partial one (and cancels
// the check of a whole one: the loop never waits for a check); none starts
// while an installed image waits for its Restore (a crash there leaves the
// file for Restore at the next start).
//
// Thread-safety: called by the Raft loop; the writer and checking threads
// share their counts and verdict under mutexes, and call the progress
// callback.
#ifndef RAFTSQL_SM_IMAGE_SINK_H_
#define RAFTSQL_SM_IMAGE_SINK_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/storage.h"
#include "sm/file_deleter.h"
#include "sm/image_trailer.h"
#include "sm/image_writer.h"

struct sqlite3;
struct sqlite3_file;
struct sqlite3_vfs;

namespace raftsql::sm {

// Syncs one file on a thread of its own whenever kicked, so that what the
// writer stored goes to the disk as it comes, not all at once at the end
// (gigabytes of dirty pages made every fsync on the machine wait). What
// the writer stored with O_DIRECT is not read back: the check reads it
// in blocks with O_DIRECT too (read_ahead_vfs.h).
class BackgroundSyncer {
 public:
  BackgroundSyncer(sqlite3_vfs* vfs, std::string path);
  // Waits for a sync under way.
  ~BackgroundSyncer();
  BackgroundSyncer(const BackgroundSyncer&) = delete;
  BackgroundSyncer& operator=(const BackgroundSyncer&) = delete;
  // The first `stored` bytes are stored: a sync is wanted; returns at
  // once.
  void Kick(uint64_t stored);
  // Waits for a sync under way and ends the thread.
  void Stop();

 private:
  void Run();

  sqlite3_vfs* const vfs_;
  const std::string path_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t wanted_ = 0;  // Guarded by mu_: bytes stored.
  bool stop_ = false;    // Guarded by mu_.
  std::thread thread_;
};

class ImageSink final : public core::SnapshotSink {
 public:
  // Platform files: the received file is synced every this many bytes
  // stored, on a thread.
  static constexpr uint64_t kBytesPerSync = 64 << 20;

  // `path`: the database file; `vfs`: its VFS (null: the platform's).
  // `deleter` (platform files; null for the simulator's): checks run on a
  // thread, and partial images are deleted through it, off the loop.
  ImageSink(std::string path, const char* vfs, FileDeleter* deleter);
  ImageSink(const ImageSink&) = delete;
  ImageSink& operator=(const ImageSink&) = delete;
  ~ImageSink() override;

  std::optional<uint64_t> Held(const core::SnapshotMetadata& metadata,
                               uint64_t from, uint64_t size) const override;
  uint64_t held() const override;
  absl::Status Begin(const core::SnapshotMetadata& metadata, uint64_t from,
                     uint64_t size) override;
  absl::Status Append(absl::string_view bytes) override;
  absl::Status Finish() override;
  void Drop() override;
  std::string Reference() const override;
  void Installed() override;

  // The index a snapshot's data refers to, if it is one of our references.
  static std::optional<uint64_t> ReferencedIndex(const std::string& data);
  // Called on the writer's or checker's thread whenever more of the image
  // is stored, a store failed, or the check is done (the owner then calls
  // core::Node::SnapshotSinkProgressed on its loop). Null: none.
  void SetProgressCallback(std::function<void()> progressed);
  // The simulator's disk: stores the bytes taken (the node's ticks call
  // it; platform files store on the writer's thread).
  void StoreTaken();
  // The received image's file (for Restore); whether this process checked
  // it (and the core installed it since); and that Restore took it: the
  // next transfer may begin.
  const std::string& received_path() const { return received_; }
  // The VFS its checks open the image with: platform files in blocks
  // (read_ahead_vfs.h), the simulator's through their own.
  const char* check_vfs_name() const;
  bool checked_and_installed() const { return state_ == State::kInstalled; }
  void Restored();
  // Called on the checker's thread once its check can be cancelled, with
  // the flag CancelCheck sets.
  void SetCheckHookForTest(
      std::function<void(const std::atomic<bool>& cancelled)> hook) {
    check_hook_ = std::move(hook);
  }

 private:
  enum class State { kIdle, kReceiving, kChecking, kChecked, kInstalled };

  void CloseFile();
  void DeleteReceived();
  absl::Status Sync() const;  // Makes the received file durable.
  // Syncs the file, checks it, then sets verdict_ and checked_.
  void Check();
  // Ends a check under way (platform files): it stops before its next
  // statement, and the one under way is interrupted; returns once it ended.
  // Drop waits for no more than that, whatever the image's size.
  void CancelCheck();
  void Progressed() const;  // Calls the progress callback.
  // Whether the writer failed to store (the image is lost: Held says none).
  bool StoreFailed() const;

  const std::string received_;
  const char* const vfs_name_;
  sqlite3_vfs* const vfs_;
  FileDeleter* const deleter_;
  const bool background_;

  State state_ = State::kIdle;
  core::SnapshotMetadata metadata_;
  uint64_t from_ = 0;
  uint64_t size_ = 0;       // The framed image's (image_trailer.h).
  uint64_t data_size_ = 0;  // The database's part.
  // Bytes held once every byte is stored (kChecking on); before, the
  // writer's count and the trailer's.
  uint64_t held_ = 0;
  uint32_t crc_ = 0;              // Of the database's part, once stored.
  std::string trailer_;           // What came of the trailer.
  sqlite3_file* file_ = nullptr;  // kReceiving only.
  // Platform files, kReceiving: syncs what the writer stored, every
  // kBytesPerSync (next_sync_: the writer's thread only).
  std::unique_ptr<BackgroundSyncer> syncer_;
  uint64_t next_sync_ = 0;
  std::unique_ptr<ImageWriter> writer_;  // kReceiving only.
  int direct_fd_ = -1;  // Platform files, kReceiving: O_DIRECT, or -1.

  // For the log line of a finished image (platform files only).
  std::chrono::steady_clock::time_point began_;
  std::chrono::steady_clock::time_point received_at_;
  ImageWriter::Timing writer_timing_;
  std::thread checker_;
  std::atomic<bool> checked_{false};
  std::atomic<bool> cancel_check_{false};
  mutable std::mutex mu_;
  std::condition_variable check_ended_;  // With mu_: checked_ set.
  absl::Status verdict_;                 // Guarded by mu_.
  sqlite3* checking_db_ = nullptr;       // Guarded by mu_: the check's, open.
  std::function<void(const std::atomic<bool>&)> check_hook_;
  mutable std::mutex progress_mu_;
  std::function<void()> progressed_;  // Guarded by progress_mu_.
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_IMAGE_SINK_H_
