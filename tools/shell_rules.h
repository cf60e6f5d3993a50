// The shell's DecisionMaker commands (ai/rules.h), each one request:
//   .rule add NAME WATCH COMMAND PARAMS_JSON CONDITION...
//   .rule veto NAME CONDITION...
//   .rule enable|disable|drop NAME
//   .allow COMMAND DEVICES [PARAM MIN MAX | approval]
//   .approve ID, .refuse ID
//   .model stage NAME FILE|SHA256, .model activate NAME
// and the listings .rules, .approvals, .audit [N], .models (SQL the shell
// runs).
// The first .rule or .allow brings the decision tables.
#ifndef RAFTSQL_TOOLS_SHELL_RULES_H_
#define RAFTSQL_TOOLS_SHELL_RULES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "net/client.h"
#include "sm/command.h"

namespace raftsql::tools {

// The request for a .rule or .allow line (`words` split from it);
// INVALID_ARGUMENT with the usage if malformed.
absl::StatusOr<v1::ExecuteRequest> RuleRequest(
    const std::vector<std::string>& words, const std::string& line);
// The request that answers a pending command (reads it first).
absl::StatusOr<v1::ExecuteRequest> ApprovalRequest(net::Client& client,
                                                   const std::string& id,
                                                   bool approve,
                                                   int64_t now_ms);
// The request for a .model line: stage NAME with FILE's SHA-256 (read
// here; the same file must be in each node's --model_dir as NAME.gguf)
// or a given SHA256; activate NAME (which must be staged: read first).
absl::StatusOr<v1::ExecuteRequest> ModelRequest(
    net::Client& client, const std::vector<std::string>& words, int64_t now_ms);
// The SQL behind .rules, .approvals, .audit [N] and .models; nullopt for
// others.
std::optional<std::string> RuleListing(const std::vector<std::string>& words);

v1::ExecuteRequest ToRequest(const sm::Command& command);

}  // namespace raftsql::tools

#endif  // RAFTSQL_TOOLS_SHELL_RULES_H_
