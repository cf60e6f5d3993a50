// The DecisionMaker's driver (DESIGN.md §6, ai/rules.h): on the leader
// only, a thread follows the node's change log from the replicated
// progress on, and every interval evaluates the rules watching the tables
// that changed, proposing each evaluation's decisions (commands, approval
// requests, audit rows and the progress) as one command through Raft.
// It decides from committed data only: the change log holds what applied.
// Until the decision tables exist (the first rule brings them) it only
// looks for them, once a second.
// A node that stops leading stops deciding; the next leader starts after
// the last evaluation that committed.
#ifndef RAFTSQL_SERVER_DECISION_MAKER_H_
#define RAFTSQL_SERVER_DECISION_MAKER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "ai/model_registry.h"
#include "server/raft_server.h"

namespace raftsql::server {

struct DecisionMakerOptions {
  // How often the leader evaluates what changed (0: never: no thread).
  int interval_ms = 100;
  // An evaluation that decided nothing still records its progress this
  // often, so that a new leader re-reads little.
  int progress_every_ms = 10'000;
  // The hub's model files (ai/model_registry.h).
  std::string model_dir;
};

class DecisionMaker {
 public:
  DecisionMaker(RaftServer* node, DecisionMakerOptions options);
  ~DecisionMaker();
  void Shutdown();

 private:
  void Run();
  // One turn on the leader; false to start over (progress re-read).
  bool Turn();

  RaftServer* const node_;
  const DecisionMakerOptions options_;
  std::unique_ptr<sm::ChangeLog::Cursor> cursor_;
  uint64_t progress_ = 0;   // Replicated (as this leader last wrote it).
  uint64_t evaluated_ = 0;  // Through here (progress_ or beyond).
  int64_t progress_written_ms_ = 0;
  int64_t idle_until_ms_ = 0;
  uint64_t evaluations_ = 0;  // Rule evaluations run (thread only).
  ai::ModelRegistry models_;  // Thread only.
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_DECISION_MAKER_H_
