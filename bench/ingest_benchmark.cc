// The hub's ingest as one replica applies it: edge uploads (the hub
// session's own UploadCommand, 100 readings each, 20 devices round robin)
// applied in batches of 64 entries to a file database, as deployed (WAL,
// checkpoints on their thread, the change log on). Unlike edge_load, which
// runs three nodes, TLS and the edges on two shared cores, this measures
// the state machine alone, one thread, so a change to the apply path shows
// as its own figure: readings/s and CPU microseconds a reading.
//
//   ./bazelw run -c opt //bench:ingest_benchmark
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "edge/hub_sql.h"
#include "sm/sqlite_state_machine.h"

namespace raftsql {
namespace {

constexpr int kDevices = 20;
constexpr int kBatch = 64;  // Entries per apply batch.
constexpr int kReadingsPerUpload = 100;
constexpr int64_t kNowMs = 1'700'000'000'000;

std::string TempPath() {
  char dir[] = "/tmp/raftsql-ingest-XXXXXX";
  if (mkdtemp(dir) == nullptr) std::abort();
  return std::string(dir) + "/db";
}

double ThreadCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

class Hub {
 public:
  explicit Hub(bool change_log) {
    sm::SqliteOptions options{path_};
    if (!change_log) options.change_log_bytes = 0;
    auto opened = sm::SqliteStateMachine::Open(options);
    if (!opened.ok()) std::abort();
    sm_ = std::move(*opened);
    Apply(edge::SchemaCommand());
    for (int d = 0; d < kDevices; ++d) {
      absl::StatusOr<sm::CommandResult> hello = sm::CommandResult::Decode(
          Apply(edge::HelloCommand(Device(d), "inc", "s", 1, kNowMs)));
      if (!hello.ok()) std::abort();
      absl::StatusOr<edge::StreamAck> ack = edge::AckedOf(*hello);
      if (!ack.ok()) std::abort();
      streams_.push_back(ack->stream);
      next_sequence_.push_back(1);
    }
  }
  ~Hub() {
    sm_.reset();
    std::filesystem::remove_all(path_.substr(0, path_.rfind('/')));
  }

  // Encodes the next batch (not timed: the leader encodes at proposal
  // time, not in apply).
  void NextBatch() {
    batch_.clear();
    for (int e = 0; e < kBatch; ++e) {
      const int d = device_++ % kDevices;
      edge::Upload u;
      for (int r = 0; r < kReadingsPerUpload; ++r) {
        const uint64_t seq = next_sequence_[d]++;
        u.readings.push_back(edge::Reading{
            r % 2 == 0 ? "temperature" : "pressure",
            20.0 + static_cast<double>(seq % 97) * 0.125,
            r % 2 == 0 ? "C" : "kPa", kNowMs + static_cast<int64_t>(seq), seq});
      }
      u.oldest_sequence = u.readings.front().sequence;
      batch_.push_back(core::Entry{
          1, 0, core::EntryType::kNormal,
          edge::UploadCommand(Device(d), streams_[d], u, kNowMs).Encode()});
    }
  }
  // Applies the batch NextBatch encoded, as the Raft loop does.
  void ApplyBatch() {
    for (core::Entry& e : batch_) e.index = ++index_;
    sm_->ApplyBatch(batch_, &results_);
    benchmark::DoNotOptimize(results_.data());
    readings_ += int64_t{kBatch} * kReadingsPerUpload;
  }
  int64_t readings() const { return readings_; }
  // Every reading must have been stored: a failing upload is cheap and
  // would inflate the figure.
  bool StoredEveryReading() {
    absl::StatusOr<sm::QueryResult> count =
        sm_->Query(sm::Statement{"SELECT count(*) FROM edge_readings", {}, {}});
    return count.ok() && count->rows.size() == 1 &&
           count->rows[0][0].integer == readings_;
  }

 private:
  static std::string Device(int d) { return absl::StrCat("device-", d); }
  std::string Apply(const sm::Command& c) {
    return sm_->Apply(
        core::Entry{1, ++index_, core::EntryType::kNormal, c.Encode()});
  }

  const std::string path_ = TempPath();
  std::unique_ptr<sm::SqliteStateMachine> sm_;
  std::vector<uint64_t> streams_;
  std::vector<uint64_t> next_sequence_;
  std::vector<core::Entry> batch_;
  std::vector<std::string> results_;
  uint64_t index_ = 0;
  int device_ = 0;
  int64_t readings_ = 0;
};

// Arg: 1 with the change log (as deployed), 0 without.
void BM_ApplyUploads(benchmark::State& state) {
  Hub hub(state.range(0) != 0);
  double cpu = 0;
  for (auto _ : state) {
    hub.NextBatch();
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = ThreadCpuSeconds();
    hub.ApplyBatch();
    cpu += ThreadCpuSeconds() - cpu_start;
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
  }
  state.counters["readings/s"] = benchmark::Counter(
      static_cast<double>(hub.readings()), benchmark::Counter::kIsRate);
  state.counters["cpu_us/reading"] =
      cpu * 1e6 / static_cast<double>(hub.readings());
  if (!hub.StoredEveryReading()) {
    state.SkipWithError("the state machine did not store every reading");
  }
}
BENCHMARK(BM_ApplyUploads)
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->MinTime(3.0);

}  // namespace
}  // namespace raftsql

BENCHMARK_MAIN();
