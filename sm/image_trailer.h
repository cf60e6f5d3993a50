// An image as Raft sends it to a follower (issue 14: the follower checks
// its size, its checksum and quick_check): the database's bytes, then a
// trailer of kImageTrailerBytes: the magic "raftsqlC", the CRC-32C of the
// bytes before it (4 bytes, little-endian) and a word that says whether
// the sender knew it (1) or not (0: the follower drops the image and
// receives it again from the start).
//
// The sender computes the CRC as it serves the image in order
// (RunningImageCrc), never in a pass of its own (from each chunk's CRC,
// where the thread that read the chunk computed it); the follower as it
// writes. Backups (ImageSource's raw framing) carry no trailer.
#ifndef RAFTSQL_SM_IMAGE_TRAILER_H_
#define RAFTSQL_SM_IMAGE_TRAILER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace raftsql::sm {

inline constexpr uint64_t kImageTrailerBytes = 16;

std::string EncodeImageTrailer(std::optional<uint32_t> crc);
// The CRC `trailer` carries (nullopt: the sender did not know it);
// DATA_LOSS if it is not a trailer.
absl::StatusOr<std::optional<uint32_t>> DecodeImageTrailer(
    absl::string_view trailer);

// OK if `trailer` carries `crc`, the CRC of the bytes received before it:
// ABORTED if the sender did not know its CRC (receive it again from the
// start), DATA_LOSS if the CRCs differ or it is no trailer.
absl::Status CheckImageTrailer(absl::string_view trailer, uint32_t crc);

// The database's bytes of an image held whole in memory (a follower
// without a sink): a framed one's, once its CRC matches (DATA_LOSS if
// not), or all of them for an image without a trailer (an older
// version's snapshot; a database is a whole number of 512-byte multiples,
// a framed image 16 bytes more).
absl::StatusOr<absl::string_view> UnframeImage(absl::string_view image);

// The CRC of an image's first through() bytes, extended by the reads that
// start where it stops (repeats and other readers' reads elsewhere leave
// it as it is): complete once one reader has read the image in order.
class RunningImageCrc {
 public:
  // `crc`: the CRC-32C of `bytes`, if known (else computed here).
  void Saw(uint64_t offset, absl::string_view bytes,
           std::optional<uint32_t> crc = std::nullopt);
  uint64_t through() const { return through_; }
  // The CRC if the first `size` bytes were all seen.
  std::optional<uint32_t> Of(uint64_t size) const;

 private:
  uint32_t crc_ = 0;
  uint64_t through_ = 0;
};

// Bytes of a database read for an image, with their CRC-32C if the reader
// computed it.
struct ImageBytes {
  std::string bytes;
  std::optional<uint32_t> crc;
};

// Serves [offset, offset + n) of the framed image of `data_size` bytes:
// `data` reads the database's part (called only for bytes below
// data_size), and the trailer follows. `crc` is extended by what `data`
// returned.
absl::StatusOr<std::string> ReadFramedImage(
    uint64_t data_size, uint64_t offset, uint64_t n, RunningImageCrc& crc,
    const std::function<absl::StatusOr<ImageBytes>(uint64_t, uint64_t)>& data);

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_IMAGE_TRAILER_H_
