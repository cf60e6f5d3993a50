#include "tools/process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace raftsql::tools {

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path,
            const std::vector<std::string>& env) {
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // posix_spawn, not fork: fork runs gRPC's at-fork handlers, which left
  // this process's pollers unable to complete connects for seconds.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // A clean signal mask: the parent may block SIGTERM.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int rc =
      posix_spawn(&pid, args[0], &actions, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return rc == 0 ? pid : -1;
}

bool WaitExit(pid_t pid, int timeout_ms, int* status) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    int st = 0;
    const pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid || r < 0) {
      if (status != nullptr) *status = st;
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Stop(pid_t pid, int grace_ms) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  if (WaitExit(pid, grace_ms)) return;
  kill(pid, SIGKILL);
  WaitExit(pid, 10'000);
}

namespace {

// A port the kernel picks for a socket bound to 127.0.0.1:0, then closed.
int EphemeralPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

int FreePort() {
  // The kernel hands the same port to binds made one after another (each
  // socket closes before the next): 138 repeats in 2,000 here. A cluster
  // that got one port twice started a node that could not listen. So a
  // port this process handed out is never handed out again.
  static std::mutex mu;
  static std::set<int> given;
  std::lock_guard<std::mutex> l(mu);
  for (int attempt = 0; attempt < kFreePortAttempts; ++attempt) {
    const int port = EphemeralPort();
    if (port > 0 && given.insert(port).second) return port;
  }
  return -1;
}

namespace {

// The directory of the running binary's runfiles tree (Bazel), or "".
std::string RunfilesDir(const char* argv0) {
  if (const char* d = std::getenv("RUNFILES_DIR")) return d;
  if (const char* d = std::getenv("TEST_SRCDIR")) return d;
  const std::string guess = std::string(argv0) + ".runfiles";
  if (access(guess.c_str(), F_OK) == 0) return guess;
  return "";
}

}  // namespace

std::string FindBinary(const char* argv0, const std::string& relative) {
  std::vector<std::string> candidates;
  const std::string runfiles = RunfilesDir(argv0);
  if (!runfiles.empty())
    candidates.push_back(runfiles + "/raftsql/" + relative);
  candidates.push_back(relative);  // `bazel run` starts in the runfiles tree.
  candidates.push_back("bazel-bin/" + relative);
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) == 0) {
      char* real = realpath(c.c_str(), nullptr);
      std::string out = real != nullptr ? real : c;
      std::free(real);
      return out;
    }
  }
  return "";
}

uint64_t PeakRssBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) != 0) continue;
    uint64_t kb = 0;
    for (char ch : line) {
      if (ch >= '0' && ch <= '9')
        kb = kb * 10 + static_cast<uint64_t>(ch - '0');
    }
    return kb << 10;
  }
  return 0;
}

DiskIo DiskIoBytes(pid_t pid) {
  std::ifstream io("/proc/" + std::to_string(pid) + "/io");
  DiskIo out;
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "read_bytes:") out.read_bytes = value;
    if (key == "write_bytes:") out.write_bytes = value;
  }
  return out;
}

uint64_t UnwrittenBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  uint64_t total = 0;
  while (meminfo >> key >> kb) {
    if (key == "Dirty:" || key == "Writeback:") total += kb << 10;
    std::getline(meminfo, unit);  // " kB", or nothing.
  }
  return total;
}

uint64_t CachedBytes(const std::string& path) {
  // This process's descriptor, mapping and close: a server's locks on the
  // file (another process) are untouched.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st {};
  uint64_t cached = 0;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    const auto size = static_cast<size_t>(st.st_size);
    void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED) {
      const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      std::vector<unsigned char> in((size + page - 1) / page);
      if (mincore(map, size, in.data()) == 0) {
        for (unsigned char c : in) cached += (c & 1) ? page : 0;
      }
      munmap(map, size);
    }
  }
  close(fd);
  return std::min<uint64_t>(cached, static_cast<uint64_t>(st.st_size));
}

}  // namespace raftsql::tools
