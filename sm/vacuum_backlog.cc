#include "sm/vacuum_backlog.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/codec.h"

namespace raftsql::sm {
namespace {

absl::Status FileError(const std::string& what, const std::string& path) {
  return absl::DataLossError(absl::StrCat("vacuum backlog: cannot ", what, " ",
                                          path, ": ", std::strerror(errno)));
}

bool ReadFully(int fd, char* out, size_t n, uint64_t at) {
  while (n > 0) {
    const ssize_t got = pread(fd, out, n, static_cast<off_t>(at));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    out += got;
    n -= static_cast<size_t>(got);
    at += static_cast<uint64_t>(got);
  }
  return true;
}

}  // namespace

VacuumBacklog::VacuumBacklog(std::string file, uint64_t max_bytes)
    : path_(std::move(file)), max_bytes_(max_bytes) {}

VacuumBacklog::~VacuumBacklog() {
  if (fd_ < 0) return;
  close(fd_);
  unlink(path_.c_str());
}

absl::Status VacuumBacklog::Push(std::span<const core::Entry> entries) {
  for (const core::Entry& e : entries) {
    if (bytes_ + e.Size() > max_bytes_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the copy fell more than ", max_bytes_,
                       " bytes of entries behind the database"));
    }
    // Older entries may wait in the file: then this one goes after them.
    if (spilled() || memory_bytes_ + e.Size() > kMemoryBytes) {
      absl::Status s = Append(e);
      if (!s.ok()) return s;
    } else {
      memory_.push_back(e);
      memory_bytes_ += e.Size();
    }
    bytes_ += e.Size();
  }
  return absl::OkStatus();
}

absl::Status VacuumBacklog::Append(const core::Entry& e) {
  if (fd_ < 0) {
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) return FileError("create", path_);
  }
  std::string record;
  core::EncodeEntry(record, e);
  std::string framed;
  core::PutFixed64(framed, record.size());
  framed += record;
  const char* p = framed.data();
  size_t n = framed.size();
  while (n > 0) {
    const ssize_t put = pwrite(fd_, p, n, static_cast<off_t>(write_at_));
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return FileError("write", path_);
    p += put;
    n -= static_cast<size_t>(put);
    write_at_ += static_cast<uint64_t>(put);
  }
  return absl::OkStatus();
}

absl::StatusOr<core::Entry> VacuumBacklog::ReadNext() {
  char header[8];
  if (!ReadFully(fd_, header, sizeof(header), read_at_)) {
    return FileError("read", path_);
  }
  const uint64_t size = core::DecodeFixed64(header);
  if (size > write_at_ - read_at_ - sizeof(header)) {
    return absl::DataLossError(
        absl::StrCat("vacuum backlog: a record past the end of ", path_));
  }
  std::string record(size, '\0');
  if (!ReadFully(fd_, record.data(), size, read_at_ + sizeof(header))) {
    return FileError("read", path_);
  }
  std::string_view in(record);
  std::optional<core::Entry> e = core::DecodeEntry(in);
  if (!e.has_value() || !in.empty()) {
    return absl::DataLossError(absl::StrCat(
        "vacuum backlog: a record that does not decode in ", path_));
  }
  read_at_ += sizeof(header) + size;
  if (read_at_ == write_at_) {
    // Read to its end: emptied, and memory takes the next entries.
    read_at_ = write_at_ = 0;
    if (ftruncate(fd_, 0) != 0) return FileError("truncate", path_);
  }
  return *std::move(e);
}

absl::StatusOr<std::vector<core::Entry>> VacuumBacklog::Pop(
    size_t max_entries) {
  std::vector<core::Entry> out;
  while (out.size() < max_entries && !empty()) {
    if (!memory_.empty()) {
      out.push_back(std::move(memory_.front()));
      memory_.pop_front();
      memory_bytes_ -= out.back().Size();
    } else {
      absl::StatusOr<core::Entry> e = ReadNext();
      if (!e.ok()) return e.status();
      out.push_back(*std::move(e));
    }
    bytes_ -= out.back().Size();
  }
  return out;
}

void VacuumBacklog::CheckInvariants() const {
  CHECK_LE(read_at_, write_at_);
  CHECK_LE(bytes_, max_bytes_);
  uint64_t sum = 0;
  for (size_t i = 0; i < memory_.size(); ++i) {
    sum += memory_[i].Size();
    if (i > 0) CHECK_LT(memory_[i - 1].index, memory_[i].index);
  }
  CHECK_EQ(sum, memory_bytes_);
  CHECK_LE(memory_bytes_, bytes_);
  if (spilled()) {
    CHECK_GE(fd_, 0);
  } else {
    CHECK_EQ(bytes_, memory_bytes_);
  }
}

}  // namespace raftsql::sm
