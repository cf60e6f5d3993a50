// The server's allocator, set up once at the start of main.
//
// glibc's malloc, with thresholds that keep MiB-sized buffers in its heap.
// With --define=allocator=tcmalloc, tcmalloc (gperftools' minimal build):
// at 64 clients the servers used less CPU a write with it in every
// alternated round (123-178 us against 162-218; README, issue 17), but a
// node's peak RSS in verify_grow was 201-209 MB against glibc's 168-174
// (the test's bound is 200), at release rates 0, 1 and 10 alike: not the
// default.
#ifndef RAFTSQL_SERVER_ALLOCATOR_H_
#define RAFTSQL_SERVER_ALLOCATOR_H_

namespace raftsql::server {

// Sets the allocator's bounds (see allocator.cc).
void SetUpAllocator();

// "tcmalloc" or "glibc".
const char* AllocatorName();

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_ALLOCATOR_H_
