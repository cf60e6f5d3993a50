#include "edge/agent_core.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace raftsql::edge {
namespace {

namespace pb = ::raftsql::edge::v1;

pb::CommandOutcome::Result ToProto(CommandStatus s) {
  switch (s) {
    case CommandStatus::kDone:
      return pb::CommandOutcome::DONE;
    case CommandStatus::kRejected:
      return pb::CommandOutcome::REJECTED;
    default:
      return pb::CommandOutcome::FAILED;
  }
}

TwinSettings Defaults(const AgentCoreOptions& o) {
  TwinSettings s;
  s.sample_ms = o.sample_ms;
  s.batch_ms = o.batch_ms;
  s.batch_max = o.batch_max;
  return s;
}

constexpr int kInvalidArgument =
    static_cast<int>(absl::StatusCode::kInvalidArgument);

}  // namespace

AgentCore::AgentCore(const AgentCoreOptions& options, EdgeStore* store,
                     std::vector<std::unique_ptr<Source>> sources,
                     Actuator* actuator)
    : options_(options),
      store_(store),
      sources_(std::move(sources)),
      actuator_(actuator),
      // What the hub desired before a restart holds again (the store
      // keeps it).
      settings_(
          ApplyDesired(store->db(), Defaults(options), store->twin_desired())),
      backoff_ms_(options.backoff_min_ms),
      rng_(options.seed * 0x9e3779b97f4a7c15ull + 1) {}

void AgentCore::Sample(int64_t now_ms) {
  if (now_ms < next_sample_ms_) return;
  next_sample_ms_ = now_ms + settings_.sample_ms;
  for (auto& src : sources_) {
    for (Reading& r : src->Poll(now_ms)) {
      absl::StatusOr<bool> stored = store_->Append(r, now_ms);
      if (!stored.ok()) {
        std::fprintf(stderr, "edge: %s\n",
                     std::string(stored.status().message()).c_str());
      }
    }
  }
  store_->DropExpired(now_ms).IgnoreError();
  stats_.backlog = store_->backlog();
  stats_.dropped = store_->counters().dropped();
}

bool AgentCore::SourcesDone() const {
  for (const auto& src : sources_) {
    if (!src->Done()) return false;
  }
  return true;
}

bool AgentCore::Drained() const {
  return store_->backlog() == 0 && SourcesDone() && in_flight_.empty();
}

int64_t AgentCore::WakeEveryMs() const {
  return std::min(settings_.sample_ms, settings_.batch_ms);
}

pb::EdgeUp AgentCore::Hello() const {
  pb::EdgeUp hello;
  hello.mutable_hello()->set_incarnation(store_->incarnation());
  hello.mutable_hello()->set_agent("raftsql-edge-agent");
  return hello;
}

void AgentCore::Welcomed(uint64_t acked, Out* out) {
  acked_ = acked;
  store_->Acked(acked).IgnoreError();
  ++stats_.sessions;
  stats_.acked = acked;
  in_flight_.clear();
  sent_up_to_ = std::max(acked, store_->oldest() - 1);
  next_batch_ = 1;
  resend_at_ = 0;
  refusals_in_row_ = 0;
  backoff_ms_ = options_.backoff_min_ms;
  ReportTwin(out);
}

int64_t AgentCore::SessionEnded(bool welcomed) {
  ++stats_.session_failures;
  in_flight_.clear();
  if (welcomed) backoff_ms_ = options_.backoff_min_ms;
  // Full jitter: anywhere in [0, backoff).
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const int64_t wait = static_cast<int64_t>(
      rng_ % static_cast<uint64_t>(std::max<int64_t>(backoff_ms_, 1)));
  backoff_ms_ = std::min(backoff_ms_ * 2, options_.backoff_max_ms);
  return wait;
}

void AgentCore::ReportTwin(Out* out) {
  pb::EdgeUp up;
  up.mutable_twin()->set_reported_json(ReportedJson(store_->db(), settings_));
  up.mutable_twin()->set_desired_version(store_->twin_version());
  twin_version_reported_ = store_->twin_version();
  out->push_back(std::move(up));
  ++stats_.twin_reports;
}

void AgentCore::OnMessage(const pb::EdgeDown& down, int64_t now_ms, Out* out) {
  switch (down.kind_case()) {
    case pb::EdgeDown::kAck:
      return OnAck(down.ack(), now_ms);
    case pb::EdgeDown::kCommand:
      return OnCommand(down.command(), now_ms, out);
    case pb::EdgeDown::kDesired:
      return OnDesired(down.desired(), out);
    default:
      return;
  }
}

void AgentCore::OnAck(const pb::Ack& a, int64_t now_ms) {
  while (!in_flight_.empty() && in_flight_.front().batch <= a.batch()) {
    const Sent s = in_flight_.front();
    in_flight_.pop_front();
    if (s.batch == a.batch() && a.code() == kInvalidArgument) {
      std::fprintf(stderr, "edge: the hub refused readings %llu-%llu: %s\n",
                   static_cast<unsigned long long>(s.first),
                   static_cast<unsigned long long>(s.last), a.error().c_str());
      store_->Refused(s.first, s.last).IgnoreError();
    }
  }
  if (a.code() == 0) {
    refusals_in_row_ = 0;
    acked_ = std::max(acked_, a.acked_sequence());
    store_->Acked(acked_).IgnoreError();
    stats_.acked = acked_;
  } else if (a.code() != kInvalidArgument) {
    // Not stored (or unknown): send again from the ack, later.
    in_flight_.clear();
    sent_up_to_ = std::max(acked_, store_->oldest() - 1);
    resend_at_ = now_ms + std::max<int64_t>(a.retry_after_ms(), 10);
    ++stats_.retries;
    ++refusals_in_row_;
  }
}

void AgentCore::OnCommand(const pb::Command& c, int64_t now_ms, Out* out) {
  pb::EdgeUp up;
  up.mutable_outcome()->set_id(c.id());
  if (c.expires_ms() <= now_ms) {
    up.mutable_outcome()->set_result(pb::CommandOutcome::REJECTED);
    up.mutable_outcome()->set_detail("expired on arrival");
    ++stats_.commands_expired;
  } else {
    bool ran = false;
    absl::StatusOr<Outcome> o = store_->ExecuteOnce(c.id(), [&](sqlite3* db) {
      ran = true;
      return actuator_->Run(c.name(), c.params_json(), db);
    });
    if (!o.ok()) return;  // Unanswered: it comes again.
    up.mutable_outcome()->set_result(ToProto(o->result));
    up.mutable_outcome()->set_detail(o->detail.substr(0, 1024));
    stats_.commands_run += ran ? 1 : 0;
    ++stats_.commands_answered;
  }
  out->push_back(std::move(up));
}

void AgentCore::OnDesired(const pb::DesiredTwin& d, Out* out) {
  if (d.version() <= store_->twin_version()) return;
  settings_ = ApplyDesired(store_->db(), Defaults(options_), d.desired_json());
  store_->SetTwin(d.version(), d.desired_json()).IgnoreError();
  ReportTwin(out);
}

bool AgentCore::Flush(int64_t now_ms, Out* out) {
  if (twin_version_reported_ != store_->twin_version()) ReportTwin(out);
  while (in_flight_.size() < options_.window && now_ms >= resend_at_) {
    absl::StatusOr<std::vector<Reading>> pending =
        store_->Pending(sent_up_to_, settings_.batch_max);
    if (!pending.ok()) return false;
    if (pending->empty()) break;
    const bool full = pending->size() >= settings_.batch_max;
    const bool old_enough =
        pending->front().device_time_ms + settings_.batch_ms <= now_ms ||
        SourcesDone();
    if (!full && !old_enough) break;
    // The hub may only hold what survives this edge's power cut (one
    // checkpoint covers every batch sent now).
    if (pending->back().sequence > store_->durable_sequence() &&
        !store_->MakeDurable().ok()) {
      return false;
    }
    pb::EdgeUp up;
    pb::Upload* u = up.mutable_upload();
    u->set_batch(next_batch_++);
    u->set_oldest_sequence(store_->oldest());
    // What waits behind this upload (so the hub shows 0 once it holds
    // everything).
    u->set_backlog(store_->last_sequence() - pending->back().sequence);
    u->set_dropped(store_->counters().dropped());
    for (const Reading& r : *pending) {
      pb::Reading* p = u->add_readings();
      p->set_sensor(r.sensor);
      p->set_value(r.value);
      p->set_unit(r.unit);
      p->set_device_time_ms(r.device_time_ms);
      p->set_sequence(r.sequence);
    }
    in_flight_.push_back(
        {u->batch(), pending->front().sequence, pending->back().sequence});
    sent_up_to_ = pending->back().sequence;
    out->push_back(std::move(up));
    ++stats_.uploads;
  }
  return true;
}

}  // namespace raftsql::edge
