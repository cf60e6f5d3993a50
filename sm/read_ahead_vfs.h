// A VFS for reading whole files that nobody writes meanwhile (the check of
// a received image; issue 14): each file opened read-only through it is
// read kBlockBytes at a time into a few blocks it holds, and SQLite's page
// reads are copied from them. quick_check reads a database a page at a
// time: 2.25 GB is 550,000 preads, 1.4 s of system time out of a 2.5 s
// check on this machine with every page already in the page cache. Mapping
// the file (PRAGMA mmap_size) saves as much, but the mapped pages then
// count in the process's RSS (2 GB at the check of a 2.25 GB image).
//
// Blocks are read with O_DIRECT where the file system allows it, past the
// page cache (why: read_ahead_vfs.cc), and the next block in the direction
// the reads run is read ahead on a thread of the file's own; reads that
// continue neither end of the last one and that no block holds are read
// alone, through the page cache. Memory: kBlocks + 1 blocks per file.
//
// A block once read is never read again while it is held, so a file
// written while it is open reads stale bytes: only for files at rest.
// Files opened for writing are the platform VFS's, untouched.
#ifndef RAFTSQL_SM_READ_AHEAD_VFS_H_
#define RAFTSQL_SM_READ_AHEAD_VFS_H_

#include <cstdint>

namespace raftsql::sm {

struct ReadAheadVfsBounds {
  // Bytes read at once, and blocks held per open file (LRU).
  static constexpr int64_t kBlockBytes = 1 << 20;
  static constexpr int kBlocks = 4;
};

// The VFS's name (registered at the first call), over the platform's.
const char* ReadAheadVfsName();

// Blocks read so far in this process (those read ahead on a thread
// among them), and reads that read alone (tests).
struct ReadAheadCounts {
  uint64_t blocks = 0;
  uint64_t reads_alone = 0;
  uint64_t prefetched = 0;
};
ReadAheadCounts ReadAheadCountsSoFar();

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_READ_AHEAD_VFS_H_
