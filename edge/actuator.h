// What runs an edge's commands. Exactly once rests on EdgeStore::
// ExecuteOnce: the outcome is recorded in the transaction that runs the
// command, so an actuator whose effect lives in that database (the
// simulated one) is exactly once across crashes; a physical actuator is at
// most once if it acts after the record commits, at least once if before.
#ifndef RAFTSQL_EDGE_ACTUATOR_H_
#define RAFTSQL_EDGE_ACTUATOR_H_

#include <sqlite3.h>

#include <string>

#include "edge/edge_store.h"

namespace raftsql::edge {

class Actuator {
 public:
  virtual ~Actuator() = default;
  // Runs `name` with `params_json` (a JSON object); `db` is the edge
  // store's, inside the transaction that records the outcome.
  virtual Outcome Run(const std::string& name, const std::string& params_json,
                      sqlite3* db) = 0;
};

// Keeps its state in the edge store (table actuator_state: key -> value).
// Commands: "set" (every key of params to its value), "clear" (params
// "key"), "fail" (fails, for tests); others are rejected as unknown.
class SimulatedActuator final : public Actuator {
 public:
  Outcome Run(const std::string& name, const std::string& params_json,
              sqlite3* db) override;
  // The state's value of `key` as JSON text ("" if unset).
  static std::string Get(sqlite3* db, const std::string& key);
};

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_ACTUATOR_H_
