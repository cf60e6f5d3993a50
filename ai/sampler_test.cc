// Greedy and seeded sampling: the same seed draws the same tokens, the
// nucleus keeps only the likeliest, and the draws follow the softmax.
#include "ai/sampler.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace raftsql::ai {
namespace {

TEST(Sampler, GreedyTakesTheLargestAndTheLowestIndexOfEquals) {
  const std::vector<float> logits = {0.5f, 2, -1, 2};
  EXPECT_EQ(Greedy(logits), 1);
  EXPECT_EQ(Greedy({}), -1);
  Sampler cold(1, 0, 1);
  EXPECT_EQ(cold.Sample(logits), 1);
}

TEST(Sampler, TheSameSeedDrawsTheSameTokens) {
  const std::vector<float> logits = {1, 1.5f, 0.2f, 0.9f, 1.2f};
  Sampler a(42, 1, 1), b(42, 1, 1), c(43, 1, 1);
  std::vector<int32_t> da, db, dc;
  for (int i = 0; i < 100; ++i) {
    da.push_back(a.Sample(logits));
    db.push_back(b.Sample(logits));
    dc.push_back(c.Sample(logits));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

TEST(Sampler, DrawsFollowTheSoftmaxAndTheNucleusKeepsTheLikeliest) {
  // Probabilities 0.5, 0.25, 0.125, 0.125 at temperature 1.
  const std::vector<float> logits = {std::log(4.0f), std::log(2.0f), 0, 0};
  Sampler all(7, 1, 1);
  std::vector<int> counts(4);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[all.Sample(logits)];
  EXPECT_NEAR(counts[0] / double{n}, 0.5, 0.02);
  EXPECT_NEAR(counts[1] / double{n}, 0.25, 0.02);
  EXPECT_NEAR(counts[3] / double{n}, 0.125, 0.02);
  // top_p 0.7: the first two (0.75) only, in their ratio.
  Sampler nucleus(7, 1, 0.7f);
  std::vector<int> kept(4);
  for (int i = 0; i < n; ++i) ++kept[nucleus.Sample(logits)];
  EXPECT_EQ(kept[2] + kept[3], 0);
  EXPECT_NEAR(kept[0] / double{n}, 2.0 / 3, 0.02);
}

}  // namespace
}  // namespace raftsql::ai
