// edge_load: what a 3-node hub ingests from many edges, and how fast a
// command reaches an edge (issue #15's figures).
//
//   edge_load [--edges=20] [--batch=100] [--window=8] [--seconds=20]
//             [--commands=200] [--rule] [-- server flags]
//
// --rule installs a DecisionMaker rule over every device's last 100
// readings (a z-score spike test) before the ingest, and reports how many
// evaluations the leader ran and how far behind the applied index its
// evaluation was at the end (issue 18: the rules must keep up).
//
// Starts a 3-node TLS cluster (durable: RocksDB log, SQLite files, fsync),
// registers the devices, and opens one session per device (in this
// process). Each keeps `window` uploads of `batch` readings in flight for
// `seconds`; readings/s counts what the hub acknowledged (stored through
// Raft). Then, with the sessions idle, it issues `commands` commands one
// at a time (round robin over the devices): each device answers at once,
// and the latency is from the issue call to the command's arrival at the
// edge. It prints the CPU each process used, to show what bounds the rate.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "net/client.h"
#include "net/edge.grpc.pb.h"
#include "tools/flags.h"
#include "tools/local_cluster.h"
#include "tools/process.h"
#include "tools/shell_rules.h"

ABSL_FLAG(int, edges, 20, "edge devices (1-1000), one session each");
ABSL_FLAG(int, batch, 100, "readings an upload carries (1-1000)");
ABSL_FLAG(int, window, 8, "uploads each edge keeps in flight (1-8)");
ABSL_FLAG(int, seconds, 20, "how long the edges upload");
ABSL_FLAG(int, commands, 200,
          "commands issued after the ingest, one at a time");
ABSL_FLAG(bool, keep_dir, false, "leave the cluster's files and logs behind");
ABSL_FLAG(bool, rule, false,
          "a DecisionMaker rule over every device's last 100 readings");
ABSL_FLAG(std::string, server, "",
          "the server binary (default: the one built beside this)");

namespace raftsql {
namespace {

namespace pb = ::raftsql::edge::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  int edges = 20;
  int batch = 100;
  int window = 8;
  int seconds = 20;
  int commands = 200;
  bool keep_dir = false;  // Leave the cluster's files (and logs) behind.
  bool rule = false;      // A DecisionMaker rule over the readings.
  std::string server;     // The server binary (default: the built one).
  std::vector<std::string> server_flags;
};

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// utime + stime of a process, in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// One device's session: a writer (this object's methods, under write_mu)
// and a reader thread that counts acks and answers commands.
class Edge {
 public:
  Edge(const std::string& endpoint, const net::Tls& tls, std::string device,
       const std::string& token, const Options& o)
      : device_(std::move(device)), o_(o) {
    grpc::ChannelArguments args;
    auto channel =
        grpc::CreateCustomChannel(endpoint, net::ChannelCredentials(tls), args);
    stub_ = pb::EdgeService::NewStub(channel);
    ctx_.AddMetadata("authorization",
                     "Basic " + absl::Base64Escape(device_ + ":" + token));
    stream_ = stub_->Session(&ctx_);
  }

  // A run that stops early (another device's hello failed) ends the
  // sessions it opened: a reader left running would end the process
  // before the cluster's servers are stopped.
  ~Edge() {
    if (reader_.joinable()) End();
  }

  bool Hello() {
    pb::EdgeUp up;
    up.mutable_hello()->set_incarnation("bench");
    pb::EdgeDown down;
    if (!stream_->Write(up) || !stream_->Read(&down) ||
        down.kind_case() != pb::EdgeDown::kWelcome) {
      return false;
    }
    reader_ = std::thread([this] { Read(); });
    return true;
  }

  // Uploads until `stop`, `window` in flight.
  void Upload(const std::atomic<bool>& stop) {
    uint64_t next = 1;
    uint64_t batch = 0;
    while (!stop.load()) {
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(
            l, [&] { return in_flight_ < o_.window || stop.load() || ended_; });
        if (stop.load() || ended_) break;
        if (resend_) {  // A refusal: from the ack again.
          next = acked_ + 1;
          resend_ = false;
        }
        ++in_flight_;
      }
      pb::EdgeUp up;
      pb::Upload* u = up.mutable_upload();
      u->set_batch(++batch);
      u->set_oldest_sequence(next);
      for (int i = 0; i < o_.batch; ++i) {
        pb::Reading* r = u->add_readings();
        r->set_sensor("temp");
        r->set_value(20 + static_cast<double>(next % 100) / 10);
        r->set_unit("C");
        r->set_device_time_ms(static_cast<int64_t>(next));
        r->set_sequence(next++);
      }
      std::lock_guard<std::mutex> w(write_mu_);
      if (!stream_->Write(up)) break;
    }
  }

  void End() {
    {
      std::lock_guard<std::mutex> w(write_mu_);
      stream_->WritesDone();
    }
    ctx_.TryCancel();
    if (reader_.joinable()) reader_.join();
    stream_->Finish();
  }

  uint64_t acked() {
    std::lock_guard<std::mutex> l(mu_);
    return acked_;
  }
  uint64_t refusals() {
    std::lock_guard<std::mutex> l(mu_);
    return refusals_;
  }
  // When each command id arrived.
  std::map<std::string, Clock::time_point> arrivals() {
    std::lock_guard<std::mutex> l(mu_);
    return arrivals_;
  }
  const std::string& device() const { return device_; }

 private:
  void Read() {
    pb::EdgeDown down;
    while (stream_->Read(&down)) {
      if (down.kind_case() == pb::EdgeDown::kAck) {
        std::lock_guard<std::mutex> l(mu_);
        --in_flight_;
        if (down.ack().code() == 0) {
          acked_ = std::max(acked_, down.ack().acked_sequence());
        } else {
          ++refusals_;
          resend_ = true;
        }
        cv_.notify_all();
      } else if (down.kind_case() == pb::EdgeDown::kCommand) {
        {
          std::lock_guard<std::mutex> l(mu_);
          arrivals_[down.command().id()] = Clock::now();
        }
        pb::EdgeUp up;
        up.mutable_outcome()->set_id(down.command().id());
        up.mutable_outcome()->set_result(pb::CommandOutcome::DONE);
        std::lock_guard<std::mutex> w(write_mu_);
        stream_->Write(up);
      }
    }
    std::lock_guard<std::mutex> l(mu_);
    ended_ = true;
    cv_.notify_all();
  }

  const std::string device_;
  const Options& o_;
  std::unique_ptr<pb::EdgeService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::EdgeUp, pb::EdgeDown>> stream_;
  std::mutex write_mu_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
  uint64_t acked_ = 0;
  uint64_t refusals_ = 0;
  bool resend_ = false;
  bool ended_ = false;
  std::map<std::string, Clock::time_point> arrivals_;
};

// The leader's Status (empty if none answers).
v1::StatusResponse LeaderStatus(tools::LocalCluster& c) {
  for (int id = 1; id <= 3; ++id) {
    auto s = c.client().Status(c.Endpoint(id));
    if (s.ok() && s->role() == "Leader") return *s;
  }
  return {};
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

int Main(int argc, char** argv) {
  Options o;
  const std::vector<std::string> rest = tools::ParseFlags(
      argc, argv,
      "what a 3-node hub ingests from many edges, and how fast a command "
      "reaches an edge.\n"
      "  edge_load [--edges=20] [--batch=100] [--window=8] [--seconds=20] "
      "[--commands=200] [--rule] [-- server flags]");
  o.edges = absl::GetFlag(FLAGS_edges);
  o.batch = absl::GetFlag(FLAGS_batch);
  o.window = absl::GetFlag(FLAGS_window);
  o.seconds = absl::GetFlag(FLAGS_seconds);
  o.commands = absl::GetFlag(FLAGS_commands);
  o.keep_dir = absl::GetFlag(FLAGS_keep_dir);
  o.rule = absl::GetFlag(FLAGS_rule);
  o.server = absl::GetFlag(FLAGS_server);
  o.server_flags.assign(rest.begin() + 1, rest.end());
  o.edges = std::clamp(o.edges, 1, 1000);
  o.batch = std::clamp(o.batch, 1, 1000);
  o.window = std::clamp(o.window, 1, 8);
  o.seconds = std::clamp(o.seconds, 1, 3600);

  tools::LocalClusterOptions co;
  co.extra_flags = o.server_flags;
  co.nodes = 3;
  co.server_binary = o.server.empty()
                         ? tools::FindBinary(argv[0], "server/raftsql_server")
                         : o.server;
  char tmpl[] = "/tmp/raftsql-edge-load-XXXXXX";
  co.dir = mkdtemp(tmpl);
  co.remove_dir = !o.keep_dir;
  tools::LocalCluster c(co);
  if (absl::Status s = c.Start(); !s.ok()) {
    std::fprintf(stderr, "edge_load: %s\n", s.ToString().c_str());
    return 1;
  }
  if (!c.WaitForLeader(30'000).ok()) return 1;
  net::Tls tls;
  tls.ca_pem = c.client_tls().ca_pem;  // Devices use their token.
  std::vector<std::unique_ptr<Edge>> edges;
  for (int i = 0; i < o.edges; ++i) {
    const std::string device = absl::StrCat("dev-", i);
    const std::string token = absl::StrCat("token-of-", device);
    if (!c.client().PutUser(device, token, {"device"}).ok()) return 1;
    // Spread over the nodes, as a fleet would.
    edges.push_back(
        std::make_unique<Edge>(c.Endpoint(1 + i % 3), tls, device, token, o));
    if (!edges.back()->Hello()) {
      std::fprintf(stderr, "edge_load: %s got no Welcome\n", device.c_str());
      return 1;
    }
  }
  std::printf(
      "edge_load: 3 durable nodes (TLS), %d edges, %d-reading batches, %d "
      "in flight each, %d s%s\n",
      o.edges, o.batch, o.window, o.seconds,
      o.rule ? ", with a rule over every device's last 100 readings" : "");
  if (o.rule) {
    for (const std::string line :
         {".allow cool dev-*",
          ".rule add spike edge_readings cool {\"z\":\"$score\"} SELECT "
          "s.device, (SELECT zscore(value) FROM (SELECT * FROM (SELECT seq, "
          "value FROM edge_readings r WHERE r.stream = s.stream ORDER BY seq "
          "DESC LIMIT 100) ORDER BY seq)) AS score FROM edge_streams s "
          "WHERE score > 4"}) {
      const std::vector<std::string> words =
          absl::StrSplit(line, ' ', absl::SkipWhitespace());
      absl::StatusOr<v1::ExecuteRequest> r = tools::RuleRequest(words, line);
      if (!r.ok() || !c.client().Execute(*r).ok()) {
        std::fprintf(stderr, "edge_load: cannot set up the rule\n");
        return 1;
      }
    }
  }
  const v1::StatusResponse leader_before = LeaderStatus(c);

  std::vector<double> cpu_before(4);
  for (int id = 1; id <= 3; ++id) cpu_before[id] = CpuSeconds(c.Pid(id));
  const double self_before = SelfCpuSeconds();
  std::atomic<bool> stop{false};
  const auto start = Clock::now();
  std::vector<std::thread> writers;
  for (auto& e : edges) {
    writers.emplace_back([&e, &stop] { e->Upload(stop); });
  }
  // The rate minute by minute: a sustained rate falls as the database
  // grows.
  auto acked_now = [&edges] {
    uint64_t n = 0;
    for (auto& e : edges) n += e->acked();
    return n;
  };
  const auto until = start + std::chrono::seconds(o.seconds);
  uint64_t acked_before = 0;
  for (auto from = start; from < until;) {
    const auto to = std::min(until, from + std::chrono::seconds(60));
    std::this_thread::sleep_until(to);
    const uint64_t acked_then = acked_now();
    std::printf(
        "  by %4.0f s: %.0f readings/s over the last %.0f s\n",
        Seconds(to - start),
        static_cast<double>(acked_then - acked_before) / Seconds(to - from),
        Seconds(to - from));
    std::fflush(stdout);
    acked_before = acked_then;
    from = to;
  }
  const uint64_t acked = acked_now();
  uint64_t refusals = 0;
  for (auto& e : edges) refusals += e->refusals();
  const double elapsed = Seconds(Clock::now() - start);
  stop = true;
  for (auto& t : writers) t.join();
  std::printf(
      "ingest: %llu readings acknowledged in %.1f s = %.0f readings/s "
      "(%.0f batches/s), %llu refusals\n",
      static_cast<unsigned long long>(acked), elapsed,
      static_cast<double>(acked) / elapsed,
      static_cast<double>(acked) / elapsed / o.batch,
      static_cast<unsigned long long>(refusals));
  if (o.rule) {
    const v1::StatusResponse after = LeaderStatus(c);
    const uint64_t evaluations =
        after.decision_evaluations() - leader_before.decision_evaluations();
    std::printf(
        "decisions: %llu evaluations (%.1f/s, %.0f readings each); at the "
        "end the leader had evaluated through index %llu of %llu applied "
        "(%lld entries behind)\n",
        static_cast<unsigned long long>(evaluations),
        static_cast<double>(evaluations) / elapsed,
        evaluations > 0 ? static_cast<double>(acked) / evaluations : 0.0,
        static_cast<unsigned long long>(after.decisions_evaluated_index()),
        static_cast<unsigned long long>(after.applied_index()),
        static_cast<long long>(after.applied_index()) -
            static_cast<long long>(after.decisions_evaluated_index()));
  }
  std::printf("cpu over the run (2 cores = 200%%):");
  for (int id = 1; id <= 3; ++id) {
    std::printf(" node%d %.0f%%", id,
                100 * (CpuSeconds(c.Pid(id)) - cpu_before[id]) / elapsed);
  }
  std::printf(" edges %.0f%%\n",
              100 * (SelfCpuSeconds() - self_before) / elapsed);

  // Commands, one at a time, to idle sessions.
  std::vector<double> latencies_ms;
  std::map<std::string, Clock::time_point> issued;
  for (int i = 0; i < o.commands; ++i) {
    Edge& e = *edges[static_cast<size_t>(i) % edges.size()];
    v1::IssueEdgeCommandRequest r;
    r.set_id(absl::StrCat("bench-", i));
    r.set_device(e.device());
    r.set_name("set");
    r.set_params_json(R"({"speed": 1})");
    const auto t0 = Clock::now();
    auto issue = c.client().IssueEdgeCommand(r);
    if (!issue.ok()) {
      std::fprintf(stderr, "edge_load: issue %s: %s\n", r.id().c_str(),
                   issue.status().ToString().c_str());
      continue;
    }
    issued[r.id()] = t0;
    // Wait (bounded) for its arrival before the next one.
    const auto deadline = t0 + std::chrono::seconds(10);
    while (Clock::now() < deadline && e.arrivals().count(r.id()) == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  for (auto& e : edges) {
    for (const auto& [id, at] : e->arrivals()) {
      auto it = issued.find(id);
      if (it != issued.end()) {
        latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(at - it->second).count());
      }
    }
  }
  std::printf(
      "commands: %zu of %d arrived; issue to edge p50 %.1f ms, p99 "
      "%.1f ms, max %.1f ms\n",
      latencies_ms.size(), o.commands, Percentile(latencies_ms, 0.5),
      Percentile(latencies_ms, 0.99), Percentile(latencies_ms, 1.0));
  for (auto& e : edges) e->End();
  // What the hub holds agrees with what it acknowledged.
  v1::QueryRequest q;
  q.mutable_statement()->set_sql("SELECT count(*) FROM edge_readings");
  q.set_consistency(v1::LINEARIZABLE);
  auto stored = c.client().Query(q);
  if (stored.ok() && stored->rows_size() == 1) {
    std::printf("stored: %lld readings (acknowledged %llu)\n",
                static_cast<long long>(stored->rows(0).values(0).integer()),
                static_cast<unsigned long long>(acked));
  }
  return 0;
}

}  // namespace
}  // namespace raftsql

int main(int argc, char** argv) { return raftsql::Main(argc, argv); }
