#include "edge/sensors.h"

#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace raftsql::edge {

SimulatedSensor::SimulatedSensor(SimulatedSensorOptions options, uint64_t seed)
    : o_(std::move(options)), state_(seed ^ 0x9e3779b97f4a7c15ull) {}

double SimulatedSensor::Uniform() {
  // splitmix64
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

std::vector<Reading> SimulatedSensor::Poll(int64_t now_ms) {
  std::vector<Reading> out;
  if (next_ms_ < 0) {
    next_ms_ = now_ms;
    start_ms_ = now_ms;
  }
  // One reading per period that has passed (bounded: a long pause does not
  // produce an unbounded burst).
  for (int i = 0; i < 1000 && next_ms_ <= now_ms; ++i) {
    const int64_t t = next_ms_;
    next_ms_ += o_.period_ms;
    if (dropout_left_ == 0 && Uniform() < o_.dropout_chance) {
      dropout_left_ = 10;
    }
    if (dropout_left_ > 0) {
      --dropout_left_;
      ++dropped_;
      continue;
    }
    double v =
        o_.base +
        o_.drift_per_hour * static_cast<double>(t - start_ms_) / 3'600'000.0 +
        (Uniform() * 2 - 1) * o_.noise;
    if (stuck_left_ == 0 && Uniform() < o_.stuck_chance) {
      stuck_left_ = 20;
      stuck_value_ = v;
    }
    if (stuck_left_ > 0) {
      --stuck_left_;
      v = stuck_value_;
    } else if (Uniform() < o_.spike_chance) {
      ++spikes_;
      v = o_.base * 10;
    }
    out.push_back(Reading{o_.name, v, o_.unit, t, 0});
  }
  return out;
}

std::optional<Reading> ParseCsvReading(const std::string& line,
                                       int64_t now_ms) {
  absl::string_view text = absl::StripAsciiWhitespace(line);
  if (text.empty() || text[0] == '#') return std::nullopt;
  std::vector<std::string> f = absl::StrSplit(text, ',');
  if (f.size() < 2 || f.size() > 4) return std::nullopt;
  Reading r;
  r.sensor = std::string(absl::StripAsciiWhitespace(f[0]));
  if (!absl::SimpleAtod(f[1], &r.value) || !std::isfinite(r.value)) {
    return std::nullopt;
  }
  if (f.size() >= 3) r.unit = std::string(absl::StripAsciiWhitespace(f[2]));
  r.device_time_ms = now_ms;
  if (f.size() == 4 && !absl::SimpleAtoi(f[3], &r.device_time_ms)) {
    return std::nullopt;
  }
  Upload one;
  one.readings.push_back(r);
  one.readings[0].sequence = 1;
  if (!ValidateUpload(one).ok()) return std::nullopt;
  return r;
}

CsvSource::CsvSource(std::istream* in, size_t per_poll)
    : in_(in), per_poll_(per_poll) {}

std::vector<Reading> CsvSource::Poll(int64_t now_ms) {
  std::vector<Reading> out;
  std::string line;
  while (out.size() < per_poll_ && !done_) {
    if (!std::getline(*in_, line)) {
      done_ = true;
      break;
    }
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    if (std::optional<Reading> r = ParseCsvReading(line, now_ms)) {
      out.push_back(std::move(*r));
    } else {
      ++skipped_;
    }
  }
  return out;
}

}  // namespace raftsql::edge
