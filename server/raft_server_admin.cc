// RaftServer's admin side: status, membership changes, leadership transfer.
// These calls are rare and may block their caller (never the Raft loop).
#include <algorithm>
#include <filesystem>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/auth.h"
#include "server/internal.h"
#include "server/raft_server.h"

namespace raftsql::server {

template <typename T>
absl::StatusOr<T> RaftServer::OnLoop(std::function<T()> fn) {
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    if (stopping_) return absl::UnavailableError("node shutting down");
  }
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> future = promise->get_future();
  Post([promise, fn] { promise->set_value(fn()); });
  if (future.wait_for(std::chrono::milliseconds(options_.request_timeout_ms)) !=
      std::future_status::ready) {
    return absl::DeadlineExceededError("the Raft loop did not answer");
  }
  return future.get();
}

void RaftServer::State(Done<NodeState> done) {
  Done<NodeState> on_stop = done;
  const bool posted = Post([this, done = std::move(done)] {
    const core::Raft& r = node_->raw().raft();
    NodeState s;
    s.id = options_.id;
    s.role = failed_.load() ? "Stopped" : core::StateTypeName(r.state());
    s.term = r.term();
    s.leader = r.lead();
    s.leader_address = ClientAddressOf(s.leader);
    s.commit = r.log().committed();
    s.applied = sm_->AppliedIndex();
    s.last_index = r.log().LastIndex();
    s.snapshot_index = log_->FirstIndex() - 1;
    s.divergence_hash = sm_->divergence_hash();
    s.divergence = sm_->divergence();
    s.http_address = http_address();
    s.members = Members();
    s.longest_loop_us = longest_loop_us_;
    s.longest_loop_in_snapshots_us = longest_loop_in_snapshots_us_;
    s.snapshot_transfers = r.SnapshotTransfers();
    s.vacuuming = sm_->vacuuming();
    s.vacuums_done = sm_->vacuums_done();
    if (const sm::ChangeLog* log = sm_->change_log()) {
      s.change_log_first = log->first_index();
      s.change_log_bytes = log->bytes();
    }
    s.decisions_evaluated_index = decisions_evaluated_index_.load();
    s.decision_evaluations = decision_evaluations_.load();
    {
      std::lock_guard<std::mutex> l(decision_model_mu_);
      s.decision_model = decision_model_;
      s.decision_model_error = decision_model_error_;
    }
    done(std::move(s));
  });
  if (!posted) on_stop(absl::UnavailableError("node shutting down"));
}

void RaftServer::Backup(Done<std::shared_ptr<sm::ImageSource>> done) {
  Done<std::shared_ptr<sm::ImageSource>> on_stop = done;
  const bool posted = Post([this, done = std::move(done)] {
    if (backups_->fetch_add(1) >= kMaxBackups) {
      backups_->fetch_sub(1);
      return done(absl::ResourceExhaustedError(absl::StrCat(
          kMaxBackups, " backups are under way: try again once one ended")));
    }
    absl::StatusOr<std::unique_ptr<sm::ImageSource>> source =
        sm_->BeginBackup();
    if (!source.ok()) {
      backups_->fetch_sub(1);
      return done(source.status());
    }
    // The count goes down when the last holder lets the source go.
    done(std::shared_ptr<sm::ImageSource>(
        source->release(), [count = backups_](sm::ImageSource* s) {
          delete s;
          count->fetch_sub(1);
        }));
  });
  if (!posted) on_stop(absl::UnavailableError("node shutting down"));
}

NodeMetrics RaftServer::Metrics(NodeState state) {
  NodeMetrics m;
  m.state = std::move(state);
  m.loop_seconds = loop_seconds_.Read();
  for (size_t p = 0; p < phase_seconds_.size(); ++p) {
    m.phase_seconds.emplace_back(obs::PhaseName(static_cast<obs::Phase>(p)),
                                 phase_seconds_[p].Read());
  }
  m.proposals = proposals_.load();
  m.proposals_refused = proposals_refused_.load();
  m.leader_changes = leader_changes_.load();
  m.early_reads_kept = early_reads_kept_.load();
  m.early_reads_redone = early_reads_redone_.load();
  m.log = log_->stats();
  m.messages_sent = transport_->sent();
  m.messages_dropped = transport_->dropped();
  m.broken_streams = transport_->broken_streams();
  m.send_queue = transport_->QueueDepths();
  {
    std::lock_guard<std::mutex> l(unreachable_mu_);
    m.unreachable = unreachable_;
  }
  std::error_code ec;
  const uintmax_t wal =
      std::filesystem::file_size(options_.data_dir + "/db.sqlite-wal", ec);
  if (!ec) m.wal_bytes = static_cast<int64_t>(wal);
  return m;
}

absl::StatusOr<std::vector<Member>> RaftServer::ChangeMembership(
    core::ConfChange cc) {
  const std::string address = cc.context;
  auto r = SubmitSync(
      [this, cc, address](uint64_t id) mutable {
        cc.context = internal::ConfContext(id, address);
        return node_->ProposeConfChange(cc);
      },
      "membership change");
  if (!r.ok()) return r.status();
  return CurrentMembers();
}

absl::StatusOr<std::vector<Member>> RaftServer::AddNode(
    uint64_t id, const std::string& address, bool learner) {
  if (!is_leader_.load()) return NotLeader(leader_.load());
  if (id == 0 || address.empty() || address.size() > kMaxAddressBytes) {
    return absl::InvalidArgumentError(
        "AddNode needs an id and an address (host:port)");
  }
  // Idempotent, for a joiner that retries after a timeout: a voter stays a
  // voter (never demoted), a learner goes on to its promotion. The address
  // book changes only when a membership change applies (OnApply).
  enum class Role { kNone, kLearner, kVoter };
  auto role = OnLoop<absl::StatusOr<Role>>([this, id,
                                            address]() -> absl::StatusOr<Role> {
    const core::ConfState cs = node_->raw().raft().tracker().GetConfState();
    const bool voter = std::count(cs.voters.begin(), cs.voters.end(), id) > 0;
    const bool learner =
        std::count(cs.learners.begin(), cs.learners.end(), id) > 0;
    absl::Status taken = CheckNewMember(id, address, voter || learner);
    if (!taken.ok()) return taken;
    if (voter) return Role::kVoter;
    if (learner) return Role::kLearner;
    if (cs.learners.size() >= kMaxLearners) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the cluster has ", cs.learners.size(),
          " learners already (the most it takes); remove one first"));
    }
    return Role::kNone;
  });
  if (!role.ok()) return role.status();
  if (!role->ok()) return role->status();
  if (**role == Role::kVoter) return CurrentMembers();
  if (**role == Role::kNone) {
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
  } else if (learner) {
    return CurrentMembers();
  }
  // Promote once caught up, so the new voter cannot stall commits.
  const int64_t deadline = internal::NowMs() + options_.request_timeout_ms * 4;
  while (internal::NowMs() < deadline) {
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

absl::Status RaftServer::CheckNewMember(uint64_t id, const std::string& address,
                                        bool member) {
  // Loop thread only. One id, one address: a retried join must name the
  // address it joined with, and nobody may take over another's address.
  std::lock_guard<std::mutex> l(addresses_mu_);
  for (const auto& [other, at] : addresses_) {
    if (other == id && member && at != address) {
      return absl::AlreadyExistsError(absl::StrCat(
          "node ", id, " is a member at ", at, ", not at ", address));
    }
    if (other != id && at == address &&
        node_->raw().raft().tracker().Get(other) != nullptr) {
      return absl::AlreadyExistsError(
          absl::StrCat("address ", address, " belongs to node ", other));
    }
  }
  return absl::OkStatus();
}

absl::Status RaftServer::CheckRemoval(uint64_t id) {
  // Loop thread only, on the leader.
  const core::ProgressTracker& tracker = node_->raw().raft().tracker();
  if (tracker.Get(id) == nullptr) {
    return absl::NotFoundError(absl::StrCat("node ", id, " is not a member"));
  }
  if (!tracker.IsVoter(id)) return absl::OkStatus();  // A learner.
  // The voters left must still reach a quorum among those that are up now
  // (heard from since the last CheckQuorum round; we are up).
  size_t left = 0, up = 0;
  for (uint64_t v : tracker.voters()) {
    if (v == id) continue;
    ++left;
    const core::Progress* pr = tracker.Get(v);
    if (v == options_.id || (pr != nullptr && pr->recent_active)) ++up;
  }
  const size_t quorum = left / 2 + 1;
  if (left == 0 || up < quorum) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to remove node ", id, ": ", left,
                     " voters would be left, of which ", up,
                     " are up, and a quorum needs ", quorum));
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> RaftServer::LookAtVotersUp(
    std::function<T()> look, std::function<bool(const T&)> stands) {
  const int64_t deadline = internal::NowMs() + RoundMs();
  for (bool first = true;; first = false) {
    if (!is_leader_.load()) return NotLeader(leader_.load());
    // By value: a loop that does not answer in time runs it later.
    absl::StatusOr<T> answer = OnLoop<T>([this, look, first] {
      if (first && options_.before_voters_up_check_for_test) {
        options_.before_voters_up_check_for_test(*node_);
      }
      return look();
    });
    if (!answer.ok() || stands(*answer) || internal::NowMs() >= deadline) {
      return answer;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.tick_ms));
  }
}

absl::StatusOr<std::vector<Member>> RaftServer::RemoveNode(uint64_t id) {
  // Refused for want of a quorum only once a whole round passed without one.
  absl::StatusOr<absl::Status> allowed = LookAtVotersUp<absl::Status>(
      [this, id] { return CheckRemoval(id); },
      [](const absl::Status& s) { return !absl::IsFailedPrecondition(s); });
  if (!allowed.ok()) return allowed.status();
  if (!allowed->ok()) return *allowed;
  return ChangeMembership(
      core::ConfChange{core::ConfChange::Type::kRemoveNode, id, ""});
}

absl::StatusOr<std::vector<Member>> RaftServer::TransferLeadership(
    uint64_t id) {
  // With no target named, none is found only once a whole round passed
  // without another voter up (or there is none).
  struct Target {
    uint64_t to = 0;
    bool others = false;  // Voters besides this node.
  };
  absl::StatusOr<Target> target = LookAtVotersUp<Target>(
      [this, id] {
        Target t;
        t.others = node_->raw().raft().tracker().voters().size() > 1;
        t.to = id != 0 ? id : MostUpToDateOtherVoter();
        if (t.to != 0) node_->TransferLeadership(t.to);
        return t;
      },
      [](const Target& t) { return t.to != 0 || !t.others; });
  if (!target.ok()) return target.status();
  if (target->to == 0) {
    return absl::FailedPreconditionError("no other voter up");
  }
  const int64_t deadline =
      internal::NowMs() + 2 * options_.election_ticks * options_.tick_ms + 500;
  std::unique_lock<std::mutex> l(leader_mu_);
  while (leader_.load() != target->to) {
    const int64_t left = deadline - internal::NowMs();
    if (left <= 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("leadership did not move to node ", target->to));
    }
    leader_cv_.wait_for(l, std::chrono::milliseconds(left));
  }
  l.unlock();
  return CurrentMembers();
}

absl::StatusOr<sm::WriteSettings> RaftServer::SetSetting(
    const std::string& name, uint64_t value) {
  // Refused here already if it cannot apply (the log need not carry it).
  sm::WriteSettings check;
  absl::Status valid = sm::ApplySetting(name, value, &check);
  if (!valid.ok()) return valid;
  auto r = SubmitSync(
      [this, name, value](uint64_t id) {
        return node_->Propose(sm::SettingChange{name, value, id}.Encode());
      },
      "setting change");
  if (!r.ok()) return r.status();
  absl::StatusOr<sm::CommandResult> result = sm::CommandResult::Decode(*r);
  if (!result.ok()) return result.status();
  if (result->statements.size() == 1 && !result->statements[0].status.ok()) {
    return result->statements[0].status;
  }
  return Settings();
}

namespace {

// The outcome of an applied admin entry (a one-statement result).
absl::Status AppliedOutcome(const absl::StatusOr<std::string>& r) {
  if (!r.ok()) return r.status();
  absl::StatusOr<sm::CommandResult> result = sm::CommandResult::Decode(*r);
  if (!result.ok()) return result.status();
  if (result->statements.size() == 1) return result->statements[0].status;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<sm::User>> RaftServer::PutUser(
    const std::string& name, const std::string& password,
    uint32_t permissions) {
  absl::Status valid = sm::ValidateUserName(name);
  if (!valid.ok()) return valid;
  std::string hash;
  if (!password.empty()) {
    absl::StatusOr<std::string> h = HashPassword(password);
    if (!h.ok()) return h.status();
    hash = std::move(*h);
  }
  const sm::User user{name, hash, permissions};
  absl::Status s = AppliedOutcome(SubmitSync(
      [this, user](uint64_t id) {
        return node_->Propose(
            sm::UserChange{sm::UserChange::Op::kPut, user, id}.Encode());
      },
      "user change"));
  if (!s.ok()) return s;
  return Users();
}

absl::StatusOr<std::vector<sm::User>> RaftServer::DropUser(
    const std::string& name) {
  absl::Status s = AppliedOutcome(SubmitSync(
      [this, name](uint64_t id) {
        return node_->Propose(sm::UserChange{sm::UserChange::Op::kDelete,
                                             sm::User{name, "", 0}, id}
                                  .Encode());
      },
      "user change"));
  if (!s.ok()) return s;
  return Users();
}

absl::StatusOr<sm::WriteSettings> RaftServer::Settings() {
  // The apply loop owns the state machine's copy.
  return OnLoop<sm::WriteSettings>([this] { return sm_->write_settings(); });
}

uint64_t RaftServer::MostUpToDateOtherVoter() {
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
  return best;
}

absl::StatusOr<std::vector<Member>> RaftServer::CurrentMembers() {
  return OnLoop<std::vector<Member>>([this] { return Members(); });
}

}  // namespace raftsql::server
