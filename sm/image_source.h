// ImageSource: images of a durable SQLite database for followers
// (core::SnapshotSource; issue 14). The database file is the durable
// state, so the log is compacted without copying it; an image is made only
// when a follower needs one:
//
// - Files: Request() begins a read transaction on a connection of its own,
//   on the Raft loop (it holds exactly the applied state, whatever is
//   written next), and a thread copies the pages it sees with SQLite's
//   backup API into `<database>.image-<index>`, in steps of
//   kPagesPerStep. Writes go on meanwhile (WAL). Read() preads chunks from
//   the file. Nothing the size of the database is held in memory, and the
//   loop's cost is one BEGIN and one row.
// - The simulator (one thread, a registered VFS): Request() copies the
//   database into memory at once, deterministically (its databases are
//   small).
//
// Images are not durable: a restart deletes them and makes a new one when
// a follower asks. A newer image replaces the older, whose transfers then
// start over (Read: NotFound).
//
// Thread-safety: Request, Latest and Read are called by the Raft loop; the
// copying thread publishes its image under a mutex.
#ifndef RAFTSQL_SM_IMAGE_SOURCE_H_
#define RAFTSQL_SM_IMAGE_SOURCE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/storage.h"
#include "sm/file_deleter.h"

struct sqlite3;

namespace raftsql::sm {

class ImageSource final : public core::SnapshotSource {
 public:
  static constexpr int kPagesPerStep = 1024;
  // Read() asks the disk for this many bytes beyond each chunk.
  static constexpr uint64_t kReadAheadBytes = 32 << 20;
  static constexpr std::chrono::seconds kFirstRetryDelay{1};
  static constexpr std::chrono::seconds kMaxRetryDelay{60};

  // Files: `path` is the database file; images left by an earlier run are
  // deleted. Image files are deleted through `deleter` (off the loop),
  // which must outlive the source.
  static std::unique_ptr<ImageSource> ForFile(std::string path,
                                              FileDeleter* deleter);
  // The simulator: images of `db` (the write connection), made in Request.
  static std::unique_ptr<ImageSource> ForConnection(sqlite3* db);

  ImageSource(const ImageSource&) = delete;
  ImageSource& operator=(const ImageSource&) = delete;
  ~ImageSource() override;

  void Request(const core::SnapshotMetadata& metadata) override;
  absl::StatusOr<core::ImageInfo> Latest() const override;
  absl::StatusOr<std::string> Read(uint64_t index, uint64_t offset,
                                   uint64_t max_bytes) const override;
  // Deletes the ready image (one in the making is kept).
  void Release() override;

  // The database file was replaced (a snapshot's file swap): an image in
  // the making stops, the ready one goes. `db`: the simulator's new
  // connection (null for files).
  void Reset(sqlite3* db);
  // Waits for an image in the making, and for the files let go to be
  // deleted (tests).
  void Wait();
  // Images made so far, and why the last one failed ("" if it did not).
  uint64_t images_made() const;
  std::string last_error() const;

 private:
  struct Ready {
    core::ImageInfo info;
    int fd = -1;        // Files.
    std::string path;   // Files.
    std::string bytes;  // The simulator.
  };

  ImageSource(std::string path, sqlite3* db, FileDeleter* deleter);
  // The thread's work: copy `reader`'s read transaction into a file.
  void Copy(sqlite3* reader, core::SnapshotMetadata metadata);
  void Publish(Ready ready);
  void Fail(std::string why);
  std::string ImagePath(uint64_t index) const;

  const std::string path_;      // Files; empty for the simulator.
  sqlite3* db_;                 // The simulator's connection.
  FileDeleter* const deleter_;  // Files.
  std::atomic<bool> stop_{false};
  std::thread copier_;  // Joined before the next one starts.
  std::atomic<bool> copying_{false};

  mutable std::mutex mu_;
  std::optional<Ready> ready_;  // Guarded by mu_.
  uint64_t images_made_ = 0;    // Guarded by mu_.
  std::string last_error_;      // Guarded by mu_.
  // Files: after a failed image (a full disk, say) the next waits, twice as
  // long after each failure up to kMaxRetryDelay, rather than copy the
  // whole database again at every probe of the follower.
  int failures_ = 0;                                // Guarded by mu_.
  std::chrono::steady_clock::time_point retry_at_;  // Guarded by mu_.
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_IMAGE_SOURCE_H_
