#include "sim/sim_disk.h"

#include <algorithm>

#include "core/check.h"

namespace raftsql::sim {

absl::Status SimDisk::Sync(core::Prng& rng) {
  if (faults_.fsync_failure_probability > 0 &&
      rng.Chance(faults_.fsync_failure_probability)) {
    // What reached the disk is unknown: the caller must treat the node as
    // failed. The cache stays volatile; a crash decides what survives.
    return absl::DataLossError("simulated fsync failure");
  }
  if (faults_.lie_about_fsync) return absl::OkStatus();
  durable_ += cache_;
  cache_.clear();
  return absl::OkStatus();
}

CrashReport SimDisk::Crash(core::Prng& rng) {
  CrashReport report;
  size_t kept = 0;
  if (!cache_.empty() && rng.Chance(faults_.partial_write_probability)) {
    kept = rng.Uniform(cache_.size() + 1);
  }
  std::string survivor = cache_.substr(0, kept);
  if (!survivor.empty() && rng.Chance(faults_.corrupt_sector_probability)) {
    // The last sector written was torn: its bytes are garbage.
    const size_t end = durable_.size() + survivor.size();
    const size_t sector_start =
        std::max(durable_.size(), (end - 1) / kSectorBytes * kSectorBytes);
    for (size_t i = sector_start - durable_.size(); i < survivor.size(); ++i) {
      survivor[i] = static_cast<char>(rng.Next());
    }
    report.corrupted = true;
  }
  report.torn = kept > 0 && kept < cache_.size();
  report.lost_bytes = cache_.size() - kept;
  durable_ += survivor;
  cache_.clear();
  return report;
}

void SimDisk::Truncate(size_t size) {
  CHECK(cache_.empty());  // Recovery runs on a freshly crashed disk.
  if (size < durable_.size()) durable_.resize(size);
}

}  // namespace raftsql::sim
