#include "obs/loop_phases.h"

#include "absl/strings/str_cat.h"

namespace raftsql::obs {
namespace {

using Clock = std::chrono::steady_clock;

thread_local PhaseMicros account{};
thread_local PhaseTimer* innermost = nullptr;

constexpr const char* kNames[] = {"log", "apply", "snapshots", "checkpoints",
                                  "sends"};
static_assert(sizeof(kNames) / sizeof(kNames[0]) ==
              static_cast<size_t>(Phase::kCount));

void Add(Phase phase, Clock::time_point since, Clock::time_point now) {
  account[static_cast<size_t>(phase)] +=
      std::chrono::duration_cast<std::chrono::microseconds>(now - since)
          .count();
}

}  // namespace

PhaseMicros TakePhaseMicros() {
  PhaseMicros out = account;
  account = {};
  return out;
}

const char* PhaseName(Phase phase) {
  return kNames[static_cast<size_t>(phase)];
}

std::string DescribePhases(const PhaseMicros& micros) {
  std::string out;
  for (size_t i = 0; i < micros.size(); ++i) {
    if (micros[i] < 1000) continue;
    absl::StrAppend(&out, out.empty() ? "" : ", ", kNames[i], " ",
                    micros[i] / 1000, " ms");
  }
  return out.empty() ? "none" : out;
}

PhaseTimer::PhaseTimer(Phase phase)
    : phase_(phase), outer_(innermost), since_(Clock::now()) {
  // The outer scope's time so far is its own; from now on it is ours.
  if (outer_ != nullptr) Add(outer_->phase_, outer_->since_, since_);
  innermost = this;
}

PhaseTimer::~PhaseTimer() {
  const Clock::time_point now = Clock::now();
  Add(phase_, since_, now);
  innermost = outer_;
  if (outer_ != nullptr) outer_->since_ = now;
}

}  // namespace raftsql::obs
