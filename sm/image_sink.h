// ImageSink: where a durable follower's images from its leader go
// (core::SnapshotSink; issue 14). Chunks are written to `<database>.received`
// through the database's own VFS (the platform's files, or the simulator's
// disk), never held in memory. When the last one is in, its CRC-32C must be
// the one the image's trailer carries (image_trailer.h); then the file is
// synced and checked (quick_check, and the applied index it holds against
// its metadata): on a thread for platform files, at once in the simulator.
// The core then installs a snapshot whose data is only Reference(), and the
// state machine's Restore renames the file into place (file_swap.h).
//
// One image at a time: a new transfer deletes a partial one; none starts
// while an installed image waits for its Restore (a crash there leaves the
// file for Restore at the next start).
//
// Thread-safety: called by the Raft loop; the checking thread only sets
// its verdict under a mutex.
#ifndef RAFTSQL_SM_IMAGE_SINK_H_
#define RAFTSQL_SM_IMAGE_SINK_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/storage.h"
#include "sm/file_deleter.h"
#include "sm/image_trailer.h"

struct sqlite3_file;
struct sqlite3_vfs;

namespace raftsql::sm {

// Syncs one file on a thread of its own whenever kicked, so that pages the
// Raft loop writes go to the disk as they come, not all at once at the end
// (gigabytes of dirty pages made every fsync on the machine wait).
class BackgroundSyncer {
 public:
  BackgroundSyncer(sqlite3_vfs* vfs, std::string path);
  // Waits for a sync under way.
  ~BackgroundSyncer();
  BackgroundSyncer(const BackgroundSyncer&) = delete;
  BackgroundSyncer& operator=(const BackgroundSyncer&) = delete;
  // A sync is wanted; returns at once.
  void Kick();

 private:
  void Run();

  sqlite3_vfs* const vfs_;
  const std::string path_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;  // Guarded by mu_.
  bool stop_ = false;    // Guarded by mu_.
  std::thread thread_;
};

class ImageSink final : public core::SnapshotSink {
 public:
  // Platform files: the received file is synced every this many bytes, on
  // a thread.
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
  // The received image's file (for Restore); whether this process checked
  // it (and the core installed it since); and that Restore took it: the
  // next transfer may begin.
  const std::string& received_path() const { return received_; }
  const char* vfs_name() const { return vfs_name_; }
  bool checked_and_installed() const { return state_ == State::kInstalled; }
  void Restored();

 private:
  enum class State { kIdle, kReceiving, kChecking, kChecked, kInstalled };

  // Writes the database's next bytes (held_ on), counting them.
  absl::Status WriteData(absl::string_view bytes);
  void CloseFile();
  void DeleteReceived();
  absl::Status Sync() const;  // Makes the received file durable.
  void Check();               // Syncs, then sets verdict_.

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
  uint64_t held_ = 0;
  uint32_t crc_ = 0;              // Of the database's part held.
  std::string trailer_;           // What came of the trailer.
  sqlite3_file* file_ = nullptr;  // kReceiving only.
  // Platform files, kReceiving: syncs what Append wrote.
  std::unique_ptr<BackgroundSyncer> syncer_;
  uint64_t unsynced_ = 0;

  // For the log line of a finished image (platform files only).
  std::chrono::steady_clock::time_point began_;
  std::chrono::steady_clock::time_point received_at_;
  std::thread checker_;
  std::atomic<bool> checked_{false};
  mutable std::mutex mu_;
  absl::Status verdict_;  // Guarded by mu_.
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_IMAGE_SINK_H_
