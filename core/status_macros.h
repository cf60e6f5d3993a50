// RETURN_IF_ERROR / ASSIGN_OR_RETURN: Debian's Abseil (20220623) has no
// status_macros.h, so we keep these two of our own.
#ifndef RAFTSQL_CORE_STATUS_MACROS_H_
#define RAFTSQL_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RAFTSQL_CONCAT_INNER(a, b) a##b
#define RAFTSQL_CONCAT(a, b) RAFTSQL_CONCAT_INNER(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the caller if not ok.
#define RETURN_IF_ERROR(expr)                     \
  do {                                            \
    ::absl::Status status_macro_status_ = (expr); \
    if (!status_macro_status_.ok()) {             \
      return status_macro_status_;                \
    }                                             \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, F());` assigns the value of an absl::StatusOr or
// returns its status from the caller.
#define ASSIGN_OR_RETURN(lhs, expr) \
  RAFTSQL_ASSIGN_OR_RETURN_IMPL(RAFTSQL_CONCAT(status_or_, __LINE__), lhs, expr)

#define RAFTSQL_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) {                                    \
    return statusor.status();                              \
  }                                                        \
  lhs = std::move(statusor).value()

#endif  // RAFTSQL_CORE_STATUS_MACROS_H_
