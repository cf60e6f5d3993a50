#include "bench/breakdown.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace raftsql::bench {
namespace {

// (index, stage name) -> time, for one node.
using NodeTrace = std::map<std::pair<uint64_t, std::string>, int64_t>;

NodeTrace Read(const std::string& path) {
  NodeTrace t;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    uint64_t index = 0;
    std::string stage;
    int64_t ns = 0;
    if (!(fields >> index >> stage >> ns)) continue;
    // The first time an index reached a stage (a resent append counts
    // once).
    t.emplace(std::make_pair(index, stage), ns);
  }
  return t;
}

const int64_t* Find(const NodeTrace& t, uint64_t index, const char* stage) {
  auto it = t.find({index, stage});
  return it == t.end() ? nullptr : &it->second;
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return Percentile(v, q);
}

}  // namespace

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = static_cast<size_t>(p * (sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

size_t PrintBreakdown(const std::vector<ClientWrite>& writes,
                      const std::vector<std::string>& traces) {
  std::vector<NodeTrace> nodes;
  for (const std::string& path : traces) nodes.push_back(Read(path));
  // Each row: who, the stage's name in the trace (empty: the client's).
  struct Row {
    const char* label;
    char who;  // 'C'lient, 'L'eader, 'F'ollower
    const char* stage;
  };
  const std::vector<Row> rows = {
      {"client sends", 'C', ""},
      {"leader: request received", 'L', "received"},
      {"leader: proposed", 'L', "proposed"},
      {"leader: log write starts", 'L', "log_write_start"},
      {"leader: append sent", 'L', "append_sent"},
      {"follower: append received", 'F', "append_received"},
      {"follower: log write starts", 'F', "log_write_start"},
      {"follower: log write ends", 'F', "log_write_end"},
      {"follower: ack sent", 'F', "ack_sent"},
      {"leader: ack received", 'L', "ack_received"},
      {"leader: log write ends", 'L', "log_write_end"},
      {"leader: committed", 'L', "committed"},
      {"leader: apply starts", 'L', "apply_start"},
      {"leader: applied", 'L', "applied"},
      {"leader: answer sent", 'L', "answered"},
      {"client receives", 'C', ""},
  };
  std::vector<std::vector<double>> since_send(rows.size());
  size_t joined = 0;
  for (const ClientWrite& w : writes) {
    const NodeTrace* leader = nullptr;
    const NodeTrace* follower = nullptr;
    int64_t first_ack = INT64_MAX;
    for (const NodeTrace& n : nodes) {
      if (Find(n, w.index, "proposed") != nullptr) {
        leader = &n;
      } else if (const int64_t* ack = Find(n, w.index, "ack_sent");
                 ack != nullptr && *ack < first_ack) {
        first_ack = *ack;
        follower = &n;
      }
    }
    if (leader == nullptr || follower == nullptr) continue;
    std::vector<double> at(rows.size());
    bool complete = true;
    for (size_t r = 0; r < rows.size() && complete; ++r) {
      if (rows[r].who == 'C') {
        at[r] = static_cast<double>((r == 0 ? w.sent_ns : w.answered_ns) -
                                    w.sent_ns) /
                1000.0;
        continue;
      }
      const int64_t* t = Find(rows[r].who == 'L' ? *leader : *follower, w.index,
                              rows[r].stage);
      if (t == nullptr) {
        complete = false;
      } else {
        at[r] = static_cast<double>(*t - w.sent_ns) / 1000.0;
      }
    }
    if (!complete) continue;
    ++joined;
    for (size_t r = 0; r < rows.size(); ++r) since_send[r].push_back(at[r]);
  }
  std::printf(
      "critical path of %zu writes (of %zu acknowledged), us since "
      "the client sent:\n",
      joined, writes.size());
  std::printf("  %-28s %9s %9s %9s\n", "stage", "p50", "p90", "step p50");
  double previous = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const double p50 = Quantile(since_send[r], 0.5);
    std::printf("  %-28s %9.1f %9.1f %9.1f\n", rows[r].label, p50,
                Quantile(since_send[r], 0.9), p50 - previous);
    previous = p50;
  }
  return joined;
}

double FsyncMicros(const std::string& dir, int n) {
  const std::string path = dir + "/fsync-probe";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 0;
  const std::string page(4096, 'p');
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (pwrite(fd, page.data(), page.size(),
               static_cast<off_t>(i % 64) * 4096) < 0 ||
        fdatasync(fd) != 0) {
      break;
    }
    us.push_back(std::chrono::duration<double, std::micro>(
                     std::chrono::steady_clock::now() - t0)
                     .count());
  }
  close(fd);
  unlink(path.c_str());
  return Quantile(us, 0.5);
}

}  // namespace raftsql::bench
