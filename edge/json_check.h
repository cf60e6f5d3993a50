// A strict RFC 8259 syntax check, so that what a device or an operator
// sends as JSON is refused at the boundary rather than in the log.
#ifndef RAFTSQL_EDGE_JSON_CHECK_H_
#define RAFTSQL_EDGE_JSON_CHECK_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace raftsql::edge {

// Arrays and objects nested deeper than this are refused.
inline constexpr int kMaxJsonDepth = 32;

// Whether `text` is one JSON value (surrounding white space allowed), an
// object if `object`.
bool IsJson(absl::string_view text, bool object);

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_JSON_CHECK_H_
