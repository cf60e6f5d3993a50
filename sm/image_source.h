// ImageSource: images of a durable SQLite database for followers
// (core::SnapshotSource; issue 14). The database file is the durable
// state, so the log is compacted without copying it, and an image is never
// copied either:
//
// - Files: Request() begins a read transaction on a connection of its own,
//   on the Raft loop (it holds exactly the applied state, whatever is
//   written next; one BEGIN, one row and the wal-index header), and keeps
//   it open while the image is served. A thread reads the transaction's
//   WAL frames once (wal_view.h), then reads the chunks that follow the
//   last Read() ahead of the follower, as that transaction sees them
//   (kReadAheadBytes of them held), so that Read() on the loop takes a
//   chunk read already, or hears Unavailable if the thread is still
//   reading it (the progress callback then says it is read: the loop
//   never waits for the disk); a Read() elsewhere (a transfer that starts
//   over, a second follower) reads on the loop. Writes go on meanwhile (WAL);
//   the WAL cannot restart past the held transaction, so it grows until
//   the image is let go.
// - The simulator (one thread, a registered VFS): Request() copies the
//   database into memory at once, deterministically (its databases are
//   small).
//
// Images are not durable: a restart begins a new one when a follower asks.
// A newer image replaces the older, whose transfers then start over
// (Read: NotFound).
//
// Thread-safety: Request, Latest, Read, Release and Reset are called by the
// Raft loop; the thread publishes its image under a mutex.
#ifndef RAFTSQL_SM_IMAGE_SOURCE_H_
#define RAFTSQL_SM_IMAGE_SOURCE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/storage.h"
#include "sm/file_deleter.h"
#include "sm/image_trailer.h"
#include "sm/wal_view.h"

struct sqlite3;

namespace raftsql::sm {

class ImageSource final : public core::SnapshotSource {
 public:
  // The thread holds at most this many bytes of chunks read ahead of the
  // last Read (memory: one image is served at a time), each chunk as long
  // as the last Read's.
  static constexpr uint64_t kReadAheadBytes = 8 << 20;
  static constexpr std::chrono::seconds kFirstRetryDelay{1};
  static constexpr std::chrono::seconds kMaxRetryDelay{60};

  // How Read frames an image: the database's bytes alone (a backup), or
  // followed by the trailer a follower checks (image_trailer.h).
  enum class Framing { kRaw, kWithTrailer };

  // Files: `path` is the database file; image files an earlier version
  // left beside it are deleted through `deleter` (off the loop), which
  // must outlive the source.
  static std::unique_ptr<ImageSource> ForFile(std::string path,
                                              FileDeleter* deleter,
                                              Framing framing);
  // The simulator: images of `db` (the write connection), made in Request,
  // with trailers.
  static std::unique_ptr<ImageSource> ForConnection(sqlite3* db);

  ImageSource(const ImageSource&) = delete;
  ImageSource& operator=(const ImageSource&) = delete;
  ~ImageSource() override;

  void Request(const core::SnapshotMetadata& metadata) override;
  absl::StatusOr<core::ImageInfo> Latest() const override;
  absl::StatusOr<std::string> Read(uint64_t index, uint64_t offset,
                                   uint64_t max_bytes) const override;
  // Lets the ready image go (its read transaction ends); one being
  // prepared stops too.
  void Release() override;

  // The database file is about to be replaced (a snapshot's file swap, a
  // vacuum): every image and its transaction go. `db`: the simulator's new
  // connection (null for files).
  void Reset(sqlite3* db);
  // Waits until an image being prepared is ready or failed, and for the
  // files let go to be deleted (tests).
  void Wait();
  // Called on the thread when it read a chunk that a Read was told was not
  // read yet (the owner then calls core::Node::SnapshotSourceProgressed on
  // its loop). Null (a backup's source): Read reads such a chunk itself.
  void SetProgressCallback(std::function<void()> progressed);
  // Waits until the thread holds `bytes` of chunks read ahead, or those up
  // to the image's end (tests).
  void WaitUntilAhead(uint64_t bytes) const;
  // Chunks the thread read ahead, and those Read took from them (tests).
  uint64_t chunks_read_ahead() const;
  uint64_t chunks_taken() const;
  // Images made so far, and why the last one failed ("" if it did not).
  uint64_t images_made() const;
  std::string last_error() const;
  // Whether the ready image reads the database file alone: the WAL was
  // restarted under it (wal_view.h; tests).
  bool ReadsDatabaseFileOnly() const;

 private:
  // A read transaction held open, and its pages.
  struct Held;
  struct Ready {
    core::ImageInfo info;  // Its size counts the trailer, if framed so.
    uint64_t data_size = 0;
    std::unique_ptr<Held> held;   // Files.
    std::string bytes;            // The simulator.
    mutable RunningImageCrc crc;  // Of what Read served (the trailer's).
  };

  ImageSource(std::string path, sqlite3* db, FileDeleter* deleter,
              Framing framing);
  // A ready image of `data_size` bytes, framed as this source frames them.
  Ready MakeReady(core::SnapshotMetadata metadata, uint64_t data_size) const;
  // The thread's work: read `held`'s WAL, publish it, then read ahead of
  // the follower until stopped.
  void Prepare(std::unique_ptr<Held> held, core::SnapshotMetadata metadata);
  void ReadAhead(const Held& held, uint64_t data_size);
  // Where the chunks read ahead end (where the thread reads next); under
  // mu_.
  uint64_t AheadEnd() const;
  // Calls progressed_ (off `l`, the thread's hold of mu_) if a Read waits.
  void Progressed(std::unique_lock<std::mutex>& l);
  // The chunk [at, at + len) if the thread read it (the chunks before it
  // are dropped); Unavailable if the thread is reading it; nullopt if it
  // reads elsewhere (it reads after this chunk from now on).
  std::optional<absl::StatusOr<ImageBytes>> TakeAhead(uint64_t at,
                                                      uint64_t len) const;
  void Publish(Ready ready);
  void Fail(std::string why);
  // Stops and joins the thread.
  void StopWorker();

  const std::string path_;  // Files; empty for the simulator.
  const Framing framing_;
  sqlite3* db_;                 // The simulator's connection.
  FileDeleter* const deleter_;  // Files.
  std::atomic<bool> stop_{false};
  std::thread worker_;  // Joined before the next one starts.

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool preparing_ = false;      // Guarded by mu_.
  std::optional<Ready> ready_;  // Guarded by mu_.
  // Read ahead: chunks that follow the last Read's, in order and with no
  // gap, from where it ended; of its length.
  struct Chunk {
    uint64_t offset = 0;
    std::string bytes;
    uint32_t crc = 0;  // Computed by the thread, while the bytes are hot.
  };
  mutable std::deque<Chunk> ahead_;    // Guarded by mu_.
  mutable uint64_t ahead_from_ = 0;    // Guarded by mu_.
  mutable uint64_t chunk_bytes_ = 0;   // Guarded by mu_; 0: no Read yet.
  uint64_t chunks_read_ahead_ = 0;     // Guarded by mu_.
  mutable uint64_t chunks_taken_ = 0;  // Guarded by mu_.
  // A Read heard Unavailable: the next chunk read calls progressed_.
  mutable bool waited_ = false;  // Guarded by mu_.
  // The thread's last read failed: the Read that waits for it hears why.
  mutable absl::Status ahead_error_;  // Guarded by mu_.
  std::function<void()> progressed_;  // Set before images are served.
  uint64_t images_made_ = 0;          // Guarded by mu_.
  std::string last_error_;            // Guarded by mu_.
  // Files: after a failed image the next waits, twice as long after each
  // failure up to kMaxRetryDelay, rather than try again at every probe of
  // the follower.
  int failures_ = 0;                                // Guarded by mu_.
  std::chrono::steady_clock::time_point retry_at_;  // Guarded by mu_.
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_IMAGE_SOURCE_H_
