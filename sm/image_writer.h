// ImageWriter: stores the database part of an image a follower receives
// (ImageSink, issue 14), in the order its bytes are taken. The Raft loop
// only copies a chunk into a bounded ring; the write into the file (a copy
// into new page-cache pages, which waits for the disk once the cache is
// full: a chunk's write once held the loop 220 ms at 4.7 GB) and the
// CRC-32C happen on a thread of the writer's own, or, for the simulator's
// disk, when the owner asks (StoreTaken, at the node's ticks).
//
// Bytes 18-19 of the database are stored as 1 (rollback journal: the
// received file opens on its own, with no WAL beside it); the CRC is of
// the bytes as taken.
//
// Thread-safety: Take, StoreTaken and the accessors are called by one
// thread (the Raft loop); the writer's thread shares the counts under a
// mutex.
#ifndef RAFTSQL_SM_IMAGE_WRITER_H_
#define RAFTSQL_SM_IMAGE_WRITER_H_

#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

struct sqlite3_file;

namespace raftsql::sm {

class ImageWriter {
 public:
  // Bytes taken and not yet stored, at most: the ring's size (a leader's
  // window is 16 chunks of 1 MiB by default).
  static constexpr uint64_t kMaxUnstoredBytes = 32 << 20;
  // Bytes stored between two calls of `stored_more` (and CRC'd at once).
  static constexpr uint64_t kStoreBytes = 1 << 20;

  // Pieces at multiples of this, in multiples of it, may be written
  // with O_DIRECT.
  static constexpr uint64_t kDirectAlignment = 4096;

  // Stores into `file` (owned by the caller; outlives the writer) from
  // offset 0. `threaded`: on a thread, calling `stored_more` after each
  // piece it stores and when a store fails; else StoreTaken stores.
  // `stored_bytes`: called on the storing thread after every piece with
  // the bytes stored so far (the sink syncs as they add up).
  // `direct_fd` (-1: none): the same file opened with O_DIRECT, for the
  // aligned pieces (the others go through `file`): they go from the ring
  // to the disk with no copy into the page cache (on this VM a copy into
  // new page-cache pages ran at about 390 MB/s a core). Owned by the
  // caller.
  ImageWriter(sqlite3_file* file, bool threaded,
              std::function<void()> stored_more,
              std::function<void(uint64_t)> stored_bytes, int direct_fd = -1);
  // Stops after the piece under way.
  ~ImageWriter();
  ImageWriter(const ImageWriter&) = delete;
  ImageWriter& operator=(const ImageWriter&) = delete;

  // Takes the database's next bytes. ResourceExhausted (nothing taken):
  // over kMaxUnstoredBytes would wait; a store's error once one failed.
  absl::Status Take(absl::string_view bytes);
  // Not threaded: stores every byte taken (the first error stops it).
  void StoreTaken();

  uint64_t taken() const { return taken_; }
  uint64_t stored() const;
  // The first store's error (OK while none failed).
  absl::Status error() const;
  // The CRC-32C of the bytes stored.
  uint32_t crc() const;
  // Where the writer's thread spent its time (platform files, for the log
  // line of a received image): storing, and waiting for bytes to store;
  // and how often Take found the ring full (the disk was the slower).
  struct Timing {
    uint64_t storing_ms = 0;
    uint64_t waiting_ms = 0;
    uint64_t ring_full = 0;
  };
  Timing timing() const;

 private:
  void Run();
  // The bytes of the next piece to store from `at`, of `taken` taken.
  static uint64_t PieceBytes(uint64_t at, uint64_t taken);
  // Stores [at, at + n) from the ring; false on an error (set).
  bool StorePiece(uint64_t at, uint64_t n);

  struct FreeRing {
    void operator()(char* p) const { std::free(p); }
  };

  sqlite3_file* const file_;
  const std::function<void()> stored_more_;
  const std::function<void(uint64_t)> stored_bytes_;
  const int direct_fd_;
  const std::unique_ptr<char, FreeRing> ring_;
  uint64_t taken_ = 0;      // The owner's thread only.
  uint64_t ring_full_ = 0;  // The owner's thread only.

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t taken_shared_ = 0;  // Guarded by mu_: the writer's view.
  uint64_t stored_ = 0;        // Guarded by mu_.
  uint32_t crc_ = 0;           // Guarded by mu_.
  absl::Status error_;         // Guarded by mu_.
  bool stop_ = false;          // Guarded by mu_.
  uint64_t storing_us_ = 0;    // Guarded by mu_.
  uint64_t waiting_us_ = 0;    // Guarded by mu_.
  std::thread thread_;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_IMAGE_WRITER_H_
