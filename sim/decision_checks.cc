// DecisionWorld's checkers and figures (sim/decision_world.h).
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sim/decision_world.h"
#include "sim/decision_world_internal.h"

namespace raftsql::sim {
namespace {

std::string Text(const sm::Value& v) {
  return v.type == sm::Value::Type::kText ? v.bytes : std::string();
}

}  // namespace

// One row of ai_audit.
struct DecisionWorld::AuditRow {
  std::string rule;
  uint64_t index = 0;
  std::string device;
  int64_t at_ms = 0;
  std::string command;
  std::string verdict;
  std::string inputs;
};

namespace {

std::vector<DecisionWorld::AuditRow> AuditRows(const sm::QueryResult& r) {
  std::vector<DecisionWorld::AuditRow> out;
  for (const std::vector<sm::Value>& row : r.rows) {
    out.push_back(DecisionWorld::AuditRow{
        Text(row[0]), static_cast<uint64_t>(row[1].integer), Text(row[2]),
        row[3].integer, Text(row[4]), Text(row[5]), Text(row[6])});
  }
  return out;
}

}  // namespace

void DecisionWorld::Check(uint64_t node) {
  if (set_up_steps_ < 3) {
    hub_->Violation("decisions: the operator's set-up never committed");
    return;
  }
  absl::StatusOr<sm::QueryResult> audit = hub_->Read(
      node, sm::Statement{"SELECT rule, at_index, device, at_ms, command, "
                          "verdict, inputs FROM ai_audit ORDER BY at_index, "
                          "rule, "
                          "device",
                          {},
                          {}});
  if (!audit.ok()) {
    hub_->Violation(absl::StrCat("decisions: the audit does not read: ",
                                 audit.status().message()));
    return;
  }
  absl::StatusOr<sm::QueryResult> unlisted = hub_->Read(
      node,
      sm::Statement{"SELECT count(*) FROM ai_audit a WHERE verdict = 'issued' "
                    "AND NOT EXISTS (SELECT 1 FROM ai_allow w WHERE w.command "
                    "= a.command AND w.param = '' AND a.device GLOB "
                    "w.devices)",
                    {},
                    {}});
  if (!unlisted.ok() || unlisted->rows[0][0].integer != 0) {
    hub_->Violation("decisions: a command not on the allow-list was issued");
    return;
  }
  const std::vector<AuditRow> decisions = AuditRows(*audit);
  CheckEvaluations(decisions, hub_->Committed(node));
  CountFigures(decisions);
}

void DecisionWorld::CheckEvaluations(const std::vector<AuditRow>& decisions,
                                     uint64_t committed) {
  // Committed evaluations cover disjoint ranges of the log: each one's
  // progress was the index the one before evaluated through.
  uint64_t last = 0;
  for (const AuditRow& d : decisions) {
    if (d.index > committed) {
      return hub_->Violation(absl::StrFormat(
          "decisions: audited at index %d, beyond the commit index %d", d.index,
          committed));
    }
    if (d.index == last) continue;
    auto it = proposed_.find(d.index);
    if (it == proposed_.end()) {
      return hub_->Violation(absl::StrFormat(
          "decisions: an evaluation through %d nobody proposed", d.index));
    }
    // Where several leaders proposed through one index, the latest start
    // (the benefit of the doubt).
    const uint64_t from = *it->second.rbegin();
    if (from < last) {
      return hub_->Violation(absl::StrFormat(
          "decisions: the evaluations through %d and %d both cover %d..%d",
          last, d.index, from + 1, last));
    }
    last = d.index;
  }
  // A rule's commands for a device are at least its cooldown apart; a
  // trigger acted on twice would not be. Canaries are never issued.
  std::map<std::pair<std::string, std::string>, int64_t> previous;
  for (const AuditRow& d : decisions) {
    const bool canary = absl::StartsWith(d.rule, "canary-");
    if (canary) {
      ++tally_["canary triggers"];
      if (d.verdict != "issued") ++tally_["canary blocked"];
    }
    if (d.verdict != "issued") continue;
    if (canary) {
      return hub_->Violation(absl::StrFormat(
          "decisions: canary %s issued %s to %s", d.rule, d.command, d.device));
    }
    auto [it, first] = previous.emplace(std::pair{d.rule, d.device}, d.at_ms);
    if (!first && d.at_ms - it->second < kCooldownMs) {
      return hub_->Violation(absl::StrFormat(
          "decisions: %s issued %s to %s at %dms and again at %dms", d.rule,
          d.command, d.device, it->second, d.at_ms));
    }
    it->second = d.at_ms;
  }
}

void DecisionWorld::CountFigures(const std::vector<AuditRow>& decisions) {
  std::vector<bool> detected(episodes_.size(), false);
  std::vector<bool> acted(episodes_.size(), false);
  for (const AuditRow& d : decisions) {
    if (absl::StartsWith(d.rule, "canary-")) continue;
    if (d.verdict != "issued") {
      hub_->Trace(absl::StrFormat("decision %s: %s %s at %dms (%s)", d.verdict,
                                  d.command, d.device, d.at_ms, d.inputs));
      continue;
    }
    ++tally_["issued"];
    bool correct = false, during = false;
    for (size_t i = 0; i < episodes_.size(); ++i) {
      const Episode& e = episodes_[i];
      if (e.device != d.device || d.at_ms < e.from_ms ||
          d.at_ms > e.to_ms + kGraceMs) {
        continue;
      }
      during = true;
      acted[i] = true;
      if (e.action == d.command) {
        correct = true;
        detected[i] = true;
      }
    }
    const char* what = correct  ? "issued: the runbook's action"
                       : during ? "issued: another action during a fault"
                                : "issued: no fault";
    ++tally_[what];
    hub_->Trace(absl::StrFormat("decision %s: %s %s at %dms (%s)", what,
                                d.command, d.device, d.at_ms, d.inputs));
  }
  for (size_t i = 0; i < episodes_.size(); ++i) {
    const Episode& e = episodes_[i];
    hub_->Trace(absl::StrFormat(
        "fault %s %s of %s %d..%dms (%.1f): the runbook says %s; %s", e.kind,
        e.sensor, e.device, e.from_ms, e.to_ms, e.amplitude, e.action,
        detected[i] ? "done"
        : acted[i]  ? "other actions"
                    : "nothing done"));
    if (e.action == "none") {
      ++tally_[absl::StrCat("faults ", e.kind)];
      if (!acted[i]) ++tally_[absl::StrCat("faults ", e.kind, " left alone")];
      continue;
    }
    if (!seen_[i]) {
      // Lost on the way (a wiped edge, a full buffer, retention before the
      // leader looked): no decision could see it.
      ++tally_["faults the hub never held"];
      continue;
    }
    ++tally_["faults"];
    ++tally_[absl::StrCat("faults ", e.kind)];
    if (detected[i]) {
      ++tally_["faults acted on"];
      ++tally_[absl::StrCat("faults ", e.kind, " acted on")];
    }
  }
}

}  // namespace raftsql::sim
