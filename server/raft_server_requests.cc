// RaftServer's requests: writes, linearizable reads and membership changes
// wait in requests_ (loop thread only) for the entry to apply or the read
// index to be served; nobody blocks a thread while they wait.
#include <algorithm>
#include <future>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "obs/write_trace.h"
#include "server/internal.h"
#include "server/raft_server.h"

namespace raftsql::server {

using internal::DecodeId;
using internal::EncodeId;
using internal::NowMs;
using internal::WallMs;

absl::Status RaftServer::NoLeader(const char* what) const {
  absl::Status s = absl::UnavailableError(absl::StrCat(
      "no leader: ", what, " waited ", options_.leader_wait_ms,
      " ms and no election succeeded (is a majority of the cluster up?)"));
  s.SetPayload(kNoLeaderPayload, absl::Cord("1"));
  return s;
}

absl::Status RaftServer::NotLeader(uint64_t leader) {
  if (leader == 0) {
    // Nothing names a node to follow: UNAVAILABLE (nothing was done), and
    // without the no-leader mark, so that a client tries its next node (one
    // just restarted may not have heard from the leader yet).
    return absl::UnavailableError(
        "not leader, and no leader known here yet: nothing was done; try "
        "another node");
  }
  const std::string address = ClientAddressOf(leader);
  absl::Status s = absl::FailedPreconditionError(
      absl::StrCat("not leader; the leader is node ", leader, " at ", address));
  if (!address.empty()) s.SetPayload(kLeaderPayload, absl::Cord(address));
  return s;
}

void RaftServer::Submit(std::function<absl::Status(uint64_t id)> submit,
                        const char* what, Done<std::string> done, bool read) {
  const int64_t now = NowMs();
  Request r;
  r.submit = std::move(submit);
  r.what = what;
  r.done = std::move(done);
  r.read = read;
  if (obs::WriteTraceOn()) r.received_ns = obs::SteadyNs();
  r.leader_deadline_ms = now + options_.leader_wait_ms;
  r.deadline_ms = now + options_.request_timeout_ms;
  const uint64_t id = NextId();
  Done<std::string> on_stop = r.done;
  if (!Post([this, id, r = std::move(r)]() mutable {
        requests_.emplace(id, std::move(r));
        TrySubmit(id);
      })) {
    on_stop(absl::UnavailableError("node shutting down"));
  }
}

void RaftServer::TrySubmit(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  if (failed_.load()) {
    return Finish(id, absl::UnavailableError("node stopped: its log failed"));
  }
  const core::Raft& raft = node_->raw().raft();
  if (raft.lead() == core::kNone) {
    parked_.push_back(id);  // Until a leader is known, or the wait ends.
    return;
  }
  const uint64_t last = raft.log().LastIndex();
  // Out of the request while it runs: a single-node cluster commits and
  // applies inside Propose, which answers the request and erases it.
  std::function<absl::Status(uint64_t)> submit = std::move(it->second.submit);
  const absl::Status s = submit(id);
  it = requests_.find(id);
  if (it == requests_.end()) return;  // Answered already.
  it->second.submit = std::move(submit);
  if (s.ok()) {
    it->second.submitted = true;
    // A proposal appends one entry to the leader's log (a read none).
    const uint64_t now_last = raft.log().LastIndex();
    if (now_last > last) {
      it->second.proposed_index = now_last;
      proposed_at_[now_last] = id;
      if (obs::WriteTraceOn()) {
        obs::TraceWrite(now_last, obs::WriteStage::kReceived,
                        it->second.received_ns);
        obs::TraceWrite(now_last, obs::WriteStage::kProposed);
      }
    } else if (!it->second.read && raft.state() != core::StateType::kLeader) {
      it->second.forwarded_term = raft.term();
      forwarded_in_.emplace(raft.term(), id);
    }
  } else if (core::IsProposalDropped(s)) {
    parked_.push_back(id);  // In no log: safe to try again.
  } else {
    Finish(id, s);
  }
}

void RaftServer::SubmitRead(Done<std::string> done) {
  Submit(
      [this](uint64_t id) {
        queued_reads_.push_back(id);  // For this iteration's FlushReads.
        return absl::OkStatus();
      },
      "linearizable read", std::move(done), /*read=*/true);
}

void RaftServer::FlushReads() {
  if (queued_reads_.empty()) return;
  std::vector<uint64_t> ids;
  ids.swap(queued_reads_);
  const uint64_t batch = NextId();
  const absl::Status s = node_->ReadIndex(EncodeId(batch));
  if (s.ok()) {
    read_batches_[batch] = std::move(ids);
    return;
  }
  for (uint64_t id : ids) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    if (core::IsProposalDropped(s)) {
      it->second.submitted = false;  // In no read queue: ask again.
      parked_.push_back(id);
    } else {
      Finish(id, s);
    }
  }
}

void RaftServer::Finish(uint64_t id, absl::StatusOr<std::string> result) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;  // Not ours, or already answered.
  obs::TraceWrite(it->second.proposed_index, obs::WriteStage::kAnswered);
  ForgetSubmission(it->second, id);
  Done<std::string> done = std::move(it->second.done);
  requests_.erase(it);
  done(std::move(result));
}

void RaftServer::ForgetSubmission(Request& r, uint64_t id) {
  if (auto at = proposed_at_.find(r.proposed_index);
      at != proposed_at_.end() && at->second == id) {
    proposed_at_.erase(at);
  }
  auto [from, to] = forwarded_in_.equal_range(r.forwarded_term);
  for (auto at = from; at != to; ++at) {
    if (at->second == id) {
      forwarded_in_.erase(at);
      break;
    }
  }
  r.submitted = false;
  r.proposed_index = 0;
  r.forwarded_term = 0;
}

namespace {

// Takes the values of `by_key`'s entries whose key is at most `last` out
// of it, in key order, into `*out`.
template <typename Map>
void TakeUpTo(Map& by_key, uint64_t last, std::vector<uint64_t>* out) {
  while (!by_key.empty() && by_key.begin()->first <= last) {
    out->push_back(by_key.begin()->second);
    by_key.erase(by_key.begin());
  }
}

}  // namespace

void RaftServer::ResolveLostProposals(uint64_t applied, uint64_t term) {
  std::vector<uint64_t> lost;
  TakeUpTo(proposed_at_, applied, &lost);
  TakeUpTo(forwarded_in_, term - 1, &lost);  // An applied entry's term >= 1.
  for (uint64_t id : lost) Resubmit(id);
}

void RaftServer::ParkAgain(uint64_t id, Request& r) {
  r.submitted = false;
  // A new wait for a leader, within the request's own bound.
  r.leader_deadline_ms =
      std::min(NowMs() + options_.leader_wait_ms, r.deadline_ms);
  parked_.push_back(id);
}

void RaftServer::Resubmit(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Request& r = it->second;
  const int64_t now = NowMs();
  if (r.resubmits >= kMaxResubmits || now >= r.deadline_ms) {
    // The error model (README): UNAVAILABLE, nothing was written.
    return Finish(id, absl::UnavailableError(
                          "the leader changed before the request committed; "
                          "it was not applied and never will be: retry it"));
  }
  ++r.resubmits;
  ForgetSubmission(r, id);
  // Proposed again from the loop (not from inside an apply), to the
  // leader then known.
  ParkAgain(id, r);
}

void RaftServer::OnRestore(const core::SnapshotMetadata& snapshot) {
  std::vector<uint64_t> unknown;
  TakeUpTo(proposed_at_, snapshot.index, &unknown);
  // A proposal forwarded in the snapshot's term may lie on either side of
  // its index: after it, it still applies (nobody waits then).
  TakeUpTo(forwarded_in_, snapshot.term, &unknown);
  for (uint64_t id : unknown) {
    Finish(id, absl::UnknownError(
                   "outcome unknown: this node restored a snapshot that may "
                   "hold the request's effect (retry it with the same "
                   "session and sequence)"));
  }
}

void RaftServer::AnswerProposalsOfALostLead() {
  // At or below the commit index an entry applies here in any case.
  const uint64_t committed = node_->raw().raft().log().committed();
  std::vector<uint64_t> unknown;
  for (auto it = proposed_at_.upper_bound(committed); it != proposed_at_.end();
       it = proposed_at_.erase(it)) {
    unknown.push_back(it->second);
  }
  for (uint64_t id : unknown) {
    Finish(id, absl::UnknownError(
                   "outcome unknown: this node stopped leading (it no longer "
                   "heard from a majority) before the request committed; "
                   "retry it with the same session and sequence"));
  }
}

void RaftServer::AskReadsAgain() {
  reads_to_ask_again_ = false;
  for (auto& [batch, ids] : read_batches_) {
    for (uint64_t id : ids) {
      auto it = requests_.find(id);
      if (it != requests_.end()) ParkAgain(id, it->second);
    }
  }
  read_batches_.clear();
}

void RaftServer::FinishAll() {
  std::vector<uint64_t> ids;
  for (const auto& [id, r] : requests_) ids.push_back(id);
  for (uint64_t id : ids) {
    // The error model (README): UNAVAILABLE only where nothing was written.
    Finish(id, requests_[id].submitted
                   ? absl::UnknownError(
                         "node shutting down after it proposed the request; "
                         "outcome unknown (retry it with the same session "
                         "and sequence)")
                   : absl::UnavailableError(
                         "node shutting down; the request was not proposed"));
  }
  parked_.clear();
  proposed_at_.clear();
  forwarded_in_.clear();
  queued_reads_.clear();
  read_batches_.clear();
}

void RaftServer::SweepRequests(bool ticked) {
  if (reads_to_ask_again_) AskReadsAgain();
  if (parked_.empty() && !ticked) return;
  const int64_t now = NowMs();
  if (!parked_.empty() && (ticked || leader_changed_)) {
    std::vector<uint64_t> parked;
    parked.swap(parked_);
    for (uint64_t id : parked) {
      auto it = requests_.find(id);
      if (it == requests_.end()) continue;
      if (now >= it->second.leader_deadline_ms) {
        Finish(id, NoLeader(it->second.what));
      } else {
        TrySubmit(id);
      }
    }
    leader_changed_ = false;
  }
  FlushReads();  // Reads retried above.
  if (!ticked) return;
  // Batches whose reads all gave up (no answer came) are forgotten.
  for (auto it = read_batches_.begin(); it != read_batches_.end();) {
    const bool waiting =
        std::any_of(it->second.begin(), it->second.end(),
                    [this](uint64_t id) { return requests_.count(id) > 0; });
    it = waiting ? std::next(it) : read_batches_.erase(it);
  }
  std::vector<uint64_t> late;
  for (const auto& [id, r] : requests_) {
    if (r.submitted && now >= r.deadline_ms) late.push_back(id);
  }
  for (uint64_t id : late) {
    const Request& r = requests_[id];
    Finish(id, absl::DeadlineExceededError(absl::StrCat(
                   "timeout: ", r.what, " not answered within ",
                   options_.request_timeout_ms, " ms",
                   r.read ? ": nothing was read; retry it"
                          : "; outcome unknown (a write may still apply: "
                            "retry it with the same session and sequence)")));
  }
}

absl::StatusOr<std::string> RaftServer::SubmitSync(
    std::function<absl::Status(uint64_t id)> submit, const char* what) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<std::string>>>();
  std::future<absl::StatusOr<std::string>> future = promise->get_future();
  Submit(std::move(submit), what, [promise](absl::StatusOr<std::string> r) {
    promise->set_value(std::move(r));
  });
  // The loop answers within request_timeout_ms (or at shutdown); the margin
  // covers a loop that stopped before it took the request.
  const auto bound = std::chrono::milliseconds(options_.request_timeout_ms +
                                               options_.leader_wait_ms + 1000);
  if (future.wait_for(bound) != std::future_status::ready) {
    return absl::UnknownError("node stopped before answering; outcome unknown");
  }
  return future.get();
}

void RaftServer::Execute(sm::Command command, Done<sm::CommandResult> done) {
  if (failed_.load()) {
    return done(absl::UnavailableError("node stopped: its log failed"));
  }
  if (command.statements.empty()) {
    return done(absl::InvalidArgumentError("no statements"));
  }
  if (absl::Status v = sm_->Validate(command); !v.ok()) return done(v);
  command.timestamp_ms = WallMs();
  command.random_seed = NextId() * 0x9e3779b97f4a7c15ull;
  Submit(
      [this, command = std::move(command)](uint64_t id) mutable {
        // Runs once a leader is known: a follower that does not forward
        // names it.
        const core::Raft& raft = node_->raw().raft();
        if (!options_.forward_writes &&
            raft.state() != core::StateType::kLeader) {
          return NotLeader(raft.lead());
        }
        command.request_id = id;
        absl::Status proposed = node_->Propose(command.Encode());
        (proposed.ok() ? proposals_ : proposals_refused_)
            .fetch_add(1, std::memory_order_relaxed);
        return proposed;
      },
      "write",
      [done = std::move(done)](absl::StatusOr<std::string> r) {
        if (!r.ok()) return done(r.status());
        done(sm::CommandResult::Decode(*r));
      });
}

sm::ReadLimits RaftServer::Bound(sm::ReadLimits limits) const {
  const auto now = std::chrono::steady_clock::now();
  limits.deadline =
      std::min(limits.deadline,
               now + std::chrono::milliseconds(options_.query_timeout_ms));
  limits.max_result_bytes =
      std::min(limits.max_result_bytes, options_.max_result_bytes);
  // A stopping node interrupts its reads instead of waiting them out.
  limits.cancelled = [this, client = std::move(limits.cancelled)] {
    return reads_stopping_.load() || (client && client());
  };
  return limits;
}

template <typename T>
void RaftServer::OnReader(std::function<absl::StatusOr<T>()> read,
                          Done<T> done) {
  // Reads never run on the Raft loop, nor on gRPC's threads beyond a
  // bounded first try (ReadWith, kInlineReadSteps): a slow one would stall
  // them.
  if (reads_stopping_.load()) {
    return done(absl::UnavailableError("node shutting down"));
  }
  if (removed_.load()) {
    // Its state stopped moving when it was removed: even a read at
    // consistency none would be stale without bound.
    return done(absl::FailedPreconditionError(absl::StrCat(
        "node ", options_.id,
        " was removed from the cluster and no longer follows its writes; "
        "read from a member")));
  }
  Done<T> refused = done;
  if (!readers_->Run(
          [read = std::move(read), done = std::move(done)] { done(read()); })) {
    refused(absl::ResourceExhaustedError(absl::StrCat(
        "too many reads waiting (", kMaxQueuedReads, "); retry later")));
  }
}

bool RaftServer::MayReadHere() const {
  return sm_->has_read_connections() && !reads_stopping_.load() &&
         !removed_.load();
}

bool RaftServer::MayReadEarly(uint64_t* seen) {
  if (!MayReadHere()) return false;
  // Loaded before the read starts: the read sees this state or a later one.
  *seen = sm_->visible_index();
  // Entries committed but not yet applied: the read index would likely be
  // past what the read saw, and the read would run twice.
  if (*seen < committed_.load(std::memory_order_relaxed)) return false;
  if (early_reads_.fetch_add(1, std::memory_order_relaxed) >= kMaxEarlyReads) {
    early_reads_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

template <typename T>
void RaftServer::SubmitReadAfter(uint64_t seen, absl::StatusOr<T> result,
                                 std::function<absl::StatusOr<T>()> read,
                                 Done<T> done) {
  // Held, not copied, by the copies Submit makes of its callback.
  auto held = std::make_shared<absl::StatusOr<T>>(std::move(result));
  SubmitRead(
      [this, seen, held = std::move(held), read = std::move(read),
       done = std::move(done)](absl::StatusOr<std::string> index) mutable {
        absl::StatusOr<T> early = std::move(*held);
        held.reset();
        early_reads_.fetch_sub(1, std::memory_order_relaxed);
        if (!index.ok()) return done(index.status());
        // The read started after the request came and saw every entry up to
        // `seen`; the read index (the leader's commit index when it was asked,
        // after the read, confirmed by a quorum) covers every write that
        // completed before the read started. At most `seen`: the state read
        // holds them all, so the read linearizes where it ran.
        if (DecodeId(*index) <= seen) {
          // Answered here, on the loop, as writes are: a hand-off of each
          // round's answers to a reader thread cost more than the sends (5-25%
          // fewer reads a second at 16 clients, alternated runs).
          early_reads_kept_.fetch_add(1, std::memory_order_relaxed);
          return done(std::move(early));
        }
        early_reads_redone_.fetch_add(1, std::memory_order_relaxed);
        OnReader<T>(std::move(read), std::move(done));
      });
}

template <typename T, typename Read>
void RaftServer::ReadWith(bool linearizable, sm::ReadLimits limits, Read read,
                          Done<T> done) {
  limits = Bound(std::move(limits));
  uint64_t seen = 0;
  std::optional<absl::StatusOr<T>> early;  // Linearizable, run here first.
  if (linearizable ? MayReadEarly(&seen) : MayReadHere()) {
    // On the caller's thread, bounded (kInlineReadSteps); a linearizable
    // read before its read index is asked (and within kEarlyReadBytes),
    // kept only if it went well.
    sm::ReadLimits here = limits;
    here.max_steps = kInlineReadSteps;
    here.wait_for_connection = false;
    if (linearizable) {
      here.max_result_bytes = std::min(here.max_result_bytes, kEarlyReadBytes);
    }
    absl::StatusOr<T> r = read(here);
    if (!linearizable) {
      if (!sm::IsTryElsewhere(r.status())) return done(std::move(r));
    } else {
      if (options_.after_early_read_for_test) {
        options_.after_early_read_for_test();
      }
      if (r.ok()) {
        early = std::move(r);
      } else {
        early_reads_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
  }
  std::function<absl::StatusOr<T>()> later = [read = std::move(read),
                                              limits = std::move(limits)] {
    return read(limits);
  };
  if (!linearizable) {
    return OnReader<T>(std::move(later), std::move(done));
  }
  if (early.has_value()) {
    return SubmitReadAfter<T>(seen, std::move(*early), std::move(later),
                              std::move(done));
  }
  SubmitRead([this, later = std::move(later),
              done = std::move(done)](absl::StatusOr<std::string> r) mutable {
    if (!r.ok()) return done(r.status());
    // Applied up to the read index: run it off the loop thread.
    OnReader<T>(std::move(later), std::move(done));
  });
}

void RaftServer::Query(sm::Statement statement, bool linearizable,
                       sm::ReadLimits limits, Done<sm::QueryResult> done) {
  ReadWith<sm::QueryResult>(
      linearizable, std::move(limits),
      [this, statement = std::move(statement)](const sm::ReadLimits& l) {
        return sm_->Query(statement, l);
      },
      std::move(done));
}

void RaftServer::QueryStream(sm::Statement statement, bool linearizable,
                             sm::ReadLimits limits,
                             sm::SqliteStateMachine::PageSink sink,
                             std::function<void(absl::Status)> done,
                             size_t page_bytes) {
  auto read = [this, statement = std::move(statement),
               limits = Bound(std::move(limits)), sink = std::move(sink),
               page_bytes]() -> absl::StatusOr<bool> {
    absl::Status s = sm_->QueryPages(statement, limits, page_bytes, sink);
    if (!s.ok()) return s;
    return true;
  };
  Done<bool> finish = [done = std::move(done)](absl::StatusOr<bool> r) {
    done(r.status());
  };
  if (!linearizable) {
    return OnReader<bool>(std::move(read), std::move(finish));
  }
  SubmitRead([this, read = std::move(read), finish = std::move(finish)](
                 absl::StatusOr<std::string> r) mutable {
    if (!r.ok()) return finish(r.status());
    OnReader<bool>(std::move(read), std::move(finish));
  });
}

void RaftServer::GetVersion(std::string table, bool linearizable,
                            sm::ReadLimits limits, Done<uint64_t> done) {
  ReadWith<uint64_t>(
      linearizable, std::move(limits),
      [this, table = std::move(table)](const sm::ReadLimits& l) {
        return sm_->GetVersion(table, l);
      },
      std::move(done));
}

}  // namespace raftsql::server
