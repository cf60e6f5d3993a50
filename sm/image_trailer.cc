#include "sm/image_trailer.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/codec.h"

namespace raftsql::sm {
namespace {

constexpr char kMagic[] = "raftsqlC";
constexpr size_t kMagicBytes = 8;

}  // namespace

std::string EncodeImageTrailer(std::optional<uint32_t> crc) {
  std::string out(kMagic, kMagicBytes);
  core::PutFixed32(out, crc.value_or(0));
  core::PutFixed32(out, crc.has_value() ? 1 : 0);
  return out;
}

absl::StatusOr<std::optional<uint32_t>> DecodeImageTrailer(
    absl::string_view trailer) {
  if (trailer.size() != kImageTrailerBytes ||
      std::memcmp(trailer.data(), kMagic, kMagicBytes) != 0) {
    return absl::DataLossError("the image ends without its checksum trailer");
  }
  std::string_view rest(trailer.data() + kMagicBytes,
                        trailer.size() - kMagicBytes);
  const std::optional<uint32_t> crc = core::GetFixed32(rest);
  const std::optional<uint32_t> known = core::GetFixed32(rest);
  if (!crc.has_value() || !known.has_value() || *known > 1) {
    return absl::DataLossError("the image's checksum trailer is damaged");
  }
  if (*known == 0) return std::optional<uint32_t>();
  return std::optional<uint32_t>(*crc);
}

absl::Status CheckImageTrailer(absl::string_view trailer, uint32_t crc) {
  absl::StatusOr<std::optional<uint32_t>> sent = DecodeImageTrailer(trailer);
  if (!sent.ok()) return sent.status();
  if (!sent->has_value()) {
    return absl::AbortedError(
        "the sender did not know the image's checksum (it had not read the "
        "image from its start): receiving it again");
  }
  if (**sent != crc) {
    return absl::DataLossError(absl::StrFormat(
        "the image's checksum is %08x, the sender's %08x", crc, **sent));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::string_view> UnframeImage(absl::string_view image) {
  constexpr uint64_t kUnit = 512;  // SQLite's smallest page.
  if (image.size() < kImageTrailerBytes ||
      image.size() % kUnit != kImageTrailerBytes) {
    return image;
  }
  const absl::string_view data =
      image.substr(0, image.size() - kImageTrailerBytes);
  absl::Status intact = CheckImageTrailer(
      image.substr(data.size()),
      core::Crc32c(std::string_view(data.data(), data.size())));
  if (!intact.ok()) return intact;
  return data;
}

void RunningImageCrc::Saw(uint64_t offset, absl::string_view bytes,
                          std::optional<uint32_t> crc) {
  if (offset != through_) return;
  crc_ = crc.has_value()
             ? core::Crc32cCombine(crc_, *crc, bytes.size())
             : core::Crc32cExtend(crc_,
                                  std::string_view(bytes.data(), bytes.size()));
  through_ += bytes.size();
}

std::optional<uint32_t> RunningImageCrc::Of(uint64_t size) const {
  if (through_ != size) return std::nullopt;
  return crc_;
}

absl::StatusOr<std::string> ReadFramedImage(
    uint64_t data_size, uint64_t offset, uint64_t n, RunningImageCrc& crc,
    const std::function<absl::StatusOr<ImageBytes>(uint64_t, uint64_t)>& data) {
  std::string out;
  if (offset < data_size) {
    absl::StatusOr<ImageBytes> part =
        data(offset, std::min(n, data_size - offset));
    if (!part.ok()) return part.status();
    out = std::move(part->bytes);
    crc.Saw(offset, out, part->crc);
  }
  const uint64_t end =
      offset + std::min<uint64_t>(n, data_size + kImageTrailerBytes - offset);
  if (offset + out.size() >= data_size && offset + out.size() < end) {
    const std::string trailer = EncodeImageTrailer(crc.Of(data_size));
    const uint64_t from = offset + out.size() - data_size;
    out.append(trailer, from, end - offset - out.size());
  }
  return out;
}

}  // namespace raftsql::sm
