// What a VFS that wraps the platform's shares: every member but xOpen (and
// those a wrapper sets after) forwards to a base VFS, found through
// pAppData; extensions are disabled. Used by deterministic_vfs.cc and
// read_ahead_vfs.cc.
#ifndef RAFTSQL_SM_FORWARDING_VFS_H_
#define RAFTSQL_SM_FORWARDING_VFS_H_

#include <sqlite3.h>

namespace raftsql::sm {

// A VFS named `name` over `base`, whose files take `os_file_bytes`; its
// xOpen is `open`. iVersion 2: a wrapper may set xCurrentTimeInt64.
sqlite3_vfs ForwardingVfs(sqlite3_vfs* base, const char* name,
                          int os_file_bytes,
                          int (*open)(sqlite3_vfs*, sqlite3_filename,
                                      sqlite3_file*, int, int*));

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_FORWARDING_VFS_H_
