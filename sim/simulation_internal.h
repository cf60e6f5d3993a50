// Private pieces of Simulation shared by its .cc files.
#ifndef RAFTSQL_SIM_SIMULATION_INTERNAL_H_
#define RAFTSQL_SIM_SIMULATION_INTERNAL_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "sim/sim_fs.h"
#include "sim/sim_machine.h"
#include "sim/simulation.h"

namespace raftsql::sim {

class SlotTransport final : public core::Transport {
 public:
  // `on_send` sees every message a node sends (the checkers).
  SlotTransport(SimNetwork* network,
                std::function<void(const core::Message&)> on_send)
      : network_(network), on_send_(std::move(on_send)) {}
  void Send(core::Message m) override {
    on_send_(m);
    network_->Send(std::move(m));
  }

 private:
  SimNetwork* network_;
  std::function<void(const core::Message&)> on_send_;
};

struct Simulation::Slot {
  uint64_t id = 0;
  std::unique_ptr<SimDisk> disk;
  // --sql-disk: the SQLite database's files, which survive crashes as a
  // disk would (null: the state machine lives in memory).
  std::unique_ptr<SimFs> fs;
  std::unique_ptr<SimLogStore> store;
  // Down: the log it had when it crashed (unsynced writes included), for
  // the commit checker.
  std::unique_ptr<SimLogStore> down_store;
  std::unique_ptr<SimMachine> sm;
  std::unique_ptr<SlotTransport> transport;
  std::unique_ptr<core::Node> node;
  core::Prng disk_rng{0};
  bool up = false;
  Time paused_until = 0;
  // Its timer is stalled (a starved ticker thread, a clock that stands
  // still) while it goes on answering messages and clients.
  Time ticks_stalled_until = 0;
  Time tick_interval = 0;
  uint64_t incarnation = 0;
  uint64_t lead = core::kNone;
  // A damaged snapshot chunk reached it since the last refusal one
  // explained, and the refusals so explained (of its current Raft).
  bool damaged_chunk_pending = false;
  uint64_t explained_refusals = 0;
  // Client writes proposed here, answered when applied here.
  std::set<std::pair<uint64_t, uint64_t>> pending_writes;
  std::map<std::string, PendingRead> pending_reads;
  // Edge writes proposed here, by request id: answered when applied here.
  std::map<uint64_t, HubCluster::WriteDone> pending_edge;
};

enum class OpKind : uint8_t {
  kWrite,
  kRead,
  kTransfer,
  kBankRead,
  kAppend,
  kListRead,
};

struct Simulation::Client {
  uint64_t id = 0;
  uint64_t next_op = 1;
  uint64_t leader_hint = core::kNone;
  // The operation in flight (op == 0: none).
  uint64_t op = 0;
  OpKind kind = OpKind::kWrite;
  bool is_write = false;  // kWrite or kTransfer: goes through the log
  uint64_t from = 0;      // kTransfer
  uint64_t to = 0;
  int64_t amount = 0;
  uint64_t key = 0;
  int64_t value = 0;
  Time call = 0;
  // The highest index applied anywhere when the operation began: a read
  // must reflect at least that much.
  uint64_t read_floor = 0;
  bool watchdog_armed = false;
  // Liveness phase: the client's final write has been acknowledged.
  bool final_write_acked = false;
};

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_SIMULATION_INTERNAL_H_
