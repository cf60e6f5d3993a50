#include "sm/change_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "core/codec.h"
#include "obs/log.h"
#include "sm/file_swap.h"

namespace raftsql::sm {
namespace {

constexpr uint8_t kChangesRecord = 1;  // [index][count][changes]
constexpr uint8_t kCoveredRecord = 2;  // [index]: the batch through it
constexpr size_t kRecordHeader = 9;    // crc, length, type
// A covered record's bytes: the header and the index.
constexpr uint64_t kMarkerRecordBytes = kRecordHeader + 8;
// A record's length field is checked against this before reading it.
constexpr uint64_t kMaxRecordBytes = uint64_t{1} << 30;

absl::Status Errno(const char* what, const std::string& path) {
  return absl::DataLossError(absl::StrCat("change log: ", what, " ", path, ": ",
                                          std::strerror(errno)));
}

bool ReadFully(int fd, char* p, size_t n, uint64_t at) {
  while (n > 0) {
    const ssize_t got = pread(fd, p, n, static_cast<off_t>(at));
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      return false;
    }
    p += got;
    n -= static_cast<size_t>(got);
    at += static_cast<uint64_t>(got);
  }
  return true;
}

std::optional<Value> GetValue(std::string_view& in) {
  if (in.empty()) return std::nullopt;
  const auto type = static_cast<Value::Type>(in[0]);
  in.remove_prefix(1);
  switch (type) {
    case Value::Type::kNull:
      return Value::Null();
    case Value::Type::kInteger: {
      auto v = core::GetFixed64(in);
      if (!v) return std::nullopt;
      return Value::Integer(static_cast<int64_t>(*v));
    }
    case Value::Type::kReal: {
      auto v = core::GetFixed64(in);
      if (!v) return std::nullopt;
      double d;
      std::memcpy(&d, &*v, sizeof(d));
      return Value::Real(d);
    }
    case Value::Type::kText:
    case Value::Type::kBlob: {
      auto b = core::GetBytes(in);
      if (!b) return std::nullopt;
      return type == Value::Type::kText ? Value::Text(std::string(*b))
                                        : Value::Blob(std::string(*b));
    }
  }
  return std::nullopt;
}

// The changes of one kChangesRecord payload with index >= from.
bool DecodeChanges(std::string_view in, uint64_t from,
                   std::vector<Change>* out) {
  auto index = core::GetFixed64(in);
  auto count = core::GetFixed32(in);
  if (!index || !count) return false;
  if (*index < from) return true;
  for (uint32_t i = 0; i < *count; ++i) {
    Change c;
    c.index = *index;
    if (in.empty()) return false;
    c.op = static_cast<Change::Op>(in[0]);
    in.remove_prefix(1);
    auto table = core::GetBytes(in);
    auto rowid = core::GetFixed64(in);
    auto old_rowid = core::GetFixed64(in);
    auto n = core::GetFixed32(in);
    if (!table || !rowid || !old_rowid || !n || *n > in.size()) return false;
    c.table = std::string(*table);
    c.rowid = static_cast<int64_t>(*rowid);
    c.old_rowid = static_cast<int64_t>(*old_rowid);
    c.values.reserve(*n);
    for (uint32_t v = 0; v < *n; ++v) {
      std::optional<Value> value = GetValue(in);
      if (!value) return false;
      c.values.push_back(std::move(*value));
    }
    out->push_back(std::move(c));
  }
  return true;
}

// Whether `in` starts with a whole record (by its length; ReadRecord
// checks the rest).
bool HoldsARecord(std::string_view in) {
  if (in.size() < kRecordHeader) return false;
  (void)core::GetFixed32(in);
  const std::optional<uint32_t> length = core::GetFixed32(in);
  return length && (*length > kMaxRecordBytes || in.size() >= *length + 1);
}

// The index a record is about (both kinds start with it).
std::optional<uint64_t> RecordIndex(const core::Record& r) {
  std::string_view p = r.payload;
  return core::GetFixed64(p);
}

}  // namespace

void EncodeChange(const Change& change, std::string* out) {
  out->push_back(static_cast<char>(change.op));
  core::PutBytes(*out, change.table);
  core::PutFixed64(*out, static_cast<uint64_t>(change.rowid));
  core::PutFixed64(*out, static_cast<uint64_t>(change.old_rowid));
  core::PutFixed32(*out, static_cast<uint32_t>(change.values.size()));
  for (const Value& v : change.values) PutValue(*out, v);
}

absl::StatusOr<std::unique_ptr<ChangeLog>> ChangeLog::Open(
    std::string dir, uint64_t applied, ChangeLogOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::DataLossError(
        absl::StrCat("change log: cannot create ", dir, ": ", ec.message()));
  }
  std::unique_ptr<ChangeLog> log(new ChangeLog(std::move(dir), options));
  absl::Status s = log->Recover(applied);
  if (!s.ok()) {
    obs::Log(obs::Level::kWarn, "watch",
             absl::StrFormat("%s; the change log starts after %llu",
                             std::string(s.message()).c_str(),
                             static_cast<unsigned long long>(applied)));
    s = log->StartOver(applied);
    if (!s.ok()) return s;
  }
  return log;
}

ChangeLog::~ChangeLog() {
  if (fd_ >= 0) close(fd_);
}

std::string ChangeLog::SegmentPath(uint64_t first) const {
  return absl::StrFormat("%s/%020u.log", dir_, first);
}

absl::Status ChangeLog::Recover(uint64_t applied) {
  std::vector<uint64_t> firsts;
  for (const auto& f : std::filesystem::directory_iterator(dir_)) {
    const std::string name = f.path().filename().string();
    uint64_t first = 0;
    if (name.size() == 24 && name.ends_with(".log") &&
        absl::SimpleAtoi(name.substr(0, 20), &first)) {
      firsts.push_back(first);
    } else {
      std::filesystem::remove(f.path());  // A stray file of ours.
    }
  }
  std::sort(firsts.begin(), firsts.end());
  // None, or none reaching back to the database (a reset's first index
  // beyond what a crash left applied): the log starts here.
  if (firsts.empty() || firsts.front() > applied + 1) return StartOver(applied);
  // A complete segment ends with its last batch's marker, whose index is
  // the next segment's first less one: segments that end at or below the
  // applied index are checked by that tail alone (a restart used to read
  // every kept byte: 1.2 s for the default 256 MiB). The first segment
  // that ends beyond it (or the newest) is read through: records beyond
  // the applied index (a batch appended before a COMMIT a crash stopped)
  // or a torn one end the log there, and later segments go.
  std::map<uint64_t, uint64_t> kept;
  size_t i = 0;
  for (; i + 1 < firsts.size(); ++i) {
    const uint64_t last = firsts[i + 1] - 1;
    if (last > applied) break;  // Ends beyond: read through.
    absl::StatusOr<uint64_t> bytes = CompleteSegmentBytes(firsts[i], last);
    if (!bytes.ok()) return bytes.status();
    kept[firsts[i]] = *bytes;
  }
  const uint64_t first = firsts[i];
  uint64_t covered = first - 1;
  absl::StatusOr<uint64_t> good = ReadThrough(first, applied, &covered);
  if (!good.ok()) return good.status();
  kept[first] = *good;
  for (size_t j = i + 1; j < firsts.size(); ++j) {
    std::filesystem::remove(SegmentPath(firsts[j]));
  }
  if (covered < applied) {
    // A power cut took the log's tail (or a snapshot's install was cut
    // short): changes up to `applied` are not all here.
    return absl::DataLossError(absl::StrCat("change log: covers ", covered,
                                            ", the database ", applied));
  }
  fd_ = open(SegmentPath(first).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) return Errno("open", SegmentPath(first));
  std::lock_guard<std::mutex> l(mu_);
  segments_ = std::move(kept);
  first_index_ = segments_.begin()->first;
  covered_ = covered;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ChangeLog::CompleteSegmentBytes(uint64_t first,
                                                         uint64_t last) const {
  const std::string path = SegmentPath(first);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  struct stat st;
  std::string tail(kMarkerRecordBytes, '\0');
  const bool read =
      fstat(fd, &st) == 0 &&
      static_cast<uint64_t>(st.st_size) >= kMarkerRecordBytes &&
      ReadFully(fd, tail.data(), tail.size(),
                static_cast<uint64_t>(st.st_size) - kMarkerRecordBytes);
  close(fd);
  std::string_view in = tail;
  const std::optional<core::Record> r =
      read ? core::ReadRecord(in) : std::nullopt;
  if (!r || !in.empty() || r->type != kCoveredRecord ||
      RecordIndex(*r) != last) {
    // A power cut took its tail (it was never synced).
    return absl::DataLossError(
        absl::StrCat("change log: segment ", first, " does not end at ", last));
  }
  return static_cast<uint64_t>(st.st_size);
}

absl::StatusOr<uint64_t> ChangeLog::ReadThrough(uint64_t first,
                                                uint64_t applied,
                                                uint64_t* covered) {
  const std::string path = SegmentPath(first);
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return Errno("stat", path);
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  if (!ReadFully(fd, data.data(), data.size(), 0)) {
    close(fd);
    return Errno("read", path);
  }
  std::string_view in = data;
  uint64_t good = 0;
  while (std::optional<core::Record> r = core::ReadRecord(in)) {
    std::optional<uint64_t> index = RecordIndex(*r);
    if (!index || *index > applied) break;
    good = data.size() - in.size();
    if (r->type == kCoveredRecord) {
      *covered = *index;
      AddMark(first, *covered + 1, good);
    }
  }
  if (good < data.size() && ftruncate(fd, static_cast<off_t>(good)) != 0) {
    close(fd);
    return Errno("truncate", path);
  }
  close(fd);
  return good;
}

absl::Status ChangeLog::StartOver(uint64_t index) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  std::vector<uint64_t> old;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [first, bytes] : segments_) old.push_back(first);
    segments_.clear();
    marks_.clear();
    ++generation_;
    first_index_ = index + 1;
    covered_ = index;
  }
  for (uint64_t first : old) std::filesystem::remove(SegmentPath(first));
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir_, ec)) {
    std::filesystem::remove(f.path(), ec);
  }
  return NewSegment(index + 1);
}

absl::Status ChangeLog::NewSegment(uint64_t first) {
  const std::string path = SegmentPath(first);
  const int fd = open(
      path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("create", path);
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  std::lock_guard<std::mutex> l(mu_);
  segments_[first] = 0;
  return absl::OkStatus();
}

void ChangeLog::Append(std::string_view entries, uint64_t covered) {
  std::string payload;
  core::PutFixed64(payload, covered);
  std::string marker;
  core::AppendRecord(marker, kCoveredRecord, payload);
  // The entries' records and the batch's marker in one writev (no copy).
  const size_t total = entries.size() + marker.size();
  absl::Status s;
  size_t done = 0;
  while (s.ok() && done < total) {
    iovec parts[2];
    int n = 0;
    if (done < entries.size()) {
      parts[n++] = {const_cast<char*>(entries.data()) + done,
                    entries.size() - done};
    }
    const size_t in_marker = done > entries.size() ? done - entries.size() : 0;
    parts[n++] = {marker.data() + in_marker, marker.size() - in_marker};
    const ssize_t put = writev(fd_, parts, n);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) s = Errno("append to", dir_);
    if (put > 0) done += static_cast<size_t>(put);
  }
  const size_t written = total;
  if (!s.ok()) {
    obs::Log(obs::Level::kWarn, "watch",
             absl::StrFormat("%s; the change log starts after %llu",
                             std::string(s.message()).c_str(),
                             static_cast<unsigned long long>(covered)));
    (void)StartOver(covered);
  } else {
    uint64_t newest_bytes;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto& [segment, bytes] = *segments_.rbegin();
      const uint64_t before = covered_;
      const uint64_t at = bytes;
      newest_bytes = (bytes += written);
      covered_ = covered;
      AddMarkLocked(segment, before + 1, at);
    }
    if (newest_bytes >= options_.segment_bytes) {
      if (NewSegment(covered + 1).ok()) DropOldSegments();
    }
  }
  Notify();
}

void ChangeLog::AddMark(uint64_t segment, uint64_t index, uint64_t offset) {
  std::lock_guard<std::mutex> l(mu_);
  AddMarkLocked(segment, index, offset);
}

void ChangeLog::AddMarkLocked(uint64_t segment, uint64_t index,
                              uint64_t offset) {
  std::vector<Mark>& marks = marks_[segment];
  if (offset == 0) return;  // The segment's start needs none.
  if (!marks.empty() && offset - marks.back().offset < kMarkBytes) return;
  marks.push_back(Mark{index, offset});
}

void ChangeLog::DropOldSegments() {
  std::vector<uint64_t> drop;
  {
    std::lock_guard<std::mutex> l(mu_);
    uint64_t total = 0;
    for (const auto& [first, bytes] : segments_) total += bytes;
    while (segments_.size() > 1 && total > options_.max_bytes) {
      total -= segments_.begin()->second;
      drop.push_back(segments_.begin()->first);
      marks_.erase(segments_.begin()->first);
      segments_.erase(segments_.begin());
      first_index_ = segments_.begin()->first;
    }
  }
  // A cursor reading one keeps its descriptor: unlinking frees its pages
  // when it lets go.
  for (uint64_t first : drop) std::filesystem::remove(SegmentPath(first));
}

void ChangeLog::Reset(uint64_t index) {
  const absl::Status s = StartOver(index);
  if (!s.ok()) {
    obs::Log(obs::Level::kWarn, "watch",
             absl::StrFormat("%s", std::string(s.message()).c_str()));
  }
  Notify();
}

absl::Status ChangeLog::Sync() const {
  // First indexes only grow (a start over begins after the covered index),
  // so every segment an append before this call went to is from
  // unsynced_from_ on.
  std::vector<uint64_t> firsts;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = segments_.lower_bound(unsynced_from_); it != segments_.end();
         ++it) {
      firsts.push_back(it->first);
    }
  }
  for (uint64_t first : firsts) {
    // One dropped meanwhile needs nothing.
    absl::Status s = SyncFileByName(SegmentPath(first));
    if (!s.ok()) return s;
  }
  // Only the newest may take more appends.
  if (!firsts.empty()) {
    std::lock_guard<std::mutex> l(mu_);
    unsynced_from_ = std::max(unsynced_from_, firsts.back());
  }
  return absl::OkStatus();
}

uint64_t ChangeLog::first_index() const {
  std::lock_guard<std::mutex> l(mu_);
  return first_index_;
}

uint64_t ChangeLog::covered() const {
  std::lock_guard<std::mutex> l(mu_);
  return covered_;
}

uint64_t ChangeLog::bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t total = 0;
  for (const auto& [first, bytes] : segments_) total += bytes;
  return total;
}

void ChangeLog::SetListener(std::function<void()> listener) {
  std::lock_guard<std::mutex> l(mu_);
  listener_ = std::move(listener);
}

void ChangeLog::Notify() {
  std::function<void()> listener;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!listener_) return;
    listener = listener_;
  }
  listener();
}

void ChangeLog::CheckInvariants() const {
  std::lock_guard<std::mutex> l(mu_);
  CHECK(!segments_.empty());
  CHECK_EQ(first_index_, segments_.begin()->first);
  CHECK_GE(covered_ + 1, segments_.rbegin()->first);
  uint64_t total = 0;
  for (const auto& [first, bytes] : segments_) {
    struct stat st;
    CHECK_EQ(stat(SegmentPath(first).c_str(), &st), 0);
    CHECK_EQ(static_cast<uint64_t>(st.st_size), bytes);
    total += bytes;
  }
  CHECK(segments_.size() == 1 ||
        total - segments_.rbegin()->second <= options_.max_bytes);
  CHECK_GE(fd_, 0);
}

absl::StatusOr<std::unique_ptr<ChangeLog::Cursor>> ChangeLog::Read(
    uint64_t from) const {
  std::unique_ptr<Cursor> c(new Cursor(this, from));
  uint64_t segment;
  uint64_t offset = 0, covered = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (from < first_index_) {
      return absl::OutOfRangeError(
          absl::StrCat("compacted: the oldest index this node's change log "
                       "holds is ",
                       first_index_, " (asked from ", from, ")"));
    }
    c->generation_ = generation_;
    // The newest segment starting at or before `from`, and in it the last
    // mark at or before `from`.
    auto it = segments_.upper_bound(from);
    --it;
    segment = it->first;
    if (auto m = marks_.find(segment); m != marks_.end()) {
      for (const Mark& mark : m->second) {
        if (mark.index > from) break;
        offset = mark.offset;
        covered = mark.index - 1;
      }
    }
  }
  absl::Status s =
      c->OpenSegment(segment, offset, offset == 0 ? segment - 1 : covered);
  if (!s.ok()) return s;
  return c;
}

ChangeLog::Cursor::~Cursor() {
  if (fd_ >= 0) close(fd_);
}

absl::Status ChangeLog::Cursor::OpenSegment(uint64_t first, uint64_t offset,
                                            uint64_t covered) {
  const int fd = open(log_->SegmentPath(first).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::OutOfRangeError(absl::StrCat(
        "compacted: the change log dropped segment ", first, " meanwhile"));
  }
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  segment_ = first;
  offset_ = offset;
  covered_ = offset == 0 ? first - 1 : covered;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Change>> ChangeLog::Cursor::Next(size_t max_bytes,
                                                            uint64_t* covered) {
  std::vector<Change> out;
  while (true) {
    uint64_t end = 0;
    bool found = false, newest = false;
    std::optional<uint64_t> next;
    {
      std::lock_guard<std::mutex> l(log_->mu_);
      if (generation_ != log_->generation_) {
        return absl::OutOfRangeError(absl::StrCat(
            "compacted: this node's change log started over after ",
            log_->first_index_ - 1,
            " (a snapshot from the leader, or a "
            "power cut); resume from there"));
      }
      auto it = log_->segments_.find(segment_);
      if (it != log_->segments_.end()) {
        found = true;
        end = it->second;
        newest = std::next(it) == log_->segments_.end();
      }
      auto after = log_->segments_.upper_bound(segment_);
      if (after != log_->segments_.end()) next = after->first;
    }
    if (!found) {
      // Dropped while we read it: its size is final.
      struct stat st;
      if (fstat(fd_, &st) != 0) return Errno("stat", log_->dir_);
      end = static_cast<uint64_t>(st.st_size);
    }
    // Whole records, at least one, about max_bytes of them.
    while (offset_ < end &&
           (buffer_.size() < max_bytes || !HoldsARecord(buffer_))) {
      const uint64_t want = std::min<uint64_t>(end - offset_, max_bytes);
      const size_t had = buffer_.size();
      buffer_.resize(had + want);
      if (!ReadFully(fd_, buffer_.data() + had, want, offset_)) {
        return Errno("read", log_->dir_);
      }
      bytes_read_ += want;
      offset_ += want;
    }
    std::string_view in = buffer_;
    while (true) {
      std::string_view rest = in;
      std::optional<core::Record> r = core::ReadRecord(rest);
      if (!r) break;
      in = rest;
      if (r->type == kCoveredRecord) {
        covered_ = RecordIndex(*r).value_or(covered_);
      } else if (r->type == kChangesRecord &&
                 !DecodeChanges(r->payload, from_, &out)) {
        return absl::DataLossError("change log: a malformed record");
      }
    }
    if (HoldsARecord(in)) {
      // Whole by its length, yet unreadable: not what Append wrote.
      return absl::DataLossError("change log: a corrupted record");
    }
    buffer_.erase(0, buffer_.size() - in.size());
    *covered = covered_;
    if (!out.empty()) return out;
    // Everything read was before `from_` (a reader starting mid-segment):
    // read on rather than answer "nothing yet" with more to read.
    if (offset_ < end) continue;
    if (newest || !next) return out;  // All there is, for now.
    if (!buffer_.empty()) {
      return absl::DataLossError("change log: a segment ends mid-record");
    }
    if (*next != covered_ + 1) {
      return absl::OutOfRangeError(
          absl::StrCat("compacted: the change log dropped indexes after ",
                       covered_, " before this reader got to them"));
    }
    absl::Status s = OpenSegment(*next);
    if (!s.ok()) return s;
  }
}

}  // namespace raftsql::sm
