#include "sim/simulation.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "sim/simulation_internal.h"

namespace raftsql::sim {

// More pending events than this means messages multiply faster than they are
// consumed: a storm, reported as a failure.
constexpr size_t kMaxPendingEvents = 1'000'000;

Simulation::Simulation(const SimOptions& options)
    : options_(options),
      plan_(
          DrawFaultPlan(options.seed, options.nodes, options.fault_intensity)),
      rng_(options.seed ^ 0x5eed5eed5eedull),
      client_rng_(rng_.Split()) {
  CHECK_GE(options.nodes, 1);
  CHECK_GE(options.clients, 1);
  safety_ = std::make_unique<core::testing::SafetyChecker>(
      [this] {
        std::vector<uint64_t> ids;
        for (const auto& s : slots_) ids.push_back(s->id);
        return ids;
      },
      [this](uint64_t id) {
        core::testing::SafetyChecker::NodeView v;
        if (id == 0 || id > slots_.size()) return v;
        const Slot& s = *slots_[id - 1];
        if (s.up && s.node) v.raft = &s.node->raw().raft();
        v.log = s.store ? s.store.get() : s.down_store.get();
        return v;
      },
      [this](const std::string& what) { Violation(what); });
  plan_.network.hold_probability =
      std::max(plan_.network.hold_probability, options.min_hold_probability);
  if (options.nodes >= 5) {
    plan_.leader_return_weight =
        std::max(plan_.leader_return_weight, options.min_leader_return_weight);
  }
  network_ = std::make_unique<SimNetwork>(
      &queue_, rng_.Split(), plan_.network,
      [this](core::Message m) { Deliver(std::move(m)); });
  // A lost snapshot must be reported, or the leader waits for it forever.
  network_->SetLostHandler([this](const core::Message& m) {
    if (m.type != core::MessageType::kSnap) return;
    queue_.After(0, 0x5a9, [this, from = m.from, to = m.to] {
      Slot& leader = *slots_[from - 1];
      if (leader.up) leader.node->ReportSnapshot(to, false);
    });
  });
  core::ConfState cs;
  for (int i = 1; i <= options.nodes; ++i) cs.voters.push_back(i);
  for (int i = 1; i <= options.nodes; ++i) {
    auto s = std::make_unique<Slot>();
    s->id = i;
    DiskFaults disk_faults = plan_.disk;
    disk_faults.lie_about_fsync = options.broken_fsync;
    s->disk = std::make_unique<SimDisk>(disk_faults);
    if (options.sql && options.sql_disk) {
      s->fs = std::make_unique<SimFs>(NextSimFsId());
    }
    s->disk_rng = rng_.Split();
    s->transport = std::make_unique<SlotTransport>(
        network_.get(), [this](const core::Message& m) { OnSend(m); });
    const double drift = plan_.clock_drift[i - 1];
    s->tick_interval = static_cast<Time>(
        static_cast<double>(options.tick_interval) * (1.0 + drift));
    SimLogStore bootstrap(s->disk.get(), &queue_, &s->disk_rng, DiskLatency{});
    bootstrap.Bootstrap(cs);
    slots_.push_back(std::move(s));
  }
  for (int i = 1; i <= options.clients; ++i) {
    auto c = std::make_unique<Client>();
    c->id = i;
    clients_.push_back(std::move(c));
  }
  plan_.crash_mid_write_probability =
      std::max(plan_.crash_mid_write_probability,
               options.min_crash_mid_write_probability);
  plan_.crash_after_vote_probability =
      std::max(plan_.crash_after_vote_probability,
               options.min_crash_after_vote_probability);
  if (options.max_message_bytes > 0) {
    plan_.max_message_bytes = options.max_message_bytes;
  }
  result_.seed = options.seed;
  vote_crash_rng_ = core::Prng(options.seed * 0xc4a5 + 11);
  result_.plan = plan_.Describe();
  if (options.edges > 0) {
    CHECK(options.sql);
    EdgeWorldOptions eo;
    eo.edges = options.edges;
    eo.seed = options.seed;
    eo.fault_intensity = options.fault_intensity;
    eo.broken_fsync = options.broken_edge_fsync;
    // Half the seeds keep 20-200 readings per device; a third of the
    // edges, in half the seeds, have a buffer that fills.
    core::Prng draw(options.seed * 0xed9e5 + 7);
    eo.readings_max_per_device =
        draw.Chance(0.5) ? static_cast<int64_t>(draw.Range(20, 200)) : 0;
    eo.small_buffer_share = draw.Chance(0.5) ? 0.34 : 0;
    if (options.decisions != DecisionMode::kNone) {
      DecisionWorldOptions d;
      d.mode = options.decisions;
      d.seed = options.seed;
      d.edges = options.edges;
      d.model_dir = options.model_dir;
      d.broken_progress = options.broken_decision_progress;
      decisions_ = std::make_unique<DecisionWorld>(d, &queue_, this);
      eo.decisions = decisions_.get();
    }
    edges_ = std::make_unique<EdgeWorld>(eo, &queue_, rng_.Split(), this);
  }
}

Simulation::~Simulation() = default;

std::string Simulation::Now() const {
  return absl::StrFormat("%4d.%03ds", queue_.now() / kSecond,
                         (queue_.now() % kSecond) / kMillisecond);
}

void Simulation::Trace(const std::string& line) {
  if (options_.trace) options_.trace(absl::StrCat(Now(), "  ", line));
}

std::unique_ptr<SimMachine> Simulation::NewPausingKvMachine(uint64_t id) {
  if (!options_.pause_apply) return NewKvMachine();
  // Every node its own rhythm: a pause every 15-64 entries, of 1 tick to
  // three election timeouts.
  const uint64_t every = 15 + (options_.seed * 7 + id * 13) % 50;
  const int ticks = 1 + static_cast<int>((options_.seed * 11 + id * 5) %
                                         (3 * options_.election_ticks));
  return NewKvMachine(every, ticks, &result_.faults["apply pause"]);
}

void Simulation::StartNode(Slot& s) {
  CHECK(!s.up);
  ++s.incarnation;
  DiskLatency latency;
  latency.slowdown = plan_.disk_slowdown[s.id - 1];
  latency.synchronous = options_.sync_disk;
  s.down_store.reset();
  s.store = std::make_unique<SimLogStore>(s.disk.get(), &queue_, &s.disk_rng,
                                          latency);
  const RecoveryReport recovery = s.store->Recover();
  {
    Slot* slot = &s;
    s.store->SetEntriesHook([this, slot](const std::vector<core::Entry>& es) {
      safety_->OnWrite(slot->id, *slot->store, es);
    });
  }
  if (plan_.crash_mid_write_probability > 0) {
    Slot* slot = &s;
    s.store->SetSubmitHook([this, slot](Time completion) {
      if (!fault_phase_ || !rng_.Chance(plan_.crash_mid_write_probability))
        return false;
      const uint64_t incarnation = slot->incarnation;
      // A synchronous write (--sync-disk) completes now: the process dies
      // inside it (the store fails it, the node stops, this crashes it).
      const bool inside = completion <= queue_.now();
      const Time at =
          inside ? queue_.now()
                 : queue_.now() + rng_.Uniform(completion - queue_.now());
      queue_.At(at, 0xc7a5, [this, slot, incarnation] {
        if (slot->incarnation != incarnation || !slot->up) return;
        ++result_.faults["crash mid-write"];
        CrashNode(*slot, "in the middle of a log write");
        RestartLater(*slot, rng_.Range(50, 1000) * kMillisecond, 0x5e57a49);
      });
      return inside;
    });
  }
  s.sm = !options_.sql     ? NewPausingKvMachine(s.id)
         : s.fs != nullptr ? NewSqlMachine(!options_.broken_split_transfers,
                                           s.fs->Path("state.db"),
                                           SimFsVfsName(), SwapRenamer(s))
                           : NewSqlMachine(!options_.broken_split_transfers);
  core::NodeOptions o;
  o.raft.id = s.id;
  o.raft.election_ticks = options_.election_ticks;
  o.raft.heartbeat_ticks = options_.heartbeat_ticks;
  o.raft.storage = s.store.get();
  o.raft.max_inflight_msgs = 64;
  o.raft.max_size_per_msg = 64 * 1024;
  // The seed's message shape, the same for every node.
  if (plan_.max_message_bytes > 0) {
    o.raft.max_size_per_msg = plan_.max_message_bytes;
  }
  if (plan_.max_inflight_messages > 0) {
    o.raft.max_inflight_msgs = plan_.max_inflight_messages;
  }
  // Small chunks, so that every snapshot travels in several of them.
  o.raft.max_snapshot_chunk_bytes = options_.sql ? 8 * 1024 : 256;
  // A third of the seeds (by seed, so the others run as before) catch up
  // at two chunks a tick, as --snapshot_bytes_per_second does.
  if (options_.seed % 3 == 0) {
    o.raft.snapshot_bytes_per_tick = 2 * o.raft.max_snapshot_chunk_bytes;
  }
  // A fifth of them (by seed) announce a new commit index at the next
  // tick, as --announce_commit_at_tick does.
  o.raft.announce_commit_at_tick = options_.seed % 5 == 2;
  o.raft.seed = options_.seed * 7919 + s.incarnation * 104729 + s.id;
  o.log_store = s.store.get();
  o.transport = s.transport.get();
  o.state_machine = &s.sm->machine();
  o.unsafe_send_before_persist = options_.broken_send_before_persist;
  o.raft.unsafe_commit_earlier_terms = options_.broken_commit_earlier_terms;
  o.raft.unsafe_learners_in_quorum = options_.broken_learners_in_quorum;
  o.raft.unsafe_vote_without_log_check = options_.broken_vote_without_log_check;
  o.raft.unsafe_heartbeat_full_commit = options_.broken_heartbeat_full_commit;
  o.unsafe_forget_vote = options_.broken_forget_vote;
  o.raft.unsafe_double_vote = options_.broken_double_vote;
  o.raft.unsafe_read_index_before_term_commit =
      options_.broken_read_index_before_term_commit;
  o.raft.unsafe_conflict_by_index = options_.broken_conflict_by_index;
  o.raft.unsafe_match_what_was_sent = options_.broken_match_what_was_sent;
  o.raft.unsafe_read_index_without_quorum =
      options_.broken_read_index_without_quorum;
  o.raft.unsafe_stale_append_acks = options_.broken_stale_append_acks;
  o.send_appends_before_persist = options_.sync_disk;
  o.snapshot_threshold_entries = options_.snapshot_threshold_entries;
  o.compaction_keeps_entries = options_.compaction_keeps_entries;
  core::NodeObserver obs;
  Slot* slot = &s;
  obs.on_apply = [this, slot](const core::Entry& e, const std::string& r) {
    OnApply(*slot, e, r);
  };
  obs.on_read = [this, slot](const core::ReadState& rs) { OnRead(*slot, rs); };
  obs.on_soft_state = [this, slot](const core::SoftState& ss) {
    OnSoftState(*slot, ss);
  };
  obs.on_fatal = [this, slot](const absl::Status& status) {
    // A process that died inside a write: the hook that decided it
    // crashes it.
    if (absl::IsAborted(status)) return;
    Trace(absl::StrCat("n", slot->id, " stops: ", status.message()));
    ++result_.faults["fsync failure"];
    const uint64_t incarnation = slot->incarnation;
    // The process exits; a supervisor restarts it a little later.
    queue_.After(0, 0xfa7a1, [this, slot, incarnation] {
      if (slot->incarnation != incarnation || !slot->up) return;
      CrashNode(*slot, "after fsync failure");
      RestartLater(*slot, 50 * kMillisecond, 0x5e57a47);
    });
  };
  s.node = std::make_unique<core::Node>(o, std::move(obs));
  s.damaged_chunk_pending = false;
  s.explained_refusals = 0;
  s.up = true;
  s.lead = core::kNone;
  Trace(absl::StrFormat(
      "n%d starts (incarnation %d): %d records recovered%s, term %d, last "
      "index %d",
      s.id, s.incarnation, recovery.records,
      recovery.truncated_bytes > 0
          ? absl::StrCat(", torn tail of ", recovery.truncated_bytes,
                         " bytes cut")
          : "",
      s.node->raw().raft().term(), s.store->LastIndex()));
  queue_.Mix(s.store->LastIndex());
  if (s.incarnation == 1) ScheduleTick(s);
}

sm::RenameFile Simulation::SwapRenamer(Slot& s) {
  Slot* slot = &s;
  return [this, slot](const std::string& from,
                      const std::string& to) -> absl::Status {
    // Not while it starts (completing a swap a crash interrupted): the
    // machine's Open must succeed.
    if (slot->up && fault_phase_ && plan_.crash_mid_swap_probability > 0 &&
        rng_.Chance(plan_.crash_mid_swap_probability)) {
      // The process dies before this rename: nothing more reaches its disk,
      // and the restore fails (the node stops, and is restarted).
      ++result_.faults["crash mid-swap"];
      Trace(absl::StrCat("n", slot->id, " crashes before renaming ", from));
      slot->fs->Freeze();
      return absl::UnavailableError("crashed in the middle of a file swap");
    }
    return SimFsRename(from, to);
  };
}

void Simulation::CrashNode(Slot& s, const char* why) {
  if (!s.up) return;
  // A dead process writes nothing more: closing its database must not
  // checkpoint or clean up.
  if (s.fs != nullptr) s.fs->Freeze();
  s.node.reset();
  s.store->Kill();  // Pending disk completions die with it.
  s.down_store = std::move(s.store);
  s.sm.reset();
  s.pending_writes.clear();
  s.pending_reads.clear();
  s.pending_edge.clear();
  s.up = false;
  s.paused_until = 0;
  s.ticks_stalled_until = 0;
  const CrashReport r = s.disk->Crash(s.disk_rng);
  const size_t lost_db_writes = s.fs != nullptr ? s.fs->Crash(s.disk_rng) : 0;
  if (lost_db_writes > 0) ++result_.faults["database writes lost"];
  Trace(absl::StrFormat(
      "n%d crashes %s: %d unsynced bytes lost%s%s%s", s.id, why, r.lost_bytes,
      r.torn ? ", last write torn" : "",
      r.corrupted ? ", last sector corrupted" : "",
      lost_db_writes > 0
          ? absl::StrFormat(", %d database writes lost", lost_db_writes)
          : std::string()));
  if (r.torn) ++result_.faults["torn write"];
  if (r.corrupted) ++result_.faults["corrupt sector"];
}

void Simulation::RestartLater(Slot& s, Time delay, uint64_t tag) {
  Slot* slot = &s;
  queue_.After(delay, tag, [this, slot] {
    if (!slot->up) StartNode(*slot);
  });
}

void Simulation::ScheduleTick(Slot& s) {
  Slot* slot = &s;
  queue_.After(s.tick_interval, 0x71c0 + s.id, [this, slot] {
    if (finished_) return;
    if (slot->up && queue_.now() >= slot->paused_until &&
        queue_.now() >= slot->ticks_stalled_until) {
      slot->node->Tick();
      AfterNodeEvent(*slot);
    }
    ScheduleTick(*slot);
  });
}

void Simulation::Deliver(core::Message m) {
  if (m.to == 0 || m.to > slots_.size()) return;
  Slot& s = *slots_[m.to - 1];
  if (!s.up) {
    if (m.type == core::MessageType::kSnap && slots_[m.from - 1]->up) {
      slots_[m.from - 1]->node->ReportSnapshot(m.to, false);
    }
    return;
  }
  if (queue_.now() < s.paused_until) {
    // A paused process reads its socket when it wakes up.
    const Time at = s.paused_until;
    queue_.At(at, 0xba5e,
              [this, m = std::move(m)]() mutable { Deliver(std::move(m)); });
    return;
  }
  const bool snapshot = m.type == core::MessageType::kSnap;
  const uint64_t from = m.from;
  if (m.type == core::MessageType::kVote) {
    const std::pair<uint64_t, uint64_t>* vote = safety_->VoteOf(m.to, m.term);
    if (vote != nullptr && vote->first != m.from &&
        vote->second != s.incarnation) {
      ++result_.revote_requests;
    }
  }
  if (m.type == core::MessageType::kAppResp && !m.reject &&
      s.node->raw().raft().state() == core::StateType::kLeader &&
      m.term < s.node->raw().raft().term()) {
    if (safety_->LeaderOf(m.term) == s.id) {
      ++result_.stale_acks_at_leader;
      const core::Raft& raft = s.node->raw().raft();
      // It would raise the match to an index where the follower's log
      // (a down one's as it crashed) lacks the leader's entry; below its
      // snapshot it holds whatever was committed there.
      const auto pr = raft.tracker().progress().find(m.from);
      const uint64_t match =
          pr == raft.tracker().progress().end() ? 0 : pr->second.match;
      const uint64_t ours = raft.log().ZeroTermOnError(m.index);
      const std::optional<core::testing::SafetyChecker::FollowerLog> f =
          safety_->FollowerLogOf(m.from, m.index);
      const bool lies = f.has_value() && m.index >= f->first &&
                        (m.index > f->last || f->term.value_or(0) != ours);
      if (lies && ours != 0 && pr != raft.tracker().progress().end() &&
          m.index > match) {
        ++result_.stale_acks_that_lie;
      }
      Trace(absl::StrFormat(
          "n%d, leader of term %d, receives n%d's ack of %d from its term %d "
          "(match %d, last %d/%d)",
          s.id, raft.term(), m.from, m.index, m.term, match,
          raft.log().LastTerm(), raft.log().LastIndex()));
    }
  }
  if (snapshot) MaybeDamageChunk(s, m);
  s.node->Step(std::move(m));
  AfterNodeEvent(s);
  if (snapshot) {
    ++result_.faults["snapshot chunk delivered"];
    Trace(
        absl::StrFormat("n%d receives a snapshot chunk from n%d", s.id, from));
  }
}

void Simulation::MaybeDamageChunk(Slot& to, core::Message& m) {
  // Images into a follower's file (--sql-disk, as the server receives
  // them) only: it checks the image's CRC (issue 14), and the checkers see
  // an image installed damaged as divergence. (--sql's in-memory followers
  // get whole copies without a trailer: the simulator's own path.) Drawn
  // from a mix of the seed and the chunks delivered so far, not from the
  // seed's streams: every other draw stays as it was.
  if (!options_.sql_disk || !m.snapshot.has_value() ||
      m.snapshot->data.empty()) {
    return;
  }
  uint64_t x = options_.seed * 0x9e3779b97f4a7c15ULL +
               result_.faults["snapshot chunk delivered"];
  const uint64_t draw = core::SplitMix64(x);
  if (draw % kDamageOneChunkIn != 0) return;
  std::string& data = m.snapshot->data;
  data[draw % data.size()] ^= 0x10;
  ++result_.faults["snapshot chunk damaged"];
  to.damaged_chunk_pending = true;
  Trace(absl::StrFormat("a snapshot chunk from n%d to n%d is damaged", m.from,
                        m.to));
}

void Simulation::AfterNodeEvent(Slot& s) {
  if (!s.up || !s.node) return;
  const core::Raft& raft = s.node->raw().raft();
  raft.CheckInvariants();
  s.node->CheckInvariants();
  safety_->AfterEvent(s.id);
  // Every peer here is honest: a message refused as invalid is a bug on one
  // side of the boundary (a sender that breaks Raft, or a check too strict)
  // unless the network damaged an image it refused for its checksum.
  if (raft.invalid_messages() > s.explained_refusals) {
    if (s.damaged_chunk_pending &&
        absl::StrContains(raft.last_invalid_message(), "checksum")) {
      s.damaged_chunk_pending = false;
      s.explained_refusals = raft.invalid_messages();
      ++result_.faults["damaged image refused"];
      return;
    }
    Violation(absl::StrCat(
        "n", s.id, " refused a message: ", raft.last_invalid_message()));
  }
}

void Simulation::OnSoftState(Slot& s, const core::SoftState& ss) {
  s.lead = ss.lead;
  const core::Raft& raft = s.node->raw().raft();
  queue_.Mix((s.id << 48) ^ (raft.term() << 8) ^
             static_cast<uint64_t>(ss.state));
  if (ss.state == core::StateType::kLeader) {
    Trace(absl::StrFormat("n%d becomes leader of term %d (last index %d)", s.id,
                          raft.term(), raft.log().LastIndex()));
    safety_->OnBecameLeader(s.id);
  }
}

void Simulation::OnApply(Slot& s, const core::Entry& e,
                         const std::string& result) {
  if (safety_->OnApply(s.id, e)) {
    // First application anywhere of this index: it is committed.
    result_.commit_index = e.index;
    Trace(absl::StrFormat("n%d applies %d (term %d)%s", s.id, e.index, e.term,
                          e.data.empty() ? ": leader no-op" : ""));
  }
  if (!s.pending_edge.empty() && e.type == core::EntryType::kNormal) {
    auto it = s.pending_edge.find(sm::Command::PeekRequestId(e.data));
    if (it != s.pending_edge.end()) {
      HubCluster::WriteDone done = std::move(it->second);
      s.pending_edge.erase(it);
      done(sm::CommandResult::Decode(result));
      return;
    }
  }
  const std::optional<AppliedOp> applied = s.sm->Interpret(e, result);
  if (!applied.has_value()) return;
  auto pending = s.pending_writes.find({applied->client, applied->op});
  if (pending == s.pending_writes.end()) return;
  s.pending_writes.erase(pending);
  const uint64_t client = applied->client;
  const uint64_t op = applied->op;
  const bool ok = applied->took_effect;
  const uint64_t hint = s.lead;
  queue_.After(network_->Latency(), 0xc11e47, [this, client, op, ok, hint] {
    Reply(client, op, ok, 0, hint);
  });
}

void Simulation::CheckReadFreshness(const Slot& s, const Client& c,
                                    uint64_t applied, const char* how) {
  if (applied >= c.read_floor) return;
  Violation(absl::StrFormat(
      "read freshness: n%d served client %d's read at applied index %d%s, "
      "but %d had been applied before the read began",
      s.id, c.id, applied, how, c.read_floor));
}

int64_t Simulation::ServeRead(Slot& s, uint64_t client, uint64_t op) {
  Client& c = *clients_[client - 1];
  if (c.op != op) return 0;
  // A read reflects everything applied anywhere before it began: whatever
  // applied had committed, and a leader's confirmed read index covers all
  // that committed. Unlike linearizability, this needs no write of the
  // same key to see a stale read.
  CheckReadFreshness(s, c, s.sm->machine().AppliedIndex(), "");
  if (c.kind == OpKind::kBankRead) {
    const std::optional<BankTotals> bank = s.sm->ReadBank();
    CHECK(bank.has_value());
    // The bank's invariant, checked on every read.
    if (bank->accounts != 0 && bank->total != kBankAccounts * kBankOpening) {
      Violation(absl::StrFormat(
          "bank: n%d reads a total of %d over %d accounts, not %d", s.id,
          bank->total, bank->accounts, kBankAccounts * kBankOpening));
    }
    return bank->total;
  }
  if (c.kind == OpKind::kListRead) {
    const std::vector<int64_t> list = s.sm->ReadList(c.key);
    list_reads_.push_back(ListRead{c.key, c.call, list});
    return static_cast<int64_t>(list.size());
  }
  return s.sm->Get(c.key);
}

void Simulation::OnRead(Slot& s, const core::ReadState& rs) {
  auto it = s.pending_reads.find(rs.request_ctx);
  if (it == s.pending_reads.end()) return;
  const PendingRead r = it->second;
  s.pending_reads.erase(it);
  int64_t value = 0;
  if (r.early && (rs.index <= r.seen || options_.broken_early_reads)) {
    ++result_.early_reads_kept;
    // The read index covers every write that completed before the read
    // began, so the state it saw must hold all that was applied anywhere
    // by then.
    const Client& c = *clients_[r.client - 1];
    if (c.op == r.op) {
      CheckReadFreshness(s, c, r.seen, ", read before its read index");
    }
    value = r.value;
  } else {
    if (r.early) ++result_.early_reads_redone;
    value = ServeRead(s, r.client, r.op);
  }
  const uint64_t hint = s.lead;
  queue_.After(network_->Latency(), 0xc11e48, [this, r, value, hint] {
    Reply(r.client, r.op, true, value, hint);
  });
}

namespace {

// Thrown only by the simulator's CHECK hook, caught in Simulation::Run: the
// simulation that hit it is abandoned, the sweep goes on.
struct InvariantViolation {
  std::string message;
};

[[noreturn]] void ThrowInvariantViolation(const char* message) {
  throw InvariantViolation{message};
}

}  // namespace

SimResult Simulation::Run() {
  internal::CheckFailureHandler previous = internal::CheckFailureHook();
  internal::CheckFailureHook() = &ThrowInvariantViolation;
  SimResult result;
  try {
    result = RunUnguarded();
  } catch (const InvariantViolation& v) {
    Violation(absl::StrCat("invariant: ", v.message));
    result_.earlier_term_commits = safety_->earlier_term_commits();
    result = result_;
    result.passed = false;
    result.failure = violation_;
    result.trace_hash = queue_.trace_hash();
    result.events = queue_.executed();
    result.virtual_time = queue_.now();
  }
  internal::CheckFailureHook() = previous;
  return result;
}

SimResult Simulation::RunUnguarded() {
  for (auto& s : slots_) StartNode(*s);
  for (auto& c : clients_) StartClient(*c);
  if (edges_ != nullptr) edges_->Start();
  if (decisions_ != nullptr) decisions_->Start();
  ScheduleChaos();
  while (!finished_ && violation_.empty() && queue_.RunOne()) {
    if (queue_.size() > kMaxPendingEvents) {
      Violation(absl::StrFormat(
          "%d events pending at %.1fs virtual: message storm", queue_.size(),
          static_cast<double>(queue_.now()) / kSecond));
      break;
    }
    if (queue_.executed() >= options_.max_events) {
      Violation(absl::StrFormat(
          "event budget of %d exhausted at %.1fs virtual (message storm or "
          "livelock)",
          options_.max_events, static_cast<double>(queue_.now()) / kSecond));
      break;
    }
    if (fault_phase_) {
      if ((WorkloadDone() && (decisions_ == nullptr || decisions_->Done())) ||
          queue_.now() >= options_.max_fault_time) {
        fault_phase_ = false;
        HealAll();
      }
    } else if (!liveness_met_) {
      bool all_acked = true;
      for (auto& c : clients_) all_acked = all_acked && c->final_write_acked;
      if (all_acked && EdgesSettled()) {
        liveness_met_ = true;
        converge_deadline_ = queue_.now() + 10 * kSecond;
        Trace("liveness: every client completed a write after healing");
      } else if (queue_.now() > heal_time_ + options_.liveness_bound) {
        Violation(absl::StrFormat(
            "liveness: %s within %ds after every fault healed",
            all_acked ? absl::StrCat("the edges did not settle (",
                                     edges_->unsettled(), ")")
                      : "clients could not complete a write",
            options_.liveness_bound / kSecond));
      }
    } else if (Converged()) {
      finished_ = true;
    } else if (queue_.now() > converge_deadline_) {
      Violation("liveness: replicas did not converge within 10s of quiet");
    }
  }
  if (violation_.empty() && !finished_) Violation("event queue ran dry");
  // The network's own faults join the summary (counted where they happen).
  const NetworkStats& net = network_->stats();
  for (const auto& [kind, n] : {std::pair{"network: dropped", net.dropped},
                                {"network: duplicated", net.duplicated},
                                {"network: long delay", net.delayed},
                                {"network: held across elections", net.held},
                                {"network: cut by partition", net.cut}}) {
    if (n > 0) result_.faults[kind] = n;
  }
  if (violation_.empty()) CheckFinalState();
  if (violation_.empty()) CheckLinearizability();
  if (violation_.empty()) CheckLists();
  if (violation_.empty() && edges_ != nullptr) {
    edges_->Check(Members().front());
  }
  if (violation_.empty() && decisions_ != nullptr) {
    decisions_->Check(Members().front());
    result_.decisions = decisions_->tally();
  }
  result_.earlier_term_commits = safety_->earlier_term_commits();
  result_.passed = violation_.empty();
  result_.failure = violation_;
  result_.trace_hash = queue_.trace_hash();
  result_.events = queue_.executed();
  result_.virtual_time = queue_.now();
  return result_;
}

}  // namespace raftsql::sim
