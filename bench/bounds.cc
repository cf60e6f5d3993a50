#include "bench/bounds.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace raftsql::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kChunkBytes = 1 << 20;
constexpr uint64_t kBytesPerSync = 64 << 20;  // As sm::ImageSink syncs.

double PerSecond(uint64_t bytes, Clock::time_point start) {
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  return s > 0 ? bytes / s : 0;
}

struct Free {
  void operator()(char* p) const { std::free(p); }
};

// Not zeros: what a database holds. Aligned for O_DIRECT.
std::unique_ptr<char, Free> Chunk() {
  std::unique_ptr<char, Free> chunk(
      static_cast<char*>(std::aligned_alloc(4096, kChunkBytes)));
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; i < kChunkBytes; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    chunk.get()[i] = static_cast<char>(x);
  }
  return chunk;
}

}  // namespace

double DiskWriteBytesPerSecond(const std::string& dir, uint64_t bytes,
                               bool direct) {
  const std::string path = dir + "/disk-bound.tmp";
  const int fd = open(
      path.c_str(),
      O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | (direct ? O_DIRECT : 0), 0600);
  if (fd < 0) return 0;
  const std::unique_ptr<char, Free> chunk = Chunk();
  std::mutex mu;
  std::condition_variable cv;
  uint64_t wanted = 0;  // Guarded by mu.
  bool done = false;    // Guarded by mu.
  // A sync of another descriptor writes the file's pages as well.
  std::thread syncer([&] {
    const int sfd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    uint64_t synced = 0;
    std::unique_lock<std::mutex> l(mu);
    while (true) {
      cv.wait(l, [&] { return done || wanted > synced; });
      if (done) break;
      synced = wanted;
      l.unlock();
      fdatasync(sfd);
      l.lock();
    }
    close(sfd);
  });
  const auto start = Clock::now();
  bool ok = true;
  for (uint64_t at = 0; ok && at < bytes; at += kChunkBytes) {
    ok = write(fd, chunk.get(), kChunkBytes) ==
         static_cast<ssize_t>(kChunkBytes);
    if ((at + kChunkBytes) % kBytesPerSync == 0) {
      std::lock_guard<std::mutex> l(mu);
      wanted = at + kChunkBytes;
      cv.notify_one();
    }
  }
  {
    std::lock_guard<std::mutex> l(mu);
    done = true;
    cv.notify_one();
  }
  syncer.join();
  ok = ok && fdatasync(fd) == 0;
  const double rate = PerSecond(bytes, start);
  close(fd);
  unlink(path.c_str());
  return ok ? rate : 0;
}

double DiskReadBytesPerSecond(const std::string& dir, uint64_t bytes) {
  const std::string path = dir + "/disk-read-bound.tmp";
  const std::unique_ptr<char, Free> chunk = Chunk();
  int fd = open(path.c_str(),
                O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_DIRECT, 0600);
  bool ok = fd >= 0;
  for (uint64_t at = 0; ok && at < bytes; at += kChunkBytes) {
    ok = write(fd, chunk.get(), kChunkBytes) ==
         static_cast<ssize_t>(kChunkBytes);
  }
  ok = ok && fdatasync(fd) == 0;
  if (fd >= 0) close(fd);
  double rate = 0;
  fd = ok ? open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT) : -1;
  if (fd >= 0) {
    const auto start = Clock::now();
    for (uint64_t at = 0; ok && at < bytes; at += kChunkBytes) {
      ok = pread(fd, chunk.get(), kChunkBytes, static_cast<off_t>(at)) ==
           static_cast<ssize_t>(kChunkBytes);
    }
    rate = ok ? PerSecond(bytes, start) : 0;
    close(fd);
  }
  unlink(path.c_str());
  return rate;
}

double LoopbackBytesPerSecond(uint64_t bytes) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listener < 0 ||
      bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (listener >= 0) close(listener);
    return 0;
  }
  std::atomic<bool> sent_ok{true};
  std::thread sender([&] {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      sent_ok.store(false);
      if (fd >= 0) close(fd);
      return;
    }
    const std::unique_ptr<char, Free> chunk = Chunk();
    for (uint64_t sent = 0; sent < bytes;) {
      const ssize_t n = write(fd, chunk.get(), kChunkBytes);
      if (n <= 0) {
        sent_ok.store(false);
        break;
      }
      sent += static_cast<uint64_t>(n);
    }
    close(fd);
  });
  const int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  close(listener);
  std::vector<char> buffer(kChunkBytes);
  uint64_t received = 0;
  const auto start = Clock::now();
  while (conn >= 0 && received < bytes) {
    const ssize_t n = read(conn, buffer.data(), buffer.size());
    if (n <= 0) break;
    received += static_cast<uint64_t>(n);
  }
  const double rate = PerSecond(received, start);
  if (conn >= 0) close(conn);
  sender.join();
  return sent_ok.load() && received >= bytes ? rate : 0;
}

}  // namespace raftsql::bench
