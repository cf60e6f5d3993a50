// The Llama runtime on random models: a batched prefill, one token at a
// time, and a truncated and refed session give the same logits exactly;
// bad models, tokens and sizes are refused with their reasons.
#include "ai/llama.h"

#include <numeric>

#include "ai/llama_testing.h"
#include "gtest/gtest.h"

namespace raftsql::ai {
namespace {

LlamaConfig SmallConfig() {
  LlamaConfig c;
  c.dim = 64;
  c.hidden_dim = 96;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;  // Grouped-query attention.
  c.vocab = 50;
  c.context = 64;
  return c;
}

std::vector<int32_t> Tokens(size_t n, int32_t vocab) {
  std::vector<int32_t> t(n);
  for (size_t i = 0; i < n; ++i)
    t[i] = static_cast<int32_t>((i * 7 + 3) % vocab);
  return t;
}

std::unique_ptr<LlamaSession> Session(const LlamaModel& m) {
  absl::StatusOr<std::unique_ptr<LlamaSession>> s = LlamaSession::Create(m);
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

TEST(Llama, APrefillEqualsOneTokenAtATimeForEachWeightType) {
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0}) {
    const std::string bytes =
        RandomLlama({.config = SmallConfig(), .type = type});
    absl::StatusOr<std::unique_ptr<LlamaModel>> m = LlamaModel::Load(bytes);
    ASSERT_TRUE(m.ok()) << m.status();
    // More than one batch of the prefill.
    const std::vector<int32_t> tokens = Tokens(45, 50);
    std::unique_ptr<LlamaSession> all = Session(**m);
    std::vector<float> batched;
    ASSERT_TRUE(all->Forward(tokens, /*all_logits=*/true, &batched).ok());
    ASSERT_EQ(batched.size(), tokens.size() * 50);
    EXPECT_EQ(all->position(), tokens.size());
    std::unique_ptr<LlamaSession> one = Session(**m);
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::vector<float> logits;
      ASSERT_TRUE(one->Forward({&tokens[i], 1}, false, &logits).ok());
      ASSERT_EQ(logits.size(), 50u);
      for (size_t v = 0; v < 50; ++v) {
        ASSERT_EQ(logits[v], batched[i * 50 + v])
            << "type " << static_cast<int>(type) << " token " << i;
      }
    }
    // The last row alone, from a prefill that asks for it alone.
    std::unique_ptr<LlamaSession> last = Session(**m);
    std::vector<float> only;
    ASSERT_TRUE(last->Forward(tokens, false, &only).ok());
    ASSERT_EQ(only.size(), 50u);
    for (size_t v = 0; v < 50; ++v) {
      EXPECT_EQ(only[v], batched[(tokens.size() - 1) * 50 + v]);
    }
  }
}

TEST(Llama, ATruncatedSessionRefedGivesTheSameLogits) {
  const std::string bytes = RandomLlama({.config = SmallConfig()});
  std::unique_ptr<LlamaModel> m = *LlamaModel::Load(bytes);
  std::unique_ptr<LlamaSession> s = Session(*m);
  const std::vector<int32_t> prompt = Tokens(10, 50);
  std::vector<float> logits;
  ASSERT_TRUE(s->Forward(prompt, false, &logits).ok());
  const std::vector<int32_t> a = {1, 2, 3}, b = {4, 5};
  std::vector<float> first, other, again;
  ASSERT_TRUE(s->Forward(a, true, &first).ok());
  s->Truncate(prompt.size());
  ASSERT_TRUE(s->Forward(b, true, &other).ok());
  EXPECT_NE(other[0], first[0]);
  s->Truncate(prompt.size());
  ASSERT_TRUE(s->Forward(a, true, &again).ok());
  EXPECT_EQ(again, first);
  EXPECT_EQ(s->position(), prompt.size() + a.size());
}

TEST(Llama, TiedAndSeparateOutputMatricesAreBothRead) {
  const std::string tied = RandomLlama({.config = SmallConfig()});
  const std::string separate =
      RandomLlama({.config = SmallConfig(), .tied_output = false});
  std::unique_ptr<LlamaModel> t = *LlamaModel::Load(tied);
  std::unique_ptr<LlamaModel> s = *LlamaModel::Load(separate);
  EXPECT_TRUE(t->tied_output());
  EXPECT_FALSE(s->tied_output());
  std::vector<float> lt, ls;
  const std::vector<int32_t> tokens = {1, 2};
  ASSERT_TRUE(Session(*t)->Forward(tokens, false, &lt).ok());
  ASSERT_TRUE(Session(*s)->Forward(tokens, false, &ls).ok());
  EXPECT_NE(lt, ls);
}

TEST(Llama, TokensOutsideTheVocabularyOrTheContextFeedNothing) {
  const std::string bytes = RandomLlama({.config = SmallConfig()});
  std::unique_ptr<LlamaModel> m = *LlamaModel::Load(bytes);
  std::unique_ptr<LlamaSession> s = Session(*m);
  std::vector<float> logits;
  const std::vector<int32_t> bad = {1, 50};
  absl::Status st = s->Forward(bad, false, &logits);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("token 50"), std::string::npos) << st;
  const std::vector<int32_t> negative = {-1};
  EXPECT_FALSE(s->Forward(negative, false, &logits).ok());
  EXPECT_EQ(s->position(), 0u);
  const std::vector<int32_t> long_prompt = Tokens(65, 50);
  EXPECT_EQ(s->Forward(long_prompt, false, &logits).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(s->position(), 0u);
  ASSERT_TRUE(s->Forward(Tokens(64, 50), false, &logits).ok());
  const std::vector<int32_t> one = {1};
  EXPECT_EQ(s->Forward(one, false, &logits).code(),
            absl::StatusCode::kOutOfRange);
}

TEST(Llama, ASessionOverItsMemoryBoundIsRefused) {
  const std::string bytes = RandomLlama({.config = SmallConfig()});
  std::unique_ptr<LlamaModel> m = *LlamaModel::Load(bytes);
  const uint64_t need = LlamaSession::Bytes(m->config(), 64);
  EXPECT_TRUE(LlamaSession::Create(*m, 0, need).ok());
  absl::StatusOr<std::unique_ptr<LlamaSession>> s =
      LlamaSession::Create(*m, 0, need - 1);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kResourceExhausted);
  // A shorter context fits.
  EXPECT_TRUE(LlamaSession::Create(*m, 32, need - 1).ok());
}

// The reason a model is refused.
std::string Refusal(const std::string& bytes) {
  absl::StatusOr<std::unique_ptr<LlamaModel>> m = LlamaModel::Load(bytes);
  return m.ok() ? "accepted" : std::string(m.status().message());
}

TEST(Llama, EachBadModelIsRefusedWithItsReason) {
  auto with = [](auto change) {
    RandomLlamaOptions o{.config = SmallConfig()};
    change(o.config);
    return RandomLlama(o);
  };
  EXPECT_EQ(Refusal(with([](LlamaConfig&) {})), "accepted");
  EXPECT_NE(Refusal(with([](LlamaConfig& c) {
              c.heads = 5;
            })).find("5 heads of an even size"),
            std::string::npos);
  EXPECT_NE(Refusal(with([](LlamaConfig& c) {
              c.kv_heads = 3;
            })).find("do not share 3"),
            std::string::npos);
  EXPECT_NE(Refusal(with([](LlamaConfig& c) {
              c.context = 0;
            })).find("llama.context_length is 0"),
            std::string::npos);
  EXPECT_NE(Refusal(with([](LlamaConfig& c) {
              c.dim = c.hidden_dim = 8;  // Small: 257 layers are written.
              c.layers = kMaxLlamaLayers + 1;
            })).find("llama.block_count is 257, not in [1, 256]"),
            std::string::npos);
  // A layer's matrix of the wrong shape, a missing tensor, another
  // architecture.
  RandomLlamaOptions o{.config = SmallConfig()};
  o.transpose_tensor = "blk.1.ffn_down.weight";
  EXPECT_NE(Refusal(RandomLlama(o))
                .find("blk.1.ffn_down.weight has shape {64, 96}, not {96, 64}"),
            std::string::npos)
      << Refusal(RandomLlama(o));
  o.transpose_tensor = "";
  o.drop_tensor = "blk.1.ffn_norm.weight";
  EXPECT_NE(Refusal(RandomLlama(o)).find("no tensor blk.1.ffn_norm.weight"),
            std::string::npos);
  o.drop_tensor = "";
  o.architecture = "gpt2";
  EXPECT_NE(Refusal(RandomLlama(o)).find("architecture \"gpt2\""),
            std::string::npos);
  // Not a GGUF file at all.
  EXPECT_NE(Refusal("GGUF").find("GGUF"), std::string::npos);
}

}  // namespace
}  // namespace raftsql::ai
