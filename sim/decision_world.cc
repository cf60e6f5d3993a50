// The scenario's sensors, the operator's set-up and the decision makers
// (the checkers are in decision_checks.cc).
#include "sim/decision_world.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ai/gguf.h"
#include "ai/rules.h"
#include "core/prng.h"
#include "edge/hub_sql.h"
#include "sim/decision_world_internal.h"

namespace raftsql::sim {
namespace {

using sm::Statement;

constexpr int64_t kWarmUpMs = 15'000;
constexpr int64_t kRampMs = 40'000;  // A drift's way up, and down.

// About N(0, 1): three uniforms summed, a function of (seed, t).
double Noise(uint64_t seed, int64_t t) {
  double sum = 0;
  uint64_t h = seed ^ (static_cast<uint64_t>(t) * 0x2545f4914f6cdd1dull);
  for (int i = 0; i < 3; ++i) {
    uint64_t x = h;
    h = core::SplitMix64(x);
    sum += static_cast<double>(h >> 11) * 0x1.0p-53;
  }
  return (sum - 1.5) * 2;
}

// One device's readings: its signal plus its labelled faults, sampled
// every period on the period's grid (a restarted edge samples the same
// times), while it is up.
class LabelledSensor final : public edge::Source {
 public:
  LabelledSensor(const SensorKind& kind, double mean, int64_t period_ms,
                 uint64_t seed, std::vector<const Episode*> episodes,
                 const bool* stop)
      : kind_(kind),
        mean_(mean),
        period_ms_(period_ms),
        seed_(seed),
        episodes_(std::move(episodes)),
        stop_(stop) {}

  std::vector<edge::Reading> Poll(int64_t now_ms) override {
    std::vector<edge::Reading> out;
    if (*stop_) return out;
    if (next_ms_ < 0) next_ms_ = (now_ms / period_ms_ + 1) * period_ms_;
    for (; next_ms_ <= now_ms; next_ms_ += period_ms_) {
      if (std::optional<double> v = Value(next_ms_)) {
        out.push_back(edge::Reading{kind_.name, *v, kind_.unit, next_ms_, 0});
      }
    }
    return out;
  }
  bool Done() const override { return *stop_; }

 private:
  double Plain(int64_t t) const {
    return mean_ + kind_.spread * kNoiseShare * Noise(seed_, t);
  }
  std::optional<double> Value(int64_t t) const {
    for (const Episode* e : episodes_) {
      if (t < e->from_ms || t >= e->to_ms) continue;
      if (e->kind == "gap") return std::nullopt;
      if (e->kind == "stuck") return Plain(e->from_ms);
      if (e->kind == "spike") return e->amplitude;
      if (e->kind == "drift") {
        const int64_t in = t - e->from_ms;
        const int64_t left = e->to_ms - t;
        const double f =
            std::min(1.0, static_cast<double>(std::min(in, left)) / kRampMs);
        return Plain(t) + f * e->amplitude;
      }
    }
    return Plain(t);
  }

  const SensorKind& kind_;
  const double mean_;
  const int64_t period_ms_;
  const uint64_t seed_;
  const std::vector<const Episode*> episodes_;
  const bool* const stop_;
  int64_t next_ms_ = -1;
};

// The kinds of fault a sensor gets, how long each lasts, and its size.
Episode DrawEpisode(const SensorKind& kind, double mean, core::Prng& rng) {
  std::vector<std::string> kinds = {"spike", "stuck", "gap", "duplicates"};
  // A vibration's drift is no fault in the runbook.
  if (std::string(kind.name) != "vibration") kinds.push_back("drift");
  Episode e;
  e.sensor = kind.name;
  e.kind = kinds[rng.Uniform(kinds.size())];
  const auto uniform = [&rng](double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(rng.Uniform(1'000'001)) / 1e6;
  };
  int64_t length_ms = 20'000;
  if (e.kind == "spike") {
    length_ms = 3'000;
    if (e.sensor == "temperature") e.amplitude = uniform(96, 100);
    if (e.sensor == "flow") e.amplitude = uniform(5, 12);
    if (e.sensor == "pressure" || e.sensor == "vibration") {
      e.amplitude = mean + uniform(4.5, 6.5) * kind.spread;
    }
  } else if (e.kind == "drift") {
    length_ms = 2 * kRampMs + 40'000;
    if (e.sensor == "temperature") e.amplitude = uniform(82, 88) - mean;
    if (e.sensor == "flow") e.amplitude = uniform(10, 14) - mean;
    if (e.sensor == "pressure") {
      e.amplitude = (rng.Chance(0.5) ? 1 : -1) * uniform(1.0, 1.6);
    }
  } else if (e.kind == "stuck") {
    length_ms = 45'000;
  } else if (e.kind == "gap") {
    length_ms = static_cast<int64_t>(rng.Range(65'000, 75'000));
  }
  e.action = RunbookAction(e.sensor, e.kind);
  e.to_ms = length_ms;  // Relative until placed.
  return e;
}

}  // namespace

bool Committed(const absl::StatusOr<sm::CommandResult>& r) {
  if (!r.ok()) return false;
  for (const sm::StatementResult& s : r->statements) {
    if (!s.status.ok()) return false;
  }
  return true;
}

std::string RunbookAction(const std::string& sensor, const std::string& kind) {
  if (kind == "gap") return "ping";
  if (kind == "stuck") return "recalibrate";
  if (kind == "spike") {
    if (sensor == "pressure") return "throttle";
    if (sensor == "flow") return "inspect";
    return "shutdown";  // Temperature over 95, a vibration's z over 4.
  }
  if (kind == "drift") return sensor == "temperature" ? "cool" : "inspect";
  return "none";
}

DecisionWorld::DecisionWorld(const DecisionWorldOptions& options,
                             EventQueue* queue, HubCluster* hub)
    : options_(options), queue_(queue), hub_(hub) {
  if (options.mode == DecisionMode::kModel) {
    absl::StatusOr<std::string> bytes = ai::ReadWholeFile(
        options.model_dir + "/hub-actions.gguf", ai::kMaxGgufFileBytes);
    // The operator stages what it has; without the file every model
    // trigger is blocked (and the figures say so).
    model_sha256_ = ai::Sha256Hex(bytes.ok() ? *bytes : "");
  }
  core::Prng rng(options.seed * 0xdec15 + 3);
  const int64_t end_ms = Ms(options.scenario) - 10'000;
  for (int i = 1; i <= options.edges; ++i) {
    Signal s;
    s.sensor = (i - 1) % kSensorKinds;
    const SensorKind& kind = kSensors[s.sensor];
    s.mean = kind.nominal + kind.spread * 0.3 * Noise(rng.Next(), 0);
    s.period_ms = static_cast<int64_t>(rng.Range(200, 500));
    s.seed = rng.Next();
    signals_.push_back(s);
    int64_t t = kWarmUpMs + static_cast<int64_t>(rng.Range(0, 5'000));
    for (;;) {
      t += static_cast<int64_t>(rng.Range(15'000, 25'000));  // Quiet.
      Episode e = DrawEpisode(kind, s.mean, rng);
      if (t + e.to_ms > end_ms) break;
      e.edge = i;
      e.device = absl::StrCat("dev-", i);
      e.from_ms = t;
      e.to_ms += t;
      t = e.to_ms;
      episodes_.push_back(std::move(e));
    }
  }
  seen_.assign(episodes_.size(), false);
}

DecisionWorld::~DecisionWorld() = default;

std::unique_ptr<edge::Source> DecisionWorld::Sensor(int edge,
                                                    const bool* stop) {
  const Signal& s = signals_[edge - 1];
  std::vector<const Episode*> mine;
  for (const Episode& e : episodes_) {
    if (e.edge == edge) mine.push_back(&e);
  }
  return std::make_unique<LabelledSensor>(
      kSensors[s.sensor], s.mean, s.period_ms, s.seed, std::move(mine), stop);
}

bool DecisionWorld::DuplicateUploads(int edge, int64_t now_ms) const {
  for (const Episode& e : episodes_) {
    if (e.edge == edge && e.kind == "duplicates" && e.from_ms <= now_ms &&
        now_ms < e.to_ms) {
      return true;
    }
  }
  return false;
}

bool DecisionWorld::Done() const { return queue_->now() >= options_.scenario; }

void DecisionWorld::Start() {
  SetUp();
  queue_->After(options_.interval, 0xdec0, [this] { Turn(); });
}

sm::Command DecisionWorld::SetUpCommand(int step) const {
  if (step == 0) return edge::SchemaCommand();
  if (step == 1) return ai::SchemaCommand();
  sm::Command c;
  c.transaction = true;
  const auto add = [&c](std::string sql) {
    c.statements.push_back(Statement{std::move(sql), {}, {}});
  };
  add("CREATE TABLE IF NOT EXISTS sim_spreads(sensor TEXT PRIMARY KEY, "
      "spread REAL NOT NULL)");
  for (const SensorKind& k : kSensors) {
    add(absl::StrFormat("INSERT OR REPLACE INTO sim_spreads VALUES ('%s', %g)",
                        k.name, k.spread));
  }
  add(kSituationsView);
  for (const char* action :
       {"cool", "throttle", "shutdown", "recalibrate", "inspect", "ping"}) {
    add(absl::StrFormat(
        "INSERT OR REPLACE INTO ai_allow VALUES ('%s', '*', '', NULL, NULL, "
        "0)",
        action));
  }
  // Allowed only with a level in [0, 1]; not one of the model's
  // candidates (no row for the command itself).
  add("INSERT OR REPLACE INTO ai_allow VALUES ('set_level', '*', 'level', "
      "0, 1, 0)");
  const auto rule = [&add](const char* name, const char* condition,
                           const char* command, const char* params) {
    add(absl::StrFormat(
        "INSERT OR REPLACE INTO ai_rules(name, watch, condition, command, "
        "params, cooldown_ms, expires_ms) VALUES ('%s', 'edge_readings', "
        "'%s', '%s', '%s', %d, 60000)",
        name, condition, command, params, kCooldownMs));
  };
  // Canaries: what they propose is never allowed.
  rule("canary-reboot", "SELECT device FROM sim_situations WHERE abs(z) > 3",
       "reboot", "{}");
  rule("canary-range", "SELECT device, z FROM sim_situations WHERE abs(z) > 3",
       "set_level", "{\"level\":\"$z\"}");
  if (options_.mode == DecisionMode::kModel) {
    rule("advisor",
         "SELECT device, sensor, value, mean, z, rate, stuck, gap FROM "
         "sim_situations",
         ai::kModelCommand, "{}");
    add(absl::StrCat(
        "INSERT OR REPLACE INTO ai_models VALUES ('hub-actions', '",
        model_sha256_, "', 'active', 0)"));
    return c;
  }
  // The operator's single-threshold rules (situations.py's rules_baseline).
  rule("ping", "SELECT device FROM sim_situations WHERE gap > 60", "ping",
       "{}");
  rule("recalibrate", "SELECT device FROM sim_situations WHERE stuck = 1",
       "recalibrate", "{}");
  rule("cool",
       "SELECT device FROM sim_situations WHERE sensor = ''temperature'' AND "
       "value > 90",
       "cool", "{}");
  rule("shutdown",
       "SELECT device, z AS score FROM sim_situations WHERE sensor = "
       "''vibration'' AND z > 4",
       "shutdown", "{}");
  rule("throttle",
       "SELECT device, z AS score FROM sim_situations WHERE sensor = "
       "''pressure'' AND z > 3",
       "throttle", "{}");
  return c;
}

void DecisionWorld::SetUp() {
  if (set_up_steps_ == 3) return;
  uint64_t x = set_up_tries_++;
  const uint64_t node = 1 + core::SplitMix64(x) % hub_->nodes();
  TimedWrite(queue_, hub_, node, SetUpCommand(set_up_steps_),
             [this](absl::StatusOr<sm::CommandResult> r) {
               const bool ok = Committed(r);
               if (ok) ++set_up_steps_;
               queue_->After(ok ? 0 : 500 * kMillisecond, 0xdec1,
                             [this] { SetUp(); });
             });
}

void DecisionWorld::Turn() {
  queue_->After(options_.interval, 0xdec0, [this] { Turn(); });
  if (set_up_steps_ < 3) return;
  for (uint64_t n = 1; n <= hub_->nodes(); ++n) Evaluate(n);
  for (uint64_t n = 1; n <= hub_->nodes(); ++n) {
    if (hub_->LeaderReady(n)) MarkSeen(n);
  }
}

void DecisionWorld::MarkSeen(uint64_t node) {
  const int64_t now = Ms(queue_->now());
  for (size_t i = 0; i < episodes_.size(); ++i) {
    const Episode& e = episodes_[i];
    if (seen_[i] || e.from_ms > now) continue;
    const bool gap = e.kind == "gap";
    absl::StatusOr<sm::QueryResult> r = hub_->Read(
        node,
        Statement{"SELECT EXISTS(SELECT 1 FROM edge_readings_by_device WHERE "
                  "device = ?1 AND device_time_ms >= ?2 AND device_time_ms < "
                  "?3)",
                  {sm::Value::Text(e.device),
                   sm::Value::Integer(gap ? e.to_ms : e.from_ms),
                   sm::Value::Integer(gap ? e.to_ms + kGraceMs : e.to_ms)},
                  {}});
    seen_[i] = r.ok() && !r->rows.empty() && r->rows[0][0].integer == 1;
  }
}

void DecisionWorld::Evaluate(uint64_t node) {
  Maker& m = makers_[node];
  const uint64_t incarnation = hub_->NodeIncarnation(node);
  if (m.incarnation != incarnation) {
    m = Maker{};  // A new process: nothing carried over.
    m.incarnation = incarnation;
  }
  if (incarnation == 0 || m.writing) return;
  if (!hub_->IsLeader(node)) {
    m.have_progress = false;  // A later term starts from the replicated one.
    return;
  }
  if (!hub_->LeaderReady(node)) return;
  const ai::QueryFn query = [this, node](const Statement& s) {
    return hub_->Read(node, s);
  };
  if (!m.have_progress) {
    absl::StatusOr<uint64_t> p = ai::ReadProgress(query);
    if (!p.ok()) return;
    m.progress = m.evaluated = options_.broken_progress ? 0 : *p;
    m.have_progress = true;
    ++tally_["decision makers started"];  // A leader took over, or retried.
  }
  const uint64_t covered = hub_->Applied(node);
  if (covered <= m.evaluated) return;
  if (covered > hub_->Committed(node)) {
    hub_->Violation(absl::StrFormat(
        "decisions: n%d evaluates through %d, beyond its commit index %d", node,
        covered, hub_->Committed(node)));
    return;
  }
  const int64_t now = Ms(queue_->now());
  ai::ModelFn model;
  if (options_.mode == DecisionMode::kModel) {
    if (m.models == nullptr) {
      m.models = std::make_unique<ai::ModelRegistry>(options_.model_dir);
    }
    model = ai::ChooseWith(m.models.get(), query, now);
  }
  absl::StatusOr<ai::Evaluation> e =
      ai::Evaluate(m.progress, covered, {"ai_rules"}, now, query,
                   now - m.progress_written_ms >= kProgressEveryMs, model);
  ++tally_["evaluations"];
  if (!e.ok()) {
    hub_->Trace(absl::StrFormat("n%d decisions at %d failed: %s", node, covered,
                                e.status().message()));
    m.have_progress = false;
    return;
  }
  if (e->command.statements.empty()) {
    m.evaluated = covered;
    return;
  }
  if (options_.broken_progress) {
    std::erase_if(e->command.statements, [](const Statement& s) {
      return s.sql.find("ai_stale") != std::string::npos;
    });
  }
  proposed_[covered].insert(m.progress);
  m.writing = true;
  hub_->Trace(
      absl::StrFormat("n%d proposes decisions %d..%d: %d issued, %d blocked",
                      node, m.progress + 1, covered, e->issued, e->blocked));
  TimedWrite(queue_, hub_, node, std::move(e->command),
             [this, node, incarnation, covered,
              now](absl::StatusOr<sm::CommandResult> r) {
               Maker& m = makers_[node];
               if (m.incarnation != incarnation) return;
               m.writing = false;
               ++tally_[Committed(r) ? "evaluations committed"
                                     : "evaluations not committed"];
               if (!Committed(r)) {
                 // Not leading any more, or another leader advanced the
                 // progress: start over from the replicated progress.
                 m.have_progress = false;
                 return;
               }
               m.progress = m.evaluated = covered;
               m.progress_written_ms = now;
             });
}

}  // namespace raftsql::sim
