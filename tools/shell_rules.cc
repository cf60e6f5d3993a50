#include "tools/shell_rules.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ai/model_registry.h"
#include "ai/rules.h"
#include "server/convert.h"

namespace raftsql::tools {
namespace {

using sm::Statement;
using sm::Value;

constexpr char kUsage[] =
    "usage: .rule add NAME WATCH COMMAND PARAMS_JSON CONDITION... | .rule "
    "veto NAME CONDITION... | .rule enable|disable|drop NAME | .allow "
    "COMMAND DEVICES [PARAM MIN MAX | approval]";

// The text of `line` from its `n`th word on (words split on spaces).
std::string Rest(const std::string& line, const std::vector<std::string>& w,
                 size_t n) {
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) at = line.find(w[i], at) + w[i].size();
  at = line.find(w[n], at);
  return line.substr(at);
}

// The schema first (idempotent), then `s`, all or nothing.
v1::ExecuteRequest WithSchema(Statement s) {
  sm::Command c = ai::SchemaCommand();
  c.statements.push_back(std::move(s));
  c.transaction = true;
  return ToRequest(c);
}

Value T(const std::string& s) { return Value::Text(s); }

}  // namespace

v1::ExecuteRequest ToRequest(const sm::Command& command) {
  v1::ExecuteRequest r;
  r.set_transaction(command.transaction);
  for (const Statement& s : command.statements) {
    v1::Statement* out = r.add_statements();
    out->set_sql(s.sql);
    for (const Value& v : s.positional) {
      server::ToProto(v, out->add_positional());
    }
  }
  return r;
}

absl::StatusOr<v1::ExecuteRequest> RuleRequest(
    const std::vector<std::string>& w, const std::string& line) {
  const auto bad = [] { return absl::InvalidArgumentError(kUsage); };
  if (w[0] == ".allow") {
    if (w.size() == 3 || (w.size() == 4 && w[3] == "approval")) {
      return WithSchema(Statement{
          "INSERT INTO ai_allow(command, devices, param, approval) VALUES "
          "(?1, ?2, '', ?3) ON CONFLICT DO UPDATE SET approval = ?3",
          {T(w[1]), T(w[2]), Value::Integer(w.size() == 4 ? 1 : 0)},
          {}});
    }
    double lo, hi;
    if (w.size() != 6 || !absl::SimpleAtod(w[4], &lo) ||
        !absl::SimpleAtod(w[5], &hi)) {
      return bad();
    }
    return WithSchema(Statement{
        "INSERT OR REPLACE INTO ai_allow(command, devices, param, min, max) "
        "VALUES (?1, ?2, ?3, ?4, ?5)",
        {T(w[1]), T(w[2]), T(w[3]), Value::Real(lo), Value::Real(hi)},
        {}});
  }
  if (w.size() < 3) return bad();
  if (w[1] == "add" && w.size() >= 7) {
    return WithSchema(Statement{
        "INSERT OR REPLACE INTO ai_rules(name, watch, command, params, "
        "condition) VALUES (?1, ?2, ?3, ?4, ?5)",
        {T(w[2]), T(w[3]), T(w[4]), T(w[5]), T(Rest(line, w, 6))},
        {}});
  }
  if (w[1] == "veto" && w.size() >= 4) {
    return WithSchema(Statement{
        "INSERT OR REPLACE INTO ai_rules(name, kind, condition) VALUES (?1, "
        "'veto', ?2)",
        {T(w[2]), T(Rest(line, w, 3))},
        {}});
  }
  if (w.size() != 3) return bad();
  if (w[1] == "enable" || w[1] == "disable") {
    return ToRequest(sm::Command{
        {Statement{"UPDATE ai_rules SET enabled = ?2 WHERE name = ?1",
                   {T(w[2]), Value::Integer(w[1] == "enable" ? 1 : 0)},
                   {}}}});
  }
  if (w[1] == "drop") {
    return ToRequest(sm::Command{
        {Statement{"DELETE FROM ai_rules WHERE name = ?1", {T(w[2])}, {}}}});
  }
  return bad();
}

absl::StatusOr<v1::ExecuteRequest> ApprovalRequest(net::Client& client,
                                                   const std::string& id,
                                                   bool approve,
                                                   int64_t now_ms) {
  const Statement s = ai::ApprovalQuery(id);
  v1::QueryRequest q;
  q.mutable_statement()->set_sql(s.sql);
  q.mutable_statement()->add_positional()->set_text(id);
  q.set_consistency(v1::LINEARIZABLE);
  absl::StatusOr<v1::QueryResponse> r = client.Query(q);
  if (!r.ok()) return r.status();
  sm::QueryResult rows;
  for (const v1::Row& row : r->rows()) {
    std::vector<Value> values;
    for (const v1::Value& v : row.values()) {
      values.push_back(server::FromProto(v));
    }
    rows.rows.push_back(std::move(values));
  }
  absl::StatusOr<sm::Command> c = ai::AnswerApproval(rows, approve, now_ms);
  if (!c.ok()) return c.status();
  return ToRequest(*c);
}

absl::StatusOr<v1::ExecuteRequest> ModelRequest(
    net::Client& client, const std::vector<std::string>& w, int64_t now_ms) {
  const auto bad = [] {
    return absl::InvalidArgumentError(
        "usage: .model stage NAME FILE|SHA256 | .model activate NAME");
  };
  if (w.size() == 4 && w[1] == "stage") {
    std::string sha = w[3];
    bool hex = sha.size() == 64;
    for (char c : sha) hex = hex && absl::ascii_isxdigit(c);
    if (!hex) {  // A file: its hash.
      absl::StatusOr<std::string> bytes =
          ai::ReadWholeFile(w[3], ai::kMaxModelBytes);
      if (!bytes.ok()) return bytes.status();
      sha = ai::Sha256Hex(*bytes);
    }
    absl::StatusOr<sm::Command> c = ai::StageModelCommand(w[2], sha, now_ms);
    if (!c.ok()) return c.status();
    return ToRequest(*c);
  }
  if (w.size() == 3 && w[1] == "activate") {
    v1::QueryRequest q;
    q.mutable_statement()->set_sql(
        "SELECT count(*) FROM ai_models WHERE name = ?1");
    q.mutable_statement()->add_positional()->set_text(w[2]);
    q.set_consistency(v1::LINEARIZABLE);
    absl::StatusOr<v1::QueryResponse> r = client.Query(q);
    if (!r.ok()) return r.status();
    if (r->rows_size() == 0 || r->rows(0).values(0).integer() == 0) {
      return absl::NotFoundError(
          absl::StrCat("no model ", w[2], " is staged (.model stage)"));
    }
    return ToRequest(ai::ActivateModelCommand(w[2], now_ms));
  }
  return bad();
}

std::optional<std::string> RuleListing(const std::vector<std::string>& w) {
  if (w[0] == ".models") {
    return "SELECT name, state, sha256, datetime(at_ms / 1000, 'unixepoch') "
           "AS at FROM ai_models ORDER BY at_ms DESC, name";
  }
  if (w[0] == ".rules") {
    return "SELECT name, kind, enabled, priority, watch, command, params, "
           "cooldown_ms, condition FROM ai_rules ORDER BY priority DESC, name";
  }
  if (w[0] == ".approvals") {
    return "SELECT command_id, rule, device, command, params, status, "
           "datetime(requested_ms / 1000, 'unixepoch') AS requested FROM "
           "ai_approvals ORDER BY requested_ms DESC LIMIT 50";
  }
  if (w[0] == ".audit") {
    int64_t n = 20;
    if (w.size() == 2 && (!absl::SimpleAtoi(w[1], &n) || n <= 0)) n = 20;
    return absl::StrCat(
        "SELECT at_index, datetime(at_ms / 1000, 'unixepoch') AS at, rule, "
        "device, verdict, command_id, guard, score FROM ai_audit ORDER BY "
        "at_ms DESC, at_index DESC LIMIT ",
        std::min<int64_t>(n, 1000));
  }
  return std::nullopt;
}

}  // namespace raftsql::tools
