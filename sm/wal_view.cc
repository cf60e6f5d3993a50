#include "sm/wal_view.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/sqlite_util.h"

namespace raftsql::sm {
namespace {

constexpr uint32_t kWalMagic = 0x377f0682;  // | 1: big-endian checksums.
constexpr uint32_t kWalVersion = 3007000;
// The wal-index header (fileformat2.html §4.5): two copies of 48 bytes at
// the start of the shared-memory file, in the machine's byte order.
constexpr int kIndexHeaderBytes = 48;
constexpr int kShmRegionBytes = 32768;
constexpr int kIndexIsInit = 12;
constexpr int kIndexMaxFrame = 16;
constexpr int kIndexPageCount = 20;
constexpr int kIndexSalts = 32;
// The WAL header's and a frame header's fields (big-endian).
constexpr int kWalPageSize = 8;
constexpr int kWalSalts = 16;
constexpr int kWalChecksum = 24;
constexpr int kFramePage = 0;
constexpr int kFrameCommitPages = 4;
constexpr int kFrameSalts = 8;
constexpr int kFrameChecksum = 16;
constexpr int kFrameChecksummed = 8;  // Header bytes in the checksum.

uint32_t Big32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | p[3];
}

uint32_t Little32(const unsigned char* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) |
         (uint32_t{p[1]} << 8) | p[0];
}

uint32_t Native32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

absl::StatusOr<int64_t> PragmaValue(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc);
  rc = sqlite3_step(stmt);
  const int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) return SqliteError(db, rc);
  return v;
}

// xRead's whole-or-error (SQLITE_IOERR_SHORT_READ zero-fills the rest:
// the pages beyond the database file's end are in the WAL).
bool ReadFile(sqlite3_file* f, void* out, uint64_t n, uint64_t offset) {
  const int rc = f->pMethods->xRead(f, out, static_cast<int>(n),
                                    static_cast<sqlite3_int64>(offset));
  return rc == SQLITE_OK || rc == SQLITE_IOERR_SHORT_READ;
}

}  // namespace

absl::StatusOr<std::unique_ptr<WalView>> WalView::Begin(sqlite3* reader) {
  CHECK(reader != nullptr);
  CHECK_EQ(sqlite3_get_autocommit(reader), 0);  // A transaction is open.
  std::unique_ptr<WalView> view(new WalView());
  absl::StatusOr<int64_t> page_size = PragmaValue(reader, "PRAGMA page_size");
  if (!page_size.ok()) return page_size.status();
  absl::StatusOr<int64_t> pages = PragmaValue(reader, "PRAGMA page_count");
  if (!pages.ok()) return pages.status();
  view->page_size_ = static_cast<uint32_t>(*page_size);
  view->page_count_ = static_cast<uint32_t>(*pages);
  if (sqlite3_file_control(reader, "main", SQLITE_FCNTL_FILE_POINTER,
                           &view->db_file_) != SQLITE_OK ||
      view->db_file_ == nullptr || view->db_file_->pMethods == nullptr ||
      view->db_file_->pMethods->iVersion < 2) {
    return absl::FailedPreconditionError("the database has no file to read");
  }
  volatile void* region = nullptr;
  const int rc = view->db_file_->pMethods->xShmMap(view->db_file_, 0,
                                                   kShmRegionBytes, 0, &region);
  if (rc != SQLITE_OK || region == nullptr) {
    return absl::FailedPreconditionError(
        "the database is not in WAL mode (no wal-index)");
  }
  unsigned char index[2 * kIndexHeaderBytes];
  for (size_t i = 0; i < sizeof index; ++i) {
    index[i] = static_cast<const volatile unsigned char*>(region)[i];
  }
  if (std::memcmp(index, index + kIndexHeaderBytes, kIndexHeaderBytes) != 0 ||
      index[kIndexIsInit] != 1) {
    return absl::UnavailableError("the wal-index is being changed");
  }
  view->max_frame_ = Native32(index + kIndexMaxFrame);
  const uint32_t index_pages = Native32(index + kIndexPageCount);
  if (view->max_frame_ > 0 && index_pages != view->page_count_) {
    return absl::UnavailableError(
        absl::StrCat("a commit came after the read began (", index_pages,
                     " pages, not ", view->page_count_, ")"));
  }
  if (view->max_frame_ == 0) return view;
  if (sqlite3_file_control(reader, "main", SQLITE_FCNTL_JOURNAL_POINTER,
                           &view->wal_file_) != SQLITE_OK ||
      view->wal_file_ == nullptr || view->wal_file_->pMethods == nullptr) {
    return absl::FailedPreconditionError("the database's WAL is not open");
  }
  unsigned char header[kWalHeaderBytes];
  if (!ReadFile(view->wal_file_, header, sizeof header, 0)) {
    return absl::DataLossError("cannot read the WAL's header");
  }
  const uint32_t magic = Big32(header);
  view->big_endian_checksums_ = (magic & 1) != 0;
  std::array<uint32_t, 2> sum{};
  view->Checksum(header, kWalChecksum, &sum);
  if ((magic & ~1u) != kWalMagic || Big32(header + 4) != kWalVersion ||
      Big32(header + kWalPageSize) != view->page_size_ ||
      sum[0] != Big32(header + kWalChecksum) ||
      sum[1] != Big32(header + kWalChecksum + 4) ||
      std::memcmp(header + kWalSalts, index + kIndexSalts, 8) != 0) {
    return absl::DataLossError("the WAL's header does not match its index");
  }
  std::memcpy(view->salts_.data(), header + kWalSalts, 8);
  view->header_checksum_ = sum;
  return view;
}

uint64_t WalView::FrameOffset(uint32_t index) const {
  return kWalHeaderBytes +
         uint64_t{index - 1} * (kFrameHeaderBytes + page_size_);
}

void WalView::Checksum(const unsigned char* data, size_t n,
                       std::array<uint32_t, 2>* sum) const {
  CHECK_EQ(n % 8, 0u);
  uint32_t s0 = (*sum)[0];
  uint32_t s1 = (*sum)[1];
  for (size_t i = 0; i < n; i += 8) {
    const uint32_t x0 =
        big_endian_checksums_ ? Big32(data + i) : Little32(data + i);
    const uint32_t x1 =
        big_endian_checksums_ ? Big32(data + i + 4) : Little32(data + i + 4);
    s0 += x0 + s1;
    s1 += x1 + s0;
  }
  *sum = {s0, s1};
}

absl::Status WalView::Scan(const std::atomic<bool>& stop) {
  if (max_frame_ == 0) return absl::OkStatus();
  const uint64_t frame_bytes = kFrameHeaderBytes + page_size_;
  const uint32_t per_piece =
      static_cast<uint32_t>(std::max<uint64_t>(1, kScanBytes / frame_bytes));
  std::string piece(per_piece * frame_bytes, '\0');
  std::array<uint32_t, 2> sum = header_checksum_;
  uint32_t commit_pages = 0;
  for (uint32_t first = 1; first <= max_frame_; first += per_piece) {
    if (stop) return absl::CancelledError("stopped");
    const uint32_t count = std::min(per_piece, max_frame_ - first + 1);
    if (!ReadFile(wal_file_, piece.data(), count * frame_bytes,
                  FrameOffset(first))) {
      return absl::DataLossError("cannot read the WAL");
    }
    for (uint32_t i = 0; i < count; ++i) {
      const auto* frame = reinterpret_cast<const unsigned char*>(piece.data()) +
                          i * frame_bytes;
      Frame f{.index = first + i, .before = sum};
      Checksum(frame, kFrameChecksummed, &sum);
      Checksum(frame + kFrameHeaderBytes, page_size_, &sum);
      f.after = sum;
      if (std::memcmp(frame + kFrameSalts, salts_.data(), 8) != 0 ||
          sum[0] != Big32(frame + kFrameChecksum) ||
          sum[1] != Big32(frame + kFrameChecksum + 4)) {
        // Overwritten by a restart (wal_view.h), or damaged.
        if (WalRestarted()) {
          database_file_only_ = true;
          latest_.clear();
          return absl::OkStatus();
        }
        return absl::DataLossError(
            absl::StrCat("WAL frame ", f.index, " does not check out"));
      }
      latest_[Big32(frame + kFramePage)] = f;
      commit_pages = Big32(frame + kFrameCommitPages);
    }
  }
  // The transaction's last frame ends a commit of its page count.
  if (commit_pages != page_count_) {
    return absl::DataLossError(absl::StrCat("the WAL's last commit holds ",
                                            commit_pages, " pages, not ",
                                            page_count_));
  }
  return absl::OkStatus();
}

bool WalView::WalRestarted() const {
  // A restart writes a header with new salts before it overwrites a frame.
  unsigned char header[kWalHeaderBytes];
  return ReadFile(wal_file_, header, sizeof header, 0) &&
         std::memcmp(header + kWalSalts, salts_.data(), 8) != 0;
}

bool WalView::ReadFrame(uint32_t pgno, const Frame& f, char* out) const {
  std::string frame(kFrameHeaderBytes + page_size_, '\0');
  if (!ReadFile(wal_file_, frame.data(), frame.size(), FrameOffset(f.index))) {
    return false;
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(frame.data());
  std::array<uint32_t, 2> sum = f.before;
  Checksum(bytes, kFrameChecksummed, &sum);
  Checksum(bytes + kFrameHeaderBytes, page_size_, &sum);
  if (Big32(bytes + kFramePage) != pgno || sum != f.after ||
      std::memcmp(bytes + kFrameSalts, salts_.data(), 8) != 0) {
    return false;
  }
  std::memcpy(out, frame.data() + kFrameHeaderBytes, page_size_);
  return true;
}

absl::Status WalView::ReadDatabase(uint64_t offset, uint64_t n,
                                   char* out) const {
  if (!ReadFile(db_file_, out, n, offset)) {
    return absl::DataLossError(
        absl::StrCat("cannot read the database at ", offset));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> WalView::Read(uint64_t offset, uint64_t n) const {
  if (offset > size_bytes()) return absl::OutOfRangeError("beyond the image");
  n = std::min(n, size_bytes() - offset);
  if (n == 0) return std::string();
  const uint64_t first = offset / page_size_;  // 0-based pages.
  const uint64_t last = (offset + n - 1) / page_size_;
  std::string pages((last - first + 1) * page_size_, '\0');
  absl::Status s = ReadDatabase(first * page_size_, pages.size(), pages.data());
  if (!s.ok()) return s;
  for (uint64_t p = first; p <= last && !database_file_only_; ++p) {
    const auto it = latest_.find(static_cast<uint32_t>(p + 1));
    if (it == latest_.end()) continue;
    char* out = pages.data() + (p - first) * page_size_;
    if (ReadFrame(it->first, it->second, out)) continue;
    if (!WalRestarted()) {
      return absl::DataLossError(absl::StrCat("WAL frame ", it->second.index,
                                              " changed under a read"));
    }
    // Restarted: everything up to the transaction is in the database file,
    // which no checkpoint changes while it lasts (wal_view.h).
    database_file_only_ = true;
    s = ReadDatabase(first * page_size_, pages.size(), pages.data());
    if (!s.ok()) return s;
  }
  if (offset == first * page_size_ && n == pages.size()) return pages;
  return pages.substr(offset - first * page_size_, n);
}

}  // namespace raftsql::sm
