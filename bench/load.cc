// load: a gRPC load generator for raftsql. Prints ops/s and latency
// percentiles (p50/p90/p99/p999).
//
//   bazel run -c opt //bench:load -- --start=3 --concurrency=16 --ops=20000
//   bazel run -c opt //bench:load -- --nodes=127.0.0.1:7001,... --mix=select
//
// --start=N starts a durable N-node cluster on 127.0.0.1 in a temporary
// directory (stopped at exit); --nodes uses a running one. Every run is
// bounded by --ops and --max_seconds.
//
// Mixes: insert (single-row INSERT), batch (100-row INSERT in one command),
// select (point SELECT, consistency NONE), select_lin (point SELECT,
// LINEARIZABLE), or weights such as insert=8,select_lin=2.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "net/client.h"
#include "tools/local_cluster.h"
#include "tools/process.h"

namespace raftsql::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::string> nodes;
  int start = 0;
  int concurrency = 1;
  int64_t ops = 20'000;
  double max_seconds = 30;
  std::map<std::string, int> mix = {{"insert", 1}};
  std::vector<std::string> server_flags;
};

struct Result {
  std::vector<double> latencies_us;
  int64_t errors = 0;
  std::string first_error;
};

std::string Arg(const std::string& a, const char* name) {
  const std::string prefix = absl::StrCat("--", name, "=");
  return a.rfind(prefix, 0) == 0 ? a.substr(prefix.size()) : "";
}

bool Parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    std::string v;
    if (!(v = Arg(a, "nodes")).empty()) {
      o->nodes = absl::StrSplit(v, ',', absl::SkipEmpty());
    } else if (!(v = Arg(a, "start")).empty()) {
      o->start = std::atoi(v.c_str());
    } else if (!(v = Arg(a, "concurrency")).empty()) {
      o->concurrency = std::max(1, std::atoi(v.c_str()));
    } else if (!(v = Arg(a, "ops")).empty()) {
      o->ops = std::atoll(v.c_str());
    } else if (!(v = Arg(a, "max_seconds")).empty()) {
      o->max_seconds = std::atof(v.c_str());
    } else if (!(v = Arg(a, "server_flag")).empty()) {
      o->server_flags.push_back(v);
    } else if (!(v = Arg(a, "mix")).empty()) {
      o->mix.clear();
      for (absl::string_view part : absl::StrSplit(v, ',')) {
        std::pair<std::string, std::string> kv =
            absl::StrSplit(part, absl::MaxSplits('=', 1));
        int w = 1;
        if (!kv.second.empty() && !absl::SimpleAtoi(kv.second, &w)) {
          return false;
        }
        if (kv.first != "insert" && kv.first != "batch" &&
            kv.first != "select" && kv.first != "select_lin") {
          return false;
        }
        o->mix[kv.first] = w;
      }
    } else {
      return false;
    }
  }
  return (o->start > 0) != !o->nodes.empty();
}

v1::ExecuteRequest Insert(int64_t key, int rows) {
  v1::ExecuteRequest r;
  v1::Statement* s = r.add_statements();
  std::string sql = "INSERT INTO bench (k, v) VALUES ";
  for (int i = 0; i < rows; ++i) {
    absl::StrAppend(&sql, i ? ",(?,?)" : "(?,?)");
    s->add_positional()->set_integer(key + i);
    s->add_positional()->set_text("value-" + std::to_string(key + i));
  }
  s->set_sql(sql);
  return r;
}

void Worker(const Options& o, int index, std::atomic<int64_t>* next_op,
            Clock::time_point deadline, Result* out) {
  net::ClientOptions co;
  co.timeout_ms = 10'000;
  net::Client client(o.nodes, co);
  std::mt19937_64 rng(index + 1);
  std::vector<std::pair<std::string, int>> mix(o.mix.begin(), o.mix.end());
  int total = 0;
  for (auto& [name, w] : mix) total += w;
  while (Clock::now() < deadline) {
    const int64_t op = next_op->fetch_add(1);
    if (op >= o.ops) break;
    int pick = static_cast<int>(rng() % total);
    std::string kind;
    for (auto& [name, w] : mix) {
      if ((pick -= w) < 0) {
        kind = name;
        break;
      }
    }
    const auto t0 = Clock::now();
    absl::Status s;
    if (kind == "insert" || kind == "batch") {
      // Keys are unique per op: 1 + op * 100 leaves room for a batch.
      auto r = client.Execute(Insert(1 + op * 100, kind == "batch" ? 100 : 1));
      s = r.status();
      if (s.ok() && r->results(0).code() != 0) {
        s = absl::InternalError(r->results(0).error());
      }
    } else {
      v1::QueryRequest q;
      q.mutable_statement()->set_sql("SELECT v FROM bench WHERE k = ?");
      q.mutable_statement()->add_positional()->set_integer(
          static_cast<int64_t>(rng() % 1000));
      q.set_consistency(kind == "select_lin" ? v1::LINEARIZABLE : v1::NONE);
      s = client.Query(q).status();
    }
    const double us =
        std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    if (s.ok()) {
      out->latencies_us.push_back(us);
    } else if (out->errors++ == 0) {
      out->first_error = s.ToString();
    }
  }
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * (sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

int Main(int argc, char** argv) {
  Options o;
  if (!Parse(argc, argv, &o)) {
    std::fprintf(
        stderr,
        "usage: load (--start=N | --nodes=host:port,...) [--concurrency=C] "
        "[--ops=N] [--max_seconds=S] [--mix=insert|batch|select|select_lin"
        "|name=weight,...] [--server_flag=--flag=value ...]\n");
    return 2;
  }
  std::unique_ptr<tools::LocalCluster> cluster;
  if (o.start > 0) {
    tools::LocalClusterOptions co;
    co.nodes = o.start;
    co.server_binary = tools::FindBinary(argv[0], "server/raftsql_server");
    char tmpl[] = "/tmp/raftsql-load-XXXXXX";
    co.dir = mkdtemp(tmpl);
    co.extra_flags = o.server_flags;
    cluster = std::make_unique<tools::LocalCluster>(co);
    if (absl::Status s = cluster->Start(); !s.ok()) {
      std::fprintf(stderr, "load: %s\n", s.ToString().c_str());
      return 1;
    }
    o.nodes = cluster->Endpoints();
    std::printf("started %d durable nodes in %s\n", o.start, co.dir.c_str());
  }
  // Find the leader and put it first: writes then need no forwarding.
  net::Client probe(o.nodes);
  const auto wait_until = Clock::now() + std::chrono::seconds(20);
  std::string leader;
  while (leader.empty() && Clock::now() < wait_until) {
    for (const std::string& ep : o.nodes) {
      auto st = probe.Status(ep);
      if (st.ok() && st->role() == "Leader") leader = ep;
    }
    if (leader.empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (leader.empty()) {
    std::fprintf(stderr, "load: no leader\n");
    return 1;
  }
  std::stable_partition(o.nodes.begin(), o.nodes.end(),
                        [&](const std::string& e) { return e == leader; });
  v1::ExecuteRequest create;
  create.add_statements()->set_sql(
      "CREATE TABLE IF NOT EXISTS bench (k INTEGER PRIMARY KEY, v TEXT)");
  if (auto r = probe.Execute(create); !r.ok()) {
    std::fprintf(stderr, "load: %s\n", r.status().ToString().c_str());
    return 1;
  }
  // Rows for the point reads to find.
  if (o.mix.count("select") || o.mix.count("select_lin")) {
    for (int k = 0; k < 1000; k += 100) {
      v1::ExecuteRequest r = Insert(-1000 + k, 100);
      (void)probe.Execute(r);
    }
  }

  std::atomic<int64_t> next_op{0};
  std::vector<Result> results(o.concurrency);
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::milliseconds(
                                    static_cast<int64_t>(o.max_seconds * 1000));
  for (int i = 0; i < o.concurrency; ++i) {
    threads.emplace_back(Worker, std::cref(o), i, &next_op, deadline,
                         &results[i]);
  }
  for (std::thread& t : threads) t.join();
  const double secs =
      std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> all;
  int64_t errors = 0;
  std::string first_error;
  for (Result& r : results) {
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    errors += r.errors;
    if (first_error.empty()) first_error = r.first_error;
  }
  std::sort(all.begin(), all.end());
  std::string mix;
  for (auto& [name, w] : o.mix)
    absl::StrAppend(&mix, mix.empty() ? "" : ",", name, "=", w);
  std::printf(
      "mix=%s concurrency=%d ops=%zu errors=%lld time=%.2fs\n"
      "throughput: %.0f ops/s\n"
      "latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
      mix.c_str(), o.concurrency, all.size(), static_cast<long long>(errors),
      secs, all.size() / secs, Percentile(all, 0.50) / 1000,
      Percentile(all, 0.90) / 1000, Percentile(all, 0.99) / 1000,
      Percentile(all, 0.999) / 1000, all.empty() ? 0 : all.back() / 1000);
  if (errors > 0) std::printf("first error: %s\n", first_error.c_str());
  return errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace raftsql::bench

int main(int argc, char** argv) { return raftsql::bench::Main(argc, argv); }
