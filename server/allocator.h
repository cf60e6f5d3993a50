// The server's allocator, set up once at the start of main.
//
// tcmalloc (gperftools' minimal build): at 64 clients the servers used
// less CPU a write with it than with glibc's malloc in 9 alternated
// rounds of 10 (README, issue 17). Under the sanitizers (which bring
// their own) and with --define=allocator=glibc, glibc's malloc, with
// thresholds that keep MiB-sized buffers in its heap.
#ifndef RAFTSQL_SERVER_ALLOCATOR_H_
#define RAFTSQL_SERVER_ALLOCATOR_H_

namespace raftsql::server {

// Sets the allocator's bounds (see allocator.cc).
void SetUpAllocator();

// "tcmalloc" or "glibc".
const char* AllocatorName();

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_ALLOCATOR_H_
