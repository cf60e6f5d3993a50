// A SQLite VFS that forwards everything to the platform VFS except the clock:
// while a replicated command runs, 'now', CURRENT_TIMESTAMP and datetime()
// see the timestamp the leader fixed in the command, so every replica stores
// the same bytes. And temporary files (statement journals, sorters): the
// platform VFS names them from SQLite's PRNG, which the state machine seeds
// from each entry (sm/command_context.h), so replicas on one host drew the
// same names at the same moment; one found the other's file, fell back to
// opening it read-only and failed its write (EBADF, "disk I/O error"),
// stopping the replica. This VFS names them itself, uniquely per process.
#ifndef RAFTSQL_SM_DETERMINISTIC_VFS_H_
#define RAFTSQL_SM_DETERMINISTIC_VFS_H_

#include <cstdint>
#include <string>

namespace raftsql::sm {

// Registers the VFS (once per process) and returns its name for
// sqlite3_open_v2.
const char* DeterministicVfsName();

// Sets the clock of the calling thread's replicated execution (Unix ms).
void SetDeterministicNow(int64_t unix_ms);

// The path this VFS gives its next temporary file (tests).
std::string NextTempNameForTest();

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_DETERMINISTIC_VFS_H_
