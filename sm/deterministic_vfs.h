// A SQLite VFS that forwards everything to the platform VFS except the clock:
// while a replicated command runs, 'now', CURRENT_TIMESTAMP and datetime()
// see the timestamp the leader fixed in the command, so every replica stores
// the same bytes.
#ifndef RAFTSQL_SM_DETERMINISTIC_VFS_H_
#define RAFTSQL_SM_DETERMINISTIC_VFS_H_

#include <cstdint>

namespace raftsql::sm {

// Registers the VFS (once per process) and returns its name for
// sqlite3_open_v2.
const char* DeterministicVfsName();

// Sets the clock of the calling thread's replicated execution (Unix ms).
void SetDeterministicNow(int64_t unix_ms);

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_DETERMINISTIC_VFS_H_
