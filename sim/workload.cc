// The simulated clients: each runs one operation at a time (a register write
// or a linearizable read of one of a few keys) against a node it believes
// leads, records invoke/complete times, and treats a timeout as an
// indeterminate result.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "sim/sim_machine.h"
#include "sim/simulation.h"
#include "sim/simulation_internal.h"

namespace raftsql::sim {

// How long a client waits after a clean failure before its next operation.
constexpr Time kRetryBackoff = 20 * kMillisecond;

Time Simulation::ThinkTime() { return client_rng_.Uniform(2 * kMillisecond); }

void Simulation::StartClient(Client& c) {
  Client* client = &c;
  queue_.After(client_rng_.Uniform(10 * kMillisecond), 0xc1000 + c.id,
               [this, client] { NextOp(*client); });
}

bool Simulation::WorkloadDone() const {
  if (ops_issued_ < options_.ops) return false;
  for (const auto& c : clients_) {
    if (c->op != 0) return false;
  }
  return true;
}

void Simulation::NextOp(Client& c) {
  if (finished_ || c.op != 0) return;
  if (fault_phase_) {
    if (ops_issued_ >= options_.ops) return;
    ++ops_issued_;
  } else if (c.final_write_acked) {
    return;
  }
  c.op = c.next_op++;
  // After healing, every client writes until one write succeeds. With the
  // SQL machine a share of the operations move money and read the bank.
  const uint64_t dice = client_rng_.Uniform(100);
  if (!fault_phase_ || dice < 35) {
    c.kind = OpKind::kWrite;
  } else if (dice < 60 || !options_.sql) {
    c.kind = OpKind::kRead;
  } else if (dice < 70) {
    c.kind = OpKind::kAppend;
  } else if (dice < 76) {
    c.kind = OpKind::kListRead;
  } else if (dice < 92) {
    c.kind = OpKind::kTransfer;
    c.from = client_rng_.Uniform(kBankAccounts);
    c.to = client_rng_.Uniform(kBankAccounts);
    c.amount = static_cast<int64_t>(1 + client_rng_.Uniform(60));
  } else {
    c.kind = OpKind::kBankRead;
  }
  c.is_write = c.kind == OpKind::kWrite || c.kind == OpKind::kTransfer ||
               c.kind == OpKind::kAppend;
  c.key = client_rng_.Uniform(options_.keys);
  c.value = static_cast<int64_t>(c.id * 1'000'000'000 + c.op);
  c.call = queue_.now();
  c.read_floor = result_.commit_index;
  uint64_t target = c.leader_hint;
  if (target == core::kNone || client_rng_.Chance(0.2)) {
    target = 1 + client_rng_.Uniform(slots_.size());
  }
  const uint64_t client = c.id;
  const uint64_t op = c.op;
  queue_.After(
      network_->Latency(), 0xc2000 + client,
      [this, target, client, op] { Receive(*slots_[target - 1], client, op); });
  if (!c.watchdog_armed) ArmWatchdog(c, c.call + options_.op_timeout);
}

void Simulation::ArmWatchdog(Client& c, Time at) {
  // One pending timeout event per client, re-armed for the operation in
  // flight when it fires: a timeout per operation would leave thousands of
  // stale events in the queue.
  c.watchdog_armed = true;
  Client* cp = &c;
  queue_.At(at, 0xc3000 + c.id, [this, cp] {
    cp->watchdog_armed = false;
    if (cp->op == 0) return;
    const Time deadline = cp->call + options_.op_timeout;
    if (queue_.now() >= deadline) {
      TimeOut(cp->id, cp->op);
    } else {
      ArmWatchdog(*cp, deadline);
    }
  });
}

void Simulation::Receive(Slot& s, uint64_t client, uint64_t op) {
  Client& c = *clients_[client - 1];
  if (c.op != op) return;  // Timed out already.
  // A request to a crashed or paused node is lost; the client times out.
  if (!s.up || queue_.now() < s.paused_until) return;
  auto fail = [&] {
    const uint64_t hint = s.lead;
    queue_.After(
        network_->Latency(), 0xc4000 + client,
        [this, client, op, hint] { Reply(client, op, false, 0, hint); });
  };
  if (c.is_write) {
    // The node that takes the request fixes the command's clock and seed,
    // as a leader does (DESIGN.md §3).
    const uint64_t now_ms = queue_.now() / kMillisecond;
    const uint64_t seed = rng_.Next();
    std::string cmd;
    if (c.kind == OpKind::kTransfer) {
      cmd = s.sm->EncodeTransfer(client, op, c.from, c.to, c.amount, now_ms,
                                 seed);
    } else if (c.kind == OpKind::kAppend) {
      cmd = s.sm->EncodeAppend(client, op, c.key, c.value, now_ms, seed);
    } else {
      cmd = s.sm->EncodeWrite(client, op, c.key, c.value, now_ms, seed);
    }
    const absl::Status st = s.node->Propose(cmd);
    AfterNodeEvent(s);
    // Dropped means it entered no log: definitely not applied.
    if (!st.ok()) return fail();
    s.pending_writes.insert({client, op});
    return;
  }
  if (options_.broken_stale_reads) {
    const int64_t value = ServeRead(s, client, op);
    const uint64_t hint = s.lead;
    queue_.After(network_->Latency(), 0xc5000 + client,
                 [this, client, op, value, hint] {
                   Reply(client, op, true, value, hint);
                 });
    return;
  }
  const std::string ctx = absl::StrCat(client, ":", op);
  PendingRead pending{client, op};
  // As the server's linearizable Query does (RaftServer::MayReadEarly), in
  // half the seeds: a register read runs before its read index is asked
  // when everything committed here is applied; OnRead keeps its value if
  // the index comes back at most at what it saw.
  const uint64_t applied = s.sm->machine().AppliedIndex();
  if (options_.seed % 2 == 0 && c.kind == OpKind::kRead &&
      applied >= s.node->raw().raft().log().committed()) {
    pending.early = true;
    pending.seen = applied;
    pending.value = s.sm->Get(c.key);
  }
  const absl::Status st = s.node->ReadIndex(ctx);
  AfterNodeEvent(s);
  if (!st.ok()) return fail();
  s.pending_reads[ctx] = pending;
}

void Simulation::Reply(uint64_t client, uint64_t op, bool ok, int64_t value,
                       uint64_t leader_hint) {
  Client& c = *clients_[client - 1];
  if (c.op != op) return;  // A late answer to a timed-out operation.
  c.leader_hint = leader_hint;
  const bool register_op = c.kind == OpKind::kWrite || c.kind == OpKind::kRead;
  if (ok) {
    ++result_.ops_ok;
    if (register_op) {
      history_[c.key].push_back(RegisterOp{client, c.is_write,
                                           c.is_write ? c.value : value, c.call,
                                           queue_.now()});
    }
    if (c.kind == OpKind::kAppend) list_acks_[{c.key, c.value}] = queue_.now();
    if (c.is_write) {
      uint64_t& acked = acked_writes_[client];
      acked = std::max(acked, op);
      if (!fault_phase_) c.final_write_acked = true;
    }
    if (register_op) {
      Trace(absl::StrFormat(
          "client %d %s k%d %s %d ok (%dus)", client,
          c.is_write ? "write" : "read", c.key, c.is_write ? "<-" : "->",
          c.is_write ? c.value : value, queue_.now() - c.call));
    } else {
      Trace(absl::StrFormat(
          "client %d %s ok (%dus)", client,
          c.kind == OpKind::kTransfer
              ? absl::StrFormat("transfer %d from a%d to a%d", c.amount, c.from,
                                c.to)
          : c.kind == OpKind::kAppend
              ? absl::StrFormat("append l%d <- %d", c.key, c.value)
          : c.kind == OpKind::kListRead
              ? absl::StrFormat("read l%d: %d items", c.key, value)
              : absl::StrFormat("bank read: total %d", value),
          queue_.now() - c.call));
    }
  } else {
    ++result_.ops_failed;
  }
  queue_.Mix((client << 40) ^ (op << 1) ^ (ok ? 1 : 0));
  c.op = 0;
  Client* cp = &c;
  // After a clean failure (no leader yet) back off before trying again.
  const Time pause = ok ? ThinkTime() : kRetryBackoff + ThinkTime();
  queue_.After(pause, 0xc6000 + client, [this, cp] { NextOp(*cp); });
}

void Simulation::TimeOut(uint64_t client, uint64_t op) {
  Client& c = *clients_[client - 1];
  if (c.op != op) return;
  if (c.kind == OpKind::kWrite) {
    // Outcome unknown: it may take effect at any later point, or never.
    history_[c.key].push_back(
        RegisterOp{client, true, c.value, c.call, kNeverReturned});
  }
  ++result_.ops_unknown;
  Trace(absl::StrFormat("client %d %s k%d timed out", client,
                        c.is_write ? "write" : "read", c.key));
  c.op = 0;
  c.leader_hint = core::kNone;
  Client* cp = &c;
  queue_.After(ThinkTime(), 0xc7000 + client, [this, cp] { NextOp(*cp); });
}

}  // namespace raftsql::sim
