// A randomized election run on the in-memory test network: prints who led
// which term, what committed, and what the faults did. Deterministic per seed.
//
// usage: election_demo [--seed=N] [--nodes=N] [--ticks=N]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "core/prng.h"
#include "core/testing/network.h"
#include "tools/flags.h"

ABSL_FLAG(uint64_t, seed, 1, "the run's seed");
ABSL_FLAG(uint64_t, nodes, 5, "nodes of the network");
ABSL_FLAG(uint64_t, ticks, 300, "ticks to run");

namespace raftsql {
namespace {

int Main(int argc, char** argv) {
  tools::ParseFlags(argc, argv,
                    "a randomized election run on the core's in-memory test "
                    "network, deterministic per seed");
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const uint64_t nodes = absl::GetFlag(FLAGS_nodes);
  const uint64_t ticks = absl::GetFlag(FLAGS_ticks);
  core::Prng rng(seed);
  std::vector<uint64_t> ids;
  for (uint64_t i = 1; i <= nodes; ++i) ids.push_back(i);
  core::testing::NetworkOptions options;
  options.seed = seed;
  options.drop_probability = 0.05;
  options.reorder = true;
  core::testing::Network net(ids, options);
  std::printf("seed=%llu nodes=%llu ticks=%llu drop=5%% reorder=on\n",
              static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(nodes),
              static_cast<unsigned long long>(ticks));
  uint64_t last_leader = 0;
  uint64_t last_term = 0;
  int proposals = 0;
  for (uint64_t t = 0; t < ticks; ++t) {
    if (t % 60 == 30) {
      const uint64_t victim = ids[rng.Uniform(ids.size())];
      net.Isolate(victim);
      std::printf("t=%3llu  isolate node %llu\n",
                  static_cast<unsigned long long>(t),
                  static_cast<unsigned long long>(victim));
    } else if (t % 60 == 50) {
      net.Heal();
      std::printf("t=%3llu  heal\n", static_cast<unsigned long long>(t));
    }
    const uint64_t leader = net.Leader();
    if (leader != core::kNone && rng.Chance(0.3)) {
      (void)net.Propose(leader, absl::StrCat("cmd-", proposals++));
    }
    net.TickAll();
    net.Stabilize();
    const uint64_t now_leader = net.Leader();
    if (now_leader != core::kNone &&
        (now_leader != last_leader ||
         net.raft(now_leader).term() != last_term)) {
      last_leader = now_leader;
      last_term = net.raft(now_leader).term();
      std::printf("t=%3llu  node %llu leads term %llu (commit %llu)\n",
                  static_cast<unsigned long long>(t),
                  static_cast<unsigned long long>(now_leader),
                  static_cast<unsigned long long>(last_term),
                  static_cast<unsigned long long>(
                      net.raft(now_leader).log().committed()));
    }
  }
  net.Heal();
  for (int i = 0; i < 50; ++i) {
    net.TickAll();
    net.Stabilize();
  }
  for (uint64_t id : ids) {
    std::printf(
        "node %llu: term %llu, applied %zu commands, last index %llu\n",
        static_cast<unsigned long long>(id),
        static_cast<unsigned long long>(net.raft(id).term()),
        net.applied(id).size(),
        static_cast<unsigned long long>(net.raft(id).log().LastIndex()));
  }
  if (!net.violation().empty()) {
    std::printf("SAFETY VIOLATION: %s\n", net.violation().c_str());
    return 1;
  }
  std::printf("safety checks passed; %d commands proposed\n", proposals);
  return 0;
}

}  // namespace
}  // namespace raftsql

int main(int argc, char** argv) { return raftsql::Main(argc, argv); }
