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
#include "core/codec.h"
#include "net/client.h"

namespace raftsql::server {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string EncodeId(uint64_t id) {
  std::string s;
  core::PutFixed64(s, id);
  return s;
}

uint64_t DecodeId(std::string_view s) {
  return core::GetFixed64(s).value_or(0);
}

// A conf change's context: "<request id>|<address>".
std::string ConfContext(uint64_t request_id, const std::string& address) {
  return absl::StrCat(request_id, "|", address);
}

std::pair<uint64_t, std::string> ParseConfContext(const std::string& ctx) {
  const size_t bar = ctx.find('|');
  if (bar == std::string::npos) return {0, ctx};
  return {std::strtoull(ctx.substr(0, bar).c_str(), nullptr, 10),
          ctx.substr(bar + 1)};
}

// The state machine as Raft applies it, with the crash-test fault window:
// on the leader, a batch holding a client command waits after it committed
// and before it is applied and answered.
class PausingStateMachine final : public core::StateMachine {
 public:
  PausingStateMachine(core::StateMachine* inner, int pause_ms,
                      const std::atomic<bool>* is_leader)
      : inner_(inner), pause_ms_(pause_ms), is_leader_(is_leader) {}
  std::string Apply(const core::Entry& entry) override {
    return ApplyBatch({entry}).front();
  }
  std::vector<std::string> ApplyBatch(
      const std::vector<core::Entry>& entries) override {
    if (pause_ms_ > 0 && is_leader_->load() &&
        std::any_of(entries.begin(), entries.end(), [](const core::Entry& e) {
          return e.type == core::EntryType::kNormal && !e.data.empty();
        })) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms_));
    }
    return inner_->ApplyBatch(entries);
  }
  absl::Status Restore(const core::Snapshot& s) override {
    return inner_->Restore(s);
  }
  absl::StatusOr<std::string> SnapshotData() override {
    return inner_->SnapshotData();
  }
  uint64_t AppliedIndex() const override { return inner_->AppliedIndex(); }

 private:
  core::StateMachine* const inner_;
  const int pause_ms_;
  const std::atomic<bool>* const is_leader_;
};

// Raft dropped the request (no leader known, a transfer in progress): it is
// in no log, so retrying it is safe.
const absl::Status& Dropped() {
  static const absl::Status* s =
      new absl::Status(absl::UnavailableError("dropped"));
  return *s;
}

}  // namespace

struct RaftServer::Pending {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  absl::StatusOr<std::string> result;
};

RaftServer::RaftServer(const ServerOptions& options) : options_(options) {
  std::random_device rd;
  // Request ids differ across nodes and restarts.
  next_id_ = (uint64_t{rd()} << 32 ^ rd()) | 1;
}

RaftServer::~RaftServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<RaftServer>> RaftServer::Open(
    const ServerOptions& options) {
  if (options.id == 0) return absl::InvalidArgumentError("--id must be > 0");
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("--data-dir is required");
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
  auto log = storage::RocksDbLogStore::Open(options_.data_dir + "/log");
  if (!log.ok()) return log.status();
  log_ = std::move(*log);
  sm::SqliteOptions so;
  so.path = options_.data_dir + "/db.sqlite";
  auto sm = sm::SqliteStateMachine::Open(so);
  if (!sm.ok()) return sm.status();
  sm_ = std::move(*sm);
  applied_sm_ = std::make_unique<PausingStateMachine>(
      sm_.get(), options_.pause_before_commit_ms, &is_leader_);

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

  net::GrpcTransportCallbacks cb;
  cb.resolve = [this](uint64_t peer) { return AddressOf(peer); };
  cb.on_unreachable = [this](uint64_t peer) {
    Post([this, peer] { node_->ReportUnreachable(peer); });
  };
  cb.on_snapshot_failed = [this](uint64_t peer) {
    Post([this, peer] { node_->ReportSnapshot(peer, false); });
  };
  net::GrpcTransportOptions to;
  to.self_address = options_.listen;
  transport_ = std::make_unique<net::GrpcTransport>(to, cb);

  core::NodeOptions no;
  no.raft.id = options_.id;
  no.raft.election_ticks = options_.election_ticks;
  no.raft.heartbeat_ticks = options_.heartbeat_ticks;
  no.raft.storage = log_.get();
  no.raft.seed = next_id_.load();
  no.log_store = log_.get();
  no.transport = transport_.get();
  no.state_machine = applied_sm_.get();
  no.snapshot_threshold_entries = options_.snapshot_entries;
  core::NodeObserver obs;
  obs.on_apply = [this](const core::Entry& e, const std::string& r) {
    OnApply(e, r);
  };
  obs.on_read = [this](const core::ReadState& rs) {
    Complete(DecodeId(rs.request_ctx), std::string());
  };
  obs.on_soft_state = [this](const core::SoftState& ss) { OnSoftState(ss); };
  obs.on_fatal = [this](const absl::Status& s) {
    std::fprintf(stderr, "raftsql: log store failed, node stopped: %s\n",
                 std::string(s.message()).c_str());
    failed_ = true;
  };
  node_ = std::make_unique<core::Node>(no, obs);
  return absl::OkStatus();
}

void RaftServer::Start() {
  if (started_.exchange(true)) return;
  loop_ = std::thread([this] { Loop(); });
  if (!options_.join.empty() &&
      node_->raw().raft().tracker().GetConfState().voters.empty() &&
      node_->raw().raft().tracker().GetConfState().learners.empty()) {
    joiner_ = std::thread([this] { JoinCluster(); });
  }
}

void RaftServer::JoinCluster() {
  net::ClientOptions co;
  co.timeout_ms = options_.request_timeout_ms * 4;
  net::Client client({options_.join}, co);
  for (int attempt = 0; attempt < 60; ++attempt) {
    {
      std::unique_lock<std::mutex> l(inbox_mu_);
      if (stopping_) return;
    }
    auto r = client.AddNode(options_.id, options_.listen);
    if (r.ok()) {
      for (const auto& m : r->members()) SetAddress(m.id(), m.address());
      std::fprintf(stderr, "raftsql: node %llu joined through %s\n",
                   static_cast<unsigned long long>(options_.id),
                   options_.join.c_str());
      return;
    }
    std::fprintf(stderr, "raftsql: join attempt %d failed: %s\n", attempt + 1,
                 std::string(r.status().message()).c_str());
    std::unique_lock<std::mutex> l(inbox_mu_);
    inbox_cv_.wait_for(l, std::chrono::seconds(1),
                       [this] { return stopping_; });
  }
}

void RaftServer::Shutdown() {
  if (!started_.load()) return;
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
  if (loop_.joinable()) loop_.join();
  if (joiner_.joinable()) joiner_.join();
  transport_->Stop();
  // Wake every waiter: their outcome is unknown.
  std::lock_guard<std::mutex> l(pending_mu_);
  for (auto& [id, p] : pending_) {
    std::lock_guard<std::mutex> pl(p->mu);
    p->done = true;
    p->result = absl::UnavailableError("node shutting down; outcome unknown");
    p->cv.notify_all();
  }
}

void RaftServer::Post(Task task) {
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    inbox_.push_back(std::move(task));
  }
  inbox_cv_.notify_one();
}

void RaftServer::Loop() {
  const auto tick = std::chrono::milliseconds(options_.tick_ms);
  auto next_tick = std::chrono::steady_clock::now() + tick;
  std::vector<Task> tasks;
  while (true) {
    {
      std::unique_lock<std::mutex> l(inbox_mu_);
      inbox_cv_.wait_until(l, next_tick,
                           [this] { return stopping_ || !inbox_.empty(); });
      if (stopping_) return;
      tasks.swap(inbox_);
    }
    node_->Hold();
    for (Task& t : tasks) t();
    tasks.clear();
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_tick) {
      node_->Tick();
      next_tick += tick;
      if (next_tick < now) next_tick = now + tick;  // Slept through ticks.
    }
    node_->Release();  // One Ready: one write, one fsync.
  }
}

void RaftServer::OnSoftState(const core::SoftState& ss) {
  {
    std::lock_guard<std::mutex> l(leader_mu_);
    leader_ = ss.lead;
    is_leader_ = ss.state == core::StateType::kLeader;
  }
  leader_cv_.notify_all();
}

void RaftServer::OnApply(const core::Entry& e, const std::string& result) {
  if (e.type == core::EntryType::kConfChange) {
    std::optional<core::ConfChange> cc = core::ConfChange::Decode(e.data);
    if (!cc.has_value()) return;
    auto [request, address] = ParseConfContext(cc->context);
    if (cc->type != core::ConfChange::Type::kRemoveNode && !address.empty()) {
      SetAddress(cc->node_id, address);
    }
    if (request != 0) Complete(request, std::string());
    return;
  }
  const uint64_t id = sm::Command::PeekRequestId(e.data);
  if (id != 0) Complete(id, result);
}

std::shared_ptr<RaftServer::Pending> RaftServer::Register(uint64_t id) {
  auto p = std::make_shared<Pending>();
  std::lock_guard<std::mutex> l(pending_mu_);
  pending_[id] = p;
  return p;
}

void RaftServer::Unregister(uint64_t id) {
  std::lock_guard<std::mutex> l(pending_mu_);
  pending_.erase(id);
}

void RaftServer::Complete(uint64_t id, absl::StatusOr<std::string> result) {
  std::shared_ptr<Pending> p;
  {
    std::lock_guard<std::mutex> l(pending_mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // Not ours, or given up.
    p = std::move(it->second);
    pending_.erase(it);
  }
  std::lock_guard<std::mutex> l(p->mu);
  p->done = true;
  p->result = std::move(result);
  p->cv.notify_all();
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

absl::Status RaftServer::NotLeader() {
  const uint64_t leader = leader_.load();
  const std::string address = AddressOf(leader);
  absl::Status s = absl::FailedPreconditionError(
      leader == 0 ? std::string("not leader; no leader known")
                  : absl::StrCat("not leader; the leader is node ", leader,
                                 " at ", address));
  if (!address.empty()) s.SetPayload(kLeaderPayload, absl::Cord(address));
  return s;
}

absl::Status RaftServer::WaitForLeader(int64_t deadline_ms) {
  std::unique_lock<std::mutex> l(leader_mu_);
  while (leader_.load() == 0) {
    const int64_t left = deadline_ms - NowMs();
    if (left <= 0 || failed_.load()) {
      absl::Status s = absl::UnavailableError(absl::StrCat(
          "no leader: no election succeeded within ", options_.leader_wait_ms,
          " ms (is a majority of the cluster up?)"));
      s.SetPayload(kNoLeaderPayload, absl::Cord("1"));
      return s;
    }
    leader_cv_.wait_for(l, std::chrono::milliseconds(left));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RaftServer::Submit(
    const std::function<absl::Status(uint64_t id)>& submit, const char* what) {
  const int64_t start = NowMs();
  const int64_t leader_deadline = start + options_.leader_wait_ms;
  const int64_t deadline = start + options_.request_timeout_ms;
  while (true) {
    absl::Status w = WaitForLeader(leader_deadline);
    if (!w.ok()) return w;
    const uint64_t id = NextId();
    std::shared_ptr<Pending> p = Register(id);
    Post([this, id, submit] {
      absl::Status s = submit(id);
      if (!s.ok()) Complete(id, core::IsProposalDropped(s) ? Dropped() : s);
    });
    std::unique_lock<std::mutex> l(p->mu);
    const bool done = p->cv.wait_for(
        l, std::chrono::milliseconds(std::max<int64_t>(0, deadline - NowMs())),
        [&] { return p->done; });
    if (!done) {
      l.unlock();
      Unregister(id);
      return absl::DeadlineExceededError(absl::StrCat(
          "timeout: ", what, " not answered within ",
          options_.request_timeout_ms,
          " ms; outcome unknown (retry with the same session and sequence)"));
    }
    if (p->result.ok() || p->result.status() != Dropped()) return p->result;
    l.unlock();
    // Dropped: wait for the (next) leader, briefly, and try again.
    if (NowMs() >= leader_deadline) {
      absl::Status s = absl::UnavailableError(
          absl::StrCat("no leader: ", what,
                       " dropped by Raft (election or transfer in "
                       "progress) for ",
                       options_.leader_wait_ms, " ms"));
      s.SetPayload(kNoLeaderPayload, absl::Cord("1"));
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.tick_ms));
  }
}

absl::StatusOr<sm::CommandResult> RaftServer::Execute(sm::Command command) {
  if (failed_.load()) return absl::UnavailableError("node stopped: log failed");
  if (command.statements.empty()) {
    return absl::InvalidArgumentError("no statements");
  }
  absl::Status v = sm_->Validate(command);
  if (!v.ok()) return v;
  if (!options_.forward_writes && !is_leader_.load()) return NotLeader();
  command.timestamp_ms = WallMs();
  command.random_seed = NextId() * 0x9e3779b97f4a7c15ull;
  auto result = Submit(
      [this, command](uint64_t id) mutable {
        command.request_id = id;
        std::string data = command.Encode();
        return node_->Propose(std::move(data));
      },
      "write");
  if (!result.ok()) return result.status();
  return sm::CommandResult::Decode(*result);
}

absl::StatusOr<sm::QueryResult> RaftServer::Query(
    const sm::Statement& statement, bool linearizable) {
  if (linearizable) {
    auto r =
        Submit([this](uint64_t id) { return node_->ReadIndex(EncodeId(id)); },
               "linearizable read");
    if (!r.ok()) return r.status();
  }
  return sm_->Query(statement);
}

absl::StatusOr<uint64_t> RaftServer::GetVersion(const std::string& table,
                                                bool linearizable) {
  if (linearizable) {
    auto r =
        Submit([this](uint64_t id) { return node_->ReadIndex(EncodeId(id)); },
               "linearizable read");
    if (!r.ok()) return r.status();
  }
  return sm_->GetVersion(table);
}

template <typename T>
absl::StatusOr<T> RaftServer::OnLoop(std::function<T()> fn) {
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    if (stopping_) return absl::UnavailableError("node shutting down");
  }
  auto p = std::make_shared<Pending>();
  auto value = std::make_shared<T>();
  Post([p, value, fn] {
    *value = fn();
    std::lock_guard<std::mutex> l(p->mu);
    p->done = true;
    p->cv.notify_all();
  });
  std::unique_lock<std::mutex> l(p->mu);
  if (!p->cv.wait_for(l, std::chrono::milliseconds(options_.request_timeout_ms),
                      [&] { return p->done; })) {
    return absl::DeadlineExceededError("the Raft loop did not answer");
  }
  return *value;
}

std::vector<Member> RaftServer::Members() {
  // Loop thread only.
  const core::ConfState cs = node_->raw().raft().tracker().GetConfState();
  std::vector<Member> out;
  for (uint64_t id : cs.voters) out.push_back(Member{id, AddressOf(id), true});
  for (uint64_t id : cs.learners) {
    out.push_back(Member{id, AddressOf(id), false});
  }
  return out;
}

absl::StatusOr<NodeState> RaftServer::State() {
  auto state = OnLoop<NodeState>([this] {
    const core::Raft& r = node_->raw().raft();
    NodeState s;
    s.id = options_.id;
    s.role = failed_.load() ? "Stopped" : core::StateTypeName(r.state());
    s.term = r.term();
    s.leader = r.lead();
    s.commit = r.log().committed();
    s.applied = sm_->AppliedIndex();
    s.last_index = r.log().LastIndex();
    s.snapshot_index = log_->FirstIndex() - 1;
    s.divergence_hash = sm_->divergence_hash();
    s.members = Members();
    return s;
  });
  if (state.ok()) state->leader_address = AddressOf(state->leader);
  return state;
}

absl::StatusOr<std::vector<Member>> RaftServer::ChangeMembership(
    core::ConfChange cc) {
  const std::string address = cc.context;
  auto r = Submit(
      [this, cc, address](uint64_t id) mutable {
        cc.context = ConfContext(id, address);
        return node_->ProposeConfChange(cc);
      },
      "membership change");
  if (!r.ok()) return r.status();
  return OnLoop<std::vector<Member>>([this] { return Members(); });
}

absl::StatusOr<std::vector<Member>> RaftServer::AddNode(
    uint64_t id, const std::string& address, bool learner) {
  if (!is_leader_.load()) return NotLeader();
  if (id == 0 || address.empty()) {
    return absl::InvalidArgumentError("AddNode needs an id and an address");
  }
  SetAddress(id, address);
  // A node joining with an empty log must get a snapshot (it carries the
  // membership that the first log entries do not).
  auto compacted = OnLoop<bool>([this] {
    node_->CompactNow();
    return true;
  });
  if (!compacted.ok()) return compacted.status();
  auto added = ChangeMembership(
      core::ConfChange{core::ConfChange::Type::kAddLearner, id, address});
  if (!added.ok() || learner) return added;
  // Promote once caught up, so the new voter cannot stall commits.
  const int64_t deadline = NowMs() + options_.request_timeout_ms * 4;
  while (NowMs() < deadline) {
    auto caught_up = OnLoop<bool>([this, id] {
      const core::Raft& r = node_->raw().raft();
      const core::Progress* pr = r.tracker().Get(id);
      return pr != nullptr && pr->match + 10 >= r.log().committed();
    });
    if (!caught_up.ok()) return caught_up.status();
    if (*caught_up) {
      return ChangeMembership(
          core::ConfChange{core::ConfChange::Type::kAddVoter, id, address});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.tick_ms));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("node ", id,
                   " was added as a learner but did not catch up in time; "
                   "it stays a learner (call AddNode again to promote it)"));
}

absl::StatusOr<std::vector<Member>> RaftServer::RemoveNode(uint64_t id) {
  if (!is_leader_.load()) return NotLeader();
  return ChangeMembership(
      core::ConfChange{core::ConfChange::Type::kRemoveNode, id, ""});
}

absl::StatusOr<std::vector<Member>> RaftServer::TransferLeadership(
    uint64_t id) {
  if (!is_leader_.load()) return NotLeader();
  auto target = OnLoop<uint64_t>([this, id] {
    if (id != 0) return id;
    // The most up-to-date other voter.
    const core::Raft& r = node_->raw().raft();
    uint64_t best = 0, best_match = 0;
    for (uint64_t v : r.tracker().GetConfState().voters) {
      const core::Progress* pr = r.tracker().Get(v);
      if (v == options_.id || pr == nullptr || !pr->recent_active) continue;
      if (best == 0 || pr->match > best_match) {
        best = v;
        best_match = pr->match;
      }
    }
    if (best != 0) node_->TransferLeadership(best);
    return best;
  });
  if (!target.ok()) return target.status();
  if (*target == 0) return absl::FailedPreconditionError("no other voter");
  if (id != 0) Post([this, id] { node_->TransferLeadership(id); });
  const int64_t deadline =
      NowMs() + 2 * options_.election_ticks * options_.tick_ms + 500;
  std::unique_lock<std::mutex> l(leader_mu_);
  while (leader_.load() != *target) {
    const int64_t left = deadline - NowMs();
    if (left <= 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("leadership did not move to node ", *target));
    }
    leader_cv_.wait_for(l, std::chrono::milliseconds(left));
  }
  l.unlock();
  return OnLoop<std::vector<Member>>([this] { return Members(); });
}

void RaftServer::LearnAddress(uint64_t id, const std::string& address) {
  // Only fills a gap: flags and membership changes are the authority.
  if (id == 0 || id == options_.id || address.empty()) return;
  if (!AddressOf(id).empty()) return;
  SetAddress(id, address);
}

void RaftServer::Deliver(std::vector<core::Message> messages) {
  Post([this, messages = std::move(messages)]() mutable {
    for (core::Message& m : messages) {
      if (m.to != options_.id) continue;
      node_->Step(std::move(m));
    }
  });
}

}  // namespace raftsql::server
