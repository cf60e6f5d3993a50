#include "ai/rules.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "ai/situation.h"
#include "edge/hub_sql.h"

namespace raftsql::ai {
namespace {

using sm::Statement;
using sm::Value;

Value Text(std::string_view s) { return Value::Text(std::string(s)); }
Value Int(int64_t v) { return Value::Integer(v); }

constexpr size_t kMaxDecisionsPerEvaluation = 256;
constexpr int64_t kMinuteMs = 60'000;

constexpr const char* kSchema[] = {
    "CREATE TABLE IF NOT EXISTS ai_rules("
    "name TEXT PRIMARY KEY, "
    "kind TEXT NOT NULL DEFAULT 'command' CHECK(kind IN ('command', 'veto')), "
    "watch TEXT NOT NULL DEFAULT '', condition TEXT NOT NULL, "
    "command TEXT NOT NULL DEFAULT '', params TEXT NOT NULL DEFAULT '{}', "
    "cooldown_ms INTEGER NOT NULL DEFAULT 60000, "
    "priority INTEGER NOT NULL DEFAULT 0, "
    "expires_ms INTEGER NOT NULL DEFAULT 60000, "
    "max_attempts INTEGER NOT NULL DEFAULT 3, "
    "enabled INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS ai_allow("
    "command TEXT NOT NULL, devices TEXT NOT NULL DEFAULT '*', "
    "param TEXT NOT NULL DEFAULT '', min REAL, max REAL, "
    "approval INTEGER NOT NULL DEFAULT 0, "
    "PRIMARY KEY(command, devices, param)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS ai_limits("
    "name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS ai_approvals("
    "command_id TEXT PRIMARY KEY, rule TEXT NOT NULL, device TEXT NOT NULL, "
    "command TEXT NOT NULL, params TEXT NOT NULL, "
    "expires_in_ms INTEGER NOT NULL, max_attempts INTEGER NOT NULL, "
    "requested_ms INTEGER NOT NULL, "
    "status TEXT NOT NULL DEFAULT 'pending', decided_ms INTEGER) "
    "WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS ai_audit("
    "rule TEXT NOT NULL, at_index INTEGER NOT NULL, device TEXT NOT NULL, "
    "at_ms INTEGER NOT NULL, command TEXT NOT NULL DEFAULT '', "
    "inputs TEXT NOT NULL DEFAULT '{}', score REAL, "
    "verdict TEXT NOT NULL, command_id TEXT, guard TEXT, "
    "PRIMARY KEY(rule, at_index, device)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS ai_audit_rule ON ai_audit(rule, device, "
    "at_ms) WHERE verdict = 'issued'",
    "CREATE INDEX IF NOT EXISTS ai_audit_device ON ai_audit(device, at_ms) "
    "WHERE verdict = 'issued'",
    "CREATE INDEX IF NOT EXISTS ai_audit_command ON ai_audit(command, at_ms) "
    "WHERE verdict = 'issued'",
    "CREATE TABLE IF NOT EXISTS ai_models(name TEXT PRIMARY KEY, "
    "sha256 TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'staged' "
    "CHECK(state IN ('staged', 'active', 'retired')), at_ms INTEGER NOT "
    "NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS ai_progress("
    "name TEXT PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT OR IGNORE INTO ai_progress VALUES ('rules', 0)",
    // A row here never fits: the decision command inserts one only when
    // another leader advanced the progress first, which fails it whole.
    "CREATE TABLE IF NOT EXISTS ai_stale(x INTEGER CHECK(x IS NULL))",
};

struct Rule {
  std::string name, kind, condition, command, params;
  std::set<std::string> watch;
  int64_t cooldown_ms = 0, expires_ms = 0, max_attempts = 0;
};

std::string Json(const Value& v) {
  switch (v.type) {
    case Value::Type::kNull:
      return "null";
    case Value::Type::kInteger:
      return absl::StrCat(v.integer);
    case Value::Type::kReal:
      return std::isfinite(v.real) ? absl::StrFormat("%.17g", v.real) : "null";
    case Value::Type::kBlob:
    case Value::Type::kText: {
      std::string out = "\"";
      for (unsigned char c : v.bytes) {
        if (c == '"' || c == '\\') {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
      }
      return out + "\"";
    }
  }
  return "null";
}

std::string RowJson(const sm::QueryResult& r, size_t row) {
  std::string out = "{";
  for (size_t c = 0; c < r.columns.size(); ++c) {
    if (c > 0) out += ",";
    absl::StrAppend(&out, Json(Value::Text(r.columns[c])), ":",
                    Json(r.rows[row][c]));
  }
  return out + "}";
}

// The template with each string value "$col" replaced by the row's column.
std::string Substitute(const std::string& tmpl, const sm::QueryResult& r,
                       size_t row) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] == '"' && i + 1 < tmpl.size() && tmpl[i + 1] == '$') {
      size_t j = i + 2;
      while (j < tmpl.size() &&
             (absl::ascii_isalnum(static_cast<unsigned char>(tmpl[j])) ||
              tmpl[j] == '_')) {
        ++j;
      }
      if (j < tmpl.size() && tmpl[j] == '"') {
        const std::string name = tmpl.substr(i + 2, j - i - 2);
        auto col = std::find(r.columns.begin(), r.columns.end(), name);
        if (col != r.columns.end()) {
          out += Json(r.rows[row][col - r.columns.begin()]);
          i = j + 1;
          continue;
        }
      }
    }
    out += tmpl[i++];
  }
  return out;
}

std::optional<double> Number(const Value& v) {
  if (v.type == Value::Type::kInteger) return static_cast<double>(v.integer);
  if (v.type == Value::Type::kReal) return v.real;
  return std::nullopt;
}

int64_t IntOf(const Value& v) {
  return v.type == Value::Type::kInteger ? v.integer : 0;
}
std::string TextOf(const Value& v) {
  return v.type == Value::Type::kText ? v.bytes : "";
}

absl::StatusOr<int64_t> Count(const QueryFn& query, Statement s) {
  absl::StatusOr<sm::QueryResult> r = query(s);
  if (!r.ok()) return r.status();
  if (r->rows.empty() || r->rows[0].empty()) return 0;
  return IntOf(r->rows[0][0]);
}

// One trigger's way through the guard rails.
struct Verdict {
  std::string verdict;  // issued, blocked, pending
  std::string guard;    // why blocked (or what holds it)
  std::string params;
  bool approval = false;
};

class Evaluator {
 public:
  Evaluator(uint64_t index, int64_t now_ms, const QueryFn& query,
            const ModelFn& model)
      : index_(index), now_ms_(now_ms), query_(query), model_(model) {}

  absl::Status Load() {
    absl::StatusOr<sm::QueryResult> rules = query_(Statement{
        absl::StrCat("SELECT name, kind, watch, condition, command, params, "
                     "cooldown_ms, expires_ms, max_attempts FROM ai_rules "
                     "WHERE enabled = 1 ORDER BY priority DESC, name LIMIT ",
                     kMaxRules),
        {},
        {}});
    if (!rules.ok()) return rules.status();
    for (const auto& row : rules->rows) {
      Rule r;
      r.name = TextOf(row[0]);
      r.kind = TextOf(row[1]);
      for (absl::string_view t :
           absl::StrSplit(TextOf(row[2]), ',', absl::SkipWhitespace())) {
        r.watch.insert(absl::AsciiStrToLower(absl::StripAsciiWhitespace(t)));
      }
      r.condition = TextOf(row[3]);
      r.command = TextOf(row[4]);
      r.params = TextOf(row[5]);
      r.cooldown_ms = IntOf(row[6]);
      r.expires_ms = IntOf(row[7]);
      r.max_attempts = IntOf(row[8]);
      (r.kind == "veto" ? vetoes_ : rules_).push_back(std::move(r));
    }
    absl::StatusOr<sm::QueryResult> limits =
        query_(Statement{"SELECT name, value FROM ai_limits", {}, {}});
    if (!limits.ok()) return limits.status();
    for (const auto& row : limits->rows) {
      if (TextOf(row[0]) == "device_per_minute") device_limit_ = IntOf(row[1]);
      if (TextOf(row[0]) == "command_per_minute") {
        command_limit_ = IntOf(row[1]);
      }
    }
    return absl::OkStatus();
  }

  // Rules watching `tables`; each trigger through the guard rails.
  absl::Status Run(const std::set<std::string>& tables) {
    // A rule added, changed or enabled is evaluated at once, on what is
    // there now.
    const bool rules_changed = tables.count("ai_rules") > 0;
    bool any = rules_changed;
    for (const Rule& r : rules_) {
      for (const std::string& t : r.watch) any = any || tables.count(t) > 0;
    }
    if (!any) return absl::OkStatus();
    for (const Rule& v : vetoes_) {
      absl::StatusOr<sm::QueryResult> rows =
          query_(Statement{v.condition, {}, {}});
      if (!rows.ok()) {
        Audit(v, "", "", {}, std::nullopt, "error",
              absl::StrCat("veto rule failed: ", rows.status().message()));
        continue;
      }
      const int device = Column(*rows, "device");
      for (const auto& row : rows->rows) {
        if (device >= 0) vetoed_.emplace(TextOf(row[device]), v.name);
      }
    }
    for (const Rule& r : rules_) {
      bool watched = rules_changed;
      for (const std::string& t : r.watch) watched |= tables.count(t) > 0;
      if (!watched) continue;
      absl::Status s = RunRule(r);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  sm::Command Finish(uint64_t progress, bool write_progress) {
    if (statements_.empty() && !write_progress) return {};
    statements_.push_back(Statement{
        "UPDATE ai_progress SET idx = ?2 WHERE name = 'rules' AND idx = ?1",
        {Int(static_cast<int64_t>(progress)),
         Int(static_cast<int64_t>(index_))},
        {}});
    statements_.push_back(
        Statement{"INSERT INTO ai_stale SELECT 1 WHERE changes() = 0", {}, {}});
    sm::Command c;
    c.statements = std::move(statements_);
    c.transaction = true;
    c.timestamp_ms = now_ms_;
    return c;
  }

  int issued = 0, blocked = 0, pending = 0;

 private:
  static int Column(const sm::QueryResult& r, const char* name) {
    for (size_t i = 0; i < r.columns.size(); ++i) {
      if (absl::EqualsIgnoreCase(r.columns[i], name))
        return static_cast<int>(i);
    }
    return -1;
  }

  absl::Status RunRule(const Rule& r) {
    absl::StatusOr<sm::QueryResult> rows =
        query_(Statement{r.condition, {}, {}});
    if (!rows.ok()) {
      Audit(r, "", r.command, "{}", std::nullopt, "error",
            absl::StrCat("condition failed: ", rows.status().message()));
      return absl::OkStatus();
    }
    if (r.command == kModelCommand) return RunModelRule(r, *rows);
    const int device_col = Column(*rows, "device");
    const int score_col = Column(*rows, "score");
    if (device_col < 0) {
      if (!rows->rows.empty()) {
        Audit(r, "", r.command, "{}", std::nullopt, "error",
              "the condition returns no 'device' column");
      }
      return absl::OkStatus();
    }
    const size_t n = std::min(rows->rows.size(), kMaxTriggersPerRule);
    for (size_t i = 0; i < n; ++i) {
      if (decisions_ >= kMaxDecisionsPerEvaluation) return absl::OkStatus();
      const std::string device = TextOf(rows->rows[i][device_col]);
      std::optional<double> score;
      if (score_col >= 0) score = Number(rows->rows[i][score_col]);
      absl::StatusOr<Verdict> v =
          Guard(r, device, Substitute(r.params, *rows, i));
      if (!v.ok()) return v.status();
      Decide(r, device, RowJson(*rows, i), score, *v);
    }
    return absl::OkStatus();
  }

  // A rule whose command the model chooses: each row of its condition is
  // a situation (situation.h's columns); the candidates are the commands
  // the allow-list has for the device, and "none".
  absl::Status RunModelRule(const Rule& r, const sm::QueryResult& rows) {
    if (rows.rows.empty()) return absl::OkStatus();
    static constexpr const char* kColumns[] = {
        "device", "sensor", "value", "mean", "z", "rate", "stuck", "gap"};
    int col[8];
    for (int i = 0; i < 8; ++i) {
      col[i] = Column(rows, kColumns[i]);
      if (col[i] < 0) {
        Audit(r, "", r.command, "{}", std::nullopt, "error",
              absl::StrCat("a model rule's condition returns no '", kColumns[i],
                           "' column"));
        return absl::OkStatus();
      }
    }
    const size_t n = std::min(rows.rows.size(), kMaxTriggersPerRule);
    for (size_t i = 0; i < n; ++i) {
      if (decisions_ >= kMaxDecisionsPerEvaluation) return absl::OkStatus();
      const auto& row = rows.rows[i];
      Situation s;
      s.device = TextOf(row[col[0]]);
      s.sensor = TextOf(row[col[1]]);
      s.value = Number(row[col[2]]).value_or(0);
      s.mean = Number(row[col[3]]).value_or(0);
      s.z = Number(row[col[4]]).value_or(0);
      s.rate = Number(row[col[5]]).value_or(0);
      s.stuck = Number(row[col[6]]).value_or(0) != 0;
      s.gap_seconds = static_cast<int64_t>(Number(row[col[7]]).value_or(0));
      const std::string text = Render(s);
      std::string inputs = RowJson(rows, i);
      inputs.pop_back();
      absl::StrAppend(&inputs, ",\"situation\":", Json(Text(text)));
      absl::StatusOr<sm::QueryResult> allowed = query_(Statement{
          "SELECT DISTINCT command FROM ai_allow WHERE param = '' AND ?1 "
          "GLOB devices ORDER BY command",
          {Text(s.device)},
          {}});
      if (!allowed.ok()) return allowed.status();
      std::vector<std::string> candidates = {"none"};
      for (const auto& a : allowed->rows) {
        if (TextOf(a[0]) != "none") candidates.push_back(TextOf(a[0]));
      }
      absl::StatusOr<ModelChoice> choice =
          model_ == nullptr ? absl::UnavailableError("no model is active")
                            : model_(text, candidates);
      if (choice.ok() && std::find(candidates.begin(), candidates.end(),
                                   choice->action) == candidates.end()) {
        choice = absl::InternalError(
            absl::StrCat("it chose ", choice->action, ", not a candidate"));
      }
      if (!choice.ok()) {
        ++decisions_;
        ++blocked;
        Audit(r, s.device, "", inputs + "}", std::nullopt, "blocked",
              absl::StrCat("model: ", choice.status().message()));
        continue;
      }
      absl::StrAppend(&inputs, ",\"model\":", Json(Text(choice->model)),
                      ",\"why\":", Json(Text(choice->rationale)), "}");
      if (choice->action == "none") {
        ++decisions_;
        Audit(r, s.device, "none", inputs, choice->probability, "none", "");
        continue;
      }
      Rule chosen = r;
      chosen.command = choice->action;
      absl::StatusOr<Verdict> v =
          Guard(chosen, s.device, Substitute(r.params, rows, i));
      if (!v.ok()) return v.status();
      Decide(chosen, s.device, inputs, choice->probability, *v);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Verdict> Guard(const Rule& r, const std::string& device,
                                std::string params) {
    Verdict v;
    v.params = std::move(params);
    auto blocked = [&v](std::string why) {
      v.verdict = "blocked";
      v.guard = std::move(why);
      return v;
    };
    // 1. Schema.
    for (const absl::Status& s :
         {edge::ValidateName("device", device, edge::kMaxCommandIdBytes),
          edge::ValidateName("command", r.command, edge::kMaxCommandNameBytes),
          edge::ValidateJsonObject("params", v.params,
                                   edge::kMaxParamsBytes)}) {
      if (!s.ok()) return blocked(absl::StrCat("schema: ", s.message()));
    }
    // 2. Allow-list and parameter ranges.
    absl::StatusOr<sm::QueryResult> allow = query_(Statement{
        "SELECT param, min, max, approval, json_extract(?3, '$.\"' || param "
        "|| '\"') FROM ai_allow WHERE command = ?1 AND ?2 GLOB devices",
        {Text(r.command), Text(device), Text(v.params)},
        {}});
    if (!allow.ok()) return allow.status();
    if (allow->rows.empty()) {
      return blocked(absl::StrCat("allow-list: ", r.command,
                                  " is not allowed for ", device));
    }
    for (const auto& row : allow->rows) {
      v.approval |= IntOf(row[3]) != 0;
      const std::string param = TextOf(row[0]);
      if (param.empty()) continue;
      const std::optional<double> value = Number(row[4]);
      const std::optional<double> lo = Number(row[1]), hi = Number(row[2]);
      if (!value || (lo && *value < *lo) || (hi && *value > *hi)) {
        return blocked(absl::StrCat("allow-list: ", param,
                                    " must be a number in [",
                                    lo ? absl::StrCat(*lo) : "-inf", ", ",
                                    hi ? absl::StrCat(*hi) : "inf", "]"));
      }
    }
    // 3. Vetoes and interlocks.
    if (auto it = vetoed_.find(device); it != vetoed_.end()) {
      return blocked(absl::StrCat("veto: rule ", it->second));
    }
    // 4. Cooldown, then rate limits (this evaluation's decisions count).
    const std::string key = r.name + '\0' + device;
    absl::StatusOr<int64_t> recent = Count(
        query_,
        Statement{"SELECT count(*) FROM ai_audit WHERE rule = ?1 AND "
                  "device = ?2 AND verdict = 'issued' AND at_ms > ?3",
                  {Text(r.name), Text(device), Int(now_ms_ - r.cooldown_ms)},
                  {}});
    if (!recent.ok()) return recent.status();
    if (*recent + issued_by_rule_[key] > 0) {
      return blocked(absl::StrCat("cooldown: ", r.name, " issued to ", device,
                                  " within ", r.cooldown_ms, " ms"));
    }
    absl::StatusOr<int64_t> by_device = Count(
        query_, Statement{"SELECT count(*) FROM ai_audit WHERE device = ?1 AND "
                          "verdict = 'issued' AND at_ms > ?2",
                          {Text(device), Int(now_ms_ - kMinuteMs)},
                          {}});
    if (!by_device.ok()) return by_device.status();
    if (*by_device + issued_to_device_[device] >= device_limit_) {
      return blocked(absl::StrCat("rate limit: ", device_limit_,
                                  " commands a minute to ", device));
    }
    absl::StatusOr<int64_t> by_command =
        Count(query_,
              Statement{"SELECT count(*) FROM ai_audit WHERE command = ?1 AND "
                        "verdict = 'issued' AND at_ms > ?2",
                        {Text(r.command), Int(now_ms_ - kMinuteMs)},
                        {}});
    if (!by_command.ok()) return by_command.status();
    if (*by_command + issued_of_command_[r.command] >= command_limit_) {
      return blocked(absl::StrCat("rate limit: ", command_limit_, " ",
                                  r.command, " commands a minute"));
    }
    // 5. The approval queue.
    if (v.approval) {
      v.verdict = "pending";
      v.guard = "approval: waits for an operator";
      return v;
    }
    v.verdict = "issued";
    return v;
  }

  void Decide(const Rule& r, const std::string& device,
              const std::string& inputs, std::optional<double> score,
              const Verdict& v) {
    ++decisions_;
    const std::string id = CommandId(r.name, index_, device);
    if (v.verdict == "issued") {
      edge::HubCommand c;
      c.id = id;
      c.device = device;
      c.name = r.command;
      c.params_json = v.params;
      c.expires_ms = now_ms_ + r.expires_ms;
      c.max_attempts =
          static_cast<uint32_t>(std::max<int64_t>(r.max_attempts, 1));
      for (Statement& s : edge::IssueCommand(c, now_ms_).statements) {
        statements_.push_back(std::move(s));
      }
      ++issued;
      ++issued_by_rule_[r.name + '\0' + device];
      ++issued_to_device_[device];
      ++issued_of_command_[r.command];
    } else if (v.verdict == "pending") {
      statements_.push_back(Statement{
          "INSERT OR IGNORE INTO ai_approvals(command_id, rule, device, "
          "command, params, expires_in_ms, max_attempts, requested_ms) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
          {Text(id), Text(r.name), Text(device), Text(r.command),
           Text(v.params), Int(r.expires_ms), Int(r.max_attempts),
           Int(now_ms_)},
          {}});
      ++pending;
    } else {
      ++blocked;
    }
    Audit(r, device, r.command, inputs, score, v.verdict,
          v.verdict == "blocked" ? v.guard : "",
          v.verdict == "blocked" ? "" : id);
  }

  void Audit(const Rule& r, const std::string& device,
             const std::string& command, const std::string& inputs,
             std::optional<double> score, const std::string& verdict,
             const std::string& guard, const std::string& id = "") {
    statements_.push_back(Statement{
        "INSERT OR IGNORE INTO ai_audit(rule, at_index, device, at_ms, "
        "command, inputs, score, verdict, command_id, guard) VALUES (?1, ?2, "
        "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        {Text(r.name), Int(static_cast<int64_t>(index_)), Text(device),
         Int(now_ms_), Text(command), Text(inputs),
         score ? Value::Real(*score) : Value::Null(), Text(verdict),
         id.empty() ? Value::Null() : Text(id),
         guard.empty() ? Value::Null() : Text(guard)},
        {}});
  }

  const uint64_t index_;
  const int64_t now_ms_;
  const QueryFn& query_;
  const ModelFn& model_;
  std::vector<Rule> rules_, vetoes_;
  int64_t device_limit_ = kDefaultDevicePerMinute;
  int64_t command_limit_ = kDefaultCommandPerMinute;
  std::map<std::string, std::string> vetoed_;  // device -> veto rule
  std::map<std::string, int64_t> issued_by_rule_, issued_to_device_,
      issued_of_command_;
  size_t decisions_ = 0;
  std::vector<Statement> statements_;
};

}  // namespace

sm::Command SchemaCommand() {
  sm::Command c = edge::SchemaCommand();  // Decisions issue edge commands.
  for (const char* sql : kSchema)
    c.statements.push_back(Statement{sql, {}, {}});
  c.transaction = true;
  return c;
}

bool IsMissingSchema(const absl::Status& status) {
  return absl::StrContains(status.message(), "no such table: ai_") ||
         edge::IsMissingSchema(status);
}

absl::StatusOr<uint64_t> ReadProgress(const QueryFn& query) {
  absl::StatusOr<int64_t> p = Count(
      query,
      Statement{"SELECT idx FROM ai_progress WHERE name = 'rules'", {}, {}});
  if (!p.ok()) return p.status();
  return static_cast<uint64_t>(*p);
}

absl::StatusOr<Evaluation> Evaluate(uint64_t progress, uint64_t index,
                                    const std::set<std::string>& tables,
                                    int64_t now_ms, const QueryFn& query,
                                    bool write_progress, const ModelFn& model) {
  Evaluator e(index, now_ms, query, model);
  absl::Status s = e.Load();
  if (s.ok()) s = e.Run(tables);
  if (!s.ok()) return s;
  Evaluation out;
  out.issued = e.issued;
  out.blocked = e.blocked;
  out.pending = e.pending;
  out.command = e.Finish(progress, write_progress);
  return out;
}

sm::Statement ApprovalQuery(const std::string& command_id) {
  return Statement{
      "SELECT command_id, device, command, params, expires_in_ms, "
      "max_attempts, status FROM ai_approvals WHERE command_id = ?1",
      {Text(command_id)},
      {}};
}

absl::StatusOr<sm::Command> AnswerApproval(const sm::QueryResult& approval,
                                           bool approve, int64_t now_ms) {
  if (approval.rows.empty()) {
    return absl::NotFoundError("no such command waits for approval");
  }
  const auto& row = approval.rows[0];
  if (TextOf(row[6]) != "pending") {
    return absl::FailedPreconditionError(
        absl::StrCat("the command was ", TextOf(row[6]), " already"));
  }
  sm::Command c;
  c.transaction = true;
  c.timestamp_ms = now_ms;
  // Only while still pending (a second answer fails the command whole).
  c.statements.push_back(
      Statement{"UPDATE ai_approvals SET status = ?2, decided_ms = ?3 WHERE "
                "command_id = ?1 AND status = 'pending'",
                {row[0], Text(approve ? "approved" : "refused"), Int(now_ms)},
                {}});
  c.statements.push_back(
      Statement{"INSERT INTO ai_stale SELECT 1 WHERE changes() = 0", {}, {}});
  if (approve) {
    edge::HubCommand h;
    h.id = TextOf(row[0]);
    h.device = TextOf(row[1]);
    h.name = TextOf(row[2]);
    h.params_json = TextOf(row[3]);
    h.expires_ms = now_ms + IntOf(row[4]);
    h.max_attempts = static_cast<uint32_t>(std::max<int64_t>(IntOf(row[5]), 1));
    for (Statement& s : edge::IssueCommand(h, now_ms).statements) {
      c.statements.push_back(std::move(s));
    }
  }
  return c;
}

std::string CommandId(const std::string& rule, uint64_t index,
                      const std::string& device) {
  // FNV-1a over rule and device: a short id of the allowed characters.
  uint64_t h = 0xcbf29ce484222325ull;
  for (const std::string* part : {&rule, &device}) {
    for (unsigned char c : *part) h = (h ^ c) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull;
  }
  return absl::StrFormat("ai-%d-%016x", index, h);
}

}  // namespace raftsql::ai
