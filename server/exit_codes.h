// How raftsql_server ends, for supervisors and tests.
#ifndef RAFTSQL_SERVER_EXIT_CODES_H_
#define RAFTSQL_SERVER_EXIT_CODES_H_

namespace raftsql::server {

// The log store failed (DESIGN.md §2 rule 6: a failed fsync is fatal):
// EX_IOERR, after saying why on stderr. A supervisor restarts the node,
// which recovers from what is durable.
inline constexpr int kExitLogStoreFailed = 74;

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_EXIT_CODES_H_
