#include "obs/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace raftsql::obs {

namespace {

std::atomic<Level> min_level{Level::kInfo};
std::atomic<bool> json{false};

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

spdlog::logger& Logger() {
  // Unsynchronised writes, one lock here: spdlog's stderr sink with a
  // mutex, a pattern of the message alone (the line is made below).
  static spdlog::logger* logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto* l = new spdlog::logger("raftsql", sink);
    l->set_pattern("%v");
    l->set_level(spdlog::level::trace);
    l->flush_on(spdlog::level::trace);  // Lines are rare; a crash loses none.
    return l;
  }();
  return *logger;
}

void AppendJsonString(std::string& out, absl::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through.
        }
    }
  }
  out += '"';
}

void AppendValue(std::string& out, const LogValue& v, bool quote_text) {
  std::visit(
      [&out, quote_text](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (quote_text) {
            AppendJsonString(out, x);
          } else {
            out += x;
          }
        } else {
          absl::StrAppend(&out, x);
        }
      },
      v.value);
}

}  // namespace

absl::Status SetLog(absl::string_view level, absl::string_view format) {
  Level l;
  if (level == "debug") {
    l = Level::kDebug;
  } else if (level == "info") {
    l = Level::kInfo;
  } else if (level == "warn") {
    l = Level::kWarn;
  } else if (level == "error") {
    l = Level::kError;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--log_level: '", level, "' is not debug, info, warn or error"));
  }
  if (format != "text" && format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log_format: '", format, "' is not text or json"));
  }
  min_level = l;
  json = format == "json";
  return absl::OkStatus();
}

std::string JsonLine(absl::string_view time, Level level,
                     absl::string_view event, absl::string_view message,
                     LogFields fields) {
  std::string out = "{\"ts\":";
  AppendJsonString(out, time);
  absl::StrAppend(&out, ",\"level\":\"", LevelName(level), "\",\"event\":");
  AppendJsonString(out, event);
  out += ",\"msg\":";
  AppendJsonString(out, message);
  for (const auto& [key, value] : fields) {
    out += ',';
    AppendJsonString(out, key);
    out += ':';
    AppendValue(out, value, true);
  }
  out += '}';
  return out;
}

void Log(Level level, absl::string_view event, absl::string_view message,
         LogFields fields) {
  if (level < min_level.load(std::memory_order_relaxed)) return;
  const std::string time = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                                            absl::Now(), absl::UTCTimeZone());
  std::string line;
  if (json.load(std::memory_order_relaxed)) {
    line = JsonLine(time, level, event, message, fields);
  } else {
    line = absl::StrCat(time, " ", LevelName(level), " raftsql: ", message);
  }
  Logger().log(spdlog::level::info, "{}", line);
}

}  // namespace raftsql::obs
