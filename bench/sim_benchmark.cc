// Simulator throughput: events per second of wall time on one core, and the
// wall time of one default seed (5 nodes, 8 clients, ~2,000 client
// operations, every fault kind drawn per seed).
//
//   ./bazelw run -c opt //bench:sim_benchmark
#include "benchmark/benchmark.h"
#include "sim/simulation.h"

namespace raftsql::sim {
namespace {

void BM_DefaultSeed(benchmark::State& state) {
  uint64_t seed = 1;
  uint64_t events = 0;
  uint64_t failed = 0;
  for (auto _ : state) {
    SimOptions o;
    o.seed = seed++;
    const SimResult r = Simulation(o).Run();
    events += r.events;
    failed += r.passed ? 0 : 1;
  }
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(events),
                                                  benchmark::Counter::kIsRate);
  state.counters["events/seed"] = benchmark::Counter(
      static_cast<double>(events), benchmark::Counter::kAvgIterations);
  state.counters["failed_seeds"] = static_cast<double>(failed);
  if (failed > 0) state.SkipWithError("a seed failed its checks");
}
BENCHMARK(BM_DefaultSeed)->Unit(benchmark::kMillisecond)->Iterations(50);

void BM_FaultFreeSeed(benchmark::State& state) {
  uint64_t seed = 1;
  uint64_t events = 0;
  for (auto _ : state) {
    SimOptions o;
    o.seed = seed++;
    o.fault_intensity = 0;
    const SimResult r = Simulation(o).Run();
    if (!r.passed) state.SkipWithError(r.failure.c_str());
    events += r.events;
  }
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(events),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FaultFreeSeed)->Unit(benchmark::kMillisecond)->Iterations(20);

}  // namespace
}  // namespace raftsql::sim
