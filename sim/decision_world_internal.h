// Private pieces of DecisionWorld shared by its .cc files.
#ifndef RAFTSQL_SIM_DECISION_WORLD_INTERNAL_H_
#define RAFTSQL_SIM_DECISION_WORLD_INTERNAL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "sm/command.h"

namespace raftsql::sim {

// The sensors of ai/model/situations.py: nominal mean, spread, unit.
struct SensorKind {
  const char* name;
  double nominal;
  double spread;
  const char* unit;
};
inline constexpr SensorKind kSensors[] = {
    {"temperature", 60.0, 8.0, "C"},
    {"pressure", 4.0, 0.4, "bar"},
    {"vibration", 2.0, 0.5, "mm/s"},
    {"flow", 30.0, 4.0, "l/min"},
};
inline constexpr int kSensorKinds = 4;
// A reading's noise, as a share of its sensor's spread.
inline constexpr double kNoiseShare = 0.03;

// Every rule's cooldown per device (longer than a situation's window, so
// that one fault is acted on once), and how often an evaluation that
// decided nothing records its progress (the server's default).
inline constexpr int64_t kCooldownMs = 45'000;
inline constexpr int64_t kProgressEveryMs = 10'000;
// After a labelled fault ends, a decision about it still counts this long:
// the situation's window still holds it (30 s), and uploads may be held up
// by the faults.
inline constexpr int64_t kGraceMs = 35'000;

// Each device's situation (ai/situation.h's columns, in the training
// corpus's terms) over its readings of the last 30 s of device time and
// the one before them (so that a gap just ended shows in max_gap):
// `value` is the newest reading, `mean` the mean of those more than 5 s
// older, `z` how many of its sensor's spreads (sim_spreads) the newest
// lies from that mean. A device with fewer than 10 such readings is not
// judged yet.
inline constexpr char kSituationsView[] =
    "CREATE VIEW IF NOT EXISTS sim_situations AS "
    "SELECT device, w.sensor, newest_value AS value, "
    "avg(CASE WHEN device_time_ms < newest - 5000 THEN value END) AS mean, "
    "(newest_value - avg(CASE WHEN device_time_ms < newest - 5000 THEN value "
    "END)) / s.spread AS z, "
    "rate(value, device_time_ms) * 60000 AS rate, "
    "stuck(value, 0.001) AS stuck, max_gap(device_time_ms) / 1000 AS gap "
    "FROM (SELECT device, sensor, value, device_time_ms, newest, "
    "newest_value FROM "
    "(SELECT device, sensor, value, device_time_ms, "
    "lead(device_time_ms) OVER w AS next, "
    "max(device_time_ms) OVER (PARTITION BY device) AS newest, "
    "last_value(value) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND "
    "UNBOUNDED FOLLOWING) AS newest_value "
    "FROM edge_readings_by_device "
    "WINDOW w AS (PARTITION BY device ORDER BY device_time_ms)) "
    "WHERE coalesce(next, newest) >= newest - 30000 "
    "ORDER BY device, sensor, device_time_ms) w "
    "JOIN sim_spreads s ON s.sensor = w.sensor "
    "GROUP BY device, w.sensor HAVING count(*) >= 10";

// The runbook's action for a labelled fault of `sensor` (situations.py's
// `expert` on the fault as drawn): "none" for duplicated uploads.
std::string RunbookAction(const std::string& sensor, const std::string& kind);

// Whether a write committed with every statement done.
bool Committed(const absl::StatusOr<sm::CommandResult>& r);

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_DECISION_WORLD_INTERNAL_H_
