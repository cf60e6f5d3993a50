// VacuumBacklog: the entries a vacuum's copy has yet to apply (vacuum.h),
// oldest first. In memory up to kMemoryBytes; beyond that they go to a file
// beside the copy and are read back in order, so that a copy that takes
// minutes under sustained writes costs disk, not memory (a 2.25 GB copy
// under 10 MB/s of writes fell 256 MiB behind in 21-26 s). Once the file
// is read to its end it is emptied and memory takes over again.
//
// Not thread-safe: the Vacuum calls it under its mutex.
#ifndef RAFTSQL_SM_VACUUM_BACKLOG_H_
#define RAFTSQL_SM_VACUUM_BACKLOG_H_

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/types.h"

namespace raftsql::sm {

class VacuumBacklog {
 public:
  static constexpr uint64_t kMemoryBytes = uint64_t{32} << 20;
  // In memory and in the file together: beyond it Push fails (the vacuum
  // is abandoned, the database stays as it was).
  static constexpr uint64_t kMaxBytes = uint64_t{8} << 30;

  // `file`: where entries beyond kMemoryBytes go (created on first use,
  // deleted by the destructor). `max_bytes`: kMaxBytes but in tests.
  explicit VacuumBacklog(std::string file, uint64_t max_bytes = kMaxBytes);
  ~VacuumBacklog();
  VacuumBacklog(const VacuumBacklog&) = delete;
  VacuumBacklog& operator=(const VacuumBacklog&) = delete;

  // RESOURCE_EXHAUSTED beyond max_bytes; DATA_LOSS if the file fails.
  absl::Status Push(std::span<const core::Entry> entries);
  // Removes and returns up to `max_entries` of the oldest entries.
  absl::StatusOr<std::vector<core::Entry>> Pop(size_t max_entries);
  bool empty() const { return bytes_ == 0; }
  uint64_t bytes() const { return bytes_; }  // Entry::Size() summed.
  bool spilled() const { return write_at_ > read_at_; }
  // Memory holds the oldest entries, ascending, and their bytes counted;
  // the file the rest; within max_bytes. O(entries in memory): tests.
  void CheckInvariants() const;

 private:
  absl::Status Append(const core::Entry& e);
  absl::StatusOr<core::Entry> ReadNext();

  const std::string path_;
  const uint64_t max_bytes_;
  std::deque<core::Entry> memory_;
  uint64_t memory_bytes_ = 0;
  uint64_t bytes_ = 0;
  int fd_ = -1;
  uint64_t read_at_ = 0;   // The file's oldest unread record.
  uint64_t write_at_ = 0;  // Its end.
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_VACUUM_BACKLOG_H_
