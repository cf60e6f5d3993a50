#include "sim/sim_fs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "sm/deterministic_vfs.h"

namespace raftsql::sim {

void SimFile::Apply(std::string& file, const Op& op) {
  if (op.truncate) {
    file.resize(op.offset);
    return;
  }
  if (file.size() < op.offset + op.bytes.size()) {
    file.resize(op.offset + op.bytes.size());
  }
  std::memcpy(file.data() + op.offset, op.bytes.data(), op.bytes.size());
}

void SimFile::Write(uint64_t offset, std::string_view bytes) {
  Op op{false, offset, std::string(bytes)};
  Apply(current_, op);
  pending_.push_back(std::move(op));
}

void SimFile::Truncate(uint64_t size) {
  Op op{true, size, {}};
  Apply(current_, op);
  pending_.push_back(std::move(op));
}

void SimFile::Sync() {
  durable_ = current_;
  pending_.clear();
}

size_t SimFile::Crash(core::Prng& rng) {
  size_t lost = 0;
  for (const Op& op : pending_) {
    if (rng.Chance(0.5)) {
      Apply(durable_, op);  // Reached the platter (in any order).
    } else {
      ++lost;
    }
  }
  pending_.clear();
  current_ = durable_;
  return lost;
}

namespace {

// The simulator is single-threaded; this guards registration only.
std::mutex registry_mu;
std::map<int, SimFs*>& Registry() {
  static auto* registry = new std::map<int, SimFs*>();
  return *registry;
}

}  // namespace

SimFs::SimFs(int id) : id_(id) {
  std::lock_guard<std::mutex> l(registry_mu);
  CHECK(Registry().emplace(id, this).second);
}

SimFs::~SimFs() {
  std::lock_guard<std::mutex> l(registry_mu);
  Registry().erase(id_);
}

std::string SimFs::Path(const std::string& name) const {
  return "/simfs/" + std::to_string(id_) + "/" + name;
}

SimFile* SimFs::Find(const std::string& path) {
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : it->second.get();
}

SimFile* SimFs::Create(const std::string& path) {
  std::unique_ptr<SimFile>& f = files_[path];
  if (f == nullptr) f = std::make_unique<SimFile>();
  return f.get();
}

void SimFs::Delete(const std::string& path) { files_.erase(path); }

absl::Status SimFs::Rename(const std::string& from, const std::string& to) {
  auto it = files_.find(from);
  if (it == files_.end()) {
    return absl::NotFoundError(absl::StrCat("no file ", from));
  }
  if (frozen_) return absl::OkStatus();
  std::unique_ptr<SimFile> file = std::move(it->second);
  files_.erase(it);
  files_[to] = std::move(file);
  return absl::OkStatus();
}

absl::Status SimFsRename(const std::string& from, const std::string& to) {
  SimFs* fs = SimFs::ForPath(from);
  if (fs == nullptr || fs != SimFs::ForPath(to)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not one simulated disk: ", from, ", ", to));
  }
  return fs->Rename(from, to);
}

size_t SimFs::Crash(core::Prng& rng) {
  size_t lost = 0;
  for (auto& [path, file] : files_) lost += file->Crash(rng);
  frozen_ = false;
  return lost;
}

bool SimFs::Fits(const SimFile& file, uint64_t offset, uint64_t amount) const {
  if (capacity_bytes_ == 0) return true;
  uint64_t used = 0;
  for (const auto& [path, f] : files_) used += f->contents().size();
  const uint64_t end = offset + amount;
  const uint64_t size = file.contents().size();
  return end <= size || used + (end - size) <= capacity_bytes_;
}

SimFs* SimFs::ForPath(const std::string& path) {
  constexpr std::string_view kPrefix = "/simfs/";
  if (path.rfind(kPrefix, 0) != 0) return nullptr;
  const int id = std::atoi(path.c_str() + kPrefix.size());
  std::lock_guard<std::mutex> l(registry_mu);
  auto it = Registry().find(id);
  return it == Registry().end() ? nullptr : it->second;
}

// ---- The VFS ----

namespace {

constexpr char kVfsName[] = "raftsql-simfs";

struct VfsFile {
  sqlite3_file base;
  SimFile* file;
  SimFile* owned;  // A nameless temporary file, deleted on close.
  SimFs* fs;       // Null for a temporary file.
};

VfsFile* Self(sqlite3_file* f) { return reinterpret_cast<VfsFile*>(f); }

int Close(sqlite3_file* f) {
  delete Self(f)->owned;
  return SQLITE_OK;
}
int Read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  const std::string& data = Self(f)->file->contents();
  const auto off = static_cast<uint64_t>(offset);
  const size_t have =
      off >= data.size()
          ? 0
          : std::min<size_t>(static_cast<size_t>(amount), data.size() - off);
  if (have > 0) std::memcpy(out, data.data() + off, have);
  if (have < static_cast<size_t>(amount)) {
    std::memset(static_cast<char*>(out) + have, 0, amount - have);
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}
// A dead process's file operations do nothing.
bool Dead(sqlite3_file* f) {
  return Self(f)->fs != nullptr && Self(f)->fs->frozen();
}
int Write(sqlite3_file* f, const void* in, int amount, sqlite3_int64 offset) {
  if (Dead(f)) return SQLITE_OK;
  if (Self(f)->fs != nullptr &&
      !Self(f)->fs->Fits(*Self(f)->file, static_cast<uint64_t>(offset),
                         static_cast<uint64_t>(amount))) {
    return SQLITE_FULL;
  }
  Self(f)->file->Write(static_cast<uint64_t>(offset),
                       std::string_view(static_cast<const char*>(in), amount));
  return SQLITE_OK;
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (Dead(f)) return SQLITE_OK;
  Self(f)->file->Truncate(static_cast<uint64_t>(size));
  return SQLITE_OK;
}
int Sync(sqlite3_file* f, int) {
  if (Dead(f)) return SQLITE_OK;
  if (Self(f)->fs != nullptr && Self(f)->fs->lies_about_sync()) {
    return SQLITE_OK;
  }
  Self(f)->file->Sync();
  return SQLITE_OK;
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  *size = static_cast<sqlite3_int64>(Self(f)->file->contents().size());
  return SQLITE_OK;
}
// One connection per database (exclusive locking mode): nothing to lock.
int Lock(sqlite3_file*, int) { return SQLITE_OK; }
int Unlock(sqlite3_file*, int) { return SQLITE_OK; }
int CheckReservedLock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int FileControl(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int SectorSize(sqlite3_file*) { return 512; }
int DeviceCharacteristics(sqlite3_file*) { return 0; }

const sqlite3_io_methods kIoMethods = {
    1,
    Close,
    Read,
    Write,
    Truncate,
    Sync,
    FileSize,
    Lock,
    Unlock,
    CheckReservedLock,
    FileControl,
    SectorSize,
    DeviceCharacteristics,
};

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* out, int flags,
         int* out_flags) {
  VfsFile* f = Self(out);
  f->base.pMethods = nullptr;
  f->file = nullptr;
  f->owned = nullptr;
  f->fs = nullptr;
  if (name == nullptr) {
    f->owned = new SimFile();
    f->file = f->owned;
  } else {
    const std::string path = name;
    SimFs* fs = SimFs::ForPath(path);
    if (fs == nullptr) return SQLITE_CANTOPEN;
    f->fs = fs;
    f->file = fs->Find(path);
    if (f->file == nullptr) {
      if ((flags & SQLITE_OPEN_CREATE) == 0) return SQLITE_CANTOPEN;
      f->file = fs->Create(path);
    }
  }
  if (out_flags != nullptr) *out_flags = flags;
  f->base.pMethods = &kIoMethods;
  return SQLITE_OK;
}
int Delete(sqlite3_vfs*, const char* name, int) {
  SimFs* fs = SimFs::ForPath(name);
  if (fs != nullptr && !fs->frozen()) fs->Delete(name);
  return SQLITE_OK;
}
int Access(sqlite3_vfs*, const char* name, int, int* out) {
  SimFs* fs = SimFs::ForPath(name);
  SimFile* f = fs == nullptr ? nullptr : fs->Find(name);
  *out = f != nullptr && !f->contents().empty();
  return SQLITE_OK;
}
int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  sqlite3_snprintf(n, out, "%s", name);
  return SQLITE_OK;
}
void Register() {
  // The clock, randomness and disabled extensions are the deterministic
  // VFS's; only the files differ.
  sqlite3_vfs* det = sqlite3_vfs_find(sm::DeterministicVfsName());
  CHECK(det != nullptr);
  static sqlite3_vfs vfs = *det;
  vfs.szOsFile = sizeof(VfsFile);
  vfs.mxPathname = 512;
  vfs.zName = kVfsName;
  vfs.pNext = nullptr;
  vfs.xOpen = Open;
  vfs.xDelete = Delete;
  vfs.xAccess = Access;
  vfs.xFullPathname = FullPathname;
  CHECK(sqlite3_vfs_register(&vfs, /*makeDflt=*/0) == SQLITE_OK);
}

}  // namespace

int NextSimFsId() {
  static int next = 0;
  return ++next;
}

const char* SimFsVfsName() {
  static std::once_flag once;
  std::call_once(once, Register);
  return kVfsName;
}

}  // namespace raftsql::sim
