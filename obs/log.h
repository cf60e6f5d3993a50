// The node's log: levelled events, as text lines or JSON objects, on
// stderr (spdlog underneath). Each event has a name ("election",
// "snapshot", "slow_loop", ...), a message and fields.
//
//   2026-12-06T11:30:39.123Z info raftsql: node 1 leads at term 3
//   {"ts":"2026-12-06T11:30:39.123Z","level":"info","event":"election",
//    "msg":"node 1 leads at term 3","node":1,"term":3}
//
// Thread-safe. Until SetLog is called: info and above, as text.
#ifndef RAFTSQL_OBS_LOG_H_
#define RAFTSQL_OBS_LOG_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace raftsql::obs {

enum class Level { kDebug, kInfo, kWarn, kError };

// A field's value: a number or text.
struct LogValue {
  LogValue(int v) : value(static_cast<int64_t>(v)) {}             // NOLINT
  LogValue(long v) : value(static_cast<int64_t>(v)) {}            // NOLINT
  LogValue(long long v) : value(static_cast<int64_t>(v)) {}       // NOLINT
  LogValue(unsigned v) : value(static_cast<uint64_t>(v)) {}       // NOLINT
  LogValue(unsigned long v) : value(static_cast<uint64_t>(v)) {}  // NOLINT
  LogValue(unsigned long long v)                                  // NOLINT
      : value(static_cast<uint64_t>(v)) {}
  LogValue(double v) : value(v) {}                           // NOLINT
  LogValue(absl::string_view v) : value(std::string(v)) {}   // NOLINT
  LogValue(const std::string& v) : value(v) {}               // NOLINT
  LogValue(const char* v) : value(std::string(v)) {}         // NOLINT
  std::variant<int64_t, uint64_t, double, std::string> value;
};

using LogFields =
    std::initializer_list<std::pair<absl::string_view, LogValue>>;

// level: debug, info, warn or error; format: text or json.
// INVALID_ARGUMENT naming what is not one of them.
absl::Status SetLog(absl::string_view level, absl::string_view format);

void Log(Level level, absl::string_view event, absl::string_view message,
         LogFields fields = {});

// The JSON object Log writes in json format (tests).
std::string JsonLine(absl::string_view time, Level level,
                     absl::string_view event, absl::string_view message,
                     LogFields fields);

}  // namespace raftsql::obs

#endif  // RAFTSQL_OBS_LOG_H_
