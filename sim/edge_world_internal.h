// Private pieces of EdgeWorld shared by its .cc files.
#ifndef RAFTSQL_SIM_EDGE_WORLD_INTERNAL_H_
#define RAFTSQL_SIM_EDGE_WORLD_INTERNAL_H_

#include <memory>
#include <string>

#include "core/prng.h"
#include "edge/actuator.h"
#include "edge/agent_core.h"
#include "edge/edge_store.h"
#include "sim/edge_world.h"
#include "sim/sim_fs.h"

namespace raftsql::sim {

struct EdgeWorld::Edge {
  int index = 0;
  std::string device;
  core::Prng rng{0};
  // The disk survives crashes (not wipes); the rest is the process.
  std::unique_ptr<SimFs> fs;
  std::unique_ptr<edge::EdgeStore> store;
  std::unique_ptr<edge::Actuator> actuator;
  std::unique_ptr<edge::AgentCore> core;
  bool up = false;
  uint64_t boot = 0;          // Processes started.
  uint64_t recorded = 0;      // The highest sequence in the ledger.
  std::string incarnation;    // The store's, at the last boot.
  bool small_buffer = false;  // Drops its oldest readings when full.
  uint64_t dropped_upto = 0;  // MarkDropped looked below this.
  // The highest sequence of this incarnation the hub acknowledged to it,
  // across its crashes (a new process's core knows none before its
  // Welcome): below it nothing was dropped for room.
  uint64_t hub_acked = 0;
  // The session (0: none), the node it goes to, whether it was welcomed.
  uint64_t session = 0;
  uint64_t node = 0;
  bool welcomed = false;
  Time connect_at = 0;
  Time up_at = 0;  // When the last message sent arrives (streams keep order).
  uint64_t next_hub = 0;
};

// A device's session on one hub node: lives until its node restarts or
// either side ends it.
struct EdgeWorld::Session {
  uint64_t id = 0;
  int edge = 0;
  uint64_t node = 0;
  uint64_t node_incarnation = 0;
  std::string device;
  std::unique_ptr<edge::HubSession> core;  // The server's session logic.
  bool ended = false;
  Time down_at = 0;  // As Edge::up_at, the other way.
};

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_EDGE_WORLD_INTERNAL_H_
