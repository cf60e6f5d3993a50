// The read side of the durable log, as the Raft core sees it (etcd's Storage).
//
// The runtime writes entries, HardState and snapshots to its LogStore; the core
// only reads them back through this interface. Implementations must be
// consistent with what the runtime persisted in earlier Ready cycles.
//
// Error codes:
//   OutOfRange  (IsCompacted)    the index is below the first retained entry.
//   Unavailable (IsEntryUnavailable)  the index is beyond the last entry.
// Any other error is an I/O failure; the core treats it as fatal.
#ifndef RAFTSQL_CORE_STORAGE_H_
#define RAFTSQL_CORE_STORAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/types.h"

namespace raftsql::core {

absl::Status CompactedError();
absl::Status EntryUnavailableError();
bool IsCompacted(const absl::Status& status);
bool IsEntryUnavailable(const absl::Status& status);

struct InitialState {
  HardState hard_state;
  ConfState conf_state;
};

class Storage {
 public:
  virtual ~Storage() = default;

  virtual absl::StatusOr<InitialState> GetInitialState() const = 0;
  // Entries in [lo, hi), at most `max_bytes` of them but always at least one
  // if any are in range.
  virtual absl::StatusOr<std::vector<Entry>> Entries(
      uint64_t lo, uint64_t hi, uint64_t max_bytes) const = 0;
  // Term of entry i; i may be FirstIndex()-1 (the snapshot's index).
  virtual absl::StatusOr<uint64_t> Term(uint64_t i) const = 0;
  // Index of the first entry available (snapshot index + 1).
  virtual uint64_t FirstIndex() const = 0;
  virtual uint64_t LastIndex() const = 0;
  virtual absl::StatusOr<Snapshot> GetSnapshot() const = 0;
};

// An image ready to send: what it holds and its size in bytes.
struct ImageInfo {
  SnapshotMetadata metadata;
  uint64_t size = 0;
};

// Images of a durable state machine for followers (DESIGN.md §2, rule 5).
// Its files are its durable state, so the log is compacted without a copy
// of it; an image is made only when a follower needs one, off the Raft
// loop where the state machine can (from a consistent read while writes go
// on), and read back in bounded chunks.
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  // Starts an image of the state as it is now, at the state machine's
  // applied index, which `metadata` describes. The runtime calls it when
  // the core asks (Raft::snapshot_wanted); one in the making makes it a
  // no-op.
  virtual void Request(const SnapshotMetadata& metadata) = 0;
  // The image made last. Unavailable while none is ready.
  virtual absl::StatusOr<ImageInfo> Latest() const = 0;
  // Up to `max_bytes` of image `index` from `offset` (at least one byte
  // below its size). NotFound once a newer image replaced it; Unavailable
  // while the chunk is not read yet (a source that reads off the loop: its
  // owner calls RawNode::SnapshotSourceProgressed once it is, and the core
  // asks again); any other error is the disk's.
  virtual absl::StatusOr<std::string> Read(uint64_t index, uint64_t offset,
                                           uint64_t max_bytes) const = 0;
  // No follower has needed an image for a while: the source may free the
  // one it holds (a database's size on disk); the next Request makes anew.
  virtual void Release() {}
};

// A durable state machine's side of receiving an image (a follower's):
// chunks go to its disk, not to memory, and the image is checked and made
// durable before it is installed. The snapshot the core then installs
// holds only Reference(), which the state machine's Restore understands.
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  // Bytes taken of the image being received if it is `metadata`'s, of
  // `size` bytes from `from` (where its next bytes continue); nullopt for
  // another one, or none.
  virtual std::optional<uint64_t> Held(const SnapshotMetadata& metadata,
                                       uint64_t from, uint64_t size) const = 0;
  // Bytes stored of whatever image is being received (0 if none): what the
  // leader hears. A sink may take bytes now and store them later (on a
  // thread: the loop never waits for the page cache); its owner then calls
  // RawNode::SnapshotSinkProgressed when more are stored, or its check is
  // done.
  virtual uint64_t held() const = 0;
  // Starts receiving an image, dropping any other. An error is the disk's.
  virtual absl::Status Begin(const SnapshotMetadata& metadata, uint64_t from,
                             uint64_t size) = 0;
  // Takes the image's next bytes. ResourceExhausted: too many bytes taken
  // wait to be stored; these are not taken, and the transfer goes on. Any
  // other error (a store that failed) drops the image.
  virtual absl::Status Append(absl::string_view bytes) = 0;
  // Every byte is taken: OK once the image is stored, checked and durable;
  // Unavailable while that is under way (the leader's next chunk, or the
  // owner's SnapshotSinkProgressed, asks again); Aborted if the image must
  // be received again though nobody erred (it is dropped, and the transfer
  // starts over); any other error refuses the image as invalid, and it is
  // dropped.
  virtual absl::Status Finish() = 0;
  // Forgets the image being received, or a finished one, deleting it.
  virtual void Drop() = 0;
  // The data of the snapshot the core installs for the finished image.
  virtual std::string Reference() const = 0;
  // The core installed the finished image (Reference()): the sink forgets
  // it, and the state machine's Restore owns it now.
  virtual void Installed() = 0;
};

// Keeps at most `max_bytes` worth of entries, but never less than one.
void LimitSize(std::vector<Entry>& entries, uint64_t max_bytes);

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_STORAGE_H_
