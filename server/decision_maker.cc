#include "server/decision_maker.h"

#include <chrono>
#include <cstdio>
#include <future>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "ai/rules.h"
#include "obs/log.h"

namespace raftsql::server {
namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The most changes one turn reads before it evaluates.
constexpr int kPagesPerTurn = 64;
constexpr size_t kPageBytes = size_t{1} << 20;
// How long a leader without the decision tables waits to look again.
constexpr int64_t kIdleMs = 1000;

}  // namespace

DecisionMaker::DecisionMaker(RaftServer* node, DecisionMakerOptions options)
    : node_(node), options_(options), models_(options_.model_dir) {
  if (options_.interval_ms <= 0 || node_->change_log() == nullptr) return;
  thread_ = std::thread([this] { Run(); });
}

DecisionMaker::~DecisionMaker() { Shutdown(); }

void DecisionMaker::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DecisionMaker::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    cv_.wait_for(l, std::chrono::milliseconds(options_.interval_ms));
    if (stopping_) break;
    l.unlock();
    if (!node_->is_leader()) {
      cursor_.reset();  // A later term starts from the replicated progress.
      evaluated_ = 0;
    } else if (!Turn()) {
      cursor_.reset();
    }
    const ai::LoadedModel* m = models_.loaded();
    node_->PublishDecisions(
        evaluated_, evaluations_,
        m == nullptr ? "" : m->name + "@" + m->sha256.substr(0, 12),
        std::string(models_.failure().message()));
    l.lock();
  }
}

bool DecisionMaker::Turn() {
  auto query = [this](const sm::Statement& s, bool linearizable) {
    std::promise<absl::StatusOr<sm::QueryResult>> p;
    node_->Query(
        s, linearizable, sm::ReadLimits{},
        [&p](absl::StatusOr<sm::QueryResult> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  auto write = [this](sm::Command c) -> absl::Status {
    std::promise<absl::StatusOr<sm::CommandResult>> p;
    node_->Execute(std::move(c), [&p](absl::StatusOr<sm::CommandResult> r) {
      p.set_value(std::move(r));
    });
    absl::StatusOr<sm::CommandResult> r = p.get_future().get();
    if (!r.ok()) return r.status();
    for (const sm::StatementResult& s : r->statements) {
      if (!s.status.ok()) return s.status;
    }
    return absl::OkStatus();
  };
  const ai::QueryFn local = [&query](const sm::Statement& s) {
    return query(s, false);
  };
  if (cursor_ == nullptr && WallMs() < idle_until_ms_) return false;
  if (cursor_ == nullptr) {
    // A linearizable read: this leader has applied everything committed
    // before its term, an earlier leader's last evaluation included.
    absl::StatusOr<sm::QueryResult> p = query(
        sm::Statement{
            "SELECT idx FROM ai_progress WHERE name = 'rules'", {}, {}},
        true);
    if (!p.ok()) {
      // No rules yet (the tables come with the first, e.g. the shell's
      // .rule add), or no longer leading: look again in a while.
      idle_until_ms_ = WallMs() + kIdleMs;
      return false;
    }
    progress_ =
        p->rows.empty() ? 0 : static_cast<uint64_t>(p->rows[0][0].integer);
    absl::StatusOr<std::unique_ptr<sm::ChangeLog::Cursor>> c =
        node_->change_log()->Read(progress_ + 1);
    if (!c.ok()) {
      // Compacted: what changed before the oldest index held is not
      // evaluated (said loudly; the audit has no row for it).
      const uint64_t first = node_->change_log()->first_index();
      obs::Log(
          obs::Level::kWarn, "watch",
          absl::StrFormat("decisions: changes %llu..%llu are no longer in this "
                          "node's change log (%s); evaluating from %llu",
                          static_cast<unsigned long long>(progress_ + 1),
                          static_cast<unsigned long long>(first - 1),
                          std::string(c.status().message()).c_str(),
                          static_cast<unsigned long long>(first)));
      c = node_->change_log()->Read(first);
      if (!c.ok()) return false;
    }
    cursor_ = std::move(*c);
    evaluated_ = progress_;
  }
  std::set<std::string> tables;
  uint64_t covered = evaluated_;
  for (int page = 0; page < kPagesPerTurn; ++page) {
    absl::StatusOr<std::vector<sm::Change>> changes =
        cursor_->Next(kPageBytes, &covered);
    if (!changes.ok()) return false;
    if (changes->empty()) break;
    for (const sm::Change& c : *changes) {
      tables.insert(absl::AsciiStrToLower(c.table));
    }
  }
  if (covered <= evaluated_) return true;
  // Its own writes (progress, audit) are no reason to evaluate again, nor
  // to record progress: an idle hub stays idle.
  tables.erase("ai_progress");
  tables.erase("ai_audit");
  if (tables.empty()) {
    evaluated_ = covered;
    return true;
  }
  const int64_t now = WallMs();
  const bool progress_due =
      now - progress_written_ms_ >= options_.progress_every_ms;
  ++evaluations_;
  const ai::ModelFn model = ai::ChooseWith(&models_, local, now);
  absl::StatusOr<ai::Evaluation> e =
      ai::Evaluate(progress_, covered, tables, now, local, progress_due, model);
  if (!e.ok()) {
    if (!ai::IsMissingSchema(e.status())) {
      obs::Log(obs::Level::kWarn, "decisions",
               absl::StrFormat("decisions at %llu failed: %s",
                               static_cast<unsigned long long>(covered),
                               std::string(e.status().message()).c_str()));
    }
    return false;
  }
  if (!e->command.statements.empty()) {
    const absl::Status s = write(std::move(e->command));
    if (!s.ok()) {
      // Not leading any more, or another leader advanced the progress:
      // start over from the replicated progress.
      obs::Log(obs::Level::kWarn, "decisions",
               absl::StrFormat("decisions at %llu not committed: %s",
                               static_cast<unsigned long long>(covered),
                               std::string(s.message()).c_str()));
      return false;
    }
    progress_ = covered;
    progress_written_ms_ = now;
  }
  evaluated_ = covered;
  return true;
}

}  // namespace raftsql::server
