// SimDisk: one node's simulated disk file. Writes land in a volatile page
// cache; Sync() makes them durable. A crash keeps the durable bytes plus a
// random prefix of the cache (writes reach the platter partly and in order),
// may tear the last sector it kept and may corrupt a byte of it. Checksums in
// the records above catch both; recovery truncates to the last valid record.
#ifndef RAFTSQL_SIM_SIM_DISK_H_
#define RAFTSQL_SIM_SIM_DISK_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "core/prng.h"

namespace raftsql::sim {

struct DiskFaults {
  // On a crash, the chance that part of the unsynced cache reached the disk
  // (otherwise all of it is lost), and that the last kept sector is garbage.
  double partial_write_probability = 0.5;
  double corrupt_sector_probability = 0.2;
  // Chance that an fsync fails (the node must stop).
  double fsync_failure_probability = 0;
  // Deliberately broken disk for the checker's self-test: Sync() reports
  // success but leaves the data volatile.
  bool lie_about_fsync = false;
};

struct CrashReport {
  uint64_t lost_bytes = 0;
  bool torn = false;
  bool corrupted = false;
};

class SimDisk {
 public:
  static constexpr size_t kSectorBytes = 512;

  explicit SimDisk(DiskFaults faults) : faults_(faults) {}

  void Write(std::string_view bytes) { cache_.append(bytes); }
  void set_fsync_failure_probability(double p) {
    faults_.fsync_failure_probability = p;
  }
  absl::Status Sync(core::Prng& rng);
  // Makes the cache durable with no fault (cluster bootstrap only).
  void ForceSync() {
    durable_ += cache_;
    cache_.clear();
  }
  CrashReport Crash(core::Prng& rng);
  // Everything readable now: durable bytes then the cache.
  std::string Contents() const { return durable_ + cache_; }
  // Atomically replaces the file with `bytes`, durably: a new file written,
  // fsynced and renamed over the old one (log compaction's checkpoint).
  // Unsynced writes become durable with it, which a crash may also do.
  void ReplaceDurable(std::string bytes) {
    durable_ = std::move(bytes);
    cache_.clear();
  }
  // Drops everything after `size` bytes (recovery truncating a bad tail).
  void Truncate(size_t size);
  size_t durable_bytes() const { return durable_.size(); }
  size_t cached_bytes() const { return cache_.size(); }

 private:
  DiskFaults faults_;
  std::string durable_;
  std::string cache_;  // Written, not yet synced; lost (partly) on a crash.
};

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_SIM_DISK_H_
