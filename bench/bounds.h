// What this machine can carry, measured where a benchmark runs, so that a
// rate is reported against a bound of the same run (issue 14's join):
// the disk, writing a new file as a joining follower writes its image, and
// the loopback, as plain TCP.
#ifndef RAFTSQL_BENCH_BOUNDS_H_
#define RAFTSQL_BENCH_BOUNDS_H_

#include <cstdint>
#include <string>

namespace raftsql::bench {

// Bytes per second of writing `bytes` to a new file in `dir` in 1 MiB
// writes, synced every 64 MiB on a thread and at the end (as the image's
// receiver does), the file then deleted; 0 if it could not be written.
// `direct`: with O_DIRECT, from one reused buffer, as the receiver stores
// an image (sm/image_writer.h); else through the page cache, whose pages
// for a new file are its newest: on a virtual machine, memory the host
// backs only when first touched.
double DiskWriteBytesPerSecond(const std::string& dir, uint64_t bytes,
                               bool direct);

// Bytes per second of reading back, with O_DIRECT in 1 MiB reads one at a
// time (as the check of a received image reads it, sm/read_ahead_vfs.h), a
// new file of `bytes` in `dir` written with O_DIRECT first (not timed),
// the file then deleted; 0 if it could not be written or read.
double DiskReadBytesPerSecond(const std::string& dir, uint64_t bytes);

// Bytes per second of `bytes` sent over one TCP connection on 127.0.0.1 in
// 1 MiB writes and read in 1 MiB reads; 0 on a socket error.
double LoopbackBytesPerSecond(uint64_t bytes);

}  // namespace raftsql::bench

#endif  // RAFTSQL_BENCH_BOUNDS_H_
