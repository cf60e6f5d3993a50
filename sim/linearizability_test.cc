#include "sim/linearizability.h"

#include "gtest/gtest.h"

namespace raftsql::sim {
namespace {

RegisterOp W(int64_t v, uint64_t call, uint64_t ret) {
  return RegisterOp{1, true, v, call, ret};
}
RegisterOp R(int64_t v, uint64_t call, uint64_t ret) {
  return RegisterOp{2, false, v, call, ret};
}

TEST(Linearizability, SequentialHistoryIsLinearizable) {
  EXPECT_EQ(
      CheckRegister({W(1, 0, 1), R(1, 2, 3), W(2, 4, 5), R(2, 6, 7)}, 1000),
      CheckResult::kOk);
}

TEST(Linearizability, ReadOfTheInitialValueIsLegal) {
  EXPECT_EQ(CheckRegister({R(0, 0, 1)}, 1000), CheckResult::kOk);
}

TEST(Linearizability, StaleReadAfterACompletedWriteIsIllegal) {
  EXPECT_EQ(CheckRegister({W(1, 0, 1), W(2, 2, 3), R(1, 4, 5)}, 1000),
            CheckResult::kIllegal);
}

TEST(Linearizability, ReadOfANeverWrittenValueIsIllegal) {
  EXPECT_EQ(CheckRegister({W(1, 0, 10), R(7, 1, 2)}, 1000),
            CheckResult::kIllegal);
}

TEST(Linearizability, ConcurrentReadMaySeeEitherValue) {
  // The write overlaps both reads: one sees the old value, one the new.
  EXPECT_EQ(CheckRegister({W(1, 0, 10), R(0, 1, 2), R(1, 3, 4)}, 1000),
            CheckResult::kOk);
}

TEST(Linearizability, ReadsMustNotGoBackInTime) {
  // Once a read saw 1, a later read cannot see 0 again.
  EXPECT_EQ(CheckRegister({W(1, 0, 10), R(1, 1, 2), R(0, 3, 4)}, 1000),
            CheckResult::kIllegal);
}

TEST(Linearizability, TimedOutWriteMayTakeEffectLateOrNever) {
  EXPECT_EQ(
      CheckRegister({W(5, 0, kNeverReturned), R(0, 1, 2), R(5, 3, 4)}, 1000),
      CheckResult::kOk);
  EXPECT_EQ(
      CheckRegister({W(5, 0, kNeverReturned), R(0, 1, 2), R(0, 3, 4)}, 1000),
      CheckResult::kOk);
  // But not before it was called.
  EXPECT_EQ(CheckRegister({R(5, 0, 1), W(5, 2, kNeverReturned)}, 1000),
            CheckResult::kIllegal);
}

TEST(Linearizability, ATimedOutWriteTookEffectBeforeItsFirstReaderReturned) {
  // Read at [3, 4] saw 5, so the write took effect by 4; the read at
  // [5, 6] of the older value 1 is then stale.
  EXPECT_EQ(
      CheckRegister(
          {W(1, 0, 1), W(5, 2, kNeverReturned), R(5, 3, 4), R(1, 5, 6)}, 1000),
      CheckResult::kIllegal);
  EXPECT_EQ(
      CheckRegister(
          {W(1, 0, 1), W(5, 2, kNeverReturned), R(1, 3, 4), R(5, 5, 6)}, 1000),
      CheckResult::kOk);
}

TEST(Linearizability, OutcomeUnknownOperationsNobodySawDecideQuickly) {
  // 40 timed-out writes nobody read and 40 unanswered reads: left out, the
  // history is three operations long and decided in a few steps (kept,
  // the search ran out of its 10 steps).
  std::vector<RegisterOp> ops = {W(1, 0, 1), R(1, 200, 201)};
  for (int i = 0; i < 40; ++i) {
    ops.push_back(W(100 + i, 2, kNeverReturned));
    ops.push_back(R(0, 3, kNeverReturned));
  }
  ops.push_back(R(2, 300, 301));  // Never written.
  EXPECT_EQ(CheckRegister(ops, 10), CheckResult::kIllegal);
  ops.pop_back();
  EXPECT_EQ(CheckRegister(ops, 10), CheckResult::kOk);
}

TEST(Linearizability, OperationsThatTouchAreConcurrent) {
  EXPECT_EQ(CheckRegister({W(1, 0, 5), R(0, 5, 6)}, 1000), CheckResult::kOk);
}

TEST(Linearizability, SearchBoundGivesUnknown) {
  std::vector<RegisterOp> ops;
  for (int i = 0; i < 40; ++i) ops.push_back(W(i, 0, 100));
  ops.push_back(R(-1, 101, 102));  // Illegal, but only after a long search.
  EXPECT_EQ(CheckRegister(ops, 10), CheckResult::kUnknown);
}

TEST(Linearizability, HistoryIsCheckedPerKey) {
  std::map<uint64_t, std::vector<RegisterOp>> h;
  h[1] = {W(1, 0, 1), R(1, 2, 3)};
  h[2] = {W(1, 0, 1), R(0, 2, 3)};  // Stale.
  HistoryReport r = CheckHistory(h, 1000);
  EXPECT_EQ(r.result, CheckResult::kIllegal);
  EXPECT_EQ(r.key, 2u);
  EXPECT_EQ(r.operations, 4u);
}

TEST(Linearizability, ManyConcurrentWritersStayTractable) {
  // 10 clients, 60 ops each, heavy overlap: memoization keeps it fast.
  std::vector<RegisterOp> ops;
  int64_t value = 0;
  for (uint64_t t = 0; t < 600; ++t) {
    const uint64_t client = t % 10;
    if (t % 3 == 0) {
      ops.push_back(RegisterOp{client, true, ++value, t * 10, t * 10 + 25});
    } else {
      ops.push_back(RegisterOp{client, false, value, t * 10, t * 10 + 25});
    }
  }
  EXPECT_EQ(CheckRegister(ops, 10'000'000), CheckResult::kOk);
}

}  // namespace
}  // namespace raftsql::sim
