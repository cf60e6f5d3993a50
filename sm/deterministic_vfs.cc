#include "sm/deterministic_vfs.h"

#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>

#include "core/check.h"
#include "sm/forwarding_vfs.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql::sm {
namespace {

constexpr char kVfsName[] = "raftsql-deterministic";
// The Unix epoch as a Julian day number, in milliseconds.
constexpr int64_t kUnixEpochJulianMs = 210866760000000LL;

thread_local int64_t now_unix_ms = 0;
sqlite3_vfs* base_vfs = nullptr;
sqlite3_vfs vfs;

// Where temporary files go: as the platform VFS chooses (SQLITE_TMPDIR,
// TMPDIR, /var/tmp, /usr/tmp, /tmp), the first writable one.
std::string TempDirectory() {
  for (const char* env : {"SQLITE_TMPDIR", "TMPDIR"}) {
    const char* d = std::getenv(env);
    if (d != nullptr && *d != '\0' && access(d, W_OK | X_OK) == 0) return d;
  }
  for (const char* d : {"/var/tmp", "/usr/tmp", "/tmp"}) {
    if (access(d, W_OK | X_OK) == 0) return d;
  }
  return ".";
}

// Unique in this process (a counter) and among processes (the pid and a
// random salt drawn once, not from SQLite's seeded PRNG).
std::string TempName() {
  static const std::string dir = TempDirectory();
  static const uint64_t salt = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  static std::atomic<uint64_t> counter{0};
  char out[64];
  std::snprintf(out, sizeof(out), "/raftsql-tmp-%d-%016llx-%llu",
                static_cast<int>(getpid()),
                static_cast<unsigned long long>(salt),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return dir + out;
}

// Our files are the platform's, followed by the name of a temporary one
// (the platform VFS keeps a pointer to the name while the file is open).
constexpr int kTempNameBytes = 512;

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags,
         int* out_flags) {
  if (name != nullptr) {
    return base_vfs->xOpen(base_vfs, name, file, flags, out_flags);
  }
  const std::string temp = TempName();
  if (temp.size() + 2 > static_cast<size_t>(kTempNameBytes)) {
    return SQLITE_CANTOPEN;
  }
  // The platform VFS reads the name as a URI filename: two NULs end it.
  char* stored = reinterpret_cast<char*>(file) + base_vfs->szOsFile;
  std::memcpy(stored, temp.c_str(), temp.size() + 1);
  stored[temp.size() + 1] = '\0';
  return base_vfs->xOpen(base_vfs, stored, file,
                         flags | SQLITE_OPEN_DELETEONCLOSE |
                             SQLITE_OPEN_EXCLUSIVE | SQLITE_OPEN_CREATE,
                         out_flags);
}
int Randomness(sqlite3_vfs*, int n, char* out) {
  // SQLite seeds its internal PRNG from here; replicas must agree.
  for (int i = 0; i < n; ++i) out[i] = static_cast<char>(i * 131 + 7);
  return n;
}
int CurrentTime(sqlite3_vfs*, double* out) {
  *out = static_cast<double>(kUnixEpochJulianMs + now_unix_ms) / 86400000.0;
  return SQLITE_OK;
}
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  *out = kUnixEpochJulianMs + now_unix_ms;
  return SQLITE_OK;
}

void Register() {
  ConfigureSqliteProcess();  // Before anything initializes SQLite.
  base_vfs = sqlite3_vfs_find(nullptr);
  CHECK(base_vfs != nullptr);
  vfs = ForwardingVfs(base_vfs, kVfsName, base_vfs->szOsFile + kTempNameBytes,
                      Open);
  vfs.xRandomness = Randomness;
  vfs.xCurrentTime = CurrentTime;
  vfs.xCurrentTimeInt64 = CurrentTimeInt64;
  CHECK(sqlite3_vfs_register(&vfs, /*makeDflt=*/0) == SQLITE_OK);
}

}  // namespace

const char* DeterministicVfsName() {
  static std::once_flag once;
  std::call_once(once, Register);
  return kVfsName;
}

void SetDeterministicNow(int64_t unix_ms) { now_unix_ms = unix_ms; }

std::string NextTempNameForTest() { return TempName(); }

}  // namespace raftsql::sm
