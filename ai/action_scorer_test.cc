// The action scorer on a random model: each score is the log-likelihood a
// fresh session gives the continuation, the order of the candidates
// changes nothing, the rationale is one bounded line, and bad candidates
// and situations are refused.
#include "ai/action_scorer.h"

#include <cmath>

#include "ai/llama_testing.h"
#include "gtest/gtest.h"

namespace raftsql::ai {
namespace {

constexpr uint64_t kVocab = 300;

std::string ModelWithVocabulary() { return RandomLlamaWithVocabulary(kVocab); }

class ActionScorerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<GgufFile> f = ParseGguf(bytes_);
    ASSERT_TRUE(f.ok()) << f.status();
    absl::StatusOr<Tokenizer> t = Tokenizer::FromGguf(*f);
    ASSERT_TRUE(t.ok()) << t.status();
    tokenizer_ = std::make_unique<Tokenizer>(*std::move(t));
    model_ = *LlamaModel::FromGguf(*std::move(f), bytes_);
    scorer_ = *ActionScorer::Create(*model_, *tokenizer_);
  }

  // The log-likelihood of `action`'s continuation, by a fresh session
  // over the whole text.
  double Fresh(const std::string& situation, const std::string& action) {
    const std::string prompt = "situation: " + situation + "\naction:";
    const std::vector<int32_t> p = *tokenizer_->Encode(prompt, true);
    const std::vector<int32_t> all =
        *tokenizer_->Encode(prompt + " " + action + "\n", true);
    std::unique_ptr<LlamaSession> s = *LlamaSession::Create(*model_);
    std::vector<float> logits;
    EXPECT_TRUE(s->Forward(all, true, &logits).ok());
    double sum = 0;
    for (size_t i = p.size(); i < all.size(); ++i) {
      const float* row = &logits[(i - 1) * kVocab];
      double z = 0;
      for (size_t v = 0; v < kVocab; ++v) z += std::exp(double{row[v]});
      sum += row[all[i]] - std::log(z);
    }
    return sum;
  }

  const std::string bytes_ = ModelWithVocabulary();
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<ActionScorer> scorer_;
};

TEST_F(ActionScorerTest, EachScoreIsTheContinuationsLogLikelihood) {
  const std::string situation = "pump temperature high";
  const std::vector<std::string> actions = {"none", "cool", "shutdown"};
  absl::StatusOr<ModelVerdict> v = scorer_->Decide(situation, actions, false);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->scores.size(), 3u);
  double total = 0, best = -1e300;
  for (const ScoredAction& s : v->scores) {
    EXPECT_NEAR(s.log_likelihood, Fresh(situation, s.action), 1e-4) << s.action;
    total += std::exp(s.log_likelihood);
    best = std::max(best, s.log_likelihood);
  }
  for (const ScoredAction& s : v->scores) {
    if (s.log_likelihood == best) {
      EXPECT_EQ(v->action, s.action);
    }
  }
  EXPECT_NEAR(v->probability, std::exp(best) / total, 1e-9);
}

TEST_F(ActionScorerTest, TheOrderOfTheCandidatesChangesNoScore) {
  const std::vector<std::string> one = {"a", "bb", "ccc"};
  const std::vector<std::string> other = {"ccc", "a", "bb"};
  ModelVerdict x = *scorer_->Decide("s", one, false);
  ModelVerdict y = *scorer_->Decide("s", other, false);
  EXPECT_EQ(x.action, y.action);
  EXPECT_EQ(x.scores[0].log_likelihood, y.scores[1].log_likelihood);
  EXPECT_EQ(x.scores[2].log_likelihood, y.scores[0].log_likelihood);
  // A second situation after the first reuses nothing it should not.
  ModelVerdict z = *scorer_->Decide("t", one, false);
  EXPECT_NEAR(z.scores[1].log_likelihood, Fresh("t", "bb"), 1e-4);
}

TEST_F(ActionScorerTest, TheRationaleIsOneBoundedLine) {
  const std::vector<std::string> actions = {"none", "cool"};
  ModelVerdict v = *scorer_->Decide("fan vibration", actions, true);
  EXPECT_EQ(v.rationale.find('\n'), std::string::npos);
  EXPECT_LE(tokenizer_->Encode(v.rationale, false)->size(),
            ActionScorer::kMaxRationaleTokens + 1);
  // The verdict is the same with or without a rationale.
  EXPECT_EQ(scorer_->Decide("fan vibration", actions, false)->action, v.action);
}

TEST_F(ActionScorerTest, BadCandidatesAndLongSituationsAreRefused) {
  const std::vector<std::string> none;
  EXPECT_EQ(scorer_->Decide("s", none, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (std::vector<std::string> bad : {std::vector<std::string>{""},
                                       {"a", "a"},
                                       {"two\nlines"},
                                       {std::string(65, 'x')}}) {
    EXPECT_EQ(scorer_->Decide("s", bad, false).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  const std::vector<std::string> ok = {"a"};
  EXPECT_EQ(scorer_->Decide(std::string(300, 'q'), ok, false).status().code(),
            absl::StatusCode::kOutOfRange);
  // And the scorer still works after them.
  EXPECT_TRUE(scorer_->Decide("s", ok, true).ok());
}

TEST(ActionScorer, AModelAndATokenizerOfOtherSizesAreRefused) {
  LlamaConfig c;
  c.dim = 8;
  c.hidden_dim = 8;
  c.layers = 1;
  c.heads = 2;
  c.kv_heads = 1;
  c.vocab = 5;
  c.context = 8;
  const std::string bytes =
      RandomLlamaWriter({.config = c})
          .String("tokenizer.ggml.model", "llama")
          .Strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "a"})
          .Finish();
  GgufFile f = *ParseGguf(bytes);
  Tokenizer t = *Tokenizer::FromGguf(f);
  std::unique_ptr<LlamaModel> m = *LlamaModel::FromGguf(f, bytes);
  EXPECT_EQ(ActionScorer::Create(*m, t).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace raftsql::ai
