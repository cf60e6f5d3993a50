// SimFs: one node's simulated file system for SQLite (random-access files,
// unlike SimDisk's append-only log). Writes land in a volatile cache and
// Sync() makes a file's writes durable. A crash keeps the durable bytes plus
// a random subset of each file's unsynced writes, in any order: SQLite must
// recover with nothing but its own fsync ordering. Deleting a file is
// durable at once (a simplification: real deletes need a directory sync).
#ifndef RAFTSQL_SIM_SIM_FS_H_
#define RAFTSQL_SIM_SIM_FS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/prng.h"

namespace raftsql::sim {

class SimFile {
 public:
  // What reads see: durable bytes with every write since applied.
  const std::string& contents() const { return current_; }
  void Write(uint64_t offset, std::string_view bytes);
  void Truncate(uint64_t size);
  void Sync();
  // Keeps each unsynced write with probability 1/2; returns how many were
  // lost.
  size_t Crash(core::Prng& rng);

 private:
  struct Op {
    bool truncate = false;
    uint64_t offset = 0;  // or the new size
    std::string bytes;
  };
  static void Apply(std::string& file, const Op& op);

  std::string durable_;
  std::string current_;
  std::vector<Op> pending_;
};

class SimFs {
 public:
  // Registers this file system under `id` for the VFS (paths
  // "/simfs/<id>/<name>"); unregisters on destruction.
  explicit SimFs(int id);
  ~SimFs();
  SimFs(const SimFs&) = delete;
  SimFs& operator=(const SimFs&) = delete;

  std::string Path(const std::string& name) const;
  SimFile* Find(const std::string& path);
  SimFile* Create(const std::string& path);
  void Delete(const std::string& path);
  // Moves a file to `to` (replacing what was there): atomic and durable at
  // once, as a rename followed by a directory sync is. NotFound if there is
  // no `from`.
  absl::Status Rename(const std::string& from, const std::string& to);
  // The process died: from now on its writes, syncs and deletes do nothing
  // (closing its connection must not checkpoint or clean up).
  void Freeze() { frozen_ = true; }
  bool frozen() const { return frozen_; }
  // Then the machine: every file loses part of what it had not synced; the
  // next process starts from what is left.
  size_t Crash(core::Prng& rng);

  // A broken disk (the checkers' self-tests): Sync() acknowledges and
  // persists nothing.
  void set_lie_about_sync(bool lie) { lie_about_sync_ = lie; }
  bool lies_about_sync() const { return lie_about_sync_; }

  // A full disk: a write that would make the files hold more than `bytes`
  // fails with SQLITE_FULL (0: no bound).
  void set_capacity_bytes(uint64_t bytes) { capacity_bytes_ = bytes; }
  // Whether writing `amount` bytes at `offset` of `file` fits.
  bool Fits(const SimFile& file, uint64_t offset, uint64_t amount) const;

  // The file system a "/simfs/<id>/..." path belongs to, or null.
  static SimFs* ForPath(const std::string& path);

 private:
  const int id_;
  bool frozen_ = false;
  bool lie_about_sync_ = false;
  uint64_t capacity_bytes_ = 0;
  std::map<std::string, std::unique_ptr<SimFile>> files_;
};

// SimFs::Rename for the file system the paths belong to (the state
// machine's RenameFile).
absl::Status SimFsRename(const std::string& from, const std::string& to);

// The SQLite VFS over SimFs (deterministic clock as sm's), registered once.
const char* SimFsVfsName();
// A process-unique SimFs id (sweeps build many simulations).
int NextSimFsId();

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_SIM_FS_H_
