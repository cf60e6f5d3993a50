// Shared by the verify scenarios (tests/verify*.cc): logging with timings,
// checks that throw Failure, requests, and waits on a local cluster.
#ifndef RAFTSQL_TESTS_VERIFY_UTIL_H_
#define RAFTSQL_TESTS_VERIFY_UTIL_H_

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "net/client.h"
#include "tools/local_cluster.h"

namespace raftsql::verify {

using tools::LocalCluster;
using Clock = std::chrono::steady_clock;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Prints `what` with the seconds since the program started.
void Log(const std::string& what);
// Throws Failure(what) unless ok.
void Check(bool ok, const std::string& what);
template <typename T>
T Ok(absl::StatusOr<T> r, const std::string& what) {
  if (!r.ok()) throw Failure(absl::StrCat(what, ": ", r.status().ToString()));
  return std::move(*r);
}
v1::ExecuteRequest Sql(const std::string& sql,
                       std::vector<int64_t> params = {});
v1::QueryRequest Read(const std::string& sql, bool linearizable);
// A client that talks to one node only (so followers must forward).
net::Client Pinned(LocalCluster& c, int id);
int64_t Count(net::Client& client, const std::string& sql, bool lin);
// The single value `sql` counts on each of nodes 1..nodes, read locally;
// fails (saying `when`) unless they all agree.
int64_t CountOnEveryNode(LocalCluster& c, int nodes, const std::string& sql,
                         const std::string& when);
// Waits until every running node applied the same index (at least `min`)
// and reports the same divergence hash.
void WaitConverged(LocalCluster& c, int nodes, uint64_t min,
                   int timeout_ms = 30'000);
int WaitLeader(LocalCluster& c, int not_this = 0);
uint64_t MaxApplied(LocalCluster& c, int nodes);

// tests/verify_hostile.cc: hostile and careless input (`server` is the
// raftsql_server binary, `dir` a scratch directory).
void Hostile(LocalCluster& c, const std::string& server,
             const std::string& dir);
// tests/verify_boot.cc: a cluster booted from a file (`dir`: scratch),
// on a cluster of one node that two more join.
void Boot(LocalCluster& c, const std::string& dir);
// Nodes with separate peer ports (the cluster made with peer_ports).
void PeerPort(LocalCluster& c);
// Scenario divergence (verify_divergence.cc).
void Divergence(LocalCluster& c);
// Scenario outcome_unknown (verify_outcome.cc).
void OutcomeUnknown(LocalCluster& c);
void FsyncFailure(LocalCluster& c, const std::string& shim,
                  const std::string& dir);
// Scenario forwarded_across_election (verify_outcome.cc).
void ForwardedAcrossElection(LocalCluster& c);
// Scenario vacuum (verify_vacuum.cc).
void VacuumScenario(LocalCluster& c);
// Scenario edges (verify_edges.cc): `agent` is the //edge:agent binary,
// `dir` a scratch directory.
// What an edge agent's store holds (read while the agent is not running).
struct StoreFacts {
  std::string incarnation;
  int64_t stored = 0;
  int64_t dropped = 0;
  int64_t executed = 0;  // Commands it ran.
};
StoreFacts ReadStore(const std::string& path);

void Edges(LocalCluster& c, const std::string& agent, const std::string& dir);

// Scenario nemesis (verify_nemesis.cc): seeded faults on real processes,
// the clients' histories checked afterwards.
struct NemesisOptions {
  uint64_t seed = 1;
  int seconds = 20;  // Of faults; the clients go on 3 s more.
  int clients = 4;
  int keys = 8;      // Registers.
  int accounts = 5;  // Bank accounts.
  // Clock jumps ahead too, not only back (--forward_clock_jumps): they
  // stall gRPC's timers in the node (README, the nemesis; mitigated by
  // server/grpc_timer_kick.h, windows of up to 20 s remain).
  bool forward_clock_jumps = false;
};
void Nemesis(LocalCluster& c, const NemesisOptions& o);
// What node `data_dir`'s process needs in its environment for the
// nemesis's clock jumps (empty where libfaketime is not installed).
std::vector<std::string> NemesisNodeEnv(const std::string& data_dir);
// Scenario cut_off_leader (verify_nemesis.cc): a write to a leader cut off
// from its peers is answered "outcome unknown" once it steps down, not
// when the cut heals; its retry under the session applies it once.
void CutOffLeader(LocalCluster& c);
void Decisions(LocalCluster& c, const std::string& agent,
               const std::string& dir);
// Scenario grow (verify_grow.cc), with this catch-up rate.
inline constexpr uint64_t kGrowSnapshotBytesPerSecond = 64 << 20;
void Grow(LocalCluster& c);

}  // namespace raftsql::verify

#endif  // RAFTSQL_TESTS_VERIFY_UTIL_H_
