#include "ai/situation.h"

#include "absl/strings/str_format.h"

namespace raftsql::ai {

const char* SensorUnit(const std::string& sensor) {
  if (sensor == "temperature") return "C";
  if (sensor == "pressure") return "bar";
  if (sensor == "vibration") return "mm/s";
  if (sensor == "flow") return "l/min";
  return "";
}

std::string Render(const Situation& s) {
  return absl::StrFormat(
      "%s %s %.1f%s mean %.1f z %.1f rate %+.1f/min stuck %s gap %ds", s.device,
      s.sensor, s.value, SensorUnit(s.sensor), s.mean, s.z, s.rate,
      s.stuck ? "yes" : "no", s.gap_seconds);
}

}  // namespace raftsql::ai
