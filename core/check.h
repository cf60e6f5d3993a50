// Invariant checks that stay on in release builds.
//
// A broken invariant is a bug, not an error: continuing could lose acknowledged
// data, so CHECK aborts the process with the failing condition and location.
// DCHECK is for checks too expensive for production paths.
#ifndef RAFTSQL_CORE_CHECK_H_
#define RAFTSQL_CORE_CHECK_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace raftsql::internal {

// A process-wide hook run before a failed CHECK aborts, with the message.
// The simulator installs one that turns the failure into a reported
// violation of the seed under test (it does not return); production leaves
// it unset.
using CheckFailureHandler = void (*)(const char* message);
inline CheckFailureHandler& CheckFailureHook() {
  static CheckFailureHandler handler = nullptr;
  return handler;
}

[[noreturn]] inline void CheckFailedMessage(const char* message) {
  if (CheckFailureHook() != nullptr) CheckFailureHook()(message);
  std::fprintf(stderr, "%s\n", message);
  std::fflush(stderr);
  std::abort();
}

[[noreturn]] inline void CheckFailed(const char* file, int line,
                                     const char* condition) {
  char message[512];
  std::snprintf(message, sizeof(message), "%s:%d: CHECK failed: %s", file, line,
                condition);
  CheckFailedMessage(message);
}

[[noreturn]] inline void CheckOpFailed(const char* file, int line,
                                       const char* condition, uint64_t a,
                                       uint64_t b) {
  char message[512];
  std::snprintf(message, sizeof(message),
                "%s:%d: CHECK failed: %s (%llu vs %llu)", file, line, condition,
                static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  CheckFailedMessage(message);
}

}  // namespace raftsql::internal

#define CHECK(condition)                                                \
  do {                                                                  \
    if (!(condition)) {                                                 \
      ::raftsql::internal::CheckFailed(__FILE__, __LINE__, #condition); \
    }                                                                   \
  } while (false)

// Integer comparisons that print both sides on failure.
#define RAFTSQL_CHECK_OP(a, op, b)                                            \
  do {                                                                        \
    const auto check_op_a_ = (a);                                             \
    const auto check_op_b_ = (b);                                             \
    if (!(check_op_a_ op check_op_b_)) {                                      \
      ::raftsql::internal::CheckOpFailed(__FILE__, __LINE__,                  \
                                         #a " " #op " " #b,                   \
                                         static_cast<uint64_t>(check_op_a_),  \
                                         static_cast<uint64_t>(check_op_b_)); \
    }                                                                         \
  } while (false)

#define CHECK_EQ(a, b) RAFTSQL_CHECK_OP(a, ==, b)
#define CHECK_NE(a, b) RAFTSQL_CHECK_OP(a, !=, b)
#define CHECK_LE(a, b) RAFTSQL_CHECK_OP(a, <=, b)
#define CHECK_LT(a, b) RAFTSQL_CHECK_OP(a, <, b)
#define CHECK_GE(a, b) RAFTSQL_CHECK_OP(a, >=, b)
#define CHECK_GT(a, b) RAFTSQL_CHECK_OP(a, >, b)

#ifdef NDEBUG
#define DCHECK(condition) \
  do {                    \
  } while (false)
#else
#define DCHECK(condition) CHECK(condition)
#endif

#endif  // RAFTSQL_CORE_CHECK_H_
