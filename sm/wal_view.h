// WalView: the pages of a WAL-mode database exactly as one read
// transaction sees them, read from the database file and its WAL without
// copying either (issue 14: a leader serves a follower's image from a read
// transaction it holds, instead of writing a copy of the database first).
//
// The file formats are SQLite's documented ones (fileformat2.html §4): a
// page's content in the transaction is its latest WAL frame at or below
// the transaction's mxFrame, else the page in the database file. While the
// transaction is open that is stable:
//   - a checkpoint copies into the database file only frames at or below
//     the oldest reader's mark, so only pages that have a frame at or below
//     our mxFrame, which are read from the WAL;
//   - the WAL restarts (frames overwritten from the first) only once every
//     frame is checkpointed, and while a reader on a mark other than 0
//     exists it cannot; a reader on mark 0 read the database file alone
//     because everything up to its mxFrame was checkpointed already, and
//     it blocks any further checkpoint, so the database file alone is then
//     its state.
// Each frame is checked as it is read (salts, and the checksum chain the
// scan recorded); a frame that fails was overwritten by a restart, and
// from then on every page is read from the database file.
//
// Reads go through the connection's own file handles (sqlite3_io_methods),
// never a file descriptor of ours: closing one would drop the process's
// POSIX locks on the file.
//
// Thread-safety: Begin on the reader connection's thread; after it, Scan
// once on any thread, then Read from any threads, while the
// connection and its transaction stay open.
#ifndef RAFTSQL_SM_WAL_VIEW_H_
#define RAFTSQL_SM_WAL_VIEW_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_file;

namespace raftsql::sm {

class WalView {
 public:
  static constexpr uint32_t kWalHeaderBytes = 32;
  static constexpr uint32_t kFrameHeaderBytes = 24;
  // The scan reads the WAL in pieces of at most this many bytes.
  static constexpr uint64_t kScanBytes = 1 << 20;

  // `reader` has a read transaction open on "main" in WAL mode, and no
  // commit happened since it began (the caller is the only writer's
  // thread): the wal-index then holds that transaction's mxFrame. The
  // view is valid while the transaction stays open.
  static absl::StatusOr<std::unique_ptr<WalView>> Begin(sqlite3* reader);

  WalView(const WalView&) = delete;
  WalView& operator=(const WalView&) = delete;

  // Reads the transaction's frames and records the latest of each page.
  // DATA_LOSS if they do not check out; CANCELLED once `stop` is set.
  absl::Status Scan(const std::atomic<bool>& stop);

  uint64_t size_bytes() const { return uint64_t{page_count_} * page_size_; }
  uint32_t frames() const { return max_frame_; }
  // Pages read from the WAL, after Scan.
  size_t pages_in_wal() const { return latest_.size(); }
  // The WAL was restarted under the view: the database file alone is read.
  bool database_file_only() const { return database_file_only_; }

  // Bytes [offset, offset + n) of the image (n is cut at its end).
  absl::StatusOr<std::string> Read(uint64_t offset, uint64_t n) const;

 private:
  // A frame's checksums: the chain before it and its own.
  struct Frame {
    uint32_t index = 0;  // 1-based, as SQLite counts frames.
    std::array<uint32_t, 2> before{};
    std::array<uint32_t, 2> after{};
  };

  WalView() = default;
  uint64_t FrameOffset(uint32_t index) const;
  // Reads frame `f` of page `pgno` into `out` (page_size_ bytes); false
  // if it is no longer the frame the scan saw.
  bool ReadFrame(uint32_t pgno, const Frame& f, char* out) const;
  absl::Status ReadDatabase(uint64_t offset, uint64_t n, char* out) const;
  // The WAL's header has other salts than the scan's: it was started over
  // (a frame that no longer checks out was overwritten, not damaged).
  bool WalRestarted() const;
  void Checksum(const unsigned char* data, size_t n,
                std::array<uint32_t, 2>* sum) const;

  sqlite3_file* db_file_ = nullptr;
  sqlite3_file* wal_file_ = nullptr;  // Null if mxFrame is 0.
  uint32_t page_size_ = 0;
  uint32_t page_count_ = 0;
  uint32_t max_frame_ = 0;  // The transaction's mxFrame.
  bool big_endian_checksums_ = false;
  std::array<unsigned char, 8> salts_{};
  std::array<uint32_t, 2> header_checksum_{};
  // Invariant (after Scan): each page's latest frame at or below mxFrame.
  absl::flat_hash_map<uint32_t, Frame> latest_;
  mutable std::atomic<bool> database_file_only_{false};
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_WAL_VIEW_H_
