// Where an edge's readings come from. A simulated sensor (seeded: the same
// seed gives the same readings) with the faults real ones have, and a CSV
// source for real use (a file or stdin).
#ifndef RAFTSQL_EDGE_SENSORS_H_
#define RAFTSQL_EDGE_SENSORS_H_

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edge/hub_sql.h"

namespace raftsql::edge {

class Source {
 public:
  virtual ~Source() = default;
  // The readings available at now_ms (their sequence is the store's to
  // set); an empty vector when there are none now. Done() once a finite
  // source has nothing more.
  virtual std::vector<Reading> Poll(int64_t now_ms) = 0;
  virtual bool Done() const { return false; }
};

struct SimulatedSensorOptions {
  std::string name = "temp";
  std::string unit = "C";
  double base = 20;
  double drift_per_hour = 0.5;  // A slow trend.
  double noise = 0.2;           // Uniform, +-.
  int64_t period_ms = 1000;
  // Chances per reading of each fault.
  double spike_chance = 0.001;    // One reading far off (x10 of base).
  double stuck_chance = 0.0005;   // The next 20 readings repeat a value.
  double dropout_chance = 0.001;  // The next 10 readings are missing.
};

// A deterministic sensor: the readings are a function of the seed and the
// poll times.
class SimulatedSensor final : public Source {
 public:
  SimulatedSensor(SimulatedSensorOptions options, uint64_t seed);
  std::vector<Reading> Poll(int64_t now_ms) override;
  // Faults so far (tests and figures).
  uint64_t spikes() const { return spikes_; }
  uint64_t dropped() const { return dropped_; }

 private:
  double Uniform();  // [0, 1)
  const SimulatedSensorOptions o_;
  uint64_t state_;
  int64_t next_ms_ = -1;
  int64_t start_ms_ = 0;
  int stuck_left_ = 0;
  int dropout_left_ = 0;
  double stuck_value_ = 0;
  uint64_t spikes_ = 0;
  uint64_t dropped_ = 0;
};

// Lines of "sensor,value[,unit[,device_time_ms]]" ('#' starts a comment);
// a line that does not parse, or a value that is not a finite number, is
// skipped and counted. Without device_time_ms a reading gets the poll's
// time.
class CsvSource final : public Source {
 public:
  // `in` must outlive this. At most `per_poll` lines are read per Poll.
  CsvSource(std::istream* in, size_t per_poll = 1000);
  std::vector<Reading> Poll(int64_t now_ms) override;
  bool Done() const override { return done_; }
  uint64_t skipped() const { return skipped_; }

 private:
  std::istream* in_;
  const size_t per_poll_;
  bool done_ = false;
  uint64_t skipped_ = 0;
};

// Parses one CSV line; nullopt if it is not a reading.
std::optional<Reading> ParseCsvReading(const std::string& line, int64_t now_ms);

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_SENSORS_H_
