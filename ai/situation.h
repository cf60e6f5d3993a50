// A device's situation as the hub's model reads it (issue 18, part 3):
// one sensor's window summarized by the anomaly functions
// (sm/anomaly_functions.h) and rendered as one line, exactly as
// ai/model/situations.py renders its training corpus (evaluate checks
// both agree on every held-out example).
#ifndef RAFTSQL_AI_SITUATION_H_
#define RAFTSQL_AI_SITUATION_H_

#include <cstdint>
#include <string>

namespace raftsql::ai {

struct Situation {
  std::string device;
  std::string sensor;
  double value = 0;  // The last reading.
  double mean = 0;   // Its moving average.
  double z = 0;      // The last reading's z-score.
  double rate = 0;   // Change per minute.
  bool stuck = false;
  int64_t gap_seconds = 0;  // The longest gap between readings.
};

// The unit the corpus writes after a sensor's value ("" if none).
const char* SensorUnit(const std::string& sensor);

// "<device> <sensor> <value><unit> mean <m> z <z> rate <+r>/min stuck
// yes|no gap <g>s", numbers to one decimal.
std::string Render(const Situation& s);

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_SITUATION_H_
