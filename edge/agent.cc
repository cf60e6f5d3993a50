#include "edge/agent.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
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

}  // namespace

Agent::Agent(AgentOptions options, EdgeStore* store,
             std::vector<std::unique_ptr<Source>> sources, Actuator* actuator)
    : options_(std::move(options)),
      core_(options_.core, store, std::move(sources), actuator),
      sample_ms_(options_.core.sample_ms) {}

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

int64_t Agent::sample_ms() {
  std::lock_guard<std::mutex> l(mu_);
  return sample_ms_;
}

void Agent::Publish() {
  std::lock_guard<std::mutex> l(mu_);
  stats_ = core_.stats();
  sample_ms_ = core_.sample_ms();
}

bool Agent::Drained() { return options_.stop_when_drained && core_.Drained(); }

void Agent::Run() {
  size_t next_hub = 0;
  while (!stop_.load() && !options_.hubs.empty()) {
    const std::string& hub = options_.hubs[next_hub % options_.hubs.size()];
    const uint64_t sessions_before = core_.stats().sessions;
    absl::Status s = RunSession(hub);
    if (stop_.load() || (s.ok() && Drained())) break;
    const int64_t wait =
        core_.SessionEnded(core_.stats().sessions > sessions_before);
    Publish();
    ++next_hub;  // Follow another node.
    const int64_t until = WallMs() + wait;
    // Sources keep being read into the store while disconnected.
    while (!stop_.load() && WallMs() < until) {
      core_.Sample(WallMs());
      Publish();
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(std::min<int64_t>(
                          core_.sample_ms(), until - WallMs() + 1)));
    }
  }
  Publish();
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
  pb::EdgeDown welcome;
  if (!stream->Write(core_.Hello()) || !stream->Read(&welcome) ||
      welcome.kind_case() != pb::EdgeDown::kWelcome) {
    ctx.TryCancel();
    return FromGrpc(stream->Finish());
  }
  AgentCore::Out out;
  core_.Welcomed(welcome.welcome().acked_sequence(), &out);

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

  bool failed = false;
  while (!stop_.load() && !failed) {
    const int64_t now = WallMs();
    core_.Sample(now);
    std::deque<pb::EdgeDown> todo;
    {
      std::lock_guard<std::mutex> l(mu_);
      todo.swap(inbox);
      if (closed && todo.empty()) break;
    }
    for (const pb::EdgeDown& d : todo) core_.OnMessage(d, now, &out);
    failed = !core_.Flush(now, &out);
    for (const pb::EdgeUp& up : out) {
      if (!stream->Write(up)) {
        failed = true;
        break;
      }
    }
    out.clear();
    Publish();
    if (Drained()) break;
    if (core_.GiveUp()) {
      failed = true;  // Another node may serve.
      break;
    }
    std::unique_lock<std::mutex> l(mu_);
    if (inbox.empty() && !closed && !stop_.load()) {
      cv_.wait_for(l, std::chrono::milliseconds(core_.WakeEveryMs()));
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
