#include "edge/agent.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "net/edge.grpc.pb.h"

namespace raftsql::edge {
namespace {

namespace pb = ::raftsql::edge::v1;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

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

// "sample_ms" of a desired document, if it holds a valid one.
std::optional<int64_t> DesiredSampleMs(sqlite3* db, const std::string& json) {
  sqlite3_stmt* s = nullptr;
  std::optional<int64_t> out;
  if (sqlite3_prepare_v2(db,
                         "SELECT json_extract(?1, '$.sample_ms') WHERE "
                         "json_type(?1, '$.sample_ms') = 'integer'",
                         -1, &s, nullptr) != SQLITE_OK) {
    return out;
  }
  sqlite3_bind_text(s, 1, json.data(), static_cast<int>(json.size()),
                    SQLITE_TRANSIENT);
  if (sqlite3_step(s) == SQLITE_ROW) {
    const int64_t v = sqlite3_column_int64(s, 0);
    if (v >= 10 && v <= 3'600'000) out = v;
  }
  sqlite3_finalize(s);
  return out;
}

}  // namespace

Agent::Agent(AgentOptions options, EdgeStore* store,
             std::vector<std::unique_ptr<Source>> sources, Actuator* actuator)
    : options_(std::move(options)),
      store_(store),
      sources_(std::move(sources)),
      actuator_(actuator),
      sample_ms_(options_.sample_ms),
      rng_(options_.seed * 0x9e3779b97f4a7c15ull + 1) {}

Agent::~Agent() { Stop(); }

void Agent::Stop() {
  stop_ = true;
  std::lock_guard<std::mutex> l(mu_);
  cv_.notify_all();
}

AgentStats Agent::stats() {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

int64_t Agent::sample_ms() { return sample_ms_.load(); }

void Agent::Sample(int64_t now_ms) {
  if (now_ms < next_sample_ms_) return;
  next_sample_ms_ = now_ms + sample_ms_.load();
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
  std::lock_guard<std::mutex> l(mu_);
  stats_.backlog = store_->backlog();
  stats_.dropped = store_->counters().dropped();
}

bool Agent::SourcesDone() const {
  for (const auto& src : sources_) {
    if (!src->Done()) return false;
  }
  return true;
}

bool Agent::Drained() {
  return options_.stop_when_drained && store_->backlog() == 0 && SourcesDone();
}

void Agent::Run() {
  int64_t backoff = options_.backoff_min_ms;
  size_t next_hub = 0;
  while (!stop_.load() && !options_.hubs.empty()) {
    const std::string& hub = options_.hubs[next_hub % options_.hubs.size()];
    uint64_t sessions_before = stats().sessions;
    absl::Status s = RunSession(hub);
    if (stop_.load() || (s.ok() && Drained())) break;
    const bool welcomed = stats().sessions > sessions_before;
    {
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.session_failures;
    }
    if (welcomed) backoff = options_.backoff_min_ms;
    ++next_hub;  // Follow another node.
    // Full jitter: anywhere in [0, backoff).
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    const int64_t wait = static_cast<int64_t>(
        rng_ % static_cast<uint64_t>(std::max<int64_t>(backoff, 1)));
    backoff = std::min(backoff * 2, options_.backoff_max_ms);
    const int64_t until = WallMs() + wait;
    // Sources keep being read into the store while disconnected.
    while (!stop_.load() && WallMs() < until) {
      Sample(WallMs());
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(std::min<int64_t>(
                          sample_ms_.load(), until - WallMs() + 1)));
    }
  }
}

absl::Status Agent::RunSession(const std::string& hub) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  auto channel = grpc::CreateCustomChannel(
      hub, net::ChannelCredentials(options_.tls), args);
  auto stub = pb::EdgeService::NewStub(channel);
  grpc::ClientContext ctx;
  if (!options_.token.empty()) {  // Else its certificate names it.
    ctx.AddMetadata(
        "authorization",
        "Basic " + absl::Base64Escape(options_.device + ":" + options_.token));
  }
  auto stream = stub->Session(&ctx);
  pb::EdgeUp hello;
  hello.mutable_hello()->set_incarnation(store_->incarnation());
  hello.mutable_hello()->set_agent("raftsql-edge-agent");
  pb::EdgeDown welcome;
  if (!stream->Write(hello) || !stream->Read(&welcome) ||
      welcome.kind_case() != pb::EdgeDown::kWelcome) {
    ctx.TryCancel();
    return FromGrpc(stream->Finish());
  }
  uint64_t acked = welcome.welcome().acked_sequence();
  store_->Acked(acked).IgnoreError();
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.sessions;
    stats_.acked = acked;
  }

  // The reader hands messages to this loop, which does all the writing.
  std::deque<pb::EdgeDown> inbox;
  bool closed = false;
  std::thread reader([&] {
    pb::EdgeDown down;
    while (stream->Read(&down)) {
      std::lock_guard<std::mutex> l(mu_);
      inbox.push_back(std::move(down));
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> l(mu_);
    closed = true;
    cv_.notify_all();
  });

  struct Sent {
    uint64_t batch;
    uint64_t first;
    uint64_t last;
  };
  std::deque<Sent> in_flight;
  uint64_t sent_up_to = acked;
  uint64_t next_batch = 1;
  int64_t resend_at = 0;  // After a retriable refusal.
  bool write_failed = false;
  uint64_t twin_version_reported = ~uint64_t{0};

  auto report_twin = [&]() {
    pb::EdgeUp up;
    up.mutable_twin()->set_reported_json(
        absl::StrCat("{\"sample_ms\":", sample_ms_.load(), "}"));
    up.mutable_twin()->set_desired_version(store_->twin_version());
    twin_version_reported = store_->twin_version();
    if (!stream->Write(up)) write_failed = true;
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.twin_reports;
  };
  report_twin();

  auto handle = [&](const pb::EdgeDown& down) {
    const int64_t now = WallMs();
    switch (down.kind_case()) {
      case pb::EdgeDown::kAck: {
        const pb::Ack& a = down.ack();
        while (!in_flight.empty() && in_flight.front().batch <= a.batch()) {
          const Sent s = in_flight.front();
          in_flight.pop_front();
          if (s.batch == a.batch() &&
              a.code() ==
                  static_cast<int>(absl::StatusCode::kInvalidArgument)) {
            std::fprintf(
                stderr, "edge: the hub refused readings %llu-%llu: %s\n",
                static_cast<unsigned long long>(s.first),
                static_cast<unsigned long long>(s.last), a.error().c_str());
            store_->Refused(s.first, s.last).IgnoreError();
          }
        }
        if (a.code() == 0) {
          acked = std::max(acked, a.acked_sequence());
          store_->Acked(acked).IgnoreError();
          std::lock_guard<std::mutex> l(mu_);
          stats_.acked = acked;
        } else if (a.code() !=
                   static_cast<int>(absl::StatusCode::kInvalidArgument)) {
          // Not stored (or unknown): send again from the ack, later.
          in_flight.clear();
          sent_up_to = std::max(acked, store_->oldest() - 1);
          resend_at = now + std::max<int64_t>(a.retry_after_ms(), 10);
          std::lock_guard<std::mutex> l(mu_);
          ++stats_.retries;
        }
        break;
      }
      case pb::EdgeDown::kCommand: {
        const pb::Command& c = down.command();
        pb::EdgeUp up;
        up.mutable_outcome()->set_id(c.id());
        if (c.expires_ms() <= now) {
          up.mutable_outcome()->set_result(pb::CommandOutcome::REJECTED);
          up.mutable_outcome()->set_detail("expired on arrival");
          std::lock_guard<std::mutex> l(mu_);
          ++stats_.commands_expired;
        } else {
          bool ran = false;
          absl::StatusOr<Outcome> o =
              store_->ExecuteOnce(c.id(), [&](sqlite3* db) {
                ran = true;
                return actuator_->Run(c.name(), c.params_json(), db);
              });
          if (!o.ok()) return;  // Unanswered: it comes again.
          up.mutable_outcome()->set_result(ToProto(o->result));
          up.mutable_outcome()->set_detail(o->detail.substr(0, 1024));
          std::lock_guard<std::mutex> l(mu_);
          stats_.commands_run += ran ? 1 : 0;
          ++stats_.commands_answered;
        }
        if (!stream->Write(up)) write_failed = true;
        break;
      }
      case pb::EdgeDown::kDesired: {
        const pb::DesiredTwin& d = down.desired();
        if (d.version() <= store_->twin_version()) break;
        if (std::optional<int64_t> ms =
                DesiredSampleMs(store_->db(), d.desired_json())) {
          sample_ms_ = *ms;
        }
        store_->SetTwinVersion(d.version()).IgnoreError();
        report_twin();
        break;
      }
      default:
        break;
    }
  };

  absl::Status result;
  while (!stop_.load() && !write_failed) {
    const int64_t now = WallMs();
    Sample(now);
    std::deque<pb::EdgeDown> todo;
    {
      std::lock_guard<std::mutex> l(mu_);
      todo.swap(inbox);
      if (closed && todo.empty()) break;
    }
    for (const pb::EdgeDown& d : todo) handle(d);
    if (twin_version_reported != store_->twin_version()) report_twin();
    // Upload what waits, within the window.
    while (in_flight.size() < options_.window && now >= resend_at &&
           !write_failed) {
      absl::StatusOr<std::vector<Reading>> pending =
          store_->Pending(sent_up_to, options_.batch_max);
      if (!pending.ok() || pending->empty()) break;
      const bool full = pending->size() >= options_.batch_max;
      const bool old_enough =
          pending->front().device_time_ms + options_.batch_ms <= now ||
          SourcesDone();
      if (!full && !old_enough) break;
      pb::EdgeUp up;
      pb::Upload* u = up.mutable_upload();
      u->set_batch(next_batch++);
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
      if (!stream->Write(up)) {
        write_failed = true;
        break;
      }
      in_flight.push_back(
          {u->batch(), pending->front().sequence, pending->back().sequence});
      sent_up_to = pending->back().sequence;
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.uploads;
    }
    if (Drained() && in_flight.empty()) break;
    std::unique_lock<std::mutex> l(mu_);
    if (inbox.empty() && !closed && !stop_.load()) {
      cv_.wait_for(l, std::chrono::milliseconds(
                          std::min(sample_ms_.load(), options_.batch_ms)));
    }
  }
  stream->WritesDone();
  ctx.TryCancel();
  reader.join();
  grpc::Status s = stream->Finish();
  if (stop_.load() || Drained()) return absl::OkStatus();
  return s.ok() ? absl::UnavailableError("the hub ended the session")
                : FromGrpc(s);
}

}  // namespace raftsql::edge
