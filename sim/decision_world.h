// The DecisionMaker inside the simulator (DESIGN.md §6, issue 18): the
// simulated edges' sensors carry labelled faults (a spike, a drift, a
// stuck sensor, a gap, duplicated uploads), the hub's rules (ai/rules.h)
// or its model through a model rule (ai/model_registry.h) are evaluated on
// whichever node leads, across the cluster's and the edges' faults, and
// each decision goes through Raft, the guard rails and the audit as on
// the server.
//
// The decision maker here drives ai::Evaluate as the server's does
// (server/decision_maker.h): from the replicated progress, read once a
// leader has applied everything committed before its term; one
// evaluation in flight; a failed or unanswered write starts over from the
// replicated progress. It differs in what wakes it: the simulated state
// machines keep no change log, so it evaluates every rule each interval
// in which the leader applied anything.
//
// Checkers, at the end on the leader's tables:
// - nothing disallowed is issued: every issued command is allow-listed
//   for its device, and the canary rules (a command nobody allowed, a
//   parameter out of its range) are blocked every time they fire;
// - no trigger is acted on twice: committed evaluations cover disjoint
//   ranges of the log, and a rule issues a device's commands no closer
//   than its cooldown;
// - nothing is decided from uncommitted data: an evaluation proposed
//   through index I had I committed on its leader (checked as proposed),
//   and no audit row names an index beyond the final commit.
// Figures (not pass or fail): for each labelled fault, whether a command
// with the runbook's action for it (ai/model/situations.py's `expert`)
// was issued while it lasted or soon after (recall), and how many issued
// commands were such an action (precision).
#ifndef RAFTSQL_SIM_DECISION_WORLD_H_
#define RAFTSQL_SIM_DECISION_WORLD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ai/model_registry.h"
#include "edge/sensors.h"
#include "sim/edge_world.h"
#include "sim/event_queue.h"
#include "sm/command.h"

namespace raftsql::sim {

enum class DecisionMode { kNone, kRules, kModel };

struct DecisionWorldOptions {
  DecisionMode mode = DecisionMode::kRules;
  uint64_t seed = 1;
  int edges = 4;
  // kModel: the directory holding hub-actions.gguf, the shipped model.
  std::string model_dir;
  Time interval = 1 * kSecond;    // Between evaluations.
  Time scenario = 180 * kSecond;  // The labelled faults happen within it.
  // The checkers' self-test: a leader's decision maker starts from index
  // 0 instead of the replicated progress, and its evaluations advance the
  // progress unconditionally (no compare-and-set).
  bool broken_progress = false;
};

// A labelled fault of one device's sensor, in device time.
struct Episode {
  int edge = 0;  // Its device is dev-<edge>.
  std::string device;
  std::string sensor;
  std::string kind;    // spike, drift, stuck, gap, duplicates
  std::string action;  // The runbook's ("none" for duplicates).
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  double amplitude = 0;  // Spike: the value; drift: the offset.
};

class DecisionWorld {
 public:
  DecisionWorld(const DecisionWorldOptions& options, EventQueue* queue,
                HubCluster* hub);
  ~DecisionWorld();

  // The operator's set-up (tables, allow-list, rules, the model), then an
  // evaluation every interval.
  void Start();
  // Edge `edge`'s sensor (a new one per boot; the signal is a function of
  // time, so a restarted edge goes on with it); silent once `*stop`.
  std::unique_ptr<edge::Source> Sensor(int edge, const bool* stop);
  // Whether an upload edge `edge` sends now is delivered twice.
  bool DuplicateUploads(int edge, int64_t now_ms) const;
  // The labelled faults are over.
  bool Done() const;
  // Runs the checkers and counts the figures (on the tables at `node`).
  void Check(uint64_t node);
  // The figures, by name (summed over seeds by the caller).
  const std::map<std::string, uint64_t>& tally() const { return tally_; }
  struct AuditRow;  // One row of ai_audit (decision_checks.cc).

 private:
  void SetUp();
  sm::Command SetUpCommand(int step) const;
  void Turn();
  void Evaluate(uint64_t node);
  // Marks the faults whose readings the hub at `node` holds (for a gap:
  // the readings after it).
  void MarkSeen(uint64_t node);
  void CheckEvaluations(const std::vector<AuditRow>& audit, uint64_t committed);
  void CountFigures(const std::vector<AuditRow>& audit);

  // A device's sensor: which (kSensors), its mean, how often it samples,
  // its noise's seed.
  struct Signal {
    int sensor = 0;
    double mean = 0;
    int64_t period_ms = 0;
    uint64_t seed = 0;
  };
  // A node's decision maker, as the server runs one on every node (it acts
  // while the node leads): the process it belongs to, the replicated
  // progress as read or written there, how far it evaluated, whether its
  // evaluation is on the way, and the node's models.
  struct Maker {
    uint64_t incarnation = 0;
    bool have_progress = false;
    uint64_t progress = 0;
    uint64_t evaluated = 0;
    int64_t progress_written_ms = 0;
    bool writing = false;
    std::unique_ptr<ai::ModelRegistry> models;
  };

  const DecisionWorldOptions options_;
  EventQueue* const queue_;
  HubCluster* const hub_;
  std::vector<Signal> signals_;  // By edge - 1.
  std::vector<Episode> episodes_;
  std::vector<bool> seen_;    // By episode: its readings reached the hub.
  std::string model_sha256_;  // kModel: the shipped model's.
  int set_up_steps_ = 0;      // The operator's commands committed so far.
  uint64_t set_up_tries_ = 0;
  std::map<uint64_t, Maker> makers_;  // By node.
  // Every evaluation proposed: the index it evaluated through -> the
  // progress it started from (several leaders may propose through one).
  std::map<uint64_t, std::set<uint64_t>> proposed_;
  std::map<std::string, uint64_t> tally_;
};

}  // namespace raftsql::sim

#endif  // RAFTSQL_SIM_DECISION_WORLD_H_
