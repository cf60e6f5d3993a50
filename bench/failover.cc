// bench/failover: how long writes stop when the leader goes away (issue
// 19, point 3). Starts a durable 3-node cluster on 127.0.0.1 (default
// server flags, TLS), runs --writers closed-loop writers, each a
// net::Client whose first endpoint is a follower (its writes are forwarded
// through Raft) with every endpoint to fail over to, and every --every
// seconds stops the leader (--signal=KILL or TERM), restarting it 2 s
// later. Prints, for each stop, how long after it every writer had a write
// succeed again (the window), and the longest gap between two successes of
// one writer, beside the election timeout.
//
//   ./bazelw run -c opt //bench:failover -- --signal=KILL --stops=5
//   ./bazelw run -c opt //bench:failover -- --signal=TERM --stops=5
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "net/client.h"
#include "tools/flags.h"
#include "tools/local_cluster.h"
#include "tools/process.h"

ABSL_FLAG(int, writers, 4, "concurrent writers (1-64)");
ABSL_FLAG(int, stops, 5, "leader stops (1-100)");
ABSL_FLAG(double, every, 4, "seconds between stops (>= 3)");
ABSL_FLAG(std::string, signal, "KILL", "KILL or TERM");

namespace raftsql::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int writers = 4;
  int stops = 5;
  double every_s = 4;
  int signal = SIGKILL;
  int tick_ms = 20;  // The server's defaults, for the election timeout.
  int election_ticks = 10;
};

bool Parse(Options* o) {
  o->writers = absl::GetFlag(FLAGS_writers);
  o->stops = absl::GetFlag(FLAGS_stops);
  o->every_s = absl::GetFlag(FLAGS_every);
  const std::string s = absl::GetFlag(FLAGS_signal);
  if (s != "KILL" && s != "TERM") return false;
  o->signal = s == "KILL" ? SIGKILL : SIGTERM;
  return o->writers > 0 && o->writers <= 64 && o->stops > 0 &&
         o->stops <= 100 && o->every_s >= 3;
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

struct Writer {
  std::vector<Clock::time_point> successes;
  int64_t errors = 0;
  std::string first_error;
};

int Main(int argc, char** argv) {
  Options o;
  tools::ParseFlags(argc, argv,
                    "how long writers wait when the leader of a 3-node "
                    "cluster is stopped, again and again");
  if (!Parse(&o)) {
    std::fprintf(stderr,
                 "usage: failover [--writers=4 (1-64)] [--stops=5 (1-100)] "
                 "[--every=4 (seconds, >= 3)] [--signal=KILL|TERM]\n");
    return 2;
  }
  tools::LocalClusterOptions co;
  co.nodes = 3;
  co.server_binary = tools::FindBinary(argv[0], "server/raftsql_server");
  char tmpl[] = "/tmp/raftsql-failover-XXXXXX";
  co.dir = mkdtemp(tmpl);
  co.remove_dir = true;
  tools::LocalCluster cluster(co);
  if (absl::Status s = cluster.Start(); !s.ok()) {
    std::fprintf(stderr, "failover: %s\n", s.ToString().c_str());
    return 1;
  }
  absl::StatusOr<int> leader = cluster.WaitForLeader(20'000);
  if (!leader.ok()) {
    std::fprintf(stderr, "failover: %s\n", leader.status().ToString().c_str());
    return 1;
  }
  v1::ExecuteRequest create;
  create.add_statements()->set_sql("CREATE TABLE t(w INTEGER, i INTEGER)");
  if (auto r = cluster.client().Execute(create); !r.ok()) {
    std::fprintf(stderr, "failover: %s\n", r.status().ToString().c_str());
    return 1;
  }

  std::atomic<bool> done{false};
  std::vector<Writer> writers(o.writers);
  std::vector<std::thread> threads;
  for (int w = 0; w < o.writers; ++w) {
    // A follower first: its writes are forwarded to the leader.
    std::vector<std::string> endpoints;
    const int first = *leader % 3 + 1 + (w % 2);
    for (int k = 0; k < 3; ++k) {
      endpoints.push_back(cluster.Endpoint((first - 1 + k) % 3 + 1));
    }
    threads.emplace_back([&, w, endpoints] {
      net::ClientOptions c;
      c.tls = cluster.client_tls();
      c.timeout_ms = 5'000;
      net::Client client(endpoints, c);
      for (int64_t i = 0; !done.load(); ++i) {
        v1::ExecuteRequest r;
        auto* s = r.add_statements();
        s->set_sql(absl::StrCat("INSERT INTO t VALUES (", w, ", ", i, ")"));
        absl::StatusOr<v1::ExecuteResponse> a = client.Execute(r);
        if (a.ok()) {
          writers[w].successes.push_back(Clock::now());
        } else if (writers[w].errors++ == 0) {
          writers[w].first_error = a.status().ToString();
        }
      }
    });
  }

  std::vector<Clock::time_point> stopped_at;
  std::vector<int> stopped;
  for (int k = 0; k < o.stops; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(
        static_cast<int64_t>(o.every_s * 1000) - 2'000));
    absl::StatusOr<int> l = cluster.WaitForLeader(20'000);
    if (!l.ok()) break;
    stopped.push_back(*l);
    stopped_at.push_back(Clock::now());
    cluster.StopNode(*l, o.signal);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    if (!cluster.StartNode(*l).ok()) break;
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));
  done = true;
  for (std::thread& t : threads) t.join();

  const char* name = o.signal == SIGKILL ? "SIGKILL" : "SIGTERM";
  std::printf(
      "3 durable nodes, %d writers through followers; the leader stopped "
      "with %s %zu times; election timeout %d-%d ms\n",
      o.writers, name, stopped_at.size(), o.tick_ms * o.election_ticks,
      2 * o.tick_ms * o.election_ticks);
  std::vector<double> windows;
  for (size_t k = 0; k < stopped_at.size(); ++k) {
    double window = 0;
    for (const Writer& w : writers) {
      auto next = std::upper_bound(w.successes.begin(), w.successes.end(),
                                   stopped_at[k]);
      window = std::max(
          window, next == w.successes.end() ? 1e9 : Ms(*next - stopped_at[k]));
    }
    windows.push_back(window);
    std::printf("  stop %zu (n%d): every writer wrote again %.0f ms later\n",
                k + 1, stopped[k], window);
  }
  double gap = 0;
  int64_t writes = 0, errors = 0;
  std::string first_error;
  for (const Writer& w : writers) {
    writes += static_cast<int64_t>(w.successes.size());
    errors += w.errors;
    if (first_error.empty()) first_error = w.first_error;
    for (size_t i = 1; i < w.successes.size(); ++i) {
      gap = std::max(gap, Ms(w.successes[i] - w.successes[i - 1]));
    }
  }
  std::sort(windows.begin(), windows.end());
  std::printf(
      "windows: median %.0f ms, max %.0f ms; longest gap between one "
      "writer's successes %.0f ms; %lld writes, %lld errors\n",
      windows.empty() ? 0 : windows[windows.size() / 2],
      windows.empty() ? 0 : windows.back(), gap, static_cast<long long>(writes),
      static_cast<long long>(errors));
  if (errors > 0) std::printf("first error: %s\n", first_error.c_str());
  for (int n = 1; n <= 3; ++n) cluster.StopNode(n, SIGTERM);
  return 0;
}

}  // namespace
}  // namespace raftsql::bench

int main(int argc, char** argv) { return raftsql::bench::Main(argc, argv); }
