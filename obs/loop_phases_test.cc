#include "obs/loop_phases.h"

#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace raftsql::obs {
namespace {

// Busy for at least `ms` of the steady clock (no sleep: the time is the
// thread's own work, as a phase's is).
void Spin(int ms) {
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
  }
}

int64_t Ms(const PhaseMicros& m, Phase p) {
  return m[static_cast<size_t>(p)] / 1000;
}

TEST(LoopPhases, ANestedPhaseCountsOnlyTowardItself) {
  TakePhaseMicros();
  const auto began = std::chrono::steady_clock::now();
  {
    PhaseTimer snapshot(Phase::kSnapshot);
    Spin(5);
    {
      PhaseTimer log(Phase::kLog);
      Spin(20);
    }
    Spin(5);
  }
  const int64_t elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - began)
          .count();
  const PhaseMicros m = TakePhaseMicros();
  EXPECT_GE(Ms(m, Phase::kLog), 20);
  EXPECT_GE(Ms(m, Phase::kSnapshot), 10);
  // Nothing counted twice: the phases add up to the time that passed.
  EXPECT_LE(m[static_cast<size_t>(Phase::kLog)] +
                m[static_cast<size_t>(Phase::kSnapshot)],
            elapsed_us);
  EXPECT_EQ(Ms(m, Phase::kApply), 0);
}

TEST(LoopPhases, TakeStartsANewAccountAndEachThreadHasItsOwn) {
  {
    PhaseTimer apply(Phase::kApply);
    Spin(2);
  }
  PhaseMicros other{};
  std::thread([&] { other = TakePhaseMicros(); }).join();
  EXPECT_EQ(Ms(other, Phase::kApply), 0);
  EXPECT_GE(Ms(TakePhaseMicros(), Phase::kApply), 2);
  EXPECT_EQ(Ms(TakePhaseMicros(), Phase::kApply), 0);
}

TEST(LoopPhases, TheDescriptionNamesPhasesOfAMillisecondOrMore) {
  PhaseMicros m{};
  EXPECT_EQ(DescribePhases(m), "none");
  m[static_cast<size_t>(Phase::kLog)] = 12'500;
  m[static_cast<size_t>(Phase::kApply)] = 999;
  m[static_cast<size_t>(Phase::kCheckpoint)] = 3'000;
  EXPECT_EQ(DescribePhases(m), "log 12 ms, checkpoints 3 ms");
}

}  // namespace
}  // namespace raftsql::obs
