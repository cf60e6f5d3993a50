// grow: a durable 3-node cluster on 127.0.0.1 grown to --to_mb of rows in
// 100-row batches (issue 14). At each --step_mb it measures --measure_ops
// batches at --concurrency, --rounds times (the median round is printed),
// and prints, beside the same figures for the empty cluster: throughput,
// p50/p99/max latency, failed and timed-out writes, the leader's term, each
// node's peak RSS and longest Raft-loop iteration.
// Then a fourth node joins and catches up (MB/s, against what the disk and
// the loopback carried in the same run, measured before it; with --joins=N,
// N new nodes one after another, each removed before the next, and the
// medians), and a follower is SIGKILLed and restarted (time until it serves at
// the leader's index). With --vacuum, half the rows are then deleted and VACUUM
// runs while the writes are measured once more.
//
//   ./bazelw build -c opt //bench:grow //server:raftsql_server
//   bazel-bin/bench/grow --to_mb=1024 --step_mb=256 [--joins=3] [--vacuum]
//                        [-- server flags]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "bench/bounds.h"
#include "bench/process_cpu.h"
#include "net/client.h"
#include "net/grpc_transport.h"
#include "tools/flags.h"
#include "tools/local_cluster.h"
#include "tools/process.h"

ABSL_FLAG(int, to_mb, 1024, "grow the database to this many MB");
ABSL_FLAG(int, step_mb, 256, "measure at every step of this many MB");
ABSL_FLAG(int, concurrency, 8, "writers while measuring");
ABSL_FLAG(int, measure_ops, 2000, "batches per measurement");
ABSL_FLAG(int, rounds, 3, "measurements per step (the median is printed)");
ABSL_FLAG(std::string, peer_transport, "grpc",
          "the nodes' --peer_transport (stream: with peer ports)");
ABSL_FLAG(int, joins, 1,
          "new nodes that join one after another (each is removed before "
          "the next joins); the median is printed");
ABSL_FLAG(bool, vacuum, false,
          "at the end: delete half the rows, then VACUUM under writes");

namespace raftsql::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kRowsPerBatch = 100;
constexpr int kRowBytes = 1000;
// Loop iterations at least this long are all printed after the vacuum.
constexpr int kLongLoopMs = 1000;
// The servers log loop iterations this long (their default is 100 ms) ...
constexpr int kSlowLoopLogMs = 40;
// ... and those with this much snapshot work are printed at the end.
constexpr int kSnapshotLoopMs = 20;

struct Options {
  int to_mb = 1024;
  int step_mb = 256;
  int concurrency = 8;
  int measure_ops = 2000;
  int rounds = 3;       // Measurements per step; the median is printed.
  bool vacuum = false;  // At the end: delete half the rows, then VACUUM.
  int joins = 1;        // New nodes that join one after another.
  std::vector<std::string> server_flags;
};

struct Step {
  double ops_per_s = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  int failed = 0, timed_out = 0;
  std::string first_error;
};

uint64_t FileMb(const std::string& path) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size >> 20;
}

// The lines of a node's log that mention `what` (at most `most`).
// The first `most` lines of `log` that hold `what`, from the first line
// that holds `after` on (all of it if empty).
void PrintLogLines(const std::string& log, const std::string& what,
                   int most = 20, const std::string& after = "") {
  std::ifstream in(log);
  int printed = 0;
  bool on = after.empty();
  for (std::string line; printed < most && std::getline(in, line);) {
    on |= line.find(after) != std::string::npos;
    if (on && line.find(what) != std::string::npos) {
      ++printed;
      std::printf("  %s\n", line.c_str());
    }
  }
}

// Every "slow Raft loop: N ms" line of `log` with N at least `ms`, from any
// phase (the first few lines of a phase can miss the longest).
void PrintLoopsOver(int id, const std::string& log, int ms) {
  std::ifstream in(log);
  const std::string what = "slow Raft loop: ";
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find(what);
    if (at == std::string::npos) continue;
    if (std::atoi(line.c_str() + at + what.size()) >= ms) {
      std::printf("  node %d: %s\n", id, line.c_str());
    }
  }
}

// The "slow Raft loop" lines of `log` (servers run with --slow_loop_ms
// below 100 to have them) whose snapshot work and writer checkpoints took
// at least `ms` of the iteration: the stalls issue 14 bounds.
void PrintSnapshotLoopsOver(int id, const std::string& log, int ms) {
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("slow Raft loop: ") == std::string::npos) continue;
    int part = 0;
    for (const char* what : {"snapshots ", "checkpoints "}) {
      const size_t at = line.find(what);
      if (at != std::string::npos) {
        part += std::atoi(line.c_str() + at + std::strlen(what));
      }
    }
    if (part >= ms) std::printf("  node %d: %s\n", id, line.c_str());
  }
}

// On this virtual machine the host takes back the pages the kernel frees
// (free page reporting) within seconds, and a page it took back costs a
// fault on the host at its next first touch: a new file written right
// after another was deleted runs at ten times the rate of one written on
// memory the host has taken back. So the disk is measured before the join
// (a new file of the image's size, with O_DIRECT as the joiner stores it,
// and through the page cache beside it), then the host is given this long
// to take its pages back, so the join starts from the state the measure
// found; and measured again after the join.
constexpr int kPagesReportedSeconds = 15;

struct JoinBounds {
  double disk_before = 0;           // MB/s, a new file with O_DIRECT
  double disk_before_buffered = 0;  // MB/s, through the page cache
  double disk_read_before = 0;      // MB/s, read back with O_DIRECT
  double loopback = 0;              // MB/s, TCP on 127.0.0.1
};

JoinBounds MeasureBeforeJoin(const std::string& dir, uint64_t size_mb) {
  sync();
  JoinBounds b;
  b.disk_before =
      DiskWriteBytesPerSecond(dir, size_mb << 20, /*direct=*/true) / (1 << 20);
  b.disk_before_buffered =
      DiskWriteBytesPerSecond(dir, size_mb << 20, /*direct=*/false) / (1 << 20);
  b.disk_read_before = DiskReadBytesPerSecond(dir, size_mb << 20) / (1 << 20);
  b.loopback = LoopbackBytesPerSecond(size_mb << 20) / (1 << 20);
  std::this_thread::sleep_for(std::chrono::seconds(kPagesReportedSeconds));
  return b;
}

// The join's rate against the slower of the disk (measured before the join
// as above) and the loopback; the disk's figures after the join (a new
// file with O_DIRECT, then one through the page cache) are printed beside
// them.
// Returns the join's percentage of the slower of the disk (before it) and
// the loopback.
// Also prints the disk's ceiling for this join: storing the image at the
// disk's write rate and reading back what the joiner read (`read_mb`: the
// check; quick_check reads the file twice) at its read rate, one after
// the other (the disk serves one at a time).
double PrintJoinBounds(const std::string& dir, uint64_t size_mb, double join_s,
                       const JoinBounds& before, uint64_t read_mb) {
  sync();
  const uint64_t bytes = size_mb << 20;
  const double direct =
      DiskWriteBytesPerSecond(dir, bytes, /*direct=*/true) / (1 << 20);
  const double buffered =
      DiskWriteBytesPerSecond(dir, bytes, /*direct=*/false) / (1 << 20);
  const double join = size_mb / join_s;
  auto percent = [&](double disk) {
    const double bound = std::min(disk, before.loopback);
    return bound > 0 ? 100 * join / bound : 0;
  };
  std::printf(
      "join bounds: before the join the disk wrote a new %llu MB file at "
      "%.0f MB/s with O_DIRECT, as the joiner stores it (%.0f MB/s through "
      "the page cache), and the loopback carried %.0f MB/s: the join ran at "
      "%.0f%% of the slower (%.0f%% of the page cache's)\n"
      "  after the join the disk wrote a new file at %.0f MB/s with O_DIRECT "
      "(%.0f%%), %.0f MB/s through the page cache (%.0f%%)\n",
      static_cast<unsigned long long>(size_mb), before.disk_before,
      before.disk_before_buffered, before.loopback, percent(before.disk_before),
      percent(before.disk_before_buffered), direct, percent(direct), buffered,
      percent(buffered));
  const double bound = std::min(before.disk_before, before.loopback);
  if (bound > 0 && before.disk_read_before > 0) {
    const double floor_s =
        size_mb / before.disk_before + read_mb / before.disk_read_before;
    const double ceiling = size_mb / floor_s;
    std::printf(
        "  the disk's ceiling for this join: %llu MB stored at %.0f MB/s and "
        "the %llu MB the joiner read back at %.0f MB/s (O_DIRECT, 1 MiB) take "
        "%.2f s at least: %.0f MB/s, %.0f%% of the slower bound; the join "
        "ran at %.0f%% of that ceiling\n",
        static_cast<unsigned long long>(size_mb), before.disk_before,
        static_cast<unsigned long long>(read_mb), before.disk_read_before,
        floor_s, ceiling, 100 * ceiling / bound, 100 * join / ceiling);
  }
  return percent(before.disk_before);
}

class Grower {
 public:
  Grower(tools::LocalCluster& c, const Options& o) : c_(c), o_(o) {}

  // `ops` batches at the configured concurrency (or `concurrency`);
  // latencies kept if asked.
  Step Run(int ops, bool measure, int concurrency = 0) {
    std::atomic<int> next{0};
    std::mutex mu;
    std::vector<double> latencies;
    Step step;
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < (concurrency > 0 ? concurrency : o_.concurrency); ++t) {
      threads.emplace_back([&] {
        // A client (and session) per thread: one session's writes must
        // reach the leader in sequence order.
        net::Client client(c_.Endpoints(), c_.ClientOptionsFor());
        std::vector<double> mine;
        int failed = 0, timed_out = 0;
        std::string error;
        while (next.fetch_add(1) < ops) {
          const auto began = Clock::now();
          absl::StatusOr<v1::ExecuteResponse> r = client.Execute(Batch());
          mine.push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - began)
                  .count());
          if (!r.ok()) {
            ++failed;
            timed_out += absl::IsDeadlineExceeded(r.status());
            if (error.empty()) error = r.status().ToString();
          } else if (r->results(0).code() != 0) {
            ++failed;
            if (error.empty()) error = r->results(0).error();
          }
        }
        std::lock_guard<std::mutex> l(mu);
        if (measure)
          latencies.insert(latencies.end(), mine.begin(), mine.end());
        step.failed += failed;
        step.timed_out += timed_out;
        if (step.first_error.empty()) step.first_error = error;
      });
    }
    for (std::thread& t : threads) t.join();
    const double secs =
        std::chrono::duration<double>(Clock::now() - start).count();
    step.ops_per_s = ops / secs;
    std::sort(latencies.begin(), latencies.end());
    if (!latencies.empty()) {
      step.p50_ms = latencies[latencies.size() / 2];
      step.p99_ms = latencies[latencies.size() * 99 / 100];
      step.max_ms = latencies.back();
    }
    return step;
  }

  // `rounds` runs of `ops` measured batches: the one of median throughput,
  // with every round's failures and the largest latency of all (one round
  // is one sample of a drifting host).
  Step Measure(int ops, int rounds) {
    std::vector<Step> runs;
    for (int i = 0; i < std::max(1, rounds); ++i)
      runs.push_back(Run(ops, true));
    std::sort(runs.begin(), runs.end(), [](const Step& a, const Step& b) {
      return a.ops_per_s < b.ops_per_s;
    });
    Step median = runs[runs.size() / 2];
    median.failed = median.timed_out = 0;
    for (const Step& r : runs) {
      median.failed += r.failed;
      median.timed_out += r.timed_out;
      median.max_ms = std::max(median.max_ms, r.max_ms);
      if (median.first_error.empty()) median.first_error = r.first_error;
    }
    return median;
  }

  void Print(const char* what, const Step& s, const Step& empty) {
    std::printf(
        "%-11s (%5llu MB after)  %6.0f ops/s (%3.0f%% of empty)  p50 %6.1f  "
        "p99 %6.1f  "
        "max %7.1f ms (%4.1fx p99)  failed %d  timeouts %d  term %llu\n",
        what, static_cast<unsigned long long>(FileMb(DbPath(1))), s.ops_per_s,
        empty.ops_per_s > 0 ? 100 * s.ops_per_s / empty.ops_per_s : 100.0,
        s.p50_ms, s.p99_ms, s.max_ms, s.p99_ms > 0 ? s.max_ms / s.p99_ms : 0,
        s.failed, s.timed_out, static_cast<unsigned long long>(Term()));
    if (!s.first_error.empty()) {
      std::printf("          first failure: %s\n", s.first_error.c_str());
    }
    PrintNodes();
  }

  // Each running node's peak RSS and longest Raft-loop iteration, and the
  // most an iteration spent on snapshot work and checkpoints.
  void PrintNodes() {
    for (int id = 1; id <= c_.size(); ++id) {
      if (!c_.Running(id)) continue;
      auto st = c_.client().Status(c_.Endpoint(id));
      auto ms = [&](uint64_t us) {
        return st.ok() ? static_cast<long long>(us / 1000) : -1ll;
      };
      std::printf(
          "          node %d: peak RSS %llu MB, longest loop %lld ms "
          "(snapshots and checkpoints: at most %lld ms of a loop)\n",
          id,
          static_cast<unsigned long long>(tools::PeakRssBytes(c_.Pid(id)) >>
                                          20),
          ms(st.ok() ? st->longest_loop_us() : 0),
          ms(st.ok() ? st->longest_loop_in_snapshots_us() : 0));
    }
    std::fflush(stdout);
  }

  // The id of the node that answers as leader (0 if none does), and its
  // Status.
  int Leader(v1::StatusResponse* status = nullptr) {
    for (int id = 1; id <= c_.size(); ++id) {
      auto st = c_.client().Status(c_.Endpoint(id));
      if (!st.ok() || st->role() != "Leader") continue;
      if (status != nullptr) *status = *std::move(st);
      return id;
    }
    return 0;
  }

  uint64_t Term() {
    v1::StatusResponse st;
    return Leader(&st) > 0 ? st.term() : 0;
  }

  uint64_t LeaderApplied() {
    v1::StatusResponse st;
    return Leader(&st) > 0 ? st.applied_index() : 0;
  }

  // Seconds until node `id` has applied `index` (bounded: 30 minutes).
  double WaitApplied(int id, uint64_t index) {
    const auto start = Clock::now();
    while (Clock::now() - start < std::chrono::minutes(30)) {
      auto st = c_.client().Status(c_.Endpoint(id));
      if (st.ok() && st->applied_index() >= index) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  std::string DbPath(int id) const { return c_.data_dir(id) + "/db.sqlite"; }
  const Options& options() const { return o_; }

 private:
  v1::ExecuteRequest Batch() {
    v1::ExecuteRequest r;
    v1::Statement* s = r.add_statements();
    std::string sql = "INSERT INTO bench(v) VALUES ";
    for (int i = 0; i < kRowsPerBatch; ++i) {
      absl::StrAppend(&sql, i ? ",(?)" : "(?)");
      s->add_positional()->set_text(std::string(kRowBytes, 'a' + i % 26));
    }
    s->set_sql(sql);
    return r;
  }

  tools::LocalCluster& c_;
  const Options o_;
};

// Deletes every other row (in commands of kDeleteRows rows looked at, small
// enough not to stall the loops themselves), then sends VACUUM
// and measures writes while every node rebuilds its file; prints the
// nodes' vacuum and slow-loop lines and the files' sizes once all have
// swapped (bounded: 30 minutes).
bool Vacuum(tools::LocalCluster& c, Grower& g, const Step& empty, int nodes) {
  constexpr int64_t kDeleteRows = 4'000;
  v1::QueryRequest q;
  q.mutable_statement()->set_sql("SELECT max(k) FROM bench");
  q.set_consistency(v1::LINEARIZABLE);
  auto top = c.client().Query(q);
  if (!top.ok() || top->rows_size() != 1) return false;
  const int64_t last = top->rows(0).values(0).integer();
  for (int64_t from = 0; from <= last; from += kDeleteRows) {
    v1::ExecuteRequest del;
    del.add_statements()->set_sql(
        absl::StrCat("DELETE FROM bench WHERE k % 2 = 0 AND k >= ", from,
                     " AND k < ", from + kDeleteRows));
    if (!c.client().Execute(del).ok()) return false;
  }
  const uint64_t before = FileMb(g.DbPath(1));
  v1::ExecuteRequest vacuum;
  vacuum.add_statements()->set_sql("VACUUM");
  const auto began = Clock::now();
  if (!c.client().Execute(vacuum).ok()) return false;
  g.Print(absl::StrCat("vacuum ", before, " MB").c_str(),
          g.Measure(g.options().measure_ops, 1), empty);
  // Nodes whose log says their vacuum swapped in, and that ended either way.
  auto count_logged = [&c, nodes](const char* what) {
    int n = 0;
    for (int id = 1; id <= nodes; ++id) {
      std::ifstream in(c.LogPath(id));
      for (std::string line; std::getline(in, line);) {
        n += line.find(what) != std::string::npos;
      }
    }
    return n;
  };
  auto count_swapped = [&count_logged] {
    return count_logged("vacuum swapped in");
  };
  auto count_ended = [&count_logged] {
    return count_logged("vacuum swapped in") + count_logged("vacuum abandoned");
  };
  // Writes go on, one at a time in rounds of kSwapRoundOps batches, until
  // every node has swapped: what a client sees while the files are swapped
  // (a leader's answers wait for its own swap). One at a time, so that the
  // copies, busy with their own writes, can catch up.
  constexpr int kSwapRoundOps = 40;
  int swapped = 0;
  int rounds = 0;
  Step during;
  while (count_ended() < nodes &&
         Clock::now() - began < std::chrono::minutes(30)) {
    const Step r = g.Run(kSwapRoundOps, true, /*concurrency=*/1);
    ++rounds;
    during.p99_ms = std::max(during.p99_ms, r.p99_ms);
    during.max_ms = std::max(during.max_ms, r.max_ms);
    during.failed += r.failed;
    during.timed_out += r.timed_out;
    if (during.first_error.empty()) during.first_error = r.first_error;
  }
  swapped = count_swapped();
  std::printf("vacuum: %d of %d nodes swapped within %.1f s\n", swapped, nodes,
              std::chrono::duration<double>(Clock::now() - began).count());
  std::printf(
      "  writes until then: %d more batches, worst round's p99 %.1f ms, max "
      "%.1f ms, failed %d, timeouts %d%s%s\n",
      rounds * kSwapRoundOps, during.p99_ms, during.max_ms, during.failed,
      during.timed_out, during.first_error.empty() ? "" : "; first failure: ",
      during.first_error.c_str());
  for (int id = 1; id <= nodes; ++id) {
    PrintLogLines(c.LogPath(id), "vacuum");
    std::printf("  node %d: %llu MB\n", id,
                static_cast<unsigned long long>(FileMb(g.DbPath(id))));
  }
  for (int id = 1; id <= nodes; ++id) {
    PrintLogLines(c.LogPath(id), "slow Raft loop", 5, "vacuum started");
    PrintLogLines(c.LogPath(id), "leads at term", 5, "vacuum started");
    PrintLoopsOver(id, c.LogPath(id), kLongLoopMs);
  }
  std::printf("  term after the vacuum: %llu\n",
              static_cast<unsigned long long>(g.Term()));
  g.PrintNodes();
  return swapped == nodes;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct JoinFigures {
  double mb_per_s = 0;
  double percent_of_bound = 0;  // Of the slower of the disk and loopback.
};

// A new node `joiner` (a slot added, not started) joins and catches up by
// an image of the database (`size_mb`); prints what bounds it.
std::optional<JoinFigures> Join(tools::LocalCluster& c, Grower& g,
                                const std::string& dir, uint64_t size_mb,
                                int joiner) {
  const uint64_t index = g.LeaderApplied();
  // What bounds the join: the disk (each node's reads and writes during
  // it, and how much of the leader's database the page cache held).
  std::vector<tools::DiskIo> io_before(joiner + 1);
  for (int id = 1; id < joiner; ++id)
    io_before[id] = tools::DiskIoBytes(c.Pid(id));
  const int leader = g.Leader();
  // Growing at full speed leaves gigabytes for the disk to write back; the
  // join is measured on a disk that does nothing else.
  const uint64_t unwritten_mb = tools::UnwrittenBytes() >> 20;
  const auto settle = Clock::now();
  sync();
  std::printf(
      "join: %llu MB of dirty pages written back first (sync: %.1f s)\n",
      static_cast<unsigned long long>(unwritten_mb),
      std::chrono::duration<double>(Clock::now() - settle).count());
  const JoinBounds bounds = MeasureBeforeJoin(dir, size_mb);
  const uint64_t cached_mb = tools::CachedBytes(g.DbPath(leader)) >> 20;
  std::vector<double> cpu_before(joiner + 1, 0);
  for (int id = 1; id < joiner; ++id)
    cpu_before[id] = ProcessCpuSeconds(c.Pid(id));
  if (!c.StartNode(joiner).ok()) return std::nullopt;
  const double join_s = g.WaitApplied(joiner, index);
  std::vector<double> cpu_join(joiner + 1, 0);
  for (int id = 1; id <= joiner; ++id) {
    cpu_join[id] = ProcessCpuSeconds(c.Pid(id)) - cpu_before[id];
  }
  std::printf("join: node %d caught up with %llu MB in %.1f s (%.0f MB/s)\n",
              joiner, static_cast<unsigned long long>(size_mb), join_s,
              size_mb / join_s);
  std::printf(
      "  the leader (node %d) had %llu MB of its database in the "
      "page cache at the start\n",
      leader, static_cast<unsigned long long>(cached_mb));
  uint64_t joiner_read_mb = 0;
  for (int id = 1; id <= joiner; ++id) {
    if (!c.Running(id)) continue;  // Joined before, and removed.
    const tools::DiskIo now = tools::DiskIoBytes(c.Pid(id));
    const uint64_t read_mb = (now.read_bytes - io_before[id].read_bytes) >> 20;
    if (id == joiner) joiner_read_mb = read_mb;
    std::printf("  node %d: read %llu MB from the disk, wrote %llu MB\n", id,
                static_cast<unsigned long long>(read_mb),
                static_cast<unsigned long long>(
                    (now.write_bytes - io_before[id].write_bytes) >> 20));
  }
  // What the transfer costs: on this machine the leader and the joiner
  // share its cores.
  double cpu_all = 0;
  for (int id = 1; id <= joiner; ++id) {
    if (!c.Running(id)) continue;
    cpu_all += cpu_join[id];
    std::printf("  node %d: %.1f s of CPU (%.2f s a GB)\n", id, cpu_join[id],
                cpu_join[id] / (size_mb / 1024.0));
  }
  std::printf(
      "  all nodes: %.1f s of CPU in %.1f s (%.2f cores of %u; %.2f s a "
      "GB)\n",
      cpu_all, join_s, cpu_all / join_s, std::thread::hardware_concurrency(),
      cpu_all / (size_mb / 1024.0));
  // Where the time went: the nodes' lines about the image (the members',
  // not those of nodes that joined before and were removed).
  for (int id = 1; id <= joiner; ++id) {
    if (c.Running(id)) PrintLogLines(c.LogPath(id), "snapshot image");
  }
  for (int id = 1; id <= joiner; ++id) {
    if (c.Running(id)) PrintLogLines(c.LogPath(id), "slow Raft loop", 5);
  }
  std::printf("  term after the join: %llu\n",
              static_cast<unsigned long long>(g.Term()));
  g.PrintNodes();
  return JoinFigures{size_mb / join_s, PrintJoinBounds(dir, size_mb, join_s,
                                                       bounds, joiner_read_mb)};
}

// Stops the node that joined last, removes it from the cluster and deletes
// its data: the next join starts from an empty node again, and the disk
// has room for it.
bool RetireJoiner(tools::LocalCluster& c, int joiner) {
  // A removal may fail while the cluster has no leader: tried this many
  // times, a second apart.
  constexpr int kRemoveAttempts = 20;
  c.StopNode(joiner, SIGTERM);
  for (int attempt = 0; attempt < kRemoveAttempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
    absl::StatusOr<v1::AdminResponse> removed =
        c.client().RemoveNode(static_cast<uint64_t>(joiner));
    if (removed.ok()) {
      std::error_code ec;
      std::filesystem::remove_all(c.data_dir(joiner), ec);
      return true;
    }
    std::fprintf(stderr, "grow: removing node %d: %s\n", joiner,
                 removed.status().ToString().c_str());
  }
  return false;
}

int Main(int argc, char** argv) {
  net::PrepareGrpc();
  Options o;
  const std::vector<std::string> rest = tools::ParseFlags(
      argc, argv,
      "a durable 3-node cluster grown to --to_mb of rows: throughput, RSS, "
      "loops, a join, a restart, a vacuum.\n"
      "  grow --to_mb=1024 --step_mb=256 [--vacuum] [-- server flags]");
  o.to_mb = absl::GetFlag(FLAGS_to_mb);
  o.step_mb = absl::GetFlag(FLAGS_step_mb);
  o.concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  o.measure_ops = absl::GetFlag(FLAGS_measure_ops);
  o.rounds = absl::GetFlag(FLAGS_rounds);
  o.vacuum = absl::GetFlag(FLAGS_vacuum);
  o.joins = std::max(1, absl::GetFlag(FLAGS_joins));
  o.server_flags.assign(rest.begin() + 1, rest.end());
  tools::LocalClusterOptions co;
  // Loops long enough to matter are logged (the flags given may override).
  co.extra_flags = {"--slow_loop_ms=" + std::to_string(kSlowLoopLogMs)};
  co.extra_flags.insert(co.extra_flags.end(), o.server_flags.begin(),
                        o.server_flags.end());
  co.nodes = 3;
  co.peer_transport = absl::GetFlag(FLAGS_peer_transport);
  co.server_binary = tools::FindBinary(argv[0], "server/raftsql_server");
  char tmpl[] = "/tmp/raftsql-grow-XXXXXX";
  co.dir = mkdtemp(tmpl);
  co.remove_dir = true;  // Every node stopped, then its files removed.
  tools::LocalCluster c(co);
  if (absl::Status s = c.Start(); !s.ok()) {
    std::fprintf(stderr, "grow: %s\n", s.ToString().c_str());
    return 1;
  }
  if (!c.WaitForLeader(30'000).ok()) return 1;
  v1::ExecuteRequest create;
  create.add_statements()->set_sql(
      "CREATE TABLE bench(k INTEGER PRIMARY KEY, v TEXT)");
  if (!c.client().Execute(create).ok()) return 1;
  std::printf(
      "grow: 3 durable nodes in %s, %d-row batches of %d-byte rows, "
      "concurrency %d, %d batches per measurement, median of %d\n",
      co.dir.c_str(), kRowsPerBatch, kRowBytes, o.concurrency, o.measure_ops,
      o.rounds);
  Grower g(c, o);
  const Step empty = g.Measure(o.measure_ops, o.rounds);
  g.Print("empty", empty, empty);
  // A batch adds about 100 KB; grow in rounds of 1,000 between checks.
  for (int target = o.step_mb; target <= o.to_mb; target += o.step_mb) {
    while (static_cast<int>(FileMb(g.DbPath(1))) < target) g.Run(1000, false);
    const uint64_t before = FileMb(g.DbPath(1));
    g.Print(absl::StrCat("at ", before, " MB").c_str(),
            g.Measure(o.measure_ops, o.rounds), empty);
  }
  // A fourth node joins and catches up by an image; with --joins, it is
  // then removed and another new node joins, each on the disk's figures of
  // its own moment (they vary by half from one minute to the next here).
  const uint64_t size_mb = FileMb(g.DbPath(1));
  std::vector<double> rates;
  std::vector<double> percents;
  int joiner = 0;
  for (int j = 0; j < o.joins; ++j) {
    if (joiner != 0 && !RetireJoiner(c, joiner)) return 1;
    joiner = c.AddSlot();
    std::optional<JoinFigures> f = Join(c, g, co.dir, size_mb, joiner);
    if (!f.has_value()) return 1;
    rates.push_back(f->mb_per_s);
    percents.push_back(f->percent_of_bound);
  }
  if (o.joins > 1) {
    std::printf(
        "joins: %d, median %.0f MB/s (%.0f-%.0f), median %.0f%% of the "
        "slower of the disk and the loopback (%.0f-%.0f%%)\n",
        o.joins, Median(rates), *std::min_element(rates.begin(), rates.end()),
        *std::max_element(rates.begin(), rates.end()), Median(percents),
        *std::min_element(percents.begin(), percents.end()),
        *std::max_element(percents.begin(), percents.end()));
  }
  // A follower restarts on its data.
  const int down = 2;
  c.StopNode(down, SIGKILL);
  const uint64_t at_kill = g.LeaderApplied();
  const auto restart = Clock::now();
  if (!c.StartNode(down).ok()) return 1;
  const double started_s =
      std::chrono::duration<double>(Clock::now() - restart).count();
  const double caught_up_s = started_s + g.WaitApplied(down, at_kill);
  std::printf(
      "restart: node %d (%llu MB) listened after %.2f s and was at "
      "the leader's index after %.2f s\n",
      down, static_cast<unsigned long long>(FileMb(g.DbPath(down))), started_s,
      caught_up_s);
  PrintLogLines(c.LogPath(down), "opened its log");
  PrintLogLines(c.LogPath(down), " opened: files");
  std::printf("loops with %d ms or more of snapshot work or checkpoints:\n",
              kSnapshotLoopMs);
  for (int id = 1; id <= joiner; ++id) {
    PrintSnapshotLoopsOver(id, c.LogPath(id), kSnapshotLoopMs);
  }
  std::fflush(stdout);
  if (o.vacuum && !Vacuum(c, g, empty, joiner)) return 1;
  return 0;
}

}  // namespace
}  // namespace raftsql::bench

int main(int argc, char** argv) { return raftsql::bench::Main(argc, argv); }
