#include "server/raft_server.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/codec.h"
#include "net/client.h"
#include "obs/log.h"
#include "obs/loop_phases.h"
#include "obs/write_trace.h"
#include "server/internal.h"

namespace raftsql::server {

namespace {

using internal::DecodeId;
using internal::EncodeId;
using internal::ParseConfContext;

// The state machine as Raft applies it, with the crash-test fault window:
// on the leader, a batch holding a client command waits after it committed
// and before it is applied and answered.
class PausingStateMachine final : public core::StateMachine {
 public:
  PausingStateMachine(core::StateMachine* inner, int pause_ms,
                      const std::atomic<bool>* is_leader)
      : inner_(inner), pause_ms_(pause_ms), is_leader_(is_leader) {}
  using core::StateMachine::ApplyBatch;
  std::string Apply(const core::Entry& entry) override {
    return ApplyBatch({entry}).front();
  }
  void ApplyBatch(const std::vector<core::Entry>& entries,
                  std::vector<std::string>* results) override {
    if (is_leader_->load() &&
        std::any_of(entries.begin(), entries.end(), [](const core::Entry& e) {
          return e.type == core::EntryType::kNormal && !e.data.empty();
        })) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms_));
    }
    inner_->ApplyBatch(entries, results);
  }
  absl::Status Restore(const core::Snapshot& s) override {
    return inner_->Restore(s);
  }
  absl::Status ValidateSnapshot(const core::Snapshot& s) const override {
    return inner_->ValidateSnapshot(s);
  }
  absl::StatusOr<std::string> SnapshotData() override {
    return inner_->SnapshotData();
  }
  core::SnapshotSource* snapshot_source() override {
    return inner_->snapshot_source();
  }
  core::SnapshotSink* snapshot_sink() override {
    return inner_->snapshot_sink();
  }
  absl::Status Sync() override { return inner_->Sync(); }
  void RequestSync() override { inner_->RequestSync(); }
  absl::StatusOr<uint64_t> DurableIndex() override {
    return inner_->DurableIndex();
  }
  uint64_t AppliedIndex() const override { return inner_->AppliedIndex(); }
  void OnTick() override { inner_->OnTick(); }
  bool ApplyPaused() const override { return inner_->ApplyPaused(); }

 private:
  core::StateMachine* const inner_;
  const int pause_ms_;
  const std::atomic<bool>* const is_leader_;
};

}  // namespace

RaftServer::RaftServer(const ServerOptions& options) : options_(options) {
  std::random_device rd;
  // Request ids differ across nodes and restarts.
  next_id_ = (uint64_t{rd()} << 32 ^ rd()) | 1;
}

RaftServer::~RaftServer() {
  Shutdown();
  StopSinkProgress();
}

void RaftServer::StopSinkProgress() {
  if (sm_ != nullptr && sm_->image_sink() != nullptr) {
    sm_->image_sink()->SetProgressCallback(nullptr);
  }
  if (sm_ != nullptr && sm_->image_source() != nullptr) {
    sm_->image_source()->SetProgressCallback(nullptr);
  }
}

absl::StatusOr<std::unique_ptr<RaftServer>> RaftServer::Open(
    const ServerOptions& options) {
  if (options.id == 0) return absl::InvalidArgumentError("--id must be > 0");
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("--data-dir is required");
  }
  if (options.slow_loop_ms < 1) {
    return absl::InvalidArgumentError("--slow_loop_ms must be at least 1");
  }
  std::unique_ptr<RaftServer> s(new RaftServer(options));
  absl::Status st = s->Init();
  if (!st.ok()) return st;
  return s;
}

absl::Status RaftServer::Init() {
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", options_.data_dir, ": ", ec.message()));
  }
  const auto began = std::chrono::steady_clock::now();
  auto log = storage::RocksDbLogStore::Open(options_.data_dir + "/log");
  if (!log.ok()) return log.status();
  log_ = std::move(*log);
  const auto log_opened = std::chrono::steady_clock::now();
  sm::SqliteOptions so;
  so.read_connections = options_.read_connections;
  so.divergence_checkpoint_entries = options_.divergence_checkpoint_entries;
  so.incremental_vacuum = options_.incremental_vacuum;
  so.vacuum_bytes_per_second = options_.vacuum_bytes_per_second;
  so.change_log_bytes = options_.change_log_bytes;
  so.path = options_.data_dir + "/db.sqlite";
  auto sm = sm::SqliteStateMachine::Open(so);
  if (!sm.ok()) return sm.status();
  sm_ = std::move(*sm);
  const auto sm_opened = std::chrono::steady_clock::now();
  // The crash-test window wraps the state machine only when asked for.
  if (options_.pause_before_commit_ms > 0) {
    pausing_sm_ = std::make_unique<PausingStateMachine>(
        sm_.get(), options_.pause_before_commit_ms, &is_leader_);
  }

  // The address book: the flags, then what this node learned before.
  for (const auto& [id, address] : options_.peers) addresses_[id] = address;
  addresses_[options_.id] = options_.listen;
  std::ifstream in(options_.data_dir + "/peers");
  uint64_t id;
  std::string address;
  while (in >> id >> address) addresses_.emplace(id, address);

  auto initial = log_->GetInitialState();
  if (!initial.ok()) return initial.status();
  const bool fresh = initial->hard_state.term == 0 &&
                     initial->conf_state.voters.empty() &&
                     log_->LastIndex() == 0;
  if (fresh && options_.join.empty()) {
    if (options_.peers.count(options_.id) == 0) {
      return absl::InvalidArgumentError(
          "a new cluster needs --peers listing this node (or --join)");
    }
    core::ConfState cs;
    for (const auto& [peer, addr] : options_.peers) cs.voters.push_back(peer);
    absl::Status b = log_->Bootstrap(cs);
    if (!b.ok()) return b;
  }

  absl::Status transport = MakeTransport();
  if (!transport.ok()) return transport;

  core::NodeOptions no;
  no.raft.id = options_.id;
  no.raft.election_ticks = options_.election_ticks;
  no.raft.heartbeat_ticks = options_.heartbeat_ticks;
  no.raft.storage = log_.get();
  no.raft.seed = next_id_.load();
  no.log_store = log_.get();
  no.transport = transport_.get();
  no.state_machine = pausing_sm_ != nullptr
                         ? pausing_sm_.get()
                         : static_cast<core::StateMachine*>(sm_.get());
  no.snapshot_threshold_entries = options_.snapshot_entries;
  no.snapshot_threshold_bytes = options_.snapshot_log_bytes;
  no.compaction_keeps_entries = options_.compaction_keeps_entries;
  no.raft.max_snapshot_bytes = options_.max_snapshot_bytes;
  no.raft.max_snapshot_chunks_in_flight = options_.snapshot_chunks_in_flight;
  no.raft.announce_commit_at_tick = options_.announce_commit_at_tick;
  no.raft.snapshot_bytes_per_tick = options_.snapshot_bytes_per_second *
                                    static_cast<uint64_t>(options_.tick_ms) /
                                    1000;
  if (options_.snapshot_bytes_per_second > 0) {
    // At least a byte a tick, or a low rate would mean none.
    no.raft.snapshot_bytes_per_tick =
        std::max<uint64_t>(no.raft.snapshot_bytes_per_tick, 1);
  }
  // RocksDbLogStore::Submit is synchronous: the leader may replicate while
  // it writes (thesis §10.2.1).
  no.send_appends_before_persist = true;
  core::NodeObserver obs;
  obs.on_apply = [this](const core::Entry& e, const std::string& r) {
    OnApply(e, r);
  };
  obs.on_read = [this](const core::ReadState& rs) {
    const uint64_t batch = DecodeId(rs.request_ctx);
    auto it = read_batches_.find(batch);
    if (it == read_batches_.end()) return;
    std::vector<uint64_t> ids = std::move(it->second);
    read_batches_.erase(it);
    for (uint64_t id : ids) Finish(id, EncodeId(rs.index));
  };
  obs.on_restore = [this](const core::SnapshotMetadata& m) { OnRestore(m); };
  obs.on_soft_state = [this](const core::SoftState& ss) { OnSoftState(ss); };
  obs.on_fatal = [this](const absl::Status& s) {
    obs::Log(obs::Level::kError, "fatal",
             absl::StrCat("log store failed, node stopped: ", s.message()),
             {{"node", options_.id}});
    failed_ = true;
    if (options_.on_fatal) options_.on_fatal(s);
  };
  // Files from an earlier run (a database behind its log, a received image
  // that does not restore) are an error to report, not a crash.
  absl::Status prepared = core::PrepareStateMachine(*log_, *no.state_machine);
  if (!prepared.ok()) return prepared;
  node_ = std::make_unique<core::Node>(no, obs);
  // What a slow start spent its time on.
  auto ms = [](auto from, auto to) {
    return static_cast<long long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(to - from)
            .count());
  };
  const long long log_ms = ms(began, log_opened);
  const long long db_ms = ms(log_opened, sm_opened);
  const long long raft_ms = ms(sm_opened, std::chrono::steady_clock::now());
  obs::Log(obs::Level::kInfo, "start",
           absl::StrFormat("node %d opened its log in %d ms, its database "
                           "in %d ms, started Raft in %d ms",
                           options_.id, log_ms, db_ms, raft_ms),
           {{"node", options_.id},
            {"log_ms", log_ms},
            {"database_ms", db_ms},
            {"raft_ms", raft_ms}});
  readers_ =
      std::make_unique<WorkerPool>(options_.read_connections, kMaxQueuedReads);
  return absl::OkStatus();
}

absl::Status RaftServer::MakeTransport() {
  absl::StatusOr<std::unique_ptr<net::Poller>> poller = net::Poller::Create();
  if (!poller.ok()) return poller.status();
  poller_ = std::move(*poller);
  auto resolve = [this](uint64_t peer) { return AddressOf(peer); };
  auto on_unreachable = [this](uint64_t peer) {
    {
      std::lock_guard<std::mutex> l(unreachable_mu_);
      ++unreachable_[peer];
    }
    Post([this, peer] { node_->ReportUnreachable(peer); });
  };
  auto on_snapshot_failed = [this](uint64_t peer) {
    Post([this, peer] { node_->ReportSnapshot(peer, false); });
  };
  const std::string client_address =
      options_.peer_listen.empty() ? "" : options_.listen;
  if (options_.peer_transport == "grpc") {
    net::GrpcTransportOptions to;
    to.tls = options_.tls;
    to.self_address = peer_address();
    to.client_address = client_address;
    transport_ = std::make_unique<net::GrpcTransport>(
        to, net::GrpcTransportCallbacks{resolve, on_unreachable,
                                        on_snapshot_failed});
    return absl::OkStatus();
  }
  if (options_.peer_transport != "stream") {
    return absl::InvalidArgumentError(absl::StrCat("unknown peer transport \"",
                                                   options_.peer_transport,
                                                   "\" (grpc or stream)"));
  }
  if (options_.peer_listen.empty()) {
    return absl::InvalidArgumentError(
        "the stream peer transport needs its own port: set --peer_listen");
  }
  net::StreamTransportOptions so;
  so.self_id = options_.id;
  so.listen = options_.peer_listen;
  so.self_address = peer_address();
  so.client_address = client_address;
  so.tls = options_.tls;
  net::StreamTransportCallbacks cb;
  cb.resolve = resolve;
  cb.on_unreachable = on_unreachable;
  cb.on_snapshot_failed = on_snapshot_failed;
  cb.on_messages = [this](std::vector<core::Message> messages,
                          const std::string& from_address,
                          const std::string& client_address) {
    TraceReceived(messages);
    LearnAddress(messages.front().from, from_address, client_address);
    StepPeerMessages(messages);
  };
  absl::StatusOr<std::unique_ptr<net::StreamTransport>> t =
      net::StreamTransport::Create(so, cb, poller_.get());
  if (!t.ok()) return t.status();
  stream_ = t->get();
  transport_ = std::move(*t);
  return absl::OkStatus();
}

void RaftServer::Start() {
  if (started_.exchange(true)) return;
  loop_ = std::thread([this] { Loop(); });
  if (sm_->image_sink() != nullptr) {
    // A received image's writer stored more, or its check is done: the
    // core tells the leader, or installs it (ticks ask too, if dropped).
    sm_->image_sink()->SetProgressCallback([this] {
      (void)Post([this] { node_->SnapshotSinkProgressed(); },
                 /*droppable=*/true);
    });
  }
  if (sm_->image_source() != nullptr) {
    // The image's thread read a chunk the core waits for: it sends it (the
    // loop never reads the disk for a follower; ticks ask too).
    sm_->image_source()->SetProgressCallback([this] {
      (void)Post([this] { node_->SnapshotSourceProgressed(); },
                 /*droppable=*/true);
    });
  }
  DivergenceMonitor::Options mo;
  mo.id = options_.id;
  mo.check_ms = options_.divergence_check_ms;
  mo.tls = options_.tls;
  mo.mine = [this] { return sm_->Checkpoints(); };
  mo.peers = [this] {
    std::map<uint64_t, std::string> peers;
    absl::StatusOr<std::vector<Member>> members = CurrentMembers();
    if (members.ok()) {
      for (const Member& m : *members) {
        // With stream peers, PeerService is on the client port.
        peers[m.id] = stream_peers() ? ClientAddressOf(m.id) : m.address;
      }
    }
    return peers;
  };
  mo.on_diverged = [this](const sm::DivergenceVerdict& v) { OnDiverged(v); };
  monitor_ = std::make_unique<DivergenceMonitor>(std::move(mo));
  if (!options_.join.empty() &&
      node_->raw().raft().tracker().GetConfState().voters.empty() &&
      node_->raw().raft().tracker().GetConfState().learners.empty()) {
    joiner_ = std::thread([this] { JoinCluster(); });
  }
}

void RaftServer::JoinCluster() {
  net::ClientOptions co;
  co.timeout_ms = options_.request_timeout_ms * 4;
  co.tls = options_.tls;  // A node joins as itself (its certificate).
  net::Client client({options_.join}, co);
  for (int attempt = 0; attempt < 60; ++attempt) {
    {
      std::unique_lock<std::mutex> l(inbox_mu_);
      if (stopping_) return;
    }
    auto r = client.AddNode(options_.id, peer_address(), options_.non_voter);
    if (r.ok()) {
      for (const auto& m : r->members()) {
        SetAddress(m.id(), m.address());
        LearnAddress(m.id(), "", m.client_address());
      }
      obs::Log(obs::Level::kInfo, "membership",
               absl::StrFormat("node %d joined through %s%s", options_.id,
                               options_.join,
                               options_.non_voter ? " (a non-voter)" : ""),
               {{"node", options_.id}, {"through", options_.join}});
      return;
    }
    obs::Log(obs::Level::kWarn, "membership",
             absl::StrCat("join attempt ", attempt + 1,
                          " failed: ", r.status().message()),
             {{"node", options_.id}, {"attempt", attempt + 1}});
    std::unique_lock<std::mutex> l(inbox_mu_);
    inbox_cv_.wait_for(l, std::chrono::seconds(1),
                       [this] { return stopping_; });
  }
}

void RaftServer::OnDiverged(const sm::DivergenceVerdict& verdict) {
  // Reads stop at once (they would serve wrong data); writes go on through
  // the log as before, so that the replica can be inspected as it is. A
  // leader hands leadership over: its answers come from its own state.
  sm_->MarkDiverged(verdict.reason);
  obs::Log(obs::Level::kError, "divergence",
           absl::StrFormat("node %d DIVERGED from the cluster %s; it serves "
                           "no reads until an operator resyncs it",
                           options_.id, verdict.reason),
           {{"node", options_.id}});
  if (is_leader_.load()) (void)TransferLeadership(0);
}

void RaftServer::Shutdown() {
  if (!started_.load()) return;
  if (monitor_ != nullptr) monitor_->Stop();
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    if (stopping_) return;
  }
  if (is_leader_.load() && !failed_.load()) {
    // Hand leadership over first so clients see no election gap.
    absl::StatusOr<std::vector<Member>> r = TransferLeadership(0);
    (void)r;
  }
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  inbox_cv_.notify_all();
  poller_->Wake();
  if (loop_.joinable()) loop_.join();
  StopSinkProgress();
  if (joiner_.joinable()) joiner_.join();
  transport_->Stop();
  // Running and queued reads end at once, later ones are refused. (The
  // pool itself lives on until the destructor, before the state machine
  // goes: a read may still arrive from gRPC or the edge service, which
  // stop after the node.)
  reads_stopping_ = true;
}

bool RaftServer::Post(Task task, bool droppable) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    if (stopping_) return false;  // The loop will not run it.
    if (droppable && inbox_.size() >= kMaxInbox) return false;
    inbox_.push_back(std::move(task));
    wake = std::exchange(loop_sleeping_, false);
  }
  if (wake) poller_->Wake();  // Once per sleep: later posts find it awake.
  return true;
}

void RaftServer::Loop() {
  const auto tick = std::chrono::milliseconds(options_.tick_ms);
  auto next_tick = std::chrono::steady_clock::now() + tick;
  auto next_slow_loop_log = std::chrono::steady_clock::time_point::min();
  std::vector<Task> tasks;
  while (true) {
    bool idle = false;
    {
      std::lock_guard<std::mutex> l(inbox_mu_);
      if (stopping_) break;
      idle = inbox_.empty();
      loop_sleeping_ = idle;
      tasks.swap(inbox_);
    }
    // Sleeps only with nothing to do. Tasks waiting still let the stream
    // transport's sockets be read (a zero deadline), so that peers are never
    // starved; without it, a busy loop does not look at all.
    static const std::vector<net::Poller::Ready> kNoSockets;
    const std::vector<net::Poller::Ready>& sockets =
        idle || stream_ != nullptr
            ? poller_->Wait(idle ? next_tick
                                 : std::chrono::steady_clock::time_point::min())
            : kNoSockets;
    if (idle) {
      std::lock_guard<std::mutex> l(inbox_mu_);
      loop_sleeping_ = false;
      if (stopping_) break;
      tasks.swap(inbox_);
    }
    obs::TakePhaseMicros();  // What ran outside the loop's iterations.
    const auto began = std::chrono::steady_clock::now();
    const size_t task_count = tasks.size();
    node_->Hold();
    for (Task& t : tasks) t();
    tasks.clear();
    if (stream_ != nullptr) stream_->OnReady(sockets);  // Peers' messages.
    FlushReads();  // One ReadIndex round for all reads that arrived.
    const auto now = std::chrono::steady_clock::now();  // Tasks done.
    const bool ticked = now >= next_tick;
    if (ticked) {
      ManageVacuumSwap();
      if (stream_ != nullptr) stream_->Tick();
      node_->Tick();
      in_contact_ = node_->raw().raft().InContactWithLeader();
      {
        const core::Raft& raft = node_->raw().raft();
        leader_contact_age_ms_ =
            raft.state() == core::StateType::kLeader ? 0
            : raft.lead() == core::kNone
                ? INT64_MAX
                : int64_t{raft.election_elapsed()} * options_.tick_ms;
      }
      const core::ProgressTracker& members = node_->raw().raft().tracker();
      removed_ =
          !members.voters().empty() && members.Get(options_.id) == nullptr;
      next_tick += tick;
      if (next_tick < now) next_tick = now + tick;  // Slept through ticks.
    }
    const auto ready = std::chrono::steady_clock::now();
    node_->Release();  // One Ready: one write, one fsync.
    committed_.store(node_->raw().raft().log().committed(),
                     std::memory_order_relaxed);
    SweepRequests(ticked);
    const auto done = std::chrono::steady_clock::now();
    const int64_t loop_us =
        std::chrono::duration_cast<std::chrono::microseconds>(done - began)
            .count();
    longest_loop_us_ = std::max<int64_t>(longest_loop_us_, loop_us);
    const obs::PhaseMicros phases = obs::TakePhaseMicros();
    loop_seconds_.Observe(static_cast<double>(loop_us) / 1e6);
    for (size_t p = 0; p < phases.size(); ++p) {
      if (phases[p] > 0) {
        phase_seconds_[p].Observe(static_cast<double>(phases[p]) / 1e6);
      }
    }
    longest_loop_in_snapshots_us_ = std::max<int64_t>(
        longest_loop_in_snapshots_us_,
        phases[static_cast<size_t>(obs::Phase::kSnapshot)] +
            phases[static_cast<size_t>(obs::Phase::kCheckpoint)]);
    if (loop_us >= int64_t{options_.slow_loop_ms} * 1000 &&
        done >= next_slow_loop_log) {
      // Where a stall went (at most one line a second).
      next_slow_loop_log = done + std::chrono::seconds(1);
      auto ms = [](auto d) {
        return static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
      };
      obs::Log(obs::Level::kWarn, "slow_loop",
               absl::StrFormat("slow Raft loop: %d ms (%d tasks %d ms, the "
                               "tick %d ms, the Ready %d ms; in all: %s)",
                               loop_us / 1000, task_count, ms(now - began),
                               ms(ready - now), ms(done - ready),
                               obs::DescribePhases(phases)),
               {{"node", options_.id}, {"ms", loop_us / 1000}});
    }
  }
  // Tasks queued before the stop still run (each owes somebody an answer);
  // then whatever still waits has an unknown outcome.
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    tasks.swap(inbox_);
  }
  node_->Hold();
  for (Task& t : tasks) t();
  node_->Release();
  FinishAll();
}

void RaftServer::ManageVacuumSwap() {
  const bool leader = options_.vacuum_handoff &&
                      node_->raw().raft().state() == core::StateType::kLeader;
  if (!leader || !sm_->VacuumWaitsToSwap()) {
    sm_->HoldVacuumSwap(leader);
    vacuum_handoff_ticks_ = 0;
    return;
  }
  if (vacuum_handoff_ticks_ == 0) {
    const uint64_t to = MostUpToDateOtherVoter();
    if (to == 0) return sm_->HoldVacuumSwap(false);
    obs::Log(obs::Level::kInfo, "election",
             absl::StrFormat("node %d hands leadership to node %d before its "
                             "vacuum's swap",
                             options_.id, to),
             {{"node", options_.id}, {"to", to}});
    node_->TransferLeadership(to);
  }
  if (++vacuum_handoff_ticks_ >
      kVacuumHandoffElections * options_.election_ticks) {
    sm_->HoldVacuumSwap(false);
  }
}

void RaftServer::OnSoftState(const core::SoftState& ss) {
  const bool was_leader = is_leader_.load();
  leader_changed_ = true;
  reads_to_ask_again_ = true;
  // Rare (elections), and the first thing to know about a stalled write.
  const uint64_t term = node_->raw().raft().term();
  if (ss.state == core::StateType::kLeader) {
    obs::Log(obs::Level::kInfo, "election",
             absl::StrFormat("node %d leads at term %d", options_.id, term),
             {{"node", options_.id}, {"term", term}, {"leader", options_.id}});
  } else if (ss.lead == core::kNone) {
    obs::Log(obs::Level::kInfo, "election",
             absl::StrFormat("node %d knows no leader at term %d", options_.id,
                             term),
             {{"node", options_.id}, {"term", term}, {"leader", 0}});
  } else {
    obs::Log(obs::Level::kInfo, "election",
             absl::StrFormat("node %d follows node %d at term %d", options_.id,
                             ss.lead, term),
             {{"node", options_.id}, {"term", term}, {"leader", ss.lead}});
  }
  if (ss.lead != core::kNone && ss.lead != leader_.load()) {
    leader_changes_.fetch_add(1, std::memory_order_relaxed);
  }
  {
    std::lock_guard<std::mutex> l(leader_mu_);
    leader_ = ss.lead;
    is_leader_ = ss.state == core::StateType::kLeader;
  }
  leader_cv_.notify_all();
  if (was_leader && ss.state != core::StateType::kLeader &&
      ss.lead == core::kNone) {
    AnswerProposalsOfALostLead();
  }
}

void RaftServer::OnApply(const core::Entry& e, const std::string& result) {
  if (e.type == core::EntryType::kConfChange) {
    std::optional<core::ConfChange> cc = core::ConfChange::Decode(e.data);
    if (cc.has_value()) {
      auto [request, address] = ParseConfContext(cc->context);
      static constexpr const char* kChanges[] = {
          "added as a voter", "added as a learner", "removed"};
      const char* change = kChanges[static_cast<int>(cc->type)];
      obs::Log(obs::Level::kInfo, "membership",
               absl::StrFormat("node %d %s at index %d", cc->node_id, change,
                               e.index),
               {{"node", options_.id},
                {"member", cc->node_id},
                {"change", change},
                {"index", e.index}});
      if (cc->type != core::ConfChange::Type::kRemoveNode && !address.empty()) {
        SetAddress(cc->node_id, address);
      }
      if (request != 0) Finish(request, std::string());
    }
  } else {
    uint64_t id = sm::Command::PeekRequestId(e.data);
    if (id == 0) id = sm::SettingChange::PeekRequestId(e.data);
    if (id == 0) id = sm::UserChange::PeekRequestId(e.data);
    if (id != 0) Finish(id, result);
    if (tables_changed_) {
      // Only the versions are read: this runs for every entry applied.
      changed_tables_.clear();
      sm::CommandResult::ForEachVersion(
          result, [this](std::string_view t) { changed_tables_.push_back(t); });
      if (!changed_tables_.empty()) tables_changed_(changed_tables_);
    }
  }
  ResolveLostProposals(e.index, e.term);
}

uint64_t RaftServer::NextId() { return next_id_.fetch_add(2); }

std::string RaftServer::AddressOf(uint64_t id) {
  std::lock_guard<std::mutex> l(addresses_mu_);
  auto it = addresses_.find(id);
  return it == addresses_.end() ? "" : it->second;
}

void RaftServer::SetAddress(uint64_t id, const std::string& address) {
  {
    std::lock_guard<std::mutex> l(addresses_mu_);
    auto [it, inserted] = addresses_.emplace(id, address);
    if (!inserted && it->second == address) return;
    it->second = address;
  }
  SaveAddresses();
}

void RaftServer::SaveAddresses() {
  std::ostringstream out;
  {
    std::lock_guard<std::mutex> l(addresses_mu_);
    for (const auto& [id, address] : addresses_) {
      out << id << " " << address << "\n";
    }
  }
  const std::string path = options_.data_dir + "/peers";
  {
    std::ofstream f(path + ".tmp", std::ios::trunc);
    f << out.str();
  }
  std::error_code ec;
  std::filesystem::rename(path + ".tmp", path, ec);
}

std::vector<Member> RaftServer::Members() {
  // Loop thread only.
  const core::ConfState cs = node_->raw().raft().tracker().GetConfState();
  std::vector<Member> out;
  for (uint64_t id : cs.voters) {
    out.push_back(Member{id, AddressOf(id), true, ClientAddressOf(id)});
  }
  for (uint64_t id : cs.learners) {
    out.push_back(Member{id, AddressOf(id), false, ClientAddressOf(id)});
  }
  return out;
}

void RaftServer::LearnAddress(uint64_t id, const std::string& address,
                              const std::string& client_address) {
  if (id == 0 || id == options_.id) return;
  if (!client_address.empty() && client_address.size() <= kMaxAddressBytes) {
    std::lock_guard<std::mutex> l(addresses_mu_);
    client_addresses_[id] = client_address;
  }
  // Only fills a gap: flags and membership changes are the authority.
  if (address.empty() || address.size() > kMaxAddressBytes) return;
  if (!AddressOf(id).empty()) return;
  SetAddress(id, address);
}

std::string RaftServer::ClientAddressOf(uint64_t id) {
  if (id == options_.id) return options_.listen;
  {
    std::lock_guard<std::mutex> l(addresses_mu_);
    auto it = client_addresses_.find(id);
    if (it != client_addresses_.end()) return it->second;
  }
  return AddressOf(id);
}

void RaftServer::Deliver(std::vector<core::Message> messages) {
  TraceReceived(messages);
  // A loop that falls behind drops peer messages instead of queueing
  // without bound; Raft resends what is lost.
  Post([this, messages = std::move(
                  messages)]() mutable { StepPeerMessages(messages); },
       /*droppable=*/true);
}

void RaftServer::TraceReceived(const std::vector<core::Message>& messages) {
  if (!obs::WriteTraceOn()) return;
  for (const core::Message& m : messages) {
    obs::TraceMessage(m, /*received=*/true);
  }
}

void RaftServer::StepPeerMessages(std::vector<core::Message>& messages) {
  const bool trace = obs::WriteTraceOn();
  const uint64_t committed = trace ? node_->raw().raft().log().committed() : 0;
  for (core::Message& m : messages) {
    if (m.to != options_.id) continue;
    node_->Step(std::move(m));
  }
  if (trace && node_->raw().raft().log().committed() > committed) {
    obs::TraceWrite(node_->raw().raft().log().committed(),
                    obs::WriteStage::kCommitted);
  }
}

}  // namespace raftsql::server
