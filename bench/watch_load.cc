// watch_load: Watch throughput (issue 18's figure). Starts a durable
// 3-node TLS cluster, writes `entries` commands of `rows`-row INSERTs
// (8 writers), then reads every change back with one Watch from index 1
// on a follower and on the leader, and prints changes/s and MB/s of
// values, and how long a change committed while watching takes to arrive.
//
//   watch_load [--entries=2000] [--rows=100]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "net/client.h"
#include "tools/flags.h"
#include "tools/local_cluster.h"
#include "tools/process.h"

ABSL_FLAG(int, entries, 2000, "entries written (1-1,000,000)");
ABSL_FLAG(int, rows, 100, "rows each entry writes (1-1000)");

namespace raftsql {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

int Main(int argc, char** argv) {
  tools::ParseFlags(argc, argv,
                    "Watch's throughput and latency on a 3-node cluster");
  const int entries = std::clamp(absl::GetFlag(FLAGS_entries), 1, 1'000'000);
  const int rows = std::clamp(absl::GetFlag(FLAGS_rows), 1, 1000);
  tools::LocalClusterOptions co;
  co.nodes = 3;
  co.server_binary = tools::FindBinary(argv[0], "server/raftsql_server");
  char tmpl[] = "/tmp/raftsql-watch-load-XXXXXX";
  co.dir = mkdtemp(tmpl);
  co.remove_dir = true;
  tools::LocalCluster c(co);
  if (!c.Start().ok() || !c.WaitForLeader(30'000).ok()) return 1;
  v1::ExecuteRequest create;
  create.add_statements()->set_sql(
      "CREATE TABLE m(id INTEGER PRIMARY KEY, device TEXT, v REAL)");
  if (!c.client().Execute(create).ok()) return 1;
  std::string insert = "INSERT INTO m(device, v) VALUES ";
  for (int r = 0; r < rows; ++r) {
    absl::StrAppend(&insert, r ? ", " : "", "('dev-", r % 20, "', ", r, ".5)");
  }
  const auto wrote_from = Clock::now();
  std::atomic<int> next{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&] {
      net::Client client(c.Endpoints(), c.ClientOptionsFor());
      v1::ExecuteRequest e;
      e.add_statements()->set_sql(insert);
      while (next.fetch_add(1) < entries) {
        if (!client.Execute(e).ok()) std::fprintf(stderr, "a write failed\n");
      }
    });
  }
  for (auto& t : writers) t.join();
  const double wrote_s = Seconds(Clock::now() - wrote_from);
  const int64_t total = int64_t{entries} * rows;
  std::printf("watch_load: %d entries of %d rows written in %.1f s\n", entries,
              rows, wrote_s);
  const int leader = *c.WaitForLeader(10'000);
  for (int id = 1; id <= 3; ++id) {
    net::Client one({c.Endpoint(id)}, c.ClientOptionsFor());
    v1::WatchRequest r;
    r.set_from_index(1);
    r.add_tables("m");
    int64_t changes = 0, bytes = 0, messages = 0;
    const auto from = Clock::now();
    const absl::Status s = one.Watch(r, [&](const v1::WatchResponse& m) {
      ++messages;
      changes += m.changes_size();
      bytes += static_cast<int64_t>(m.ByteSizeLong());
      return changes < total + 1;  // The CREATE's SCHEMA change too.
    });
    const double took = Seconds(Clock::now() - from);
    std::printf(
        "node %d (%s): %lld changes in %lld messages, %.2f s: %.0f "
        "changes/s, %.1f MB/s (%s)\n",
        id, id == leader ? "leader" : "follower",
        static_cast<long long>(changes), static_cast<long long>(messages), took,
        static_cast<double>(changes) / took,
        static_cast<double>(bytes) / took / 1e6,
        std::string(s.message()).c_str());
  }
  // Latency: one watcher on a follower, a write at a time on the leader.
  const int follower = leader == 1 ? 2 : 1;
  net::Client watcher({c.Endpoint(follower)}, c.ClientOptionsFor());
  std::vector<double> ms, write_ms;
  std::atomic<int64_t> seen{0};
  std::atomic<bool> stop{false};
  std::thread t([&] {
    v1::WatchRequest r;
    r.add_tables("m");
    r.set_from_index(0);
    auto s = watcher.Status(c.Endpoint(follower));
    if (s.ok()) r.set_from_index(s->applied_index() + 1);
    (void)watcher.Watch(r, [&](const v1::WatchResponse& m) {
      seen += m.changes_size();
      return !stop.load();
    });
  });
  v1::ExecuteRequest one_row;
  one_row.add_statements()->set_sql("INSERT INTO m(device, v) VALUES ('x', 1)");
  for (int i = 0; i < 200; ++i) {
    const int64_t before = seen.load();
    const auto t0 = Clock::now();
    if (!c.client().Execute(one_row).ok()) continue;
    write_ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    while (seen.load() == before &&
           Clock::now() - t0 < std::chrono::seconds(5)) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  stop = true;
  one_row.mutable_statements(0)->set_sql(
      "INSERT INTO m(device, v) VALUES ('end', 1)");
  (void)c.client().Execute(one_row);  // Wakes the watcher to stop.
  t.join();
  std::sort(ms.begin(), ms.end());
  std::sort(write_ms.begin(), write_ms.end());
  if (!write_ms.empty()) {
    std::printf(
        "those writes alone: p50 %.1f ms, p99 %.1f ms\n",
        write_ms[write_ms.size() / 2],
        write_ms[std::min(write_ms.size() - 1, write_ms.size() * 99 / 100)]);
  }
  if (!ms.empty()) {
    std::printf(
        "commit to a follower's watcher (write answered by the leader, then "
        "the change arrives): p50 %.1f ms, p99 %.1f ms over %zu writes\n",
        ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)],
        ms.size());
  }
  return 0;
}

}  // namespace
}  // namespace raftsql

int main(int argc, char** argv) { return raftsql::Main(argc, argv); }
