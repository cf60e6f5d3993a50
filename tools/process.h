// Child processes for the local cluster, the verify scenarios and the load
// benchmark: spawn with output to a log file, signal, wait with a bound.
// Every child is stopped by PID by whoever started it.
#ifndef RAFTSQL_TOOLS_PROCESS_H_
#define RAFTSQL_TOOLS_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace raftsql::tools {

// Starts argv[0] with argv; stdout and stderr go to `log_path` (appended);
// `env` ("NAME=value") is added to this process's environment. Returns the
// PID, or -1.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path,
            const std::vector<std::string>& env = {});
// Waits up to timeout_ms for `pid` to exit; true if it did (and was reaped).
bool WaitExit(pid_t pid, int timeout_ms, int* status = nullptr);
// SIGTERM, then SIGKILL after grace_ms; always reaps.
void Stop(pid_t pid, int grace_ms);
// A TCP port on 127.0.0.1 that was free a moment ago, and that no earlier
// call in this process returned (-1 if none was found in
// kFreePortAttempts tries). Thread-safe.
inline constexpr int kFreePortAttempts = 1000;
int FreePort();
// `relative` (e.g. "server/raftsql_server") under the runfiles, or next to
// bazel-bin; "" if not found.
std::string FindBinary(const char* argv0, const std::string& relative);
// The peak resident set of a running process (VmHWM), in bytes; 0 if
// unknown.
uint64_t PeakRssBytes(pid_t pid);
// Bytes a running process has read from and written to the disk so far
// (/proc/PID/io: read_bytes, write_bytes; what the page cache served is
// not counted); zeros if unknown.
struct DiskIo {
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
};
DiskIo DiskIoBytes(pid_t pid);
// The machine's dirty and under-writeback page-cache bytes (/proc/meminfo):
// what the disk still owes.
uint64_t UnwrittenBytes();
// How many bytes of the file at `path` are in the page cache (mincore);
// 0 if it cannot be told.
uint64_t CachedBytes(const std::string& path);

}  // namespace raftsql::tools

#endif  // RAFTSQL_TOOLS_PROCESS_H_
