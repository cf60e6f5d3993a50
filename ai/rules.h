// The DecisionMaker's rules and guard rails (DESIGN.md §6), with no
// transport, thread or clock: what the rules decide about the changes
// committed through an index, as one Raft command to propose. The server's
// DecisionMaker (server/decision_maker.h) runs it on the leader, fed by the
// change log; tests run it over a state machine directly.
//
// Everything lives in replicated tables, so every node agrees and a new
// leader carries on:
//   ai_rules      name, kind ('command' or 'veto'), watch (tables, comma-
//                 separated), condition (a SELECT: each row is a trigger and
//                 names its 'device'; an optional 'score' column goes to the
//                 audit), command, params (a JSON object template: a string
//                 value "$col" takes the row's column), cooldown_ms,
//                 priority, expires_ms, max_attempts, enabled
//   ai_allow      the allow-list: command, devices (a GLOB over device ids),
//                 param ('' for the command itself) with min/max, approval
//   ai_limits     'device_per_minute', 'command_per_minute' (issued commands)
//   ai_approvals  commands of classes that need an operator: pending,
//                 approved (then issued) or refused
//   ai_audit      one row per decision: rule, index, device, time, inputs
//                 (the trigger row as JSON), score, verdict (issued, blocked,
//                 pending), command id or the guard rail that blocked it
//   ai_models     the hub's models and their SHA-256 (model_registry.h)
//   ai_progress   the last index evaluated
//
// Guard rails, in this order, all enforced here, never by a rule or model:
// schema validation → allow-list with parameter ranges → vetoes (rules of
// kind 'veto': the devices their condition returns get nothing) → cooldown
// per rule and device, rate limits per device and per command → approval
// queue → the command (id, expiry, max attempts) → audit row.
//
// Exactly once: a decision's command id is derived from (rule, index,
// device), and the decision command advances ai_progress from the index
// it read only if no other leader advanced it meanwhile (else the whole
// command fails, nothing issued): a new leader starts after the last
// committed evaluation and never issues a trigger's command twice.
#ifndef RAFTSQL_AI_RULES_H_
#define RAFTSQL_AI_RULES_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sm/command.h"

namespace raftsql::ai {

inline constexpr size_t kMaxRules = 256;
inline constexpr size_t kMaxTriggersPerRule = 64;
inline constexpr int64_t kDefaultDevicePerMinute = 6;
inline constexpr int64_t kDefaultCommandPerMinute = 600;

// Creates the tables if missing (idempotent).
sm::Command SchemaCommand();
// Whether `status` says the ai tables are missing.
bool IsMissingSchema(const absl::Status& status);

// Reads the current state (the leader's, at or after the index evaluated).
using QueryFn =
    std::function<absl::StatusOr<sm::QueryResult>(const sm::Statement&)>;

// A rule whose command is this lets the hub's model choose it
// (model_registry.h): the condition's rows are situations (columns
// device, sensor, value, mean, z, rate, stuck, gap; situation.h), and the
// model scores the commands the allow-list has for the device, and
// "none". Its choice then goes through every guard rail as a rule's
// command does; the audit keeps the situation, the model, its
// probability and its rationale. Without an active model the trigger is
// blocked ("model: ...").
inline constexpr char kModelCommand[] = "@model";

struct ModelChoice {
  std::string action;  // One of the candidates.
  double probability = 0;
  std::string rationale;
  std::string model;  // Its name and hash, for the audit.
};
using ModelFn = std::function<absl::StatusOr<ModelChoice>(
    const std::string& situation, const std::vector<std::string>& candidates)>;

// The last index evaluated (0 before the first).
absl::StatusOr<uint64_t> ReadProgress(const QueryFn& query);

struct Evaluation {
  // Empty when there is nothing to write (no rule watches the tables).
  sm::Command command;
  int issued = 0;
  int blocked = 0;
  int pending = 0;
};

// What the enabled rules watching any of `tables` (lower case; a change
// of ai_rules itself counts for every rule, so that a new or changed rule
// is evaluated at once) decide
// about the changes committed through `index`, having read progress
// `progress`; decisions at `now_ms`. With `write_progress`, the command
// also advances the progress when nothing was decided.
absl::StatusOr<Evaluation> Evaluate(uint64_t progress, uint64_t index,
                                    const std::set<std::string>& tables,
                                    int64_t now_ms, const QueryFn& query,
                                    bool write_progress,
                                    const ModelFn& model = nullptr);

// An operator's answer to a pending command: approve issues it (with the
// expiry it would have had, counted from now), refuse ends it. The
// approval's row must be read first (ApprovalQuery).
sm::Statement ApprovalQuery(const std::string& command_id);
absl::StatusOr<sm::Command> AnswerApproval(const sm::QueryResult& approval,
                                           bool approve, int64_t now_ms);

// The id of the command a rule's trigger issues.
std::string CommandId(const std::string& rule, uint64_t index,
                      const std::string& device);

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_RULES_H_
