// A preloaded shim for the fsync_failure scenario (tests/verify_fsync.cc):
// fsync and fdatasync fail with EIO in a process once the file
// $RAFTSQL_FAIL_FSYNC_DIR/<its pid> exists, and behave as usual before.
// Used as LD_PRELOAD=libfail_fsync.so on raftsql_server processes only.
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

namespace {

bool Failing() {
  const char* dir = getenv("RAFTSQL_FAIL_FSYNC_DIR");
  if (dir == nullptr) return false;
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/%d", dir, static_cast<int>(getpid()));
  return access(path, F_OK) == 0;
}

template <typename Fn>
Fn Next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int fsync(int fd) {
  if (Failing()) {
    errno = EIO;
    return -1;
  }
  static auto next = Next<int (*)(int)>("fsync");
  return next(fd);
}

extern "C" int fdatasync(int fd) {
  if (Failing()) {
    errno = EIO;
    return -1;
  }
  static auto next = Next<int (*)(int)>("fdatasync");
  return next(fd);
}
