// Small helpers shared by the RaftServer source files (not an API).
#ifndef RAFTSQL_SERVER_INTERNAL_H_
#define RAFTSQL_SERVER_INTERNAL_H_

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/codec.h"

namespace raftsql::server::internal {

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A ReadIndex request's context: the request id, 8 bytes.
inline std::string EncodeId(uint64_t id) {
  std::string s;
  core::PutFixed64(s, id);
  return s;
}

inline uint64_t DecodeId(std::string_view s) {
  return core::GetFixed64(s).value_or(0);
}

// A conf change's context: "<request id>|<address>".
inline std::string ConfContext(uint64_t request_id,
                               const std::string& address) {
  return absl::StrCat(request_id, "|", address);
}

inline std::pair<uint64_t, std::string> ParseConfContext(
    const std::string& ctx) {
  const size_t bar = ctx.find('|');
  if (bar == std::string::npos) return {0, ctx};
  return {std::strtoull(ctx.substr(0, bar).c_str(), nullptr, 10),
          ctx.substr(bar + 1)};
}

}  // namespace raftsql::server::internal

#endif  // RAFTSQL_SERVER_INTERNAL_H_
